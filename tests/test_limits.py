"""Bounds the SDK keeps: concurrency, threads, body size, what an error may show, Ctrl-C."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx2
import pytest

import stability_user
from stability_user import (
    APIStatusError,
    APITimeoutError,
    AsyncStabilityUser,
    InvalidResponseError,
    Organization,
    StabilityUser,
    _core,
)
from stability_user._http._error_mapping import MAX_BODY_BYTES
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInOrganization, StandInServer
from support.fault_server import Endless, FaultServer, Reply
from support.gate import Gate
from support.paths import ASYNC_BACKENDS, CLIENT_PATHS, PATHS, call_via

SUPPORT = Path(__file__).resolve().parent / "support"
KEY = "limits-test-key-0123456789"


@pytest.fixture
def many() -> StandInAPI:
    api = StandInAPI()
    api.add_account(
        KEY,
        email="m@example.com",
        organizations=[StandInOrganization(f"org-{n}", f"O{n}", credits=n) for n in range(60)],
    )
    return api


@pytest.mark.parametrize("kind", CLIENT_PATHS)
def test_get_balances_keeps_at_most_8_in_flight_on_reused_connections(
    many: StandInAPI, kind: str
) -> None:
    # The server holds the first 8 balance requests until all 8 are there: 8 in flight is
    # reached by construction, and the SDK's bound keeps it from going past.
    gate = Gate(many, _core.MAX_CONCURRENT_BALANCES)
    with StandInServer(gate, latency=0.01) as server:  # type: ignore[arg-type]
        if kind == "sync":
            with StabilityUser(KEY, base_url=server.url) as client:
                results = client.get_balances()
        else:

            async def run() -> list[stability_user.OrganizationBalance]:
                async with AsyncStabilityUser(
                    KEY, base_url=server.url, http_backend=ASYNC_BACKENDS[kind]
                ) as client:
                    return await client.get_balances()

            results = asyncio.run(run())
        gate.check()
        assert [r.credits for r in results] == [float(n) for n in range(60)]
        assert server.max_in_flight == 8
        assert server.connections <= 8


@pytest.mark.parametrize("kind", PATHS)
def test_get_balances_without_latency_goes_one_by_one(
    many: StandInAPI, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no latency to hide there is nothing to overlap: no threads, no tasks. Whether a
    # loopback round trip counts as latency depends on the machine's speed at that moment, so
    # the threshold is raised here to make the decision certain; fan_out() is tested below.
    monkeypatch.setattr(_core, "FAN_OUT_MIN_LATENCY", 60.0)
    with many.serve() as server:
        if kind == "sync":
            with StabilityUser(KEY, base_url=server.url) as client:
                client.get_account()
                results = client.get_balances()
        elif kind in ASYNC_BACKENDS:

            async def run() -> list[stability_user.OrganizationBalance]:
                async with AsyncStabilityUser(
                    KEY, base_url=server.url, http_backend=ASYNC_BACKENDS[kind]
                ) as client:
                    await client.get_account()
                    return await client.get_balances()

            results = asyncio.run(run())
        else:
            monkeypatch.setenv("STABILITY_API_KEY", KEY)
            monkeypatch.setenv("STABILITY_BASE_URL", server.url)
            stability_user.get_account()
            results = stability_user.get_balances()
        assert [r.credits for r in results] == [float(n) for n in range(60)]
        assert server.max_in_flight == 1
        assert server.connections == 1


@pytest.mark.parametrize(
    ("count", "seconds", "expected"),
    [(0, 1.0, False), (1, 1.0, False), (2, 0.0019, False), (2, 0.002, True), (60, 0.02, True)],
)
def test_fan_out_only_with_latency_to_hide(count: int, seconds: float, expected: bool) -> None:
    organizations = [Organization(f"org-{n}", "O", "MEMBER", False) for n in range(count)]
    assert _core.fan_out(organizations, seconds) is expected


def test_many_threads_calling_get_balances_share_8_workers(
    many: StandInAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with many.serve(latency=0.005) as server:
        monkeypatch.setenv("STABILITY_API_KEY", KEY)
        monkeypatch.setenv("STABILITY_BASE_URL", server.url)
        peak = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.wait(0.002):
                workers = [t for t in threading.enumerate() if t.name.startswith("stability-user_")]
                peak = max(peak, len(workers))

        watcher = threading.Thread(target=watch)
        watcher.start()
        callers = [threading.Thread(target=stability_user.get_balances) for _ in range(12)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=60)
        done.set()
        watcher.join()
        assert 1 <= peak <= 8  # worker threads, whatever the number of callers
        assert len(many.requests) == 12 * 61


@pytest.mark.parametrize("target", ["process", "worker"])
def test_ctrl_c_during_get_balances_reaches_the_caller_at_once(target: str) -> None:
    result = subprocess.run(
        [sys.executable, str(SUPPORT / "interrupt_scenario.py"), target],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    summary = json.loads(result.stdout)
    assert summary["delay"] < 1.0
    assert summary["after"] == summary["workers"]  # every worker had a request held
    assert summary["later"] == summary["after"]  # no request started after the interrupt


# Bodies


@pytest.mark.parametrize("path", PATHS)
def test_an_endless_body_is_cut_off(faults: FaultServer, path: str) -> None:
    faults.always(Endless())
    with pytest.raises(InvalidResponseError, match="more than 1048576 bytes") as caught:
        call_via(path, "get_balance", api_key=KEY, base_url=faults.url)
    assert faults.sent_bytes < 64 * MAX_BODY_BYTES  # stopped reading: socket buffers at most
    assert len(caught.value.response.content) == MAX_BODY_BYTES
    assert len(faults.seen) == 1  # not retried


@pytest.mark.parametrize("path", PATHS)
def test_a_declared_huge_body_is_not_read(faults: FaultServer, path: str) -> None:
    body = b'{"credits": 1, "pad": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    faults.always(Reply(200, body))
    with pytest.raises(InvalidResponseError, match="not read"):
        call_via(path, "get_balance", api_key=KEY, base_url=faults.url)


@pytest.mark.parametrize("path", PATHS)
def test_a_compressed_body_is_capped_by_its_decoded_size(faults: FaultServer, path: str) -> None:
    bomb = gzip.compress(b'{"credits": 1, "pad": "' + b"x" * (20 * MAX_BODY_BYTES) + b'"}')
    assert len(bomb) < MAX_BODY_BYTES / 10
    faults.always(Reply(200, bomb, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(InvalidResponseError, match="more than 1048576 bytes"):
        call_via(path, "get_balance", api_key=KEY, base_url=faults.url)


@pytest.mark.parametrize("path", PATHS)
def test_a_small_compressed_body_is_read(faults: FaultServer, path: str) -> None:
    faults.always(
        Reply(200, gzip.compress(b'{"credits": 7.5}'), headers={"Content-Encoding": "gzip"})
    )
    assert call_via(path, "get_balance", api_key=KEY, base_url=faults.url).credits == 7.5


# What errors may show


def test_a_key_straddling_the_snippet_cut_is_redacted(faults: FaultServer) -> None:
    for offset in range(185, 205):
        body = b"<html>" + b"a" * offset + KEY.encode() + b"</html>"
        faults.always(Reply(400, body, headers={"Content-Type": "text/html"}))
        with pytest.raises(APIStatusError) as caught:
            call_via("sync", "get_balance", api_key=KEY, base_url=faults.url)
        text = str(caught.value)
        for size in range(4, len(KEY) + 1):
            assert KEY[:size] not in text, (offset, size)


def test_short_keys_are_not_redacted_from_words(faults: FaultServer) -> None:
    faults.always(Reply(400, b'{"id": "1", "name": "bad_request", "message": "unknown org"}'))
    with pytest.raises(APIStatusError) as caught:
        call_via("sync", "get_balance", api_key="kno", base_url=faults.url)
    assert caught.value.message == "unknown org"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_names_where_it_pointed(faults: FaultServer, status: int) -> None:
    faults.always(Reply(status, b"", headers={"Location": "https://elsewhere.example/v1/x"}))
    with pytest.raises(APIStatusError) as caught:
        call_via("sync", "get_balance", api_key=KEY, base_url=faults.url)
    assert "redirect to 'https://elsewhere.example/v1/x' not followed" in str(caught.value)
    assert len(faults.seen) == 1  # the key did not travel on


def test_concurrent_async_get_balances_share_the_bound(many: StandInAPI, http_backend: str) -> None:
    gate = Gate(many, _core.MAX_CONCURRENT_BALANCES)
    with StandInServer(gate, latency=0.01) as server:  # type: ignore[arg-type]

        async def run() -> None:
            async with AsyncStabilityUser(KEY, base_url=server.url) as client:
                await asyncio.gather(*(client.get_balances() for _ in range(3)))

        asyncio.run(run())
        gate.check()
        # Three calls at once: their balance requests still share 8 places (the three
        # account requests come before, at most 3 at once).
        assert server.max_in_flight == 8


def test_a_full_pool_is_a_pool_timeout_on_either_backend(
    standin: StandInAPI, waits: list[float], http_backend: str
) -> None:
    # All 100 connections of the pool held at the server; one more call waits for a free
    # one for its pool timeout only, on every attempt, and says so.
    connections = 100
    gate = Gate(standin, connections + 1, timeout=20.0)
    with StandInServer(gate) as server:  # type: ignore[arg-type]

        async def run() -> tuple[list[object], BaseException]:
            async with AsyncStabilityUser(SAMPLE_API_KEY, base_url=server.url) as client:
                held = [asyncio.ensure_future(client.get_balance()) for _ in range(connections)]
                async with asyncio.timeout(20):
                    while gate.arrived < connections:
                        await asyncio.sleep(0.01)
                with pytest.raises(APITimeoutError) as caught:
                    await client.get_balance(timeout=httpx2.Timeout(10.0, pool=0.2))
                gate.release()
                return list(await asyncio.gather(*held)), caught.value

        balances, error = asyncio.run(run())
    assert isinstance(error.__cause__, httpx2.PoolTimeout)
    assert len(waits) == 2  # retried, as any timeout
    assert gate.arrived == connections  # the last call never reached the server
    assert {type(b).__name__ for b in balances} == {"Balance"}
