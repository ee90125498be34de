"""``stability-user watch``: real Apprise to real receivers on loopback (an SMTP server, an HTTP
server for json:// and ntfy://), the stand-in's credits moved between cycles, each cycle run at
the time faketime sets, and exactly which notices arrive checked."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stability_user.history._store import account_of
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer
from support.receivers import HTTPReceiver, SMTPReceiver
from support.tools import faketime, without

PERSONAL = "org-standin-personal"
BELOW = "Stability credits below 130.00: the default organization has"


@pytest.fixture
def http() -> Iterator[HTTPReceiver]:
    receiver = HTTPReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def smtp() -> Iterator[SMTPReceiver]:
    receiver = SMTPReceiver()
    yield receiver
    receiver.close()


class Watch:
    """``stability-user watch`` against a stand-in, with a state folder of its own."""

    def __init__(self, url: str, state: Path) -> None:
        self.state = state
        self.env = {
            **os.environ,
            "STABILITY_API_KEY": SAMPLE_API_KEY,
            "STABILITY_BASE_URL": url,
            "STABILITY_STATE_DIR": str(state),
            "TZ": "UTC",
        }

    def run(
        self, *argv: str, at: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        clock = [faketime(), at] if at else []
        return subprocess.run(
            [*clock, sys.executable, "-m", "stability_user", "watch", *argv],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=90,
        )


def stop_after(process: subprocess.Popen[str], done: Callable[[], bool]) -> None:
    """SIGTERM ``process`` (a watcher's loop) once ``done()``, as systemd stops a service."""
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, "not done within 60 s"
        assert process.poll() is None, "the watcher ended by itself"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)


@pytest.fixture
def watch(standin_server: StandInServer, tmp_path: Path) -> Watch:
    return Watch(standin_server.url, tmp_path / "state")


def test_start_repeat_and_resolved_under_cron(
    watch: Watch, standin: StandInAPI, http: HTTPReceiver, smtp: SMTPReceiver
) -> None:
    argv = ["--once", "--below", "130", "--notify", http.json_url(), "--notify", smtp.url()]
    first = watch.run(*argv, at="2026-12-01 09:00:00")
    assert first.returncode == 3, first.stderr  # a condition holds
    assert http.titles() == [f"{BELOW} 125.50"]
    (mail,) = smtp.messages
    assert mail.subject == f"{BELOW} 125.50"
    assert mail.to == ["me@example.com"]
    assert "Condition: the balance is under 130.00" in mail.body
    assert "Credits: 125.50" in mail.body
    assert "Top up: https://platform.stability.ai/account/credits" in mail.body
    # Cron again an hour later, and a restarted run: nothing repeated.
    for at in ("2026-12-01 10:00:00", "2026-12-01 10:05:00"):
        assert watch.run(*argv, at=at).returncode == 3
    assert len(http.posts) == 1
    assert len(smtp.messages) == 1
    # A day after the start: the reminder.
    assert watch.run(*argv, at="2026-12-02 09:30:00").returncode == 3
    assert http.titles()[1:] == [f"Still: {BELOW} 125.50"]
    assert smtp.messages[1].subject == f"Still: {BELOW} 125.50"
    # Topped up: one resolved, then quiet.
    standin.set_credits(PERSONAL, 500.0)
    assert watch.run(*argv, at="2026-12-02 10:00:00").returncode == 0
    assert watch.run(*argv, at="2026-12-02 11:00:00").returncode == 0
    assert http.titles()[2:] == [f"Resolved: {BELOW} 125.50"]
    assert [m.subject for m in smtp.messages[2:]] == [f"Resolved: {BELOW} 125.50"]


def test_a_ladder_of_thresholds_each_its_own_alert(
    watch: Watch, standin: StandInAPI, http: HTTPReceiver
) -> None:
    argv = [
        "--once",
        "--below",
        "50",
        "--below",
        "100",
        "--below",
        "25",
        "--notify",
        http.ntfy_url(),
    ]
    watch.run(*argv, at="2026-12-01 09:00:00")
    assert http.posts == []
    standin.spend(PERSONAL, 85.5)  # 40 left: under 100 and 50, not 25
    assert watch.run(*argv, at="2026-12-01 10:00:00").returncode == 3
    assert [post.body["title"] for post in http.posts] == [
        "Stability credits below 100.00: the default organization has 40.00",
        "Stability credits below 50.00: the default organization has 40.00",
    ]
    assert {post.path for post in http.posts} == {"/"}
    assert {post.body["topic"] for post in http.posts} == {"credits"}


def test_a_runaway_job(watch: Watch, standin: StandInAPI, http: HTTPReceiver) -> None:
    argv = ["--once", "--spend-above", "20", "--within", "1h", "--notify", http.json_url()]
    assert watch.run(*argv, at="2026-12-01 09:00:00").returncode == 0
    standin.spend(PERSONAL, 12)
    assert watch.run(*argv, at="2026-12-01 09:10:00").returncode == 0  # 12 in 10 minutes
    standin.set_credits(PERSONAL, 1000.0)  # a top-up is not spend
    assert watch.run(*argv, at="2026-12-01 09:15:00").returncode == 0
    standin.spend(PERSONAL, 9)
    assert watch.run(*argv, at="2026-12-01 09:20:00").returncode == 3  # 21 within the hour
    assert http.titles() == ["21.00 Stability credits spent in 1h: the default organization"]
    assert "Spent in the last 1h: 21.00" in http.posts[0].body["message"]
    # Two hours on, the window holds no spend: resolved.
    assert watch.run(*argv, at="2026-12-01 11:30:00").returncode == 0
    assert http.titles()[1:] == [
        "Resolved: 21.00 Stability credits spent in 1h: the default organization"
    ]


def test_a_refused_key_at_once(watch: Watch, http: HTTPReceiver) -> None:
    done = watch.run("--once", "--notify", http.json_url(), STABILITY_API_KEY="sk-revoked-0000")
    assert done.returncode == 1
    assert http.titles() == ["Stability refused the API key"]
    assert "AuthenticationError (HTTP 401)" in http.posts[0].body["message"]
    assert "sk-revoked-0000" not in http.posts[0].body["message"]
    assert "the balance could not be read" in done.stderr


def test_unreachable_once_after_its_delay_then_resolved(
    watch: Watch, standin: StandInAPI, http: HTTPReceiver
) -> None:
    argv = ["--once", "--unreachable-after", "30m", "--notify", http.json_url()]
    standin.inject_error(503, times=None)  # the API down, every request
    for at in ("2026-12-01 09:00:00", "2026-12-01 09:20:00"):
        assert watch.run(*argv, at=at).returncode == 1
    assert http.posts == []
    for at in ("2026-12-01 09:31:00", "2026-12-01 09:45:00"):  # once, not every cycle
        assert watch.run(*argv, at=at).returncode == 1
    assert http.titles() == ["Stability's API unreadable for 30m"]
    assert "(HTTP 503)" in http.posts[0].body["message"]
    standin.clear_errors()
    assert watch.run(*argv, at="2026-12-01 10:00:00").returncode == 0
    assert http.titles()[1:] == ["Resolved: Stability's API unreadable for 30m"]


def test_a_failed_delivery_is_retried_for_that_target_alone(
    watch: Watch, http: HTTPReceiver, smtp: SMTPReceiver
) -> None:
    argv = ["--once", "--below", "130", "--notify", http.json_url(), "--notify", smtp.url()]
    http.fail(1)
    first = watch.run(*argv, at="2026-12-01 09:00:00")
    assert first.returncode == 3
    assert http.posts == []
    assert len(smtp.messages) == 1
    (warning,) = [line for line in first.stderr.splitlines() if "could not notify" in line]
    assert warning.startswith("stability-user: warning: could not notify json://127.0.0.1:")
    assert warning.endswith("it is sent again next cycle")
    assert watch.run(*argv, at="2026-12-01 09:05:00").returncode == 3
    assert http.titles() == [f"{BELOW} 125.50"]  # the start, late
    assert len(smtp.messages) == 1  # not twice


def test_two_watchers_of_one_key_do_not_both_send(watch: Watch, http: HTTPReceiver) -> None:
    argv = ["--once", "--below", "130", "--notify", http.json_url()]
    watch.state.mkdir(mode=0o700)
    host = watch.env["STABILITY_BASE_URL"]
    lock = watch.state / f"watch-{account_of(host, SAMPLE_API_KEY)[:16]}.lock"
    with lock.open("a") as other:  # another watcher, notifying now
        fcntl.flock(other, fcntl.LOCK_EX)
        assert watch.run(*argv).returncode == 3
        assert http.posts == []
    assert watch.run(*argv).returncode == 3
    assert len(http.posts) == 1


def test_test_reports_each_target(watch: Watch, http: HTTPReceiver, smtp: SMTPReceiver) -> None:
    from support.ports import free_port

    dead = f"json://127.0.0.1:{free_port()}/nobody"
    done = watch.run(
        "--test", "--notify", http.json_url(), "--notify", smtp.url(), "--notify", dead
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"json://127.0.0.1:{http.port}/hook")
    assert lines[0].endswith(": sent")
    assert lines[1].startswith("mailto://")
    assert lines[1].endswith(": sent")
    assert "failed: A Connection error occurred sending JSON notification" in lines[2]
    assert http.titles() == ["stability-user watch: a test message"]
    assert smtp.messages[0].subject == "stability-user watch: a test message"


def test_urls_only_in_their_privacy_form(watch: Watch, http: HTTPReceiver, tmp_path: Path) -> None:
    secret = "hunter2-secret-password"
    url = f"mailto://user:{secret}@127.0.0.1:9/me@example.com?from=watch@example.com&mode=insecure"
    config = tmp_path / "apprise.yml"
    config.write_text(f"urls:\n  - {url}\n  - {http.json_url()}\n")
    for argv in (["--test", "--json"], ["--once", "--below", "130", "--json"]):
        done = watch.run(*argv, "--notify-config", str(config))
        assert secret not in done.stdout + done.stderr
        assert "user:****@127.0.0.1" in done.stdout + done.stderr
    stored = b"".join(path.read_bytes() for path in watch.state.iterdir() if path.is_file())
    assert secret.encode() not in stored


def test_a_configuration_file_with_tags(watch: Watch, http: HTTPReceiver, tmp_path: Path) -> None:
    config = tmp_path / "apprise.txt"
    config.write_text(f"ops={http.json_url('ops')}\nfinance={http.json_url('finance')}\n")
    assert (
        watch.run(
            "--once", "--below", "130", "--notify-config", str(config), "--tag", "ops"
        ).returncode
        == 3
    )
    assert [post.path for post in http.posts] == ["/ops"]


def test_environment_urls(watch: Watch, http: HTTPReceiver) -> None:
    urls = f"{http.json_url('a')}, {http.json_url('b')}"
    assert watch.run("--once", "--below", "130", STABILITY_NOTIFY_URLS=urls).returncode == 3
    assert sorted(post.path for post in http.posts) == ["/a", "/b"]


def test_dry_run_prints_and_sends_nothing(watch: Watch, http: HTTPReceiver) -> None:
    done = watch.run("--dry-run", "--below", "130", "--notify", http.json_url())
    assert done.returncode == 3
    assert done.stdout.splitlines()[0] == (
        f"would send start to json://127.0.0.1:{http.port}/hook?method=POST&overflow=upstream"
        f"&retry=0&wait=0.5&optional=no: {BELOW} 125.50"
    )
    assert "  Credits: 125.50" in done.stdout.splitlines()
    assert http.posts == []
    again = watch.run("--once", "--below", "130", "--notify", http.json_url())
    assert again.returncode == 3
    assert len(http.posts) == 1  # the dry run left no state behind


def test_the_loop_stops_cleanly_on_sigterm(watch: Watch, http: HTTPReceiver) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stability_user",
            "watch",
            "--every",
            "1s",
            "--below",
            "130",
            "--notify",
            http.json_url(),
        ],
        env=watch.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop_after(process, lambda: len(http.posts) >= 1)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.startswith("sent start: ")
    assert len(http.posts) == 1  # one start, no repeats within the day


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--notify", "bogus://x"], "not a URL Apprise can send to: bogus://..."),
        (["--notify", "json://"], "not a URL Apprise can send to: json://..."),
        (
            ["--notify-config", "/nonexistent/apprise.yml"],
            "--notify-config /nonexistent/apprise.yml: No such file",
        ),
        (["--below", "-1"], "argument --below"),
        (["--below", "nan"], "argument --below"),
        (["--spend-above", "5", "--within", "soon"], "argument --within: must be a duration"),
        (["--spend-above", "5"], "--spend-above and --within go together"),
        (
            ["--runway-below", "3", "--no-history"],
            "--runway-below and --spend-above read the history",
        ),
        (["--every", "2d"], "argument --every"),
        ([], "no notification URL"),
    ],
)
def test_bad_input_is_exit_2_before_anything_is_read_or_sent(
    watch: Watch, standin: StandInAPI, http: HTTPReceiver, argv: list[str], says: str
) -> None:
    needs_url = (
        []
        if any(a.startswith("--notify") for a in argv) or not argv
        else ["--notify", http.json_url()]
    )
    done = watch.run("--once", *argv, *needs_url)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert standin.requests == []
    assert http.posts == []


def test_an_unreadable_configuration_file(
    watch: Watch, standin: StandInAPI, tmp_path: Path
) -> None:
    config = tmp_path / "apprise.yml"
    config.write_text("this is not: [ an apprise: config\n")
    done = watch.run("--once", "--notify-config", str(config))
    assert done.returncode == 2
    assert f"--notify-config {config}: no Apprise URL could be read from it" in done.stderr
    assert standin.requests == []


def test_without_the_extra_watch_says_what_to_install() -> None:
    result = without("apprise", ["watch", "--once"])
    assert result.returncode == 2
    assert result.stderr == (
        "stability-user: error: watch needs Apprise: pip install 'stability-user[alerts]'\n"
    )


def test_each_cycle_is_recorded_in_the_history(
    watch: Watch, standin: StandInAPI, http: HTTPReceiver
) -> None:
    from stability_user.history import read_history

    argv = ["--once", "--all", "--notify", http.json_url(), "--json"]
    done = watch.run(*argv, at="2026-12-01 09:00:00")
    report = json.loads(done.stdout)
    assert [b["credits"] for b in report["balances"]] == [125.5, 42.0, 3.25]
    histories = read_history(
        all_organizations=True,
        state_dir=watch.state,
        base_url=watch.env["STABILITY_BASE_URL"],
        now=time.mktime((2026, 12, 1, 10, 0, 0, 0, 0, 0)) - time.timezone,
    )
    assert sorted(h.organization or "" for h in histories) == sorted(
        ["org-standin-lab", "org-standin-lumen", PERSONAL]
    )


# The recipes of the Alerts page, as written


def recipe_home(tmp_path: Path, url: str, notify: str) -> tuple[Path, dict[str, str]]:
    """A home with the recipes' env file and ``~/.local/bin/stability-user``; the environment
    cron or systemd gives a command (a short PATH, HOME)."""
    home = tmp_path / "home"
    config = home / ".config" / "stability-user"
    config.mkdir(parents=True)
    (config / "env").write_text(
        f"STABILITY_API_KEY={SAMPLE_API_KEY}\nSTABILITY_BASE_URL={url}\n"
        f"STABILITY_NOTIFY_URLS={notify}\n"
    )
    (config / "env").chmod(0o600)
    local_bin = home / ".local" / "bin"
    local_bin.mkdir(parents=True)
    installed = Path(sys.executable).parent / "stability-user"
    (local_bin / "stability-user").symlink_to(installed)
    return home, {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def recipe_blocks(language: str) -> list[str]:
    from support.doc_blocks import ROOT, blocks

    return [b.text for b in blocks(ROOT / "docs" / "alerts.md") if b.language == language]


def test_the_crontab_line_runs_as_written(
    standin_server: StandInServer, http: HTTPReceiver, tmp_path: Path
) -> None:
    (crontab,) = recipe_blocks("crontab")
    command = crontab.strip().split(None, 5)[5]  # after the five schedule fields
    home, env = recipe_home(tmp_path, standin_server.url, http.json_url("cron"))
    done = subprocess.run(
        ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr  # 125.50 is not below 50; no runway without history
    assert http.posts == []
    # Below 50 now: the same line, again, notifies once.
    done = subprocess.run(
        ["/bin/sh", "-c", command.replace("--below 50", "--below 500")],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert http.titles() == ["Stability credits below 500.00: the default organization has 125.50"]
    assert (home / ".local" / "state" / "stability-user" / "history.sqlite3").exists()


def exec_start(unit: str, home: Path) -> list[str]:
    (line,) = [text for text in unit.splitlines() if text.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=").replace("%h", str(home)).split()


def environment_file(home: Path) -> dict[str, str]:
    lines = (home / ".config" / "stability-user" / "env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_systemd_units_run_as_written(
    standin: StandInAPI, standin_server: StandInServer, http: HTTPReceiver, tmp_path: Path
) -> None:
    service, once, timer = recipe_blocks("ini")
    assert "SuccessExitStatus=3" in once
    assert "OnCalendar=" in timer
    home, env = recipe_home(tmp_path, standin_server.url, http.json_url("systemd"))
    env = {**env, **environment_file(home)}
    standin.spend(PERSONAL, 80)  # 45.50 left: below 50
    done = subprocess.run(
        exec_start(once, home), env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 3, done.stderr  # SuccessExitStatus=3
    assert http.titles() == ["Stability credits below 50.00: the default organization has 45.50"]
    # The service: a loop; systemd stops it with SIGTERM.
    standin.set_credits(PERSONAL, 500.0)
    process = subprocess.Popen(
        exec_start(service, home),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The first cycle resolves the alert the timer's run started.
    stop_after(process, lambda: len(http.posts) >= 2)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert (
        http.titles()[1]
        == "Resolved: Stability credits below 50.00: the default organization has 45.50"
    )
