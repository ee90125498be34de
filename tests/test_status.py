"""``stability-user status``: one line from the balance cache, refreshed once for many, never a
traceback, never stdin. Requests are counted at the stand-in, files read byte for byte."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stability_user._cache._store import Entry, entry_for, open_cache
from stability_user._cli import main
from stability_user.testing import (
    StandInAPI,
    StandInOrganization,
    StandInServer,
)
from support.blackhole import BlackHole
from support.deadline import wait_until
from support.held import HeldBalance
from support.unwritable import HOW, unwritable

# Long and distinctive, so that finding it in a file cannot be chance.
KEY = "sk-statustest-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def api() -> StandInAPI:
    api = StandInAPI()
    api.add_account(
        KEY,
        email="grace@example.com",
        organizations=[
            StandInOrganization("org-main", "Main", "OWNER", True, 1072.5),
            StandInOrganization("org-side", "Side", "MEMBER", False, 3.25),
        ],
    )
    return api


@pytest.fixture
def url(api: StandInAPI) -> Iterator[str]:
    with api.serve() as server:
        yield server.url


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("STABILITY_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def env(url: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stand-in's variables, set here and returned for the processes a test starts."""
    monkeypatch.setenv("STABILITY_API_KEY", KEY)
    monkeypatch.setenv("STABILITY_BASE_URL", url)
    return {**os.environ}


def status(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["status", *argv])
    except SystemExit as exit_:  # argparse's usage errors and --help
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def balance_requests(api: StandInAPI) -> int:
    return sum(1 for request in api.requests if request.path.endswith("/balance"))


def entry(url: str, organization: str | None = None) -> str:
    return entry_for(url, "v1", KEY, organization)


def age_entry(cache_dir: Path, url: str, seconds: float, credits: float = 99.0) -> None:
    """Put an entry ``seconds`` old in the cache, as an earlier run would have left it."""
    open_cache(str(cache_dir)).write(entry(url), Entry(credits, time.time() - seconds))


def test_a_first_run_fetches_and_a_second_is_answered_from_the_cache(
    env: dict[str, str], api: StandInAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    assert status(capsys) == (0, "1,072.50 cr\n", "")
    api.set_credits("org-main", 5.0)
    assert status(capsys) == (0, "1,072.50 cr\n", "")  # fresh: not asked again
    assert balance_requests(api) == 1


def test_refresh_asks_whatever_the_age_and_max_age_sets_the_age(
    env: dict[str, str], api: StandInAPI, capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    # An expired entry is printed and refreshed behind the prompt (test_status_refresh.py);
    # --refresh and --max-age 0 ask in the foreground, as here.
    age_entry(cache_dir, env["STABILITY_BASE_URL"], seconds=20)
    assert status(capsys, "--max-age", "30") == (0, "99.00 cr\n", "")
    assert balance_requests(api) == 0
    assert status(capsys, "--refresh") == (0, "1,072.50 cr\n", "")
    age_entry(cache_dir, env["STABILITY_BASE_URL"], seconds=20)
    assert status(capsys, "--max-age", "0") == (0, "1,072.50 cr\n", "")
    assert balance_requests(api) == 2


def test_a_failed_refresh_shows_the_cached_value_marked_stale_with_its_age(
    env: dict[str, str],
    api: StandInAPI,
    capsys: pytest.CaptureFixture[str],
    cache_dir: Path,
    waits: list[float],
) -> None:
    age_entry(cache_dir, env["STABILITY_BASE_URL"], seconds=12 * 60 + 5, credits=125.5)
    api.inject_error(500, times=None)
    assert status(capsys, "--refresh") == (0, "~125.50 cr (12m)\n", "")
    code, out, _ = status(capsys, "--json", "--refresh")
    assert code == 0
    assert '"stale": true' in out
    assert '"error": "InternalServerError (HTTP 500): Injected error: HTTP 500."' in out


def test_a_failed_refresh_with_nothing_cached_prints_nothing_and_one_line_on_stderr(
    env: dict[str, str], api: StandInAPI, capsys: pytest.CaptureFixture[str], waits: list[float]
) -> None:
    api.inject_error(500, times=None, message="upstream is down")
    code, out, err = status(capsys)
    assert (code, out) == (1, "")
    assert err == "stability-user: error: InternalServerError (HTTP 500): upstream is down\n"


def test_a_wrong_key_is_exit_1_and_a_missing_one_exit_2(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABILITY_API_KEY", "sk-wrong-key-0000000000000000")
    code, out, err = status(capsys)
    assert (code, out) == (1, "")
    assert err.startswith("stability-user: error: AuthenticationError (HTTP 401)")
    monkeypatch.delenv("STABILITY_API_KEY")
    assert status(capsys) == (
        2,
        "",
        "stability-user: error: STABILITY_API_KEY is not set: set it to your Stability API key.\n",
    )


def test_configuration_errors_are_exit_2_even_with_a_cached_value(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    bad = "http://api.example.com"
    open_cache(str(cache_dir)).write(entry_for(bad, "v1", KEY, None), Entry(1.0, 0.0))
    code, out, err = status(capsys, "--base-url", bad, "--refresh")
    assert (code, out) == (2, "")
    assert "Refusing to send the API key over plain http://" in err
    code, out, err = status(capsys, "--org", " ")
    assert (code, out, err) == (
        2,
        "",
        "stability-user: error: --org (or STABILITY_ORGANIZATION) is empty.\n",
    )


def test_organizations_are_cached_apart(
    env: dict[str, str],
    api: StandInAPI,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert status(capsys, "--org", "org-side")[1] == "3.25 cr\n"
    assert status(capsys)[1] == "1,072.50 cr\n"
    monkeypatch.setenv("STABILITY_ORGANIZATION", "org-side")
    assert status(capsys)[1] == "3.25 cr\n"
    assert balance_requests(api) == 2
    assert [r.organization for r in api.requests] == ["org-side", None]


def test_format_fields(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    template = "{stale}{credits:,.0f} credits in {organization}, {age} old"
    assert status(capsys, "--format", template) == (0, "1,072 credits in default, 0s old\n", "")
    age_entry(cache_dir, env["STABILITY_BASE_URL"], seconds=3 * 3600 + 1, credits=7)
    assert status(capsys, "--format", template, "--max-age", "1e9") == (
        0,
        "7 credits in default, 3h old\n",
        "",
    )
    code, out, _ = status(capsys, "--org=org-side", "--format={organization}: {credits}")
    assert (code, out) == (0, "org-side: 3.25\n")


def test_the_calls_field_says_how_many_calls_the_balance_pays_for(
    env: dict[str, str],
    api: StandInAPI,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    template = "{credits:,.2f} cr: {calls:ultra} ultra, {calls:sd3.5-medium:>4} sd3.5-medium"
    # 1,072.50 credits: 134 calls at 8 (1,072), 306 at 3.5 (1,071).
    assert status(capsys, "--format", template) == (
        0,
        "1,072.50 cr: 134 ultra,  306 sd3.5-medium\n",
        "",
    )
    assert status(capsys, "--format", "{calls:/v2beta/stable-image/generate/core}")[1] == "357\n"
    rates = tmp_path / "prices.toml"
    rates.write_text("[prices]\nultra = 10\n")
    monkeypatch.setenv("STABILITY_PRICES", str(rates))
    assert status(capsys, "--format", "{calls:ultra}")[1] == "107\n"
    assert balance_requests(api) == 1  # each answered from the cache


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{balance}", "{balance} is not a field"),
        ("{credits.real}", "{credits.real} is not a field"),
        ("{credits[0]}", "{credits[0]} is not a field"),
        ("{}", "{} is not a field"),
        ("{0}", "{0} is not a field"),
        ("{credits:d}", "Unknown format code 'd'"),
        ("{credits:{age}}", "a field inside {credits:{age}} is not allowed"),
        ("{credits", "expected '}' before end of string"),
        ("one\ntwo {credits}", "must be one line"),
        ("{calls}", "{calls} names a service: {calls:ultra}"),
        ("{calls::>3}", "{calls} names a service: {calls:ultra}"),
        ("{calls:ultr}", "Unknown service 'ultr': did you mean ultra?"),
        ("{calls:core:d.}", "Invalid format specifier"),
    ],
)
def test_a_bad_template_is_a_usage_error_and_nothing_is_sent(
    env: dict[str, str],
    api: StandInAPI,
    capsys: pytest.CaptureFixture[str],
    template: str,
    message: str,
) -> None:
    code, out, err = status(capsys, "--format", template)
    assert (code, out) == (2, "")
    assert err.startswith("usage: stability-user status")
    assert f"argument --format: {message}" in err
    assert "Traceback" not in err
    assert api.requests == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--max-age", "-1"],
        ["--max-age", "soon"],
        ["--timeout", "0"],
        ["--json", "--format", "{credits}"],
        ["--frobnicate"],
        ["extra"],
    ],
)
def test_usage_errors_are_exit_2(
    env: dict[str, str], api: StandInAPI, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = status(capsys, *argv)
    assert (code, out) == (2, "")
    assert "usage: stability-user status" in err
    assert api.requests == []


def test_json_holds_every_field(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, _ = status(capsys, "--json", "--org", "org-side")
    assert code == 0
    assert out.count("\n") == 1
    data = json.loads(out)
    assert set(data) == {
        "credits",
        "organization",
        "fetched_at",
        "age",
        "stale",
        "error",
        "runs_out_at",
    }
    assert (data["credits"], data["organization"], data["stale"], data["error"]) == (
        3.25,
        "org-side",
        False,
        None,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["fetched_at"])
    assert 0 <= data["age"] < 60


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"stability-user balance cache 3\n",
        b"stability-user balance cache 3\nentry {entry}\ncredits 5.0\nfetched_at {now}",  # cut
        b"stability-user balance cache 3\nentry {entry}\ncredits nan\nfetched_at {now}\n",
        b"stability-user balance cache 3\nentry {entry}\ncredits 5\nfetched_at {future}\n",
        b"stability-user balance cache 3\nentry {entry}\ncredits 5\ncredits 6\nfetched_at {now}\n",
        b"stability-user balance cache 3\nentry {entry}\ncredits 5\nfetched_at {now}\nx y\n",
        b"stability-user balance cache 1\nentry {entry}\ncredits 5\nfetched_at {now}\n",
        b"stability-user balance cache 3\nentry {entry}\ncredits 5\n",  # half a value
        b"stability-user balance cache 3\nentry {entry}\nfailed_at {now}\nfailures 0\n"
        b"failure api\nerror x\n",
        b"stability-user balance cache 3\nentry {entry}\nfailed_at {now}\nfailures 1\n"
        b"failure odd\nerror x\n",
        b"stability-user balance cache 3\nentry {entry}\nattempt_until soon\n",
        b'{"credits": 5, "fetched_at": {now}}',
        b"\xff\xfe not text",
    ],
    ids=[
        "empty",
        "header-only",
        "truncated",
        "nan",
        "from-the-future",
        "duplicate-field",
        "unknown-field",
        "other-version",
        "half-a-value",
        "no-failures",
        "unknown-failure",
        "bad-attempt",
        "json",
        "not-utf-8",
    ],
)
def test_a_corrupt_entry_is_ignored_and_replaced(
    env: dict[str, str],
    api: StandInAPI,
    capsys: pytest.CaptureFixture[str],
    cache_dir: Path,
    content: bytes,
) -> None:
    name = entry(env["STABILITY_BASE_URL"])
    path = cache_dir / f"{name}.entry"
    cache_dir.mkdir(mode=0o700)
    now = time.time()
    path.write_bytes(
        content.replace(b"{entry}", name.encode())
        .replace(b"{now}", repr(now).encode())
        .replace(b"{future}", repr(now + 3600).encode())
    )
    path.chmod(0o600)
    assert status(capsys) == (0, "1,072.50 cr\n", "")
    assert balance_requests(api) == 1
    assert path.read_text().startswith(f"stability-user balance cache 3\nentry {name}\n")
    assert status(capsys) == (0, "1,072.50 cr\n", "")  # the replacement is trusted
    assert balance_requests(api) == 1


def test_a_foreign_entry_is_not_trusted(
    env: dict[str, str], api: StandInAPI, capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    url = env["STABILITY_BASE_URL"]
    cache = open_cache(str(cache_dir))
    # Another organization's entry, copied over this one's file name.
    cache.write(entry(url, "org-side"), Entry(3.25, time.time()))
    os.replace(cache_dir / f"{entry(url, 'org-side')}.entry", cache_dir / f"{entry(url)}.entry")
    assert status(capsys) == (0, "1,072.50 cr\n", "")
    assert balance_requests(api) == 1


def test_an_entry_others_can_write_or_a_symlink_is_not_trusted(
    env: dict[str, str], api: StandInAPI, capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    url = env["STABILITY_BASE_URL"]
    cache_dir.mkdir(mode=0o700)
    path = cache_dir / f"{entry(url)}.entry"
    open_cache(str(cache_dir)).write(entry(url), Entry(1.0, time.time()))
    path.chmod(0o666)
    assert status(capsys)[1] == "1,072.50 cr\n"
    target = cache_dir / "elsewhere"
    os.replace(path, target)
    path.symlink_to(target)
    api.set_credits("org-main", 2.0)
    assert status(capsys)[1] == "2.00 cr\n"
    assert not path.is_symlink()  # replaced by a file of its own
    assert balance_requests(api) == 2


@pytest.mark.skipif(os.name != "posix", reason="POSIX ownership and modes")
def test_files_are_private_and_the_key_is_in_none_of_them(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], cache_dir: Path, api: StandInAPI
) -> None:
    status(capsys)
    status(capsys, "--org", "org-side")
    api.inject_error(500, times=None)
    status(capsys, "--refresh", "--json")
    assert cache_dir.stat().st_mode & 0o777 == 0o700
    files = list(cache_dir.iterdir())
    assert len(files) == 4  # two entries, two lock files; no temporary file left behind
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert KEY.encode() not in path.read_bytes(), path
        assert KEY not in path.name
        assert KEY[3:19] not in path.read_text(errors="replace")


@pytest.mark.skipif(os.name != "posix", reason="POSIX ownership and modes")
def test_a_folder_others_can_write_is_not_used(
    env: dict[str, str], api: StandInAPI, capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    cache_dir.mkdir()
    cache_dir.chmod(0o777)
    code, out, err = status(capsys)
    assert (code, out) == (0, "1,072.50 cr\n")
    assert err == (
        f"stability-user: warning: cache directory {cache_dir} is writable by other users; "
        "not using it\n"
    )
    assert list(cache_dir.iterdir()) == []
    status(capsys)
    assert balance_requests(api) == 2  # nothing cached: each run asks


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)
def test_a_folder_of_another_user_is_not_used(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    cache_dir.mkdir(mode=0o700)
    os.chown(cache_dir, 65534, 65534)
    code, out, err = status(capsys)
    assert (code, out) == (0, "1,072.50 cr\n")
    assert "is not owned by the current user; not using it" in err
    assert list(cache_dir.iterdir()) == []


def test_a_cache_that_cannot_be_written_is_said_once_and_the_value_still_shown(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    cache_dir.mkdir(mode=0o700)
    (cache_dir / f"{entry(env['STABILITY_BASE_URL'])}.entry").mkdir()  # in the way
    code, out, err = status(capsys)
    assert (code, out) == (0, "1,072.50 cr\n")
    assert err.startswith(
        f"stability-user: warning: could not write the cache entry in {cache_dir}"
    )
    assert err.count("\n") == 1


def test_the_cache_folder_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from stability_user._cache._store import default_cache_dir

    home = str(tmp_path)
    monkeypatch.setenv("HOME", home)
    assert default_cache_dir({"STABILITY_CACHE_DIR": "/c"}) == "/c"
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == "/x/stability-user"
    relative = default_cache_dir({"XDG_CACHE_HOME": "x"})  # the XDG spec: ignored
    monkeypatch.setattr(sys, "platform", "linux")
    assert default_cache_dir({}) == f"{home}/.cache/stability-user"
    assert relative == default_cache_dir({})
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_cache_dir({}) == f"{home}/Library/Caches/stability-user"
    monkeypatch.setattr(sys, "platform", "win32")
    assert default_cache_dir({"LOCALAPPDATA": "/l"}) == os.path.join(
        "/l", "stability-user", "Cache"
    )


def test_the_whole_command_is_bounded_by_its_timeout(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hole = BlackHole()
    try:
        monkeypatch.setenv("STABILITY_API_KEY", KEY)
        started = time.monotonic()
        code, out, err = status(capsys, "--base-url", hole.url, "--timeout", "0.5")
        elapsed = time.monotonic() - started
    finally:
        hole.close()
    assert (code, out) == (1, "")
    assert err == (
        "stability-user: error: APITimeoutError: No answer from the API within --timeout 0.5 s.\n"
    )
    # The client's own timeouts and retries would take over 15 s (5 s to connect, 3 tries).
    assert elapsed < 10


# -- many processes ---------------------------------------------------------------------------


def status_process(env: dict[str, str], *argv: str, **options: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stability_user", "status", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,  # type: ignore[call-overload]
    )


def holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (Linux: its /proc fd links)."""
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:  # gone, or an fd closed while listing
        return False
    return str(path) in links


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="watches /proc/<pid>/fd")
def test_twenty_at_once_on_an_empty_cache_make_one_request(
    api: StandInAPI, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldBalance(api)
    with StandInServer(held) as server:  # type: ignore[arg-type]
        env = {**os.environ, "STABILITY_API_KEY": KEY, "STABILITY_BASE_URL": server.url}
        lock = cache_dir / f"{entry(server.url)}.lock"
        processes = [status_process(env, "--timeout", "50") for _ in range(20)]
        try:
            # Every process has found the cache empty and is at the lock (one holding it and
            # asking the API, held there; nineteen waiting): only now may the answer come.
            wait_until(
                "all twenty processes at the lock",
                lambda: all(holds_open(p.pid, lock) for p in processes),
                seconds=50,
            )
            held.release()
            outcomes = [p.communicate(timeout=50) for p in processes]
        finally:
            held.release()
            for process in processes:
                process.kill()
                process.wait()
    assert [out for out, _ in outcomes] == ["1,072.50 cr\n"] * 20
    assert [err for _, err in outcomes] == [""] * 20
    assert [p.returncode for p in processes] == [0] * 20
    assert balance_requests(api) == 1


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="watches /proc/<pid>/fd")
def test_while_another_refreshes_the_older_value_is_shown_at_once_or_the_refresh_awaited(
    env: dict[str, str], api: StandInAPI, cache_dir: Path
) -> None:
    import fcntl

    url = env["STABILITY_BASE_URL"]
    age_entry(cache_dir, url, seconds=300, credits=125.5)
    lock = cache_dir / f"{entry(url)}.lock"
    with open(lock, "a") as held:  # another process's refresh, under way
        fcntl.flock(held, fcntl.LOCK_EX)
        process = status_process(env)
        out, err = process.communicate(timeout=50)
        # Not stale: no refresh has failed since, one is under way.
        assert (process.returncode, out, err) == (0, "125.50 cr\n", "")
        # --refresh waits for that refresh instead, and takes what it wrote.
        process = status_process(env, "--refresh", "--timeout", "50")
        wait_until("the process waiting at the lock", lambda: holds_open(process.pid, lock))
        age_entry(cache_dir, url, seconds=0, credits=130.0)
        fcntl.flock(held, fcntl.LOCK_UN)
        out, err = process.communicate(timeout=50)
    assert (process.returncode, out, err) == (0, "130.00 cr\n", "")
    assert balance_requests(api) == 0


def test_waiting_for_another_refresh_is_bounded_by_the_timeout(
    env: dict[str, str], api: StandInAPI, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import fcntl

    cache_dir.mkdir(mode=0o700)
    with open(cache_dir / f"{entry(env['STABILITY_BASE_URL'])}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, out, err = status(capsys, "--timeout", "0.3")
    assert (code, out) == (1, "")
    assert err == (
        "stability-user: error: APITimeoutError: Timed out waiting for another process's "
        "refresh of the balance.\n"
    )
    assert api.requests == []


@pytest.mark.parametrize("cached", [False, True], ids=["refresh", "cache-hit"])
def test_stdin_is_never_read(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], cached: bool
) -> None:
    if cached:
        status(capsys)
    # An agent CLI pipes JSON in and may never close the pipe: a read would hang.
    process = status_process(env, stdin=subprocess.PIPE)
    assert process.stdin is not None
    process.stdin.write('{"session_id": "abc", "model": {"id": "x"}}\n')
    process.stdin.flush()
    try:
        assert process.wait(timeout=50) == 0
        assert process.stdout is not None
        assert process.stdout.read() == "1,072.50 cr\n"
    finally:
        process.kill()
        process.communicate()


def test_a_cache_hit_imports_neither_httpx2_nor_the_models_nor_argparse_nor_the_history(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status(capsys)
    code = (
        "import sys\n"
        "from stability_user._cli import main\n"
        "status = main(['status', '--max-age', '3600', '--format', '{credits}{runway}'])\n"
        "heavy = ('httpx2', 'stability_user_client', 'stability_user._models', "
        "'stability_user._client', 'attrs', 'argparse', 'json', 'typing', 'hashlib', "
        "'importlib', 'math', 'stability_user._exceptions', 'sqlite3', 'datetime', "
        "'dataclasses', 'stability_user.history', 'stability_user.history._store', "
        "'stability_user.history._ledger', 'stability_user.history._recorder', "
        "'stability_user._job', 'stability_user._budget', 'csv', 'unicodedata', "
        "'logging', 'stability_user.prices', 'decimal', 'tomllib')\n"
        "print(status, sorted(m for m in heavy if m in sys.modules))"
    )
    # Without coverage's start-up in the child (it imports json and typing of its own).
    clean = {name: value for name, value in env.items() if not name.startswith("COVERAGE_")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == ["1072.5", "0 []"]
    # Asked for, the calls load the prices (and what they need), still not the client.
    asked = code.replace("{credits}{runway}", "{calls:core}")
    done = subprocess.run(
        [sys.executable, "-c", asked], env=clean, capture_output=True, text=True, check=True
    )
    printed, loaded = done.stdout.splitlines()
    assert printed == "357"
    assert loaded.startswith("0 [")
    assert "'stability_user.prices'" in loaded
    for never in ("httpx2", "stability_user._client", "argparse", "sqlite3", "tomllib", "history"):
        assert never not in loaded


def test_help_lists_status_and_status_has_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = status(capsys, "--help")
    assert code == 0
    assert out.startswith("usage: stability-user status")
    for option in ("--org", "--max-age", "--timeout", "--format", "--json", "--refresh"):
        assert option in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "status" in capsys.readouterr().out


# -- a folder that cannot be written, where it lives, what names an entry ----------------------


def run_status(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=50, check=False)


STATUS = [sys.executable, "-m", "stability_user", "status"]


@pytest.mark.parametrize("how", HOW)
def test_an_unwritable_cache_still_answers_with_one_warning(
    env: dict[str, str], api: StandInAPI, cache_dir: Path, how: str
) -> None:
    url = env["STABILITY_BASE_URL"]
    assert run_status(STATUS, env).stdout == "1,072.50 cr\n"  # the entry and its lock file
    age_entry(cache_dir, url, seconds=125, credits=99.0)
    entry_file = cache_dir / f"{entry(url)}.entry"
    written = entry_file.read_bytes()
    try:
        # A young enough value is read as usual: nothing to write, nothing to say.
        done = run_status(unwritable(how, cache_dir, [*STATUS, "--max-age", "3600"]), env)
        assert (done.returncode, done.stdout, done.stderr) == (0, "99.00 cr\n", "")
        # An older one is refreshed without the cache: the fresh value and one warning.
        done = run_status(unwritable(how, cache_dir, STATUS), env)
        assert (done.returncode, done.stdout) == (0, "1,072.50 cr\n")
        (warning,) = done.stderr.splitlines()
        assert warning.startswith("stability-user: warning: ")
        assert str(cache_dir) in warning
        # The API failing too: the older value, marked stale, and still one warning (the
        # failure could not be written down either).
        api.inject_error(500, times=None)
        done = run_status(unwritable(how, cache_dir, STATUS), env)
        assert (done.returncode, done.stdout) == (0, "~99.00 cr (2m)\n")
        assert len(done.stderr.splitlines()) == 1, done.stderr
    finally:
        cache_dir.chmod(0o700)
    assert entry_file.read_bytes() == written  # never written meanwhile


@pytest.mark.parametrize("how", HOW)
def test_an_empty_unwritable_cache_fetches_for_status_and_cached_balance(
    env: dict[str, str], api: StandInAPI, cache_dir: Path, how: str
) -> None:
    cache_dir.mkdir(mode=0o700)  # no entry, no lock file: neither can be made
    program = (
        "from stability_user import cached_balance\n"
        "record = cached_balance(max_age=0)\n"
        "print(record.credits, record.stale)"
    )
    try:
        done = run_status(unwritable(how, cache_dir, STATUS), env)
        assert (done.returncode, done.stdout) == (0, "1,072.50 cr\n")
        (warning,) = done.stderr.splitlines()
        assert warning == (
            f"stability-user: warning: cache directory {cache_dir} cannot be written "
            f"({'Read-only file system' if how == 'read-only' else 'Permission denied'}); "
            "the balance is not cached"
        )
        done = run_status(unwritable(how, cache_dir, [sys.executable, "-c", program]), env)
        assert (done.returncode, done.stdout) == (0, "1072.5 False\n"), done.stderr
        assert "Traceback" not in done.stderr
        assert "cannot be written" in done.stderr  # logged, through logging's last resort
    finally:
        cache_dir.chmod(0o700)
    assert list(cache_dir.iterdir()) == []
    assert balance_requests(api) == 2


@pytest.mark.parametrize("relative", ["cache", "~/cache", "./cache"])
def test_a_relative_cache_dir_is_not_used(
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    relative: str,
) -> None:
    # A prompt is drawn in every folder the shell visits: a relative folder would make a cache
    # in each of them.
    elsewhere = tmp_path / "project"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("STABILITY_CACHE_DIR", relative)
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    code, out, err = status(capsys)
    assert (code, out) == (0, "1,072.50 cr\n")
    assert err == (
        f"stability-user: warning: STABILITY_CACHE_DIR {relative!r} is not an absolute path; "
        "not using it\n"
    )
    assert list(elsewhere.iterdir()) == []
    assert len(list((xdg / "stability-user").glob("*.entry"))) == 1  # the next rule's folder


def test_status_and_cached_balance_share_an_entry_however_the_settings_are_written(
    env: dict[str, str], api: StandInAPI, monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    from stability_user import cached_balance

    url = env["STABILITY_BASE_URL"]
    shouted = url.replace("http://", "HTTP://") + "//"
    written = {**env, "STABILITY_API_KEY": f"  Bearer {KEY} ", "STABILITY_BASE_URL": shouted}
    done = run_status([*STATUS, "--api-version", " V1 "], written)
    assert (done.returncode, done.stdout, done.stderr) == (0, "1,072.50 cr\n", "")
    assert balance_requests(api) == 1
    record = cached_balance()  # the plain spelling, as the client resolves it
    assert (record.credits, record.stale) == (1072.5, False)
    assert balance_requests(api) == 1  # answered from the entry status wrote
    assert len(list(cache_dir.glob("*.entry"))) == 1


def test_an_organization_id_of_any_length_is_cached(
    env: dict[str, str], api: StandInAPI, capsys: pytest.CaptureFixture[str], cache_dir: Path
) -> None:
    long_id = "org-" + "x" * 5000
    api.add_account(
        KEY,
        email="grace@example.com",
        organizations=[
            StandInOrganization("org-main", "Main", "OWNER", True, 1072.5),
            StandInOrganization(long_id, "Long", "MEMBER", False, 8.0),
        ],
    )
    assert status(capsys, "--org", long_id) == (0, "8.00 cr\n", "")
    assert status(capsys, "--org", long_id) == (0, "8.00 cr\n", "")
    assert balance_requests(api) == 1  # read back, not fetched again
    (entry_file,) = cache_dir.glob("*.entry")
    assert entry_file.stat().st_size < 200


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="a link of another user needs root"
)
def test_a_cache_folder_through_another_users_link_is_not_used(
    env: dict[str, str],
    api: StandInAPI,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"  # as /tmp: anyone may add a name, sticky
    shared.mkdir()
    shared.chmod(0o1777)
    target = tmp_path / "mine"
    target.mkdir(mode=0o700)
    link = shared / "cache"
    link.symlink_to(target)
    os.lchown(link, 65534, 65534)  # another user's link to my folder: they may repoint it
    monkeypatch.setenv("STABILITY_CACHE_DIR", str(link / "stability-user"))
    code, out, err = status(capsys)
    assert (code, out) == (0, "1,072.50 cr\n")
    assert err == (
        f"stability-user: warning: cache directory {link}/stability-user is reached through "
        f"{link}, a symbolic link of another user; not using it\n"
    )
    assert list(target.iterdir()) == []
    # My own link (a ~/.cache on another disk) is used as before.
    os.lchown(link, os.geteuid(), os.getegid())
    assert status(capsys) == (0, "1,072.50 cr\n", "")
    assert status(capsys) == (0, "1,072.50 cr\n", "")
    assert len(list((target / "stability-user").glob("*.entry"))) == 1
    assert balance_requests(api) == 2  # uncached once, then cached and read back
