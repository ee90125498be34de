"""Clients across forks, event loops, closing, pickling, and a changing environment.

Fork and pool tests run in subprocesses or real ``multiprocessing`` pools, bounded in time.
"""

from __future__ import annotations

import asyncio
import copy
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx2
import pytest

import stability_user
from stability_user import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncStabilityUser,
    AuthenticationError,
    BadRequestError,
    Balance,
    ClientClosedError,
    ConfigurationError,
    InternalServerError,
    InvalidResponseError,
    MissingAPIKeyError,
    NotFoundError,
    Organization,
    OrganizationBalance,
    PermissionDeniedError,
    RateLimitError,
    StabilityError,
    StabilityUser,
)
from stability_user._default import _default_client
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer
from support.deadline import DEADLINE
from support.fault_server import FaultServer, Reply, SlowHeaders
from support.paths import ASYNC_BACKENDS, CLIENT_PATHS

SUPPORT = Path(__file__).resolve().parent / "support"


# Fork


def test_parent_and_forked_children_never_get_each_others_answers() -> None:
    result = subprocess.run(
        [sys.executable, str(SUPPORT / "fork_scenario.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["parent"] == {"wrong": 0, "errors": 0}
    assert summary["children"] == [{"wrong": 0, "errors": 0, "exit": 0}] * 3


def module_balance(organization: str) -> float:
    return stability_user.get_balance(organization).credits


def test_a_fork_pool_after_the_parent_warmed_the_module_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = StandInAPI()
    orgs = [
        stability_user.testing.StandInOrganization(f"org-{n}", f"O{n}", credits=n) for n in range(8)
    ]
    api.add_account("pool-key", email="p@example.com", organizations=orgs)
    with api.serve() as server:
        monkeypatch.setenv("STABILITY_API_KEY", "pool-key")
        monkeypatch.setenv("STABILITY_BASE_URL", server.url)
        module_balance("org-0")  # warm: a pooled connection the workers would inherit
        asked = [f"org-{n % 8}" for n in range(400)]
        with multiprocessing.get_context("fork").Pool(8) as pool:
            answers = pool.map_async(module_balance, asked, chunksize=5).get(timeout=60)
        assert answers == [float(n % 8) for n in range(400)]
        assert module_balance("org-3") == 3.0  # the parent's client still works


# Pickling


def response(
    status: int, body: bytes = b'{"id": "e1", "name": "n", "message": "m"}'
) -> httpx2.Response:
    request = httpx2.Request("GET", "https://api.stability.ai/v1/user/balance")
    return httpx2.Response(
        status, content=body, headers={"Retry-After": "3", "X-Trace": "t"}, request=request
    )


def every_error() -> list[StabilityError]:
    request = httpx2.Request("GET", "https://api.stability.ai/v1/user/account")
    statuses: dict[type[APIStatusError], int] = {
        APIStatusError: 418,
        BadRequestError: 400,
        AuthenticationError: 401,
        PermissionDeniedError: 403,
        NotFoundError: 404,
        RateLimitError: 429,
        InternalServerError: 503,
    }
    errors: list[StabilityError] = [
        cls("m", response=response(status), error_id="e1", error_name="n")
        for cls, status in statuses.items()
    ]
    errors += [
        InvalidResponseError("bad body", response=response(200, b"<html>")),
        APIConnectionError("refused", request=request),
        APITimeoutError("slow", request=request),
        ConfigurationError("bad"),
        MissingAPIKeyError("no key"),
        ClientClosedError("closed"),
        StabilityError("base"),
    ]
    return errors


def same_error(copied: StabilityError, original: StabilityError) -> None:
    assert type(copied) is type(original)
    assert str(copied) == str(original)
    assert copied.args == original.args
    if isinstance(original, (APIStatusError, InvalidResponseError)):
        assert isinstance(copied, (APIStatusError, InvalidResponseError))
        assert copied.status_code == original.status_code
        assert copied.message == original.message
        assert copied.response.status_code == original.response.status_code
        assert copied.response.headers == original.response.headers
        assert copied.response.content == original.response.content
    if isinstance(original, APIStatusError):
        assert isinstance(copied, APIStatusError)
        assert (copied.error_id, copied.error_name) == (original.error_id, original.error_name)
    if isinstance(original, RateLimitError):
        assert isinstance(copied, RateLimitError)
        assert copied.retry_after == original.retry_after == 3.0


@pytest.mark.parametrize("error", every_error(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
def test_every_error_survives_pickle_and_copy(error: StabilityError, how: str) -> None:
    copies = {
        "pickle": lambda e: pickle.loads(pickle.dumps(e)),
        "copy": copy.copy,
        "deepcopy": copy.deepcopy,
    }
    same_error(copies[how](error), error)


def test_an_organization_balance_with_its_error_survives_pickle() -> None:
    error = AuthenticationError("m", response=response(401), error_id="e1", error_name="n")
    entry = OrganizationBalance(Organization("org-1", "O", "MEMBER", True), None, error)
    copied = pickle.loads(pickle.dumps(entry))
    assert copied.organization == entry.organization
    assert copied.error is not None
    same_error(copied.error, error)


def raise_error(index: int) -> None:
    raise every_error()[index]


def test_a_pool_worker_raising_each_error_returns_it_to_the_parent() -> None:
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for index, original in enumerate(every_error()):
            with pytest.raises(type(original)) as caught:
                pool.map_async(raise_error, [index]).get(timeout=30)
            same_error(caught.value, original)


# Event loops and closing


def test_an_async_client_works_across_successive_event_loops(
    standin_server: StandInServer, http_backend: str
) -> None:
    client = AsyncStabilityUser(SAMPLE_API_KEY, base_url=standin_server.url)
    for _ in range(3):
        assert asyncio.run(client.get_balance()).credits == 125.5
    asyncio.run(client.aclose())  # the pools of the finished loops are dropped, not awaited


def test_a_call_cancelled_while_waiting_for_its_answer_ends_cancelled(
    faults: FaultServer, http_backend: str
) -> None:
    """Cancelling is the caller's: it comes out as ``CancelledError``, not as an SDK error
    (the backends' own read deadlines cancel too), and the client goes on working."""
    faults.script(SlowHeaders(30.0), Reply(200, b'{"credits": 12.5}'))

    async def main() -> tuple[BaseException | None, Balance]:
        async with AsyncStabilityUser(SAMPLE_API_KEY, base_url=faults.url) as client:
            call = asyncio.ensure_future(client.get_balance())
            async with asyncio.timeout(DEADLINE):  # until the server holds the request
                while not faults.seen:
                    await asyncio.sleep(0.01)
            call.cancel()
            (outcome,) = await asyncio.gather(call, return_exceptions=True)
            return outcome, await client.get_balance()

    outcome, balance = asyncio.run(main())
    assert isinstance(outcome, asyncio.CancelledError)
    assert balance == Balance(12.5)
    assert len(faults.seen) == 2


def test_aclose_after_the_loop_is_gone(standin_server: StandInServer, http_backend: str) -> None:
    client = AsyncStabilityUser(SAMPLE_API_KEY, base_url=standin_server.url)
    asyncio.run(client.get_account())
    asyncio.run(client.aclose())
    assert client.is_closed


@pytest.mark.parametrize("kind", CLIENT_PATHS)
@pytest.mark.parametrize("operation", ["get_account", "get_balance", "get_balances"])
def test_a_closed_client_raises_and_sends_nothing(
    standin: StandInAPI, standin_server: StandInServer, kind: str, operation: str
) -> None:
    if kind == "sync":
        client = StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url)
        client.get_account()
        client.close()
        with pytest.raises(ClientClosedError):
            getattr(client, operation)()
        with pytest.raises(ClientClosedError), client:
            pass
    else:

        async def run() -> None:
            client = AsyncStabilityUser(
                SAMPLE_API_KEY, base_url=standin_server.url, http_backend=ASYNC_BACKENDS[kind]
            )
            await client.get_account()
            await client.aclose()
            with pytest.raises(ClientClosedError):
                await getattr(client, operation)()

        asyncio.run(run())
    assert len(standin.requests) == 1  # only the call before closing


def test_close_from_another_thread_during_calls(standin: StandInAPI) -> None:
    with standin.serve(latency=0.02) as server:
        client = StabilityUser(SAMPLE_API_KEY, base_url=server.url)
        escaped: list[BaseException] = []
        results: list[object] = []

        def call() -> None:
            for _ in range(50):
                try:
                    results.append(client.get_balance())
                except StabilityError as error:
                    results.append(error)
                except BaseException as error:  # what must not happen
                    escaped.append(error)
                    return

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        threading.Event().wait(0.15)
        client.close()
        for thread in threads:
            thread.join(timeout=30)
    assert escaped == []
    assert any(isinstance(r, ClientClosedError) for r in results)


# The module-level client follows the environment


def test_module_functions_follow_a_changed_key(
    standin: StandInAPI, standin_server: StandInServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin.add_account(
        "second-key",
        email="b@example.com",
        organizations=[stability_user.testing.StandInOrganization("org-b", "B", credits=9)],
    )
    monkeypatch.setenv("STABILITY_BASE_URL", standin_server.url)
    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    first = _default_client()
    assert stability_user.get_balance().credits == 125.5
    monkeypatch.setenv("STABILITY_API_KEY", "second-key")
    assert stability_user.get_balance().credits == 9.0
    assert first.is_closed  # the old client was closed once nothing used it
    monkeypatch.setenv("STABILITY_API_VERSION", "v1alpha")
    stability_user.get_account()
    assert [(r.path, r.authorization) for r in standin.requests] == [
        ("/v1/user/balance", f"Bearer {SAMPLE_API_KEY}"),
        ("/v1/user/balance", "Bearer second-key"),
        ("/v1alpha/user/account", "second-key"),
    ]


def test_a_client_replaced_mid_call_is_closed_after_the_call(
    standin: StandInAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with standin.serve(latency=0.2) as server:
        monkeypatch.setenv("STABILITY_BASE_URL", server.url)
        monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
        first = _default_client()
        outcome: list[Any] = []
        slow = threading.Thread(target=lambda: outcome.append(stability_user.get_balance()))
        slow.start()
        threading.Event().wait(0.05)
        monkeypatch.setenv("STABILITY_ORGANIZATION", "org-standin-lab")
        assert stability_user.get_balance().credits == 3.25
        slow.join(timeout=10)
        assert [b.credits for b in outcome] == [125.5]  # the call in flight was not cut off
        assert first.is_closed


def test_the_shared_client_is_closed_at_exit(standin_server: StandInServer) -> None:
    script = "import stability_user; print(stability_user.get_balance().credits)"
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script],
        env={
            **os.environ,
            "STABILITY_API_KEY": SAMPLE_API_KEY,
            "STABILITY_BASE_URL": standin_server.url,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout == "125.5\n"
    assert "ResourceWarning" not in result.stderr
    assert result.returncode == 0


def test_a_pool_keeper_makes_fresh_pools_after_a_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real fork is tested above in subprocesses; this drives the same hook in-process.
    from stability_user._http import _pool

    made: list[object] = []
    keeper: _pool.PoolKeeper[object] = _pool.PoolKeeper(lambda: made.append(object()) or made[-1])
    loop = asyncio.new_event_loop()
    try:
        first, first_of_loop = keeper.get(), keeper.get(loop)
        assert keeper.get() is first
        assert keeper.current(loop) is first_of_loop
        monkeypatch.setattr(_pool, "_generation", _pool.fork_generation())
        _pool._after_fork_in_child()  # what os.register_at_fork runs in a child
        assert keeper.current() is None  # nothing made in this "process" yet
        assert keeper.current(loop) is None
        second = keeper.get()
        second_of_loop = keeper.get(loop)
        assert second is not first
        assert second_of_loop is not first_of_loop
        assert keeper.take_all() == [second_of_loop, second]
        assert keeper.take_all() == []
        with pytest.raises(ClientClosedError) as caught:  # closed: it makes no more
            keeper.get()
        assert str(caught.value) == "the client is closed; nothing was sent."
        assert len(made) == 4
    finally:
        loop.close()
