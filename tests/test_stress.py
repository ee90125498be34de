"""Stress with generous bounds: hundreds of calls on one client end, and end right.

These catch hangs and raw errors, not slowness (speed is `make bench`'s). The stand-in runs in
a process of its own, as the API is another machine; every wait has a deadline well inside
pytest-timeout's, and a miss says how many calls had not finished.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest

from stability_user import APITimeoutError, AsyncStabilityUser, Balance, StabilityUser
from stability_user.testing import SAMPLE_API_KEY
from support.blackhole import BlackHole
from support.deadline import gather_within, results_within

CALLS = 500
THREADS = 50
# The sample account's default organization ("Ada's studio").
SAMPLE_BALANCE = Balance(125.5)
CONNECT_TIMEOUT = httpx2.Timeout(20.0, connect=0.005)


@pytest.fixture(scope="module")
def standin_process() -> Iterator[str]:
    """The sample stand-in, ``python -m stability_user.testing serve``, in its own process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stability_user.testing", "serve"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("Stand-in for the Stability user API at "), first
    yield first.rsplit(" ", 1)[1].strip()
    process.terminate()
    process.wait(timeout=30)
    process.stdout.close()


@pytest.fixture
def blackhole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def test_500_concurrent_async_balances_on_one_client(
    standin_process: str, http_backend: str
) -> None:
    async def main() -> list[Balance | BaseException]:
        async with AsyncStabilityUser(SAMPLE_API_KEY, base_url=standin_process) as client:
            return await gather_within(
                "balance calls", [client.get_balance() for _ in range(CALLS)]
            )

    assert asyncio.run(main()) == [SAMPLE_BALANCE] * CALLS


def test_500_async_balances_with_a_5_ms_connect_timeout_all_time_out(
    blackhole: BlackHole, waits: list[float], http_backend: str
) -> None:
    async def main() -> list[Balance | BaseException]:
        async with AsyncStabilityUser(
            SAMPLE_API_KEY, base_url=blackhole.url, timeout=CONNECT_TIMEOUT
        ) as client:
            return await gather_within(
                "balance calls", [client.get_balance() for _ in range(CALLS)]
            )

    outcomes = asyncio.run(main())
    assert_all_timed_out_after_retries(outcomes, waits)


def test_500_sync_balances_from_50_threads_on_one_client(standin_process: str) -> None:
    with (
        StabilityUser(SAMPLE_API_KEY, base_url=standin_process) as client,
        ThreadPoolExecutor(THREADS) as pool,
    ):
        futures = [pool.submit(client.get_balance) for _ in range(CALLS)]
        assert results_within("balance calls", futures) == [SAMPLE_BALANCE] * CALLS


def test_500_sync_balances_from_50_threads_with_a_5_ms_connect_timeout_all_time_out(
    blackhole: BlackHole, waits: list[float]
) -> None:
    with (
        StabilityUser(SAMPLE_API_KEY, base_url=blackhole.url, timeout=CONNECT_TIMEOUT) as client,
        ThreadPoolExecutor(THREADS) as pool,
    ):
        futures = [pool.submit(client.get_balance) for _ in range(CALLS)]
        outcomes = results_within("balance calls", futures)
    assert_all_timed_out_after_retries(outcomes, waits)


def assert_all_timed_out_after_retries(
    outcomes: list[Balance | BaseException], waits: list[float]
) -> None:
    kinds = {type(outcome).__name__ for outcome in outcomes}
    assert kinds == {"APITimeoutError"}, f"expected only APITimeoutError, got {kinds}"
    for outcome in outcomes:
        assert isinstance(outcome, APITimeoutError)
        assert isinstance(outcome.__cause__, httpx2.ConnectTimeout)
    # Each call was tried three times (two retries), so each waited twice.
    assert len(waits) == 2 * CALLS
