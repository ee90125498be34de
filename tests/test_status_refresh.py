"""``stability-user status`` never waits for the network while it has a value to show: it
prints at once and refreshes behind the prompt, in a detached process; a failed refresh is
remembered and backed off. Every run is a real process, as a prompt runs it; the background
refresh is reparented to the test (a subreaper) so that it can be looked at and waited for.
Requests are counted at the stand-in, which holds them as long as a test needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stability_user._cache._policy import ATTEMPT_GRACE
from stability_user._cache._store import Entry, entry_for, open_cache
from stability_user.testing import StandInAPI, StandInOrganization, StandInServer
from support import no_fork
from support.deadline import wait_until
from support.held import HeldBalance
from support.reaper import Reaper, descriptors, parent_of

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a subreaper and /proc are Linux's"
)

KEY = "sk-refreshtest-0123456789abcdefghijklmnopqrstuvwxyz"
REVOKED = "sk-revokedtest-0123456789abcdefghijklmnopqrstuvwxyz"
STATUS = [sys.executable, "-m", "stability_user", "status"]


@pytest.fixture
def api() -> StandInAPI:
    api = StandInAPI()
    api.add_account(
        KEY,
        email="grace@example.com",
        organizations=[StandInOrganization("org-main", "Main", "OWNER", True, 1072.5)],
    )
    return api


@pytest.fixture
def held(api: StandInAPI) -> Iterator[HeldBalance]:
    """The stand-in, its balance requests held until ``held.release()``."""
    holding = HeldBalance(api)
    yield holding
    holding.release()


@pytest.fixture
def url(held: HeldBalance) -> Iterator[str]:
    with StandInServer(held) as server:  # type: ignore[arg-type]
        yield server.url


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def env(url: str, cache_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "STABILITY_API_KEY": KEY,
        "STABILITY_BASE_URL": url,
        "STABILITY_CACHE_DIR": str(cache_dir),
    }


@pytest.fixture
def reaper() -> Iterator[Reaper]:
    with Reaper() as reaping:
        yield reaping


def prompt(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """One run of ``status``, as a prompt makes it."""
    return subprocess.run(
        [*STATUS, *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def shown(done: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return done.returncode, done.stdout, done.stderr


def put(cache_dir: Path, url: str, entry: Entry, key: str = KEY) -> None:
    open_cache(str(cache_dir)).write(entry_for(url, "v1", key, None), entry)


def read(cache_dir: Path, url: str, key: str = KEY) -> Entry:
    entry = open_cache(str(cache_dir)).read(entry_for(url, "v1", key, None), time.time())
    assert entry is not None
    return entry


def expired(credits: float = 99.0, seconds: float = 125.0) -> Entry:
    return Entry(credits, time.time() - seconds)


def balance_requests(api: StandInAPI) -> int:
    return sum(1 for request in api.requests if request.path.endswith("/balance"))


def one_refresh(reaper: Reaper) -> int:
    """The exit status of the one background refresh the last run started."""
    ended = reaper.wait_all()
    assert len(ended) == 1, ended
    (status,) = ended.values()
    return status


def test_an_expired_value_is_shown_at_once_and_refreshed_behind_the_prompt(
    env: dict[str, str], api: StandInAPI, held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    url = env["STABILITY_BASE_URL"]
    put(cache_dir, url, expired())
    # The refresh waits at the API until released below: its --timeout must outlast the next
    # prompt's cold start on a loaded machine (a prompt's 2 s default need not).
    assert shown(prompt(env, "--timeout", "30")) == (0, "99.00 cr\n", "")
    # The run has ended; its refresh is at the API, which has not answered.
    wait_until("the refresh's request at the API", lambda: held.held == 1)
    assert shown(prompt(env)) == (0, "99.00 cr\n", "")  # under way: plain, and no second one
    held.release()
    assert one_refresh(reaper) == 0
    assert shown(prompt(env)) == (0, "1,072.50 cr\n", "")
    assert balance_requests(api) == 1
    assert read(cache_dir, url) == Entry(1072.5, read(cache_dir, url).fetched_at)


def test_a_hanging_api_marks_the_value_stale_once_the_refresh_gives_up(
    env: dict[str, str], held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    url = env["STABILITY_BASE_URL"]
    put(cache_dir, url, expired(seconds=12 * 60 + 5))
    assert shown(prompt(env, "--timeout", "1")) == (0, "99.00 cr\n", "")
    assert one_refresh(reaper) == 1  # gave up at its --timeout; the API never answered
    for _ in range(3):  # the back-off: the same line at once, and nothing started
        assert shown(prompt(env, "--timeout", "1")) == (0, "~99.00 cr (12m)\n", "")
        assert reaper.orphans() == []
    data = json.loads(prompt(env, "--json").stdout)
    assert (data["credits"], data["stale"]) == (99.0, True)
    assert data["error"] == "APITimeoutError: No answer from the API within --timeout 1 s."
    assert held.held == 1
    entry = read(cache_dir, url)
    assert (entry.failures, entry.failure, entry.attempt_until) == (1, "api", None)


def test_a_failure_backs_off_doubling_and_recovery_clears_it(
    env: dict[str, str], api: StandInAPI, held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    url = env["STABILITY_BASE_URL"]
    held.release()
    api.inject_error(500, times=None, message="upstream is down")
    put(cache_dir, url, expired())
    assert shown(prompt(env, "--timeout", "20")) == (0, "99.00 cr\n", "")
    assert one_refresh(reaper) == 1
    data = json.loads(prompt(env, "--json").stdout)
    assert (data["stale"], data["error"]) == (
        True,
        "InternalServerError (HTTP 500): upstream is down",
    )
    asked = balance_requests(api)

    def failed_ago(seconds: float) -> None:
        """The entry's last failure moved ``seconds`` into the past."""
        entry = read(cache_dir, url)
        entry.failed_at = time.time() - seconds
        put(cache_dir, url, entry)

    failed_ago(29)  # inside the first back-off (30 s): nothing is started
    assert shown(prompt(env, "--timeout", "20")) == (0, "~99.00 cr (2m)\n", "")
    assert reaper.orphans() == []
    failed_ago(31)  # past it: the stale value, and one new attempt behind it
    assert shown(prompt(env, "--timeout", "20")) == (0, "~99.00 cr (2m)\n", "")
    assert one_refresh(reaper) == 1
    assert read(cache_dir, url).failures == 2
    failed_ago(59)  # the second back-off is 60 s
    prompt(env, "--timeout", "20")
    assert reaper.orphans() == []
    assert balance_requests(api) == asked + 3  # one attempt: three tries of the client

    api.clear_errors()  # the API is back
    failed_ago(61)
    assert shown(prompt(env, "--timeout", "20")) == (0, "~99.00 cr (2m)\n", "")
    assert one_refresh(reaper) == 0
    assert shown(prompt(env)) == (0, "1,072.50 cr\n", "")
    entry = read(cache_dir, url)
    assert (entry.credits, entry.failed_at, entry.failures, entry.error) == (1072.5, None, 0, None)


def test_a_refused_key_is_an_error_line_not_a_stale_balance(
    env: dict[str, str], api: StandInAPI, held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    url = env["STABILITY_BASE_URL"]
    held.release()
    revoked = {**env, "STABILITY_API_KEY": REVOKED}
    put(cache_dir, url, expired(), key=REVOKED)  # from when the key still worked
    assert shown(prompt(revoked)) == (0, "99.00 cr\n", "")
    assert one_refresh(reaper) == 1
    code, out, err = shown(prompt(revoked))
    assert (code, out) == (1, "")
    assert err == (
        "stability-user: error: AuthenticationError (HTTP 401): Incorrect API key provided: "
        "sk-revo****************************************wxyz. You can find your API key at "
        "https://stability.ai.\n"
    )
    assert prompt(revoked, "--json").returncode == 1
    assert balance_requests(api) == 1  # said from the entry, within the back-off
    entry_file = cache_dir / f"{entry_for(url, 'v1', REVOKED, None)}.entry"
    assert REVOKED.encode() not in entry_file.read_bytes()
    assert REVOKED[3:19].encode() not in entry_file.read_bytes()


def test_with_nothing_to_show_the_first_prompt_waits_and_the_next_ones_do_not(
    env: dict[str, str], held: HeldBalance, reaper: Reaper
) -> None:
    # 5 s, not a prompt's budget: the run must reach the API before its time is up, and a cold
    # start on a loaded machine can take more than half a second ("No time left" then).
    error = "stability-user: error: APITimeoutError: No answer from the API within --timeout 5 s.\n"
    assert shown(prompt(env, "--timeout", "5")) == (1, "", error)  # waited, in the foreground
    for _ in range(3):  # remembered: said at once, no request
        assert shown(prompt(env, "--timeout", "5")) == (1, "", error)
    assert held.held == 1
    assert reaper.orphans() == []


def test_twenty_prompts_on_an_expired_entry_start_one_refresh_and_none_waits(
    env: dict[str, str], api: StandInAPI, held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    put(cache_dir, env["STABILITY_BASE_URL"], expired())
    # The refresh waits at the API until all twenty have ended: its --timeout (a prompt's 2 s
    # by default) must outlast twenty cold starts on a loaded machine.
    runs = [
        subprocess.Popen(
            [*STATUS, "--timeout", "30"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(20)
    ]
    # The API answers nothing until every run has ended: none of them waited for it.
    outcomes = [run.communicate(timeout=50) for run in runs]
    assert outcomes == [("99.00 cr\n", "")] * 20
    assert [run.returncode for run in runs] == [0] * 20
    held.release()
    assert one_refresh(reaper) == 0
    assert balance_requests(api) == 1


def test_the_refresh_is_detached_keyless_and_bounded(
    env: dict[str, str], held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    url = env["STABILITY_BASE_URL"]
    put(cache_dir, url, expired())
    run = subprocess.Popen(
        [*STATUS, "--timeout", "3"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # A prompt's $(...) reads until every writer has closed the pipe: the run's refresh must
    # hold none of it, or the prompt would wait for the refresh after all.
    assert run.communicate(timeout=50) == ("99.00 cr\n", "")
    wait_until("the refresh's request at the API", lambda: held.held == 1)
    (pid,) = reaper.orphans()  # alive, holding the request; its status has ended
    assert parent_of(pid) == os.getpid()  # reparented (here, to this subreaper; else to init)
    assert os.getsid(pid) == pid  # a session of its own: no terminal's signals reach it
    arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"stability_user._cli._background" in arguments
    assert not any(KEY[3:19].encode() in word for word in arguments)
    lock = cache_dir / f"{entry_for(url, 'v1', KEY, None)}.lock"
    opened = descriptors(pid)
    # Nothing of the terminal's or the prompt's: the null device, the lock, its own connection.
    assert {fd: opened[fd] for fd in range(4)} == {
        0: os.devnull,
        1: os.devnull,
        2: os.devnull,
        3: str(lock),
    }
    assert all(opened[fd].startswith("socket:") for fd in opened if fd > 3)
    assert one_refresh(reaper) == 1  # gave up at its timeout; nothing is left running
    entry = read(cache_dir, url)
    assert entry.error == "APITimeoutError: No answer from the API within --timeout 3 s."


@pytest.mark.skipif(not no_fork.available(), reason="a seccomp filter for x86_64 or aarch64")
def test_where_no_process_may_be_started_the_refresh_is_in_the_foreground(
    env: dict[str, str], api: StandInAPI, held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    held.release()
    put(cache_dir, env["STABILITY_BASE_URL"], expired())
    sandboxed = {**env, "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(
        no_fork.command(STATUS),
        env=sandboxed,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert shown(done) == (0, "1,072.50 cr\n", "")  # asked and waited, as before
    assert reaper.orphans() == []
    assert balance_requests(api) == 1
    assert read(cache_dir, env["STABILITY_BASE_URL"]).attempt_until is None


def test_a_refresh_that_never_says_what_came_of_it_counts_as_failed(
    env: dict[str, str], held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    # Started, then killed before it wrote anything (or never started at all): its time is up.
    entry = expired()
    entry.attempt_until = time.time() - 1
    put(cache_dir, env["STABILITY_BASE_URL"], entry)
    data = json.loads(prompt(env, "--json").stdout)
    assert (data["credits"], data["stale"]) == (99.0, True)
    assert data["error"] == (
        "StabilityError: The background refresh ended without writing what came of it."
    )
    assert reaper.orphans() == []  # backed off as after any failure
    assert held.held == 0


def test_an_attempt_is_given_its_timeout_and_a_grace(
    env: dict[str, str], held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    url = env["STABILITY_BASE_URL"]
    put(cache_dir, url, expired())
    before = time.time()
    prompt(env, "--timeout", "7")
    attempt_until = read(cache_dir, url).attempt_until
    assert attempt_until is not None
    assert before + 7 + ATTEMPT_GRACE <= attempt_until <= time.time() + 7 + ATTEMPT_GRACE
    held.release()
    assert one_refresh(reaper) == 0
    assert read(cache_dir, url).attempt_until is None


def test_cached_balance_asks_in_the_foreground_whatever_the_back_off(
    env: dict[str, str],
    api: StandInAPI,
    held: HeldBalance,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    waits: list[float],
) -> None:
    from stability_user import cached_balance

    url = env["STABILITY_BASE_URL"]
    held.release()
    for name in ("STABILITY_API_KEY", "STABILITY_BASE_URL", "STABILITY_CACHE_DIR"):
        monkeypatch.setenv(name, env[name])
    failing = expired()
    failing.failed_at, failing.failures, failing.failure = time.time() - 1, 4, "api"
    failing.error = "APITimeoutError: earlier"
    put(cache_dir, url, failing)
    record = cached_balance()  # a program asked: it waits for the API, back-off or not
    assert (record.credits, record.stale) == (1072.5, False)
    assert balance_requests(api) == 1
    api.inject_error(500, times=None)
    record = cached_balance(max_age=0)
    assert (record.credits, record.stale) == (1072.5, True)
    assert read(cache_dir, url).failures == 1  # remembered, for the prompts' back-off


def test_settings_the_refresh_finds_unusable_are_said_and_tried_again_once_fixed(
    env: dict[str, str], api: StandInAPI, held: HeldBalance, cache_dir: Path, reaper: Reaper
) -> None:
    # The entry's name does not depend on the client id, which only the refresh checks.
    held.release()
    put(cache_dir, env["STABILITY_BASE_URL"], expired())
    broken = {**env, "STABILITY_CLIENT_ID": "my\x01app"}
    assert shown(prompt(broken)) == (0, "99.00 cr\n", "")
    assert one_refresh(reaper) == 2
    said = (
        2,
        "",
        "stability-user: error: STABILITY_CLIENT_ID 'my\\x01app' holds control or non-ASCII "
        "characters.\n",
    )
    assert shown(prompt(broken)) == said
    assert balance_requests(api) == 0  # refused before anything was sent
    # No back-off for settings: the first run after the fix tries again (and says the old
    # error once more, while that refresh runs).
    assert one_refresh(reaper) == 2
    assert shown(prompt(env)) == said
    assert one_refresh(reaper) == 0
    assert shown(prompt(env)) == (0, "1,072.50 cr\n", "")


@pytest.mark.parametrize("problem", ["not-the-lock", "bad-arguments"])
def test_the_refresh_writes_nothing_unless_it_holds_its_entrys_lock(
    env: dict[str, str], api: StandInAPI, held: HeldBalance, cache_dir: Path, problem: str
) -> None:
    held.release()
    url = env["STABILITY_BASE_URL"]
    put(cache_dir, url, expired())
    entry_file = cache_dir / f"{entry_for(url, 'v1', KEY, None)}.entry"
    written = entry_file.read_bytes()
    elsewhere = cache_dir / "elsewhere"
    elsewhere.touch()
    timeout = "1" if problem == "not-the-lock" else "soon"
    # Descriptor 3 is some other file, not the entry's lock that status hands over.
    refresh = [sys.executable, "-m", "stability_user._cli._background", "--timeout", timeout]
    done = subprocess.run(
        ["sh", "-c", 'exec 3<"$1"; shift; exec "$@"', "sh", str(elsewhere), *refresh],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1 if problem == "not-the-lock" else 2, "")
    assert entry_file.read_bytes() == written
    assert balance_requests(api) == 0
