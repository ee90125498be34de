"""`make bench`: the facade against bare httpx2 and against what users would otherwise write.

One run, interleaved rounds, medians with min-max. The server is the stand-in on loopback in
its own process (keep-alive HTTP/1.1, TCP_NODELAY), so it neither shares this process's GIL
nor its core. Start-up times (6a-6c, 10a-10d, 12a-12b, 15) are measured in the runtime-only
environment `make demo` builds (RUNTIME_PYTHON), so that development tools installed beside
httpx2 do not slow the baseline. Prints one table, writes the same figures to
benchmarks/results.json, and exits 1 if a target is missed.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _server import API_KEY, ORGANIZATIONS  # noqa: E402

BALANCE_PATH = "/v1/user/balance"
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json"}
# How a job spends on the stand-in (its own route, SPEND_PATH), as a generation would.
SPENDER = {"Authorization": f"Bearer {API_KEY}"}
TARGETS = {
    "warm_sync": 1.10,
    "module_level": 1.15,
    "async_fan_out": 1.25,
    "async_fan_out_500": 1.10,
    "cold_import": 1.30,
    "client_import": 1.10,
    # get_balances() at least 4.5x faster than one by one with latency, and no slower without
    # (5% for noise).
    "balances_latency": 1 / 4.5,
    "balances_loopback": 1.05,
    # The rate limiter switched on but not binding: its cost per call against a warm call.
    "limiter": 0.02,
    # The aiohttp backend against a bare aiohttp.ClientSession doing the same GET + JSON.
    "aiohttp_warm": 1.10,
    "aiohttp_fan_out": 1.15,
    # ...and against the SDK on httpx2: 1.5x faster warm, 2x on fan-out x200.
    "aiohttp_vs_httpx2_warm": 1 / 1.5,
    "aiohttp_vs_httpx2_fan_out": 1 / 2,
    # `stability-user status` on every prompt, as the installed console script: a fresh cache
    # entry within 1.25x the same wrapper with nothing behind it; --max-age 0 (asked in the
    # foreground) within 5% of `stability-user balance` (which always asks the API); an
    # expired entry, the refresh behind the prompt, within 2.5x a bare interpreter even when
    # the API never answers, and within 1.3x a fresh entry when it does.
    "status_fresh": 1.25,
    "status_expired": 1.05,
    "status_hanging": 2.5,
    "status_behind": 1.3,
    # `stability-user mcp` from its start to its answer to `initialize`, against the smallest
    # server the same SDK makes.
    "mcp_start": 1.15,
    # `stability-user balance` recording its reading in the history, against the same command
    # with STABILITY_HISTORY=off; and `history --days 365 --all` over a year of readings
    # against the half second it must answer within.
    "history_recording": 1.05,
    "history_year": 1.0,
    # `stability-user watch` every second for a minute, a notice each cycle: resident memory and
    # open descriptors at the end against after 10 s of warm-up, flat.
    "watch_rss": 1.05,
    "watch_fds": 1.0,
    # `stability-user exporter --config` with MANY_TARGETS targets, each its own key and account
    # on the stand-in: from start to every probe answering stability_probe_success 1, against
    # 120 s; its peak resident memory against 1 GiB.
    "many_keys_ready": 1.0,
    "many_keys_memory": 1.0,
    # `stability-user estimate` (the price catalogue read, a plan priced, the balance read)
    # against `stability-user balance`, cold processes of the runtime-only environment.
    "estimate": 1.10,
    # `stability-user measure --label` recording its readings and its job in the ledger,
    # against the same command with STABILITY_HISTORY=off.
    "ledger_recording": 1.05,
}

# 15: the plan `estimate` prices (within the bench account's default balance of 100 credits).
ESTIMATE_PLAN = ("10", "core", "5", "ultra")

# 14: how many targets, the time they must all be probed successfully within, the memory
# budget, and how many rounds.
MANY_TARGETS = 1000
MANY_TARGETS_BUDGET_S = 120.0
MANY_TARGETS_BUDGET_MIB = 1024.0
MANY_TARGETS_ROUNDS = 3

# 13: how long the watcher soaks, and when its warm-up ends (seconds).
SOAK_SECONDS = 60.0
SOAK_WARM_UP = 10.0

# 12b: the budget `history --days 365` answers within, and the year it reads: one reading every
# 15 minutes (the heartbeat of a prompt or a watcher) of each of HISTORY_ORGANIZATIONS.
HISTORY_BUDGET_MS = 500.0
HISTORY_ORGANIZATIONS = 3


# What benchmark 5 adds to every answer: a modest round trip to a real API over the internet.
SIMULATED_LATENCY = 0.020


# The cores this run may use, as it started (before ``start_server`` divides them).
CORES = sorted(os.sched_getaffinity(0))


def start_server(latency: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    """The stand-in in a process of its own, on a core of its own where there are two or more.

    Pinned, neither the server nor the clients migrate between cores mid-round: a migration
    starts a process on cold caches, which costs a client more the more code it runs, and so
    adds noise to every ratio (on this 2-core machine, ratios drifted by ~5% between runs).
    The benchmark and the processes it starts keep the other cores.
    """
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if len(CORES) >= 2:
        os.sched_setaffinity(process.pid, CORES[:1])
        os.sched_setaffinity(0, CORES[1:])
    return process, process.stdout.readline().strip()


def per_call_us(function: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls * 1e6


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "rounds": len(samples),
    }


def interleaved(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run each contender once per round, rotating the order so none always goes first."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(contenders[name]())
    return samples


def bench_sync(url: str) -> dict[str, Any]:
    """Targets 1 and 2, and the peers of 3, per call in microseconds."""
    import requests

    import stability_user
    from stability_user import StabilityUser
    from stability_user_client import AuthenticatedClient
    from stability_user_client.api.v1user import get_balance as generated_balance

    os.environ.update(STABILITY_API_KEY=API_KEY, STABILITY_BASE_URL=url)
    calls = 300
    with (
        httpx2.Client(base_url=url, headers=HEADERS) as bare,
        StabilityUser(API_KEY, base_url=url) as facade,
    ):

        def bare_call() -> None:
            bare.get(BALANCE_PATH).json()

        def naive_generated() -> None:
            with AuthenticatedClient(base_url=url, token=API_KEY) as client:
                generated_balance.sync_detailed(client=client)

        def requests_call() -> None:
            requests.get(url + BALANCE_PATH, headers={"Authorization": f"Bearer {API_KEY}"}).json()

        for warm in (bare_call, facade.get_balance, stability_user.get_balance):
            per_call_us(warm, 50)
        hot = interleaved(
            {
                "httpx2": lambda: per_call_us(bare_call, calls),
                "facade": lambda: per_call_us(facade.get_balance, calls),
                "module": lambda: per_call_us(stability_user.get_balance, calls),
            },
            rounds=15,
        )
        peers = interleaved(
            {
                "facade": lambda: per_call_us(facade.get_balance, 100),
                "requests": lambda: per_call_us(requests_call, 100),
                "generated_naive": lambda: per_call_us(naive_generated, 100),
            },
            rounds=5,
        )
    return {"hot": hot, "peers": peers}


def bench_async(url: str, concurrency: int = 200, rounds: int = 12) -> dict[str, list[float]]:
    """Targets 4 and 4c: concurrent get_balance() on one client, wall time in milliseconds."""
    from stability_user import AsyncStabilityUser

    async def main() -> dict[str, list[float]]:
        async with (
            httpx2.AsyncClient(base_url=url, headers=HEADERS, timeout=30) as bare,
            AsyncStabilityUser(API_KEY, base_url=url) as facade,
        ):

            async def bare_call() -> Any:
                return (await bare.get(BALANCE_PATH)).json()

            async def fan_out(call: Callable[[], Any]) -> float:
                start = time.perf_counter()
                await asyncio.gather(*(call() for _ in range(concurrency)))
                return (time.perf_counter() - start) * 1e3

            await fan_out(bare_call)
            await fan_out(facade.get_balance)
            samples: dict[str, list[float]] = {"httpx2": [], "facade": []}
            for round_index in range(rounds):
                order = ["httpx2", "facade"] if round_index % 2 == 0 else ["facade", "httpx2"]
                for name in order:
                    call = bare_call if name == "httpx2" else facade.get_balance
                    samples[name].append(await fan_out(call))
            return samples

    return asyncio.run(main())


def bench_aiohttp(url: str, rounds: int = 15) -> dict[str, dict[str, list[float]]]:
    """Targets 9a-9e: the aiohttp backend against bare aiohttp and against httpx2's backend.

    Warm: sequential awaited calls, microseconds per call, in 120 interleaved batches of 25.
    Fan-out: concurrent calls on one client, milliseconds for all of them, interleaved rounds.
    One event loop.
    """
    import aiohttp

    from stability_user import AsyncStabilityUser

    async def main() -> dict[str, dict[str, list[float]]]:
        async with (
            aiohttp.ClientSession(headers=HEADERS) as session,
            AsyncStabilityUser(API_KEY, base_url=url, http_backend="aiohttp") as ours,
            AsyncStabilityUser(API_KEY, base_url=url) as on_httpx2,
        ):

            async def bare_call() -> Any:
                async with session.get(url + BALANCE_PATH) as response:
                    return await response.json()

            calls = {
                "aiohttp": bare_call,
                "facade_aiohttp": ours.get_balance,
                "facade_httpx2": on_httpx2.get_balance,
            }

            async def warm(call: Callable[[], Any], count: int = 200) -> float:
                start = time.perf_counter()
                for _ in range(count):
                    await call()
                return (time.perf_counter() - start) / count * 1e6

            async def fan_out(call: Callable[[], Any], concurrency: int) -> float:
                start = time.perf_counter()
                await asyncio.gather(*(call() for _ in range(concurrency)))
                return (time.perf_counter() - start) * 1e3

            for call in calls.values():
                await warm(call, 50)
                await fan_out(call, 200)
            results: dict[str, dict[str, list[float]]] = {
                kind: {name: [] for name in calls} for kind in ("warm", "x200", "x500")
            }
            names = list(calls)
            # Warm calls in short alternating batches: the loopback round trip drifts over
            # seconds on a shared machine, and each client must see the same drift.
            for round_index in range(rounds * 8):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    results["warm"][name].append(await warm(calls[name], 25))
            for round_index in range(rounds):
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    results["x200"][name].append(await fan_out(calls[name], 200))
                    results["x500"][name].append(await fan_out(calls[name], 500))
            return results

    return asyncio.run(main())


def bench_aiohttp_fresh(url: str) -> dict[str, dict[str, list[float]]]:
    """``bench_aiohttp`` in a fresh process: its heap (and so the garbage collector's work) is
    its own, not what the sections before it left, for both contenders alike."""
    out = subprocess.run(
        [sys.executable, __file__, "--aiohttp", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    results: dict[str, dict[str, list[float]]] = json.loads(out)
    return results


def bench_limiter(warm_call_us: float) -> dict[str, list[float]]:
    """Target 8: what a limiter that is on but not binding adds to a call (microseconds).

    Measured on the limiter itself, in-process: its cost (a lock and a few list operations)
    is far below the loopback round trip's noise, which would swamp it end to end.
    """
    from stability_user import RateLimit
    from stability_user._http._ratelimit import RateLimiter

    def reserve_us() -> float:
        limiter = RateLimiter(RateLimit(requests=10**9, per_seconds=10.0))
        return per_call_us(limiter.reserve, 100_000)

    samples = [reserve_us() for _ in range(7)]
    return {"limiter": samples, "warm_call": [warm_call_us] * len(samples)}


def fan_out_child(url: str, hide_sniffio: bool) -> None:
    """In a fresh process: the async fan-out, printing its median wall time in ms."""
    if hide_sniffio:
        # As if sniffio were not installed: httpcore2's `import sniffio` fails (2.11 and later
        # try once, at import; earlier releases tried on every call).
        import importlib.abc

        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
                if name == "sniffio":
                    for entry in sys.path:  # the search a missing module costs
                        Path(entry, "sniffio").exists()
                    raise ModuleNotFoundError("No module named 'sniffio'", name="sniffio")
                return None

        sys.meta_path.insert(0, Hide())
        sys.modules.pop("sniffio", None)
    samples = bench_async(url)["facade"]
    print(statistics.median(samples))


def bench_sniffio(url: str) -> dict[str, list[float]]:
    """4b: the async fan-out with sniffio installed and without (ms), fresh processes."""

    def run(hide: bool) -> float:
        out = subprocess.run(
            [sys.executable, __file__, "--fan-out", url, "hide" if hide else "keep"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return float(out.strip())

    return interleaved({"with": lambda: run(False), "without": lambda: run(True)}, rounds=3)


def bench_balances(url: str, rounds: int = 9) -> dict[str, list[float]]:
    """Target 5: get_balances() for 20 organizations vs get_balance() for each in turn (ms)."""
    from stability_user import StabilityUser

    with StabilityUser(API_KEY, base_url=url) as client:
        organizations = [org.id for org in client.get_account().organizations]
        assert len(organizations) == ORGANIZATIONS

        def concurrent() -> float:
            start = time.perf_counter()
            client.get_balances()
            return (time.perf_counter() - start) * 1e3

        def one_by_one() -> float:
            start = time.perf_counter()
            client.get_account()
            for org in organizations:
                client.get_balance(org)
            return (time.perf_counter() - start) * 1e3

        concurrent()
        return interleaved({"get_balances": concurrent, "one_by_one": one_by_one}, rounds=rounds)


def wall_ms(command: list[str], env: dict[str, str] | None = None, *, quiet: bool = False) -> float:
    """``command``'s wall time in ms, its stdout (and with ``quiet``, its stderr) discarded."""
    start = time.perf_counter()
    stderr = subprocess.DEVNULL if quiet else None
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    return (time.perf_counter() - start) * 1e3


def history_on_and_off(url: str, folder: str) -> tuple[dict[str, str], dict[str, str]]:
    """The environment of a command line on the stand-in at ``url`` with its history in
    ``folder``, and the same with the history off."""
    env = {
        **os.environ,
        "STABILITY_API_KEY": API_KEY,
        "STABILITY_BASE_URL": url,
        "STABILITY_STATE_DIR": str(Path(folder) / "state"),
    }
    return env, {**env, "STABILITY_HISTORY": "off"}


def runtime() -> tuple[str, str]:
    """The runtime-only environment's python and ``stability-user``, its bytecode compiled.

    Compiled first, as pip does when it installs a wheel: otherwise an editable install under
    PYTHONDONTWRITEBYTECODE compiles its changed sources at every start.
    """
    python = os.environ.get("RUNTIME_PYTHON", sys.executable)
    sources = [str(HERE.parent / "facade"), str(HERE.parent / "generated")]
    subprocess.run([python, "-m", "compileall", "-q", *sources], check=True)
    return python, str(Path(python).parent / "stability-user")


def bench_cold_start() -> dict[str, list[float]]:
    """Target 6: fresh interpreters of the runtime-only environment, wall time in ms."""
    python, command = runtime()
    return interleaved(
        {
            "import httpx2": lambda: wall_ms([python, "-c", "import httpx2"]),
            "import stability_user": lambda: wall_ms([python, "-c", "import stability_user"]),
            "from stability_user import StabilityUser": lambda: wall_ms(
                [python, "-c", "from stability_user import StabilityUser"]
            ),
            "stability-user --help": lambda: wall_ms([command, "--help"]),
        },
        rounds=15,
    )


class _Unanswering:
    """A loopback port that accepts connections and never answers (a captive portal, a VPN
    dropping packets): ``url``; ``close()`` it."""

    def __init__(self) -> None:
        import socket
        import threading

        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self._accepted.append(connection)

    def close(self) -> None:
        self._listener.close()
        for connection in self._accepted:
            connection.close()


def bench_status(url: str) -> dict[str, list[float]]:
    """Targets 10a-10d: ``stability-user status`` in cold processes, wall time in ms.

    As a prompt runs it: the console script pip installed, in the runtime-only environment,
    against the stand-in in its own process. 10a: a fresh cache entry against the same wrapper
    script with nothing behind it (``run = lambda: 0``), the floor of any console script.
    10b: ``--max-age 0``, refreshed in the foreground, against ``stability-user balance``.
    10c: an expired entry, its refresh started behind the prompt, while the API accepts and
    never answers, against ``python -c pass``; 10d: the same on the healthy stand-in, against
    10a's fresh entry. Before each run of 10c-10d the entry is made expired again, and after
    it the refresh it started is waited for (untimed), so that no run finds another's.
    """
    import fcntl
    import tempfile

    from stability_user._cache._store import Entry, entry_for, open_cache

    python, command = runtime()
    hanging = _Unanswering()
    with tempfile.TemporaryDirectory() as folder:
        wrapper = Path(folder) / "empty-wrapper"
        script = Path(command).read_text()
        assert "from stability_user._cli import run\n" in script, script
        wrapper.write_text(
            script.replace("from stability_user._cli import run\n", "run = lambda: 0\n")
        )
        wrapper.chmod(0o755)
        env = {
            **os.environ,
            "STABILITY_API_KEY": API_KEY,
            "STABILITY_BASE_URL": url,
            "STABILITY_CACHE_DIR": str(Path(folder) / "cache"),
            "STABILITY_STATE_DIR": str(Path(folder) / "state"),
        }
        stalled = {**env, "STABILITY_BASE_URL": hanging.url}
        wall_ms([command, "status"], env)  # the entry the fresh runs read
        cache = open_cache(env["STABILITY_CACHE_DIR"])

        def behind(environment: dict[str, str]) -> float:
            name = entry_for(environment["STABILITY_BASE_URL"], "v1", API_KEY, None)
            cache.write(name, Entry(100.0, time.time() - 3600))
            elapsed = wall_ms([command, "status", "--timeout", "0.5"], environment)
            with open(cache.lock_path(name), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # the refresh it started has ended
            return elapsed

        fresh = interleaved(
            {
                "empty wrapper": lambda: wall_ms([str(wrapper)], env),
                "status, fresh entry": lambda: wall_ms(
                    [command, "status", "--max-age", "86400"], env
                ),
                "python -c pass": lambda: wall_ms([python, "-c", "pass"], env),
                "status, expired entry, API never answers": lambda: behind(stalled),
                "status, expired entry, refreshed behind": lambda: behind(env),
            },
            rounds=40,
        )
        foreground = interleaved(
            {
                "stability-user balance": lambda: wall_ms([command, "balance"], env),
                "status --max-age 0": lambda: wall_ms([command, "status", "--max-age", "0"], env),
            },
            rounds=25,
        )
    hanging.close()
    return {**fresh, **foreground}


def bench_estimate(url: str) -> dict[str, list[float]]:
    """Target 15: ``stability-user estimate 10 core 5 ultra`` against ``stability-user
    balance``, cold processes of the runtime-only environment, wall time in ms: both read the
    balance (and record it in the history); the estimate also loads the price catalogue and
    prices the plan."""
    import tempfile

    _, command = runtime()
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "STABILITY_API_KEY": API_KEY,
            "STABILITY_BASE_URL": url,
            "STABILITY_STATE_DIR": str(Path(folder) / "state"),
        }
        return interleaved(
            {
                "stability-user balance": lambda: wall_ms([command, "balance"], env),
                "stability-user estimate": lambda: wall_ms(
                    [command, "estimate", *ESTIMATE_PLAN], env
                ),
            },
            rounds=25,
        )


def bench_history(url: str) -> dict[str, list[float]]:
    """Targets 12a-12b, cold processes of the runtime-only environment, wall time in ms.

    12a: ``stability-user balance`` with the history on against the same with
    ``STABILITY_HISTORY=off``; before every run (untimed) the stand-in spends a hundredth of a
    credit, so that each run's reading differs from the last and is stored, not skipped as a
    repeat. 12b: ``history --days 365 --all`` over a synthetic year (one reading every 15
    minutes of each of ``HISTORY_ORGANIZATIONS``, a third of them a spend), against the budget.
    """
    import random
    import tempfile

    import httpx2

    from stability_user.history._store import Observation, account_of, open_store
    from stability_user.testing._api import SPEND_PATH

    _, command = runtime()

    def spend_a_little() -> None:
        answer = httpx2.post(url + SPEND_PATH, params={"credits": "0.01"}, headers=SPENDER)
        answer.raise_for_status()

    with tempfile.TemporaryDirectory() as folder:
        env, off = history_on_and_off(url, folder)

        def balance(environment: dict[str, str]) -> float:
            spend_a_little()
            return wall_ms([command, "balance"], environment)

        recording = interleaved(
            {
                "balance, history on": lambda: balance(env),
                "balance, history off": lambda: balance(off),
            },
            rounds=30,
        )
        year = str(Path(folder) / "year")
        host = "https://api.stability.ai"
        with open_store(year, print) as store:
            organizations = [
                Observation(f"org-{index}", 0.0, f"Team {index}", index == 0)
                for index in range(HISTORY_ORGANIZATIONS)
            ]
            store.learn(host, account_of(host, API_KEY), organizations)
            start, rows = time.time() - 365 * 86400, []
            for series in store.series(host):
                credits = 100_000.0
                for step in range(365 * 96):
                    if random.random() < 1 / 3:
                        credits = round(credits - random.random() * 3, 2)
                    rows.append((series.id, start + step * 900, credits))
            store._db.executemany("INSERT INTO readings VALUES (?, ?, ?)", rows)
        yearly = {**os.environ, "STABILITY_STATE_DIR": year, "STABILITY_API_KEY": API_KEY}
        reading = interleaved(
            {
                "history --days 365": lambda: wall_ms(
                    [command, "history", "--days", "365", "--all"], yearly
                )
            },
            rounds=15,
        )
    return {**recording, **reading, "budget": [HISTORY_BUDGET_MS]}


def bench_ledger(url: str) -> dict[str, list[float]]:
    """Target 15: ``stability-user measure --label bench -- JOB`` recording its readings and its
    job in the history, against the same command with ``STABILITY_HISTORY=off``; cold processes
    of the runtime-only environment, wall time in ms. The job spends a hundredth of a credit
    through the stand-in (a bare interpreter, ``-S``, posting to it), so that both readings
    differ from the last and are stored, as for a job that spends, and the ledger keeps growing
    (one job a run)."""
    import tempfile

    from stability_user.testing._api import SPEND_PATH

    python, command = runtime()
    spender = (
        "import http.client, sys; "
        "host, port = sys.argv[1].rsplit(':', 1); "
        "c = http.client.HTTPConnection(host, int(port)); "
        f"c.request('POST', {SPEND_PATH + '?credits=0.01'!r}, headers={SPENDER!r}); "
        "assert c.getresponse().status == 200"
    )
    job = [python, "-S", "-c", spender, url.removeprefix("http://")]
    argv = [command, "measure", "--label", "bench", "--", *job]
    with tempfile.TemporaryDirectory() as folder:
        env, off = history_on_and_off(url, folder)
        wall_ms(argv, env, quiet=True)  # the store, made untimed
        return interleaved(
            {
                "measure, ledger on": lambda: wall_ms(argv, env, quiet=True),
                "measure, history off": lambda: wall_ms(argv, off, quiet=True),
            },
            rounds=30,
        )


def bench_watch_soak(url: str) -> dict[str, list[float]]:
    """Target 13: ``stability-user watch --every 1s`` for ``SOAK_SECONDS`` against the stand-in,
    a reminder sent each cycle (``--below`` far above the balance, ``--repeat 1s``) to a
    receiver on loopback, each reading recorded; resident memory (MiB) and open descriptors
    after the warm-up and at the end. In the development environment, which has Apprise."""
    import tempfile
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()

    def sample(pid: int) -> tuple[float, float]:
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
        )
        return rss_kib / 1024, float(len(os.listdir(f"/proc/{pid}/fd")))

    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "STABILITY_API_KEY": API_KEY,
            "STABILITY_BASE_URL": url,
            "STABILITY_STATE_DIR": folder,
        }
        notify = f"json://127.0.0.1:{receiver.server_address[1]}/soak"
        argv = ["--every", "1s", "--below", "1e12", "--repeat", "1s", "--notify", notify]
        process = subprocess.Popen(
            [sys.executable, "-m", "stability_user", "watch", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(SOAK_WARM_UP)
            warm = sample(process.pid)
            time.sleep(SOAK_SECONDS - SOAK_WARM_UP)
            end = sample(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    receiver.shutdown()
    return {
        "rss after warm-up": [warm[0]],
        "rss at the end": [end[0]],
        "fds after warm-up": [warm[1]],
        "fds at the end": [end[1]],
    }


def _exporter_round(count: int) -> tuple[float, float]:
    """One exporter of ``count`` targets: seconds from its start until every probe answers
    success, and its peak resident memory (MiB) by then."""
    import tempfile
    import urllib.request

    sys.path.insert(0, str(HERE.parent / "tests" / "support"))
    from many_keys import keys_environment

    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [
                sys.executable,
                str(HERE.parent / "tests" / "support" / "many_keys.py"),
                str(count),
                folder,
                "interval = 60",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdin is not None
        assert server.stdout is not None
        server.stdout.readline()  # the stand-in's URL: the file is written
        env = {**os.environ, **keys_environment(count), "STABILITY_HISTORY": "off"}
        started = time.perf_counter()
        exporter = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stability_user",
                "exporter",
                "--port=0",
                f"--config={folder}/exporter.toml",
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert exporter.stdout is not None
        url = exporter.stdout.readline().split(" at ", 1)[1].split("/probe", 1)[0]
        pending = [f"t{n:04}" for n in range(count)]
        while pending:
            still = []
            for name in pending:
                with urllib.request.urlopen(f"{url}/probe?target={name}") as answer:
                    if b"\nstability_probe_success 1.0" not in answer.read():
                        still.append(name)
            pending = still
            if pending:
                time.sleep(0.05)
        ready = time.perf_counter() - started
        status = Path(f"/proc/{exporter.pid}/status").read_text()
        peak_kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
        )
        exporter.terminate()
        exporter.communicate(timeout=60)
        server.stdin.close()
        server.wait(timeout=60)
        server.stdout.close()
    return ready, peak_kib / 1024


def bench_many_keys() -> dict[str, list[float]]:
    """Target 14: one exporter of MANY_TARGETS targets, and of one (for memory per target)."""
    one = [_exporter_round(1) for _ in range(MANY_TARGETS_ROUNDS)]
    many = [_exporter_round(MANY_TARGETS) for _ in range(MANY_TARGETS_ROUNDS)]
    return {
        "ready s": [ready for ready, _ in many],
        "peak MiB": [peak for _, peak in many],
        "one target peak MiB": [peak for _, peak in one],
        "budget s": [MANY_TARGETS_BUDGET_S],
        "budget MiB": [MANY_TARGETS_BUDGET_MIB],
    }


_INITIALIZE = (
    json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
    )
    + "\n"
)


def initialize_ms(command: list[str], env: dict[str, str]) -> float:
    """From starting an MCP server over stdio to its answer to ``initialize``, in ms."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(_INITIALIZE)
    process.stdin.flush()
    answer = process.stdout.readline()
    elapsed = (time.perf_counter() - start) * 1e3
    assert '"result"' in answer, answer
    process.stdin.close()
    process.wait()
    process.stdout.close()
    return elapsed


def bench_mcp(url: str) -> dict[str, list[float]]:
    """Target 11: ``stability-user mcp`` against a one-tool server of the same SDK, both in this
    environment (the one that has the ``mcp`` extra), cold processes."""
    env = {**os.environ, "STABILITY_API_KEY": API_KEY, "STABILITY_BASE_URL": url}
    command = str(Path(sys.executable).parent / "stability-user")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE)], check=True)
    return interleaved(
        {
            "minimal server": lambda: initialize_ms(
                [sys.executable, str(HERE / "_mcp_minimal.py")], env
            ),
            "stability-user mcp": lambda: initialize_ms([command, "mcp"], env),
        },
        rounds=20,
    )


def peak_rss_child(variant: str, url: str, calls: int) -> None:
    """In a fresh process: ``calls`` balance calls, then print peak RSS in KiB."""
    if variant == "facade":
        from stability_user import StabilityUser

        with StabilityUser(API_KEY, base_url=url) as client:
            for _ in range(calls):
                client.get_balance()
    else:
        with httpx2.Client(base_url=url, headers=HEADERS) as bare:
            for _ in range(calls):
                bare.get(BALANCE_PATH).json()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def bench_memory(url: str) -> dict[str, list[float]]:
    """Target 7: peak RSS (MiB) of 5,000 calls, each variant in a fresh process."""

    def run(variant: str) -> float:
        out = subprocess.run(
            [sys.executable, __file__, "--rss", variant, url, "5000"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return int(out.strip()) / 1024

    return interleaved({"httpx2": lambda: run("httpx2"), "facade": lambda: run("facade")}, rounds=3)


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "httpx2": httpx2.__version__,
        "runtime_python": os.environ.get("RUNTIME_PYTHON", sys.executable),
    }


def stop_server(server: subprocess.Popen[str]) -> None:
    assert server.stdin is not None
    server.stdin.close()
    server.wait()


def main() -> int:
    server, url = start_server()
    try:
        sync = bench_sync(url)
        fan_out = bench_async(url)
        fan_out_500 = bench_async(url, concurrency=500, rounds=12)
        on_aiohttp = bench_aiohttp_fresh(url)
        sniffio = bench_sniffio(url)
        balances = bench_balances(url)
        memory = bench_memory(url)
        status = bench_status(url)
        history = bench_history(url)
        estimate = bench_estimate(url)
        ledger = bench_ledger(url)
        soak = bench_watch_soak(url)
        mcp = bench_mcp(url)
        many_keys = bench_many_keys()
    finally:
        stop_server(server)
    slow_server, slow_url = start_server(SIMULATED_LATENCY)
    try:
        balances_with_latency = bench_balances(slow_url, rounds=5)
    finally:
        stop_server(slow_server)
    cold = bench_cold_start()
    limiter = bench_limiter(statistics.median(sync["hot"]["facade"]))
    return report(
        {
            "sync_per_call_us": sync["hot"],
            "async_fan_out_sniffio_ms": sniffio,
            "limiter_per_call_us": limiter,
            "peers_per_call_us": sync["peers"],
            "async_fan_out_200_ms": fan_out,
            "async_fan_out_500_ms": fan_out_500,
            "aiohttp_warm_us": on_aiohttp["warm"],
            "aiohttp_fan_out_200_ms": on_aiohttp["x200"],
            "aiohttp_fan_out_500_ms": on_aiohttp["x500"],
            "get_balances_20_orgs_ms": balances,
            "get_balances_20_orgs_20ms_latency_ms": balances_with_latency,
            "cold_start_ms": cold,
            "peak_rss_5000_calls_mib": memory,
            "status_cold_ms": status,
            "mcp_initialize_ms": mcp,
            "history_ms": history,
            "estimate_ms": estimate,
            "ledger_ms": ledger,
            "watch_soak": soak,
            "many_keys": many_keys,
        }
    )


def add_rows(samples: dict[str, dict[str, list[float]]], row: Callable[..., None]) -> None:
    """The table's rows, in order: ``row(label, ours, theirs, unit, target_key)``."""
    hot, peers = samples["sync_per_call_us"], samples["peers_per_call_us"]
    fan_out, cold = samples["async_fan_out_200_ms"], samples["cold_start_ms"]
    fan_out_500 = samples["async_fan_out_500_ms"]
    balances = samples["get_balances_20_orgs_ms"]
    balances_with_latency = samples["get_balances_20_orgs_20ms_latency_ms"]
    memory = samples["peak_rss_5000_calls_mib"]
    sniffio, limiter = samples["async_fan_out_sniffio_ms"], samples["limiter_per_call_us"]

    row("1 warm sync get_balance vs bare httpx2", hot["facade"], hot["httpx2"], "us", "warm_sync")
    row("2 module get_balance vs bare httpx2", hot["module"], hot["httpx2"], "us", "module_level")
    row("3a facade vs requests.get per call", peers["facade"], peers["requests"], "us")
    row(
        "3b facade vs generated, new client per call",
        peers["facade"],
        peers["generated_naive"],
        "us",
    )
    row(
        "4 async fan-out x200 vs bare AsyncClient",
        fan_out["facade"],
        fan_out["httpx2"],
        "ms",
        "async_fan_out",
    )
    row(
        "4b async fan-out x200, with sniffio vs without",
        sniffio["with"],
        sniffio["without"],
        "ms",
    )
    row(
        "4c async fan-out x500 vs bare AsyncClient",
        fan_out_500["facade"],
        fan_out_500["httpx2"],
        "ms",
        "async_fan_out_500",
    )
    row(
        "5a get_balances (20 orgs) vs one by one",
        balances_with_latency["get_balances"],
        balances_with_latency["one_by_one"],
        "ms",
        "balances_latency",
    )
    row(
        "5b the same on bare loopback (no latency)",
        balances["get_balances"],
        balances["one_by_one"],
        "ms",
        "balances_loopback",
    )
    row(
        "6a import stability_user vs import httpx2",
        cold["import stability_user"],
        cold["import httpx2"],
        "ms",
        "cold_import",
    )
    row(
        "6b from stability_user import StabilityUser",
        cold["from stability_user import StabilityUser"],
        cold["import httpx2"],
        "ms",
        "client_import",
    )
    row(
        "6c stability-user --help vs import httpx2",
        cold["stability-user --help"],
        cold["import httpx2"],
        "ms",
    )
    row("7 peak RSS, 5,000 calls vs bare httpx2", memory["facade"], memory["httpx2"], "MiB")
    row(
        "8 rate limiter (on, not binding) vs a warm call",
        limiter["limiter"],
        limiter["warm_call"],
        "us",
        "limiter",
    )
    warm, x200 = samples["aiohttp_warm_us"], samples["aiohttp_fan_out_200_ms"]
    x500 = samples["aiohttp_fan_out_500_ms"]
    row(
        "9a aiohttp backend: warm async call vs bare",
        warm["facade_aiohttp"],
        warm["aiohttp"],
        "us",
        "aiohttp_warm",
    )
    row(
        "9b aiohttp backend: fan-out x200 vs bare",
        x200["facade_aiohttp"],
        x200["aiohttp"],
        "ms",
        "aiohttp_fan_out",
    )
    row(
        "9c aiohttp backend: fan-out x500 vs bare",
        x500["facade_aiohttp"],
        x500["aiohttp"],
        "ms",
        "aiohttp_fan_out",
    )
    row(
        "9d warm async call, aiohttp vs httpx2 backend",
        warm["facade_aiohttp"],
        warm["facade_httpx2"],
        "us",
        "aiohttp_vs_httpx2_warm",
    )
    row(
        "9e fan-out x200, aiohttp vs httpx2 backend",
        x200["facade_aiohttp"],
        x200["facade_httpx2"],
        "ms",
        "aiohttp_vs_httpx2_fan_out",
    )
    status = samples["status_cold_ms"]
    row(
        "10a status, fresh entry vs the empty console script",
        status["status, fresh entry"],
        status["empty wrapper"],
        "ms",
        "status_fresh",
    )
    row(
        "10b status --max-age 0 (foreground) vs balance",
        status["status --max-age 0"],
        status["stability-user balance"],
        "ms",
        "status_expired",
    )
    row(
        "10c status, expired entry, API never answers vs python -c pass",
        status["status, expired entry, API never answers"],
        status["python -c pass"],
        "ms",
        "status_hanging",
    )
    row(
        "10d status, expired entry (refreshed behind) vs fresh entry",
        status["status, expired entry, refreshed behind"],
        status["status, fresh entry"],
        "ms",
        "status_behind",
    )
    mcp = samples["mcp_initialize_ms"]
    row(
        "11 mcp: start to initialize vs a one-tool server",
        mcp["stability-user mcp"],
        mcp["minimal server"],
        "ms",
        "mcp_start",
    )
    history = samples["history_ms"]
    row(
        "12a balance, history on vs off",
        history["balance, history on"],
        history["balance, history off"],
        "ms",
        "history_recording",
    )
    row(
        f"12b history --days 365, {HISTORY_ORGANIZATIONS} orgs' year vs 0.5 s",
        history["history --days 365"],
        history["budget"],
        "ms",
        "history_year",
    )
    soak = samples["watch_soak"]
    row(
        "13a watch every 1s: RSS at 60 s vs at 10 s",
        soak["rss at the end"],
        soak["rss after warm-up"],
        "MiB",
        "watch_rss",
    )
    row(
        "13b watch every 1s: open fds at 60 s vs at 10 s",
        soak["fds at the end"],
        soak["fds after warm-up"],
        "",
        "watch_fds",
    )
    many = samples["many_keys"]
    row(
        f"14a exporter, {MANY_TARGETS} targets: all probed ok vs 120 s",
        many["ready s"],
        many["budget s"],
        "s",
        "many_keys_ready",
    )
    row(
        f"14b exporter, {MANY_TARGETS} targets: peak RSS vs 1 GiB",
        many["peak MiB"],
        many["budget MiB"],
        "MiB",
        "many_keys_memory",
    )
    estimate = samples["estimate_ms"]
    row(
        f"15 estimate {' '.join(ESTIMATE_PLAN)} vs balance",
        estimate["stability-user estimate"],
        estimate["stability-user balance"],
        "ms",
        "estimate",
    )
    ledger = samples["ledger_ms"]
    row(
        "16 measure --label, ledger on vs history off",
        ledger["measure, ledger on"],
        ledger["measure, history off"],
        "ms",
        "ledger_recording",
    )


def report(samples: dict[str, dict[str, list[float]]]) -> int:
    """Print the table, write results.json; 1 if a target is missed."""

    def med(values: list[float]) -> float:
        return statistics.median(values)

    rows: list[tuple[str, str, str, str, float | None, float | None]] = []

    def row(
        label: str,
        ours: list[float],
        theirs: list[float],
        unit: str,
        target_key: str | None = None,
    ) -> None:
        ratio = med(ours) / med(theirs)
        target = TARGETS.get(target_key) if target_key else None
        rows.append(
            (
                label,
                f"{med(ours):.1f} ({min(ours):.1f}-{max(ours):.1f}) {unit}",
                f"{med(theirs):.1f} ({min(theirs):.1f}-{max(theirs):.1f}) {unit}",
                f"{ratio:.3f}x",
                target,
                ratio,
            )
        )

    add_rows(samples, row)

    info = machine()
    print(f"\nMachine: {info['cpu']}, {info['cores']} cores, {info['os']},", end=" ")
    print(f"Python {info['python']}, httpx2 {info['httpx2']}")
    print("Median (min-max) over interleaved rounds; ratio = ours / theirs (lower is better).")
    print(
        f"5a: the server answers after {SIMULATED_LATENCY * 1e3:.0f} ms, as a remote API would.\n"
    )
    header = ("benchmark", "stability-user", "baseline", "ratio", "target")
    widths = [48, 30, 30, 8, 14]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    missed = []
    for label, ours, theirs, ratio_text, target, ratio in rows:
        verdict = ""
        if target is not None:
            ok = ratio is not None and ratio <= target
            verdict = f"<= {target:.3g} {'ok' if ok else 'MISSED'}"
            if not ok:
                missed.append(label)
        elif label.startswith(("3", "4b")):
            verdict = f"{1 / ratio:.1f}x faster" if ratio < 1 else f"{ratio:.1f}x slower"
        cells = (label, ours, theirs, ratio_text, verdict)
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))

    many = samples["many_keys"]
    per_target = (
        statistics.median(many["peak MiB"]) - statistics.median(many["one target peak MiB"])
    ) / (MANY_TARGETS - 1)
    print(
        f"\n14: {per_target * 1024:.0f} KiB of resident memory per target (peak at "
        f"{MANY_TARGETS} targets less peak at one, over {MANY_TARGETS - 1})."
    )
    results = {
        "machine": info,
        "many_keys_kib_per_target": round(per_target * 1024, 1),
        "samples": samples,
        "summary": {
            label: {"stability_user": ours, "baseline": theirs, "ratio": ratio, "target": target}
            for label, ours, theirs, _, target, ratio in rows
        },
        "missed": missed,
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nWrote {HERE / 'results.json'}")
    if missed:
        print("Missed targets: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--rss":
        peak_rss_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "--aiohttp":
        print(json.dumps(bench_aiohttp(sys.argv[2])))
        sys.exit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "--fan-out":
        fan_out_child(sys.argv[2], sys.argv[3] == "hide")
        sys.exit(0)
    sys.exit(main())
