"""Many threads on the module-level client, hundreds of tasks on one async client, double close."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

import stability_user
from stability_user import AsyncStabilityUser, Balance, StabilityUser
from stability_user._default import _default_client
from stability_user._http._aiohttp import AiohttpTransport
from stability_user.testing import StandInAPI, StandInServer
from support.deadline import gather_within

THREADS = 16
CALLS_PER_THREAD = 25
FAN_OUT = 500


def test_module_functions_from_many_threads_share_one_client(
    monkeypatch: pytest.MonkeyPatch,
    standin: StandInAPI,
    standin_server: StandInServer,
    api_key: str,
) -> None:
    monkeypatch.setenv("STABILITY_API_KEY", api_key)
    monkeypatch.setenv("STABILITY_BASE_URL", standin_server.url)
    clients: set[int] = set()
    barrier = threading.Barrier(THREADS)

    def work(index: int) -> list[float]:
        barrier.wait()  # all threads race to create the shared client at once
        clients.add(id(_default_client()))
        org = ("org-standin-personal", "org-standin-lumen", "org-standin-lab")[index % 3]
        return [stability_user.get_balance(org).credits for _ in range(CALLS_PER_THREAD)]

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    assert len(clients) == 1
    expected = {0: 125.5, 1: 42.0, 2: 3.25}
    for index, credits in enumerate(results):
        assert credits == [expected[index % 3]] * CALLS_PER_THREAD
    assert len(standin.requests) == THREADS * CALLS_PER_THREAD
    # Connections were reused: far fewer than one per call (keep-alive pool).
    pool = _default_client()._pools.current()
    pool_connections = pool._transport._pool.connections  # type: ignore[union-attr]
    assert len(pool_connections) <= THREADS


def open_connections(transport: object) -> int:
    """The connections a pool holds, in use or idle, whichever backend made it."""
    if isinstance(transport, AiohttpTransport):
        connector = transport._session.connector  # type: ignore[union-attr]
        idle = sum(len(kept) for kept in connector._conns.values())  # type: ignore[union-attr]
        return len(connector._acquired) + idle  # type: ignore[union-attr]
    return len(transport._pool.connections)  # type: ignore[attr-defined]


def test_async_fan_out_on_one_client(
    standin_server: StandInServer, api_key: str, http_backend: str
) -> None:
    async def main() -> list[Balance | BaseException]:
        async with AsyncStabilityUser(api_key, base_url=standin_server.url) as client:
            results = await gather_within(
                "balance calls", [client.get_balance() for _ in range(FAN_OUT)]
            )
            pool = client._pools.current(asyncio.get_running_loop())
            assert pool is not None
            assert open_connections(pool.http._transport) <= 100  # type: ignore[attr-defined]
        assert pool.http.is_closed
        assert client.is_closed
        return results

    results = asyncio.run(main())
    assert results == [Balance(125.5)] * FAN_OUT


def test_closing_twice_is_harmless(api_key: str, standin: StandInAPI) -> None:
    client = StabilityUser(api_key, transport=standin.transport)
    client.close()
    client.close()
    with StabilityUser(api_key, transport=standin.transport) as inside:
        inside.get_balance()
    inside.close()

    async def close_async() -> None:
        async_client = AsyncStabilityUser(api_key, transport=standin.transport)
        await async_client.aclose()
        await async_client.aclose()
        async with AsyncStabilityUser(api_key, transport=standin.transport) as other:
            await other.get_balance()
        await other.aclose()

    asyncio.run(close_async())


def test_no_connection_is_leaked(standin_server: StandInServer, api_key: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(20):
            with StabilityUser(api_key, base_url=standin_server.url) as client:
                client.get_account()
        gc.collect()
