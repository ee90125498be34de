"""What records in the history: the command line's balances (unless turned off), the SDK only
when asked; and that a history that cannot be written never breaks a command."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path

import pytest

import stability_user
from stability_user import AsyncStabilityUser, ConfigurationError, StabilityUser
from stability_user.history._store import SCHEMA_VERSION, STORE_NAME
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInOrganization, StandInServer
from support.gate import Gate
from support.unwritable import HOW, unwritable


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("STABILITY_STATE_DIR", str(folder))
    return folder


# status asks the API within --timeout when it refreshes in the foreground: 2 s by default, a
# prompt's budget, which a cold process on a loaded test machine can spend just starting.
SLOW_MACHINE = ["--timeout", "30"]


def stored(state: Path) -> list[tuple[str, float]]:
    """Every reading in the store: (organization, or '' for an unnamed default; credits)."""
    if not (state / STORE_NAME).exists():
        return []
    with closing(sqlite3.connect(state / STORE_NAME)) as db:
        tables = db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
        if ("readings",) not in tables:  # a store being made by a process under way
            return []
        rows = db.execute(
            "SELECT organization, credits FROM readings JOIN series ON series.id = series "
            "ORDER BY at, readings.rowid"
        ).fetchall()
    return [(organization, credits) for organization, credits in rows]


def environment(url: str, **extra: str) -> dict[str, str]:
    """A shell with the stand-in's key and URL exported."""
    return {**os.environ, "STABILITY_API_KEY": SAMPLE_API_KEY, "STABILITY_BASE_URL": url, **extra}


def cli(
    server: StandInServer, *argv: str, wrapper: Sequence[str] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """``stability-user ARGV`` against ``server``, run through ``wrapper`` (a namespace, a
    sandbox) if given."""
    return subprocess.run(
        [*wrapper, sys.executable, "-m", "stability_user", *argv],
        env=environment(server.url, **env),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


# The SDK: only when asked


def test_a_client_records_nothing_unasked(standin: StandInAPI, state: Path) -> None:
    with StabilityUser(SAMPLE_API_KEY, transport=standin.transport) as client:
        client.get_balance()
        client.get_balances()
    assert not state.exists()


def test_a_client_asked_records_each_balance_it_reads(standin: StandInAPI, state: Path) -> None:
    with StabilityUser(SAMPLE_API_KEY, transport=standin.transport, history=True) as client:
        client.get_balance()
        client.get_balance("org-standin-lab")
        standin.spend("org-standin-personal", 5.5)
        client.get_balances()
    assert stored(state) == [
        ("", 125.5),
        ("org-standin-lab", 3.25),  # the next is a repeat within the heartbeat: not stored
        ("org-standin-personal", 120.0),
        ("org-standin-lumen", 42.0),
    ]


@pytest.mark.parametrize("backend", ["httpx2", "aiohttp"])
def test_the_async_client_records_the_same(
    standin_server: StandInServer, state: Path, backend: str
) -> None:
    async def main() -> None:
        async with AsyncStabilityUser(
            SAMPLE_API_KEY, base_url=standin_server.url, history=True, http_backend=backend
        ) as client:
            await client.get_balance()
            await client.get_balance("org-standin-lab")
            await client.get_balances()

    asyncio.run(main())
    assert stored(state) == [
        ("", 125.5),
        ("org-standin-lab", 3.25),
        ("org-standin-personal", 125.5),
        ("org-standin-lumen", 42.0),
    ]


def test_track_spend_records_its_two_readings(standin: StandInAPI, state: Path) -> None:
    with (
        StabilityUser(SAMPLE_API_KEY, transport=standin.transport, history=True) as client,
        client.track_spend("org-standin-lumen") as spend,
    ):
        standin.spend("org-standin-lumen", 2.0)
    assert spend.credits == 2.0
    assert stored(state) == [("org-standin-lumen", 42.0), ("org-standin-lumen", 40.0)]


def test_stability_history_off_wins_over_the_client(
    standin: StandInAPI, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABILITY_HISTORY", "off")
    with StabilityUser(SAMPLE_API_KEY, transport=standin.transport, history=True) as client:
        client.get_balances()
    assert not state.exists()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_history_takes_a_bool(value: object, standin: StandInAPI) -> None:
    with pytest.raises(ConfigurationError, match="history must be True or False"):
        StabilityUser(SAMPLE_API_KEY, transport=standin.transport, history=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="history must be True or False"):
        stability_user.cached_balance(history=value)  # type: ignore[arg-type]


def test_cached_balance_records_and_keeps_the_runway(
    standin_server: StandInServer, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from stability_user.history._store import Observation, account_of, open_store

    monkeypatch.setenv("STABILITY_API_KEY", SAMPLE_API_KEY)
    monkeypatch.setenv("STABILITY_BASE_URL", standin_server.url)
    now = time.time()
    with open_store(str(state), print) as store:  # two days of 10 credits a day, read before
        for days_ago, credits in ((2, 145.5), (1, 135.5)):
            store.record(
                standin_server.url,
                account_of(standin_server.url, SAMPLE_API_KEY),
                [Observation(None, credits)],
                now - days_ago * 86400,
            )
    assert stability_user.cached_balance().runs_out_at is None  # not asked: nothing read
    assert len(stored(state)) == 2
    record = stability_user.cached_balance(history=True, max_age=0)
    assert record.credits == 125.5
    assert len(stored(state)) == 3
    assert record.runs_out_at is not None
    # 20 credits over 2 days: 10 a day, so 125.5 credits last 12.55 days.
    assert abs(record.runs_out_at - (record.fetched_at + 12.55 * 86400)) < 5
    again = stability_user.cached_balance(history=True)  # a cache hit keeps it
    assert again.runs_out_at == record.runs_out_at


def test_the_key_is_in_no_file_byte_for_byte(tmp_path: Path, state: Path) -> None:
    key = "sk-LIVEqwertyuiopasdfghjklzxcvbnm0123456789CDEF"
    api = StandInAPI()
    api.add_account(
        key,
        email="k@example.com",
        organizations=[StandInOrganization("org-k", "K", "OWNER", True, 9.0)],
    )
    with api.serve() as server:
        for argv in (
            ["balance"],
            ["balances"],
            ["status", *SLOW_MACHINE],
            ["history", "--json"],
        ):
            result = cli(server, *argv, STABILITY_API_KEY=key, XDG_CACHE_HOME=str(tmp_path))
            assert result.returncode == 0, result.stderr
    assert stored(state) == [("", 9.0), ("org-k", 9.0)]
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == STORE_NAME for path in files)
    for path in files:
        content = path.read_bytes()
        assert key.encode() not in content, path
        assert b"qwertyuiop" not in content, path


# The command line: every balance it reads, unless told not to


def test_the_commands_record_what_they_read(
    standin: StandInAPI, standin_server: StandInServer, state: Path
) -> None:
    assert cli(standin_server, "balance").returncode == 0
    assert cli(standin_server, "balance", "--org", "org-standin-lab").returncode == 0
    standin.spend("org-standin-personal", 10)
    assert cli(standin_server, "balances").returncode == 0
    result = cli(
        standin_server,
        "measure",
        "--org",
        "org-standin-lumen",
        "--",
        sys.executable,
        "-m",
        "stability_user.testing",
        "spend",
        "1.5",
        "--org",
        "org-standin-lumen",
    )
    assert result.returncode == 0, result.stderr
    assert stored(state) == [
        ("", 125.5),
        ("org-standin-lab", 3.25),
        ("org-standin-personal", 115.5),
        ("org-standin-lumen", 42.0),  # balances, then measure before: one reading
        ("org-standin-lumen", 40.5),  # measure after
    ]


def test_status_records_when_it_refreshes_never_on_a_hit(
    standin: StandInAPI, standin_server: StandInServer, state: Path
) -> None:
    # nothing cached: refreshed
    assert cli(standin_server, "status", *SLOW_MACHINE).stdout == "125.50 cr\n"
    standin.spend("org-standin-personal", 1)
    assert cli(standin_server, "status").stdout == "125.50 cr\n"  # a hit: not read, not recorded
    assert stored(state) == [("", 125.5)]
    assert cli(standin_server, "status", "--refresh", *SLOW_MACHINE).stdout == "124.50 cr\n"
    assert stored(state) == [("", 125.5), ("", 124.5)]


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_turned_off_nothing_is_recorded(
    standin_server: StandInServer, state: Path, how: str
) -> None:
    flag = ["--no-history"] if how == "flag" else []
    env = {"STABILITY_HISTORY": "off"} if how == "environment" else {}
    for argv in (
        ["balance"],
        ["balances"],
        ["account"],
        ["status", "--refresh", *SLOW_MACHINE],
    ):
        result = cli(standin_server, *argv, *flag, **env)
        assert result.returncode == 0, result.stderr
    assert cli(standin_server, "measure", *flag, "--", "true", **env).returncode == 0
    assert not state.exists()


# Faults: one warning, the balance printed, the exit status unchanged


def check_one_warning(result: subprocess.CompletedProcess[str], says: str) -> None:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("stability-user: warning: "), result.stderr
    assert says in lines[0], lines[0]
    assert result.stdout == "125.50 credits (default organization)\n"


def test_an_unknown_stability_history_value_is_said_with_the_values_taken(
    standin_server: StandInServer, state: Path
) -> None:
    # Issue 41, item 11: STABILITY_HISTORY=disabled left recording on without a word.
    result = cli(standin_server, "balance", STABILITY_HISTORY="disabled")
    assert result.returncode == 0
    check_one_warning(
        result,
        "STABILITY_HISTORY='disabled' is not a value it takes, so the history is recorded: off, "
        "0, false or no turn it off; on, 1, true or yes (or leaving it unset) keep it on",
    )
    assert stored(state) == [("", 125.5)]
    quiet = cli(standin_server, "balance", STABILITY_HISTORY="yes")
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_a_corrupt_store_is_set_aside_and_the_reading_kept(
    standin_server: StandInServer, state: Path
) -> None:
    state.mkdir(mode=0o700)
    (state / STORE_NAME).write_bytes(b"this is not a database" * 100)
    result = cli(standin_server, "balance")
    assert result.returncode == 0
    check_one_warning(result, "was not a history store (file is not a database); moved it to")
    (aside,) = state.glob("*.unreadable")
    assert aside.read_bytes() == b"this is not a database" * 100
    assert stored(state) == [("", 125.5)]


def test_a_newer_store_is_left_alone_and_the_exit_status_kept(
    standin: StandInAPI, standin_server: StandInServer, state: Path
) -> None:
    assert cli(standin_server, "balance").returncode == 0
    with sqlite3.connect(state / STORE_NAME) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    before = (state / STORE_NAME).read_bytes()
    result = cli(standin_server, "balance", "--min-credits", "200")
    assert result.returncode == 3  # below --min-credits, as without a history
    history_lines = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(history_lines) == 1
    assert "written by a newer stability-user" in history_lines[0]
    assert (state / STORE_NAME).read_bytes() == before
    refused = cli(standin_server, "history")
    assert refused.returncode == 1
    assert "written by a newer stability-user" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize("how", HOW)
def test_a_read_only_state_folder(standin_server: StandInServer, state: Path, how: str) -> None:
    state.mkdir(mode=0o700)
    try:
        result = cli(standin_server, "balance", wrapper=unwritable(how, state, []))
    finally:
        state.chmod(0o700)
    assert result.returncode == 0
    check_one_warning(result, "the balance was not recorded in the history")
    assert stored(state) == []


def test_a_store_locked_past_the_busy_timeout(
    standin: StandInAPI, standin_server: StandInServer, state: Path
) -> None:
    assert cli(standin_server, "balance").returncode == 0
    holder = sqlite3.connect(state / STORE_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer that never lets go
    try:
        standin.spend("org-standin-personal", 0.5)
        result = cli(standin_server, "balance")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 0
    assert result.stdout == "125.00 credits (default organization)\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "database is locked" in lines[0], result.stderr
    assert stored(state) == [("", 125.5)]


def test_a_full_disk(
    standin: StandInAPI, standin_server: StandInServer, state: Path, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("a private tmpfs needs root and unshare")
    assert cli(standin_server, "balance").returncode == 0
    seed = tmp_path / "seed.sqlite3"
    seed.write_bytes((state / STORE_NAME).read_bytes())
    standin.spend("org-standin-personal", 0.5)
    script = (
        'mount -t tmpfs -o size=256k,mode=0700 tmpfs "$1" && cp "$2" "$1/history.sqlite3" && '
        'chmod 600 "$1/history.sqlite3" && '
        '{ dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null || true; } && shift 2 && exec "$@"'
    )
    namespace = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    result = cli(standin_server, "balance", wrapper=[*namespace, str(state), str(seed)])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "125.00 credits (default organization)\n"
    lines = result.stderr.splitlines()
    # SQLite says "disk I/O error" or "database or disk is full", by where it ran out.
    assert len(lines) == 1, result.stderr
    assert f"{STORE_NAME} cannot be used: " in lines[0], result.stderr
    assert "disk" in lines[0]


def test_twenty_processes_recording_at_once(tmp_path: Path, state: Path) -> None:
    organizations = [
        StandInOrganization(f"org-{i:02d}", f"Team {i}", "OWNER", i == 0, 100.0 + i)
        for i in range(20)
    ]
    api = StandInAPI()
    api.add_account(SAMPLE_API_KEY, email="many@example.com", organizations=organizations)
    gate = Gate(api, 20, timeout=60.0)  # every request held until all twenty are in flight
    with StandInServer(gate) as server:  # type: ignore[arg-type]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "stability_user", "balance", "--org", org.id],
                env=environment(server.url),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for org in organizations
        ]
        outcomes = [process.communicate(timeout=120) for process in processes]
    gate.check()
    assert [process.returncode for process in processes] == [0] * 20
    assert [err for _, err in outcomes] == [""] * 20  # no "database is locked", no warning
    assert sorted(stored(state)) == sorted((org.id, org.credits) for org in organizations)


def test_account_names_the_default_organization_of_the_readings_after_it(
    standin: StandInAPI, standin_server: StandInServer, state: Path
) -> None:
    # Changed with issue 41 (item 5): a reading taken before anything named the default stays
    # apart (whose it was is not known); `account` names the default of the readings after it.
    from stability_user.history import read_history

    assert cli(standin_server, "balance").returncode == 0
    (unnamed,) = read_history(api_key=SAMPLE_API_KEY, base_url=standin_server.url)
    assert (unnamed.organization, unnamed.name) == (None, None)
    assert cli(standin_server, "account").returncode == 0  # no balance read: names learnt
    assert stored(state) == [("", 125.5)]
    (still,) = read_history(api_key=SAMPLE_API_KEY, base_url=standin_server.url)
    assert (still.organization, still.credits) == (None, 125.5)
    standin.spend("org-standin-personal", 0.5)
    assert cli(standin_server, "balance").returncode == 0
    (named,) = read_history(api_key=SAMPLE_API_KEY, base_url=standin_server.url)
    assert (named.organization, named.name, named.credits) == (
        "org-standin-personal",
        "Ada's studio",
        125.0,
    )


def exporter(server: StandInServer, state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stability_user", "exporter", "--port", "0", "--interval", "1"],
        env=environment(server.url, STABILITY_STATE_DIR=str(state)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def refreshes(api: StandInAPI) -> int:
    return sum(request.path.endswith("/user/account") for request in api.requests)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def test_the_exporter_records_every_refresh(
    standin: StandInAPI, standin_server: StandInServer, state: Path, http_backend: str
) -> None:
    process = exporter(standin_server, state)
    try:
        wait_for(lambda: len(stored(state)) == 3)
        standin.spend("org-standin-lab", 0.25)
        wait_for(lambda: ("org-standin-lab", 3.0) in stored(state))
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert err == ""


def test_the_exporter_warns_once_not_at_every_refresh(
    standin: StandInAPI, standin_server: StandInServer, state: Path
) -> None:
    assert cli(standin_server, "balance", STABILITY_STATE_DIR=str(state)).returncode == 0
    with sqlite3.connect(state / STORE_NAME) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    process = exporter(standin_server, state)
    try:
        wait_for(lambda: refreshes(standin) >= 4)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    (line,) = err.splitlines()
    assert line.startswith("stability-user: warning: the balance was not recorded in the history")
    assert "newer stability-user" in line


def test_many_recorders_of_one_process_say_a_shared_failure_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The exporter's thousand targets are a thousand recorders: an unusable state folder is
    # one warning, not one per target; said again once every recorder in it has recovered.
    from stability_user.history._recorder import history_logger, recorder_for

    # Only the log: not the stderr of a command line an earlier test ran in this process.
    monkeypatch.setattr(history_logger, "handlers", [])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("STABILITY_STATE_DIR", str(blocker / "state"))
    recorders = [recorder_for("https://api.example.com", f"sk-key-{n}") for n in range(3)]

    def warnings() -> list[str]:
        said = [r.getMessage() for r in caplog.records if r.name == "stability_user.history"]
        caplog.clear()
        return said

    for _ in range(2):
        for recorder in recorders:
            assert recorder is not None
            recorder.balance(None, 1.0)
    (said,) = warnings()
    assert said.startswith("the balance was not recorded in the history: ")

    monkeypatch.setenv("STABILITY_STATE_DIR", str(tmp_path / "state"))
    recorders[0].balance(None, 2.0)  # type: ignore[union-attr]  # recovered: the others are not
    monkeypatch.setenv("STABILITY_STATE_DIR", str(blocker / "state"))
    recorders[0].balance(None, 3.0)  # type: ignore[union-attr]
    assert warnings() == []  # the others are still in it: nothing new to say
    monkeypatch.setenv("STABILITY_STATE_DIR", str(tmp_path / "state"))
    for recorder in recorders:
        recorder.balance(None, 4.0)  # type: ignore[union-attr]
    monkeypatch.setenv("STABILITY_STATE_DIR", str(blocker / "state"))
    recorders[1].balance(None, 5.0)  # type: ignore[union-attr]
    assert warnings() == [said]  # all had recovered: said again
