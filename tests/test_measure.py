"""``stability-user measure -- COMMAND`` against the stand-in served in a process of its own,
spent from the measured command's own process (``python -m stability_user.testing spend``)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stability_user.testing import SAMPLE_API_KEY
from support.deadline import wait_until
from support.doc_blocks import ROOT, blocks
from support.terminal import Terminal

PYTHON = shlex.quote(sys.executable)
SPEND = f"{PYTHON} -m stability_user.testing spend"


class Served:
    """``python -m stability_user.testing serve`` in its own process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stability_user.testing", "serve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().rsplit(" ", 1)[-1].strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def close(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=30)  # and close its stdout


@pytest.fixture
def served() -> Iterator[Served]:
    server = Served()
    yield server
    server.close()


@pytest.fixture
def env(served: Served, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "STABILITY_API_KEY": SAMPLE_API_KEY,
        "STABILITY_BASE_URL": served.url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
    }


def measure(env: dict[str, str], *args: str, **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stability_user", "measure", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        **options,  # type: ignore[call-overload]
    )


def balance(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "stability_user", "balance", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    ).stdout


def test_what_the_command_spent(env: dict[str, str]) -> None:
    done = measure(env, "--", *shlex.split(SPEND), "2.5")
    assert done.returncode == 0
    assert done.stdout == "123 credits left in org-standin-personal\n"  # the command's own
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "stability-user: spent 2.50 credits (125.50 -> 123.00, default organization) in "
    )
    assert line.endswith(" s; the command exited with status 0")


@pytest.mark.parametrize(
    ("script", "status", "ending"),
    [
        ("exit 0", 0, "exited with status 0"),
        ("exit 7", 7, "exited with status 7"),
        ("kill -TERM $$", 143, "was ended by SIGTERM (status 143)"),
        ("kill -KILL $$", 137, "was ended by SIGKILL (status 137)"),
    ],
)
def test_the_command_status_is_passed_through(
    env: dict[str, str], script: str, status: int, ending: str
) -> None:
    done = measure(env, "--org", "org-standin-lab", "--", "sh", "-c", script)
    assert done.returncode == status
    assert done.stderr.startswith(
        "stability-user: spent 0.00 credits (3.25 -> 3.25, organization org-standin-lab) in "
    )
    assert done.stderr.endswith(f"; the command {ending}\n")


def test_every_organization(env: dict[str, str]) -> None:
    command = f"{SPEND} 2 --org org-standin-lumen && {SPEND} 0.25 --org org-standin-lab"
    done = measure(env, "--all", "--", "sh", "-c", command)
    assert done.returncode == 0
    assert "spent 2.25 credits (170.75 -> 168.50, 3 organizations)" in done.stderr


def test_below_the_minimum_the_command_is_not_started(env: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "started"
    done = measure(env, "--min-credits", "126", "--", "touch", str(marker))
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (
        "stability-user: below --min-credits 126.00: 125.50 credits; the command was not started\n"
    )
    assert not marker.exists()
    done = measure(env, "--all", "--min-credits", "50", "--", "touch", str(marker))
    assert done.returncode == 3
    assert "org-standin-lumen (42.00), org-standin-lab (3.25)" in done.stderr
    assert not marker.exists()
    assert measure(env, "--min-credits", "125.5", "--", "touch", str(marker)).returncode == 0
    assert marker.exists()


def test_a_failed_read_before_the_command_does_not_start_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    bad = {**env, "STABILITY_API_KEY": "sk-wrong-key-000000000000000"}
    done = measure(bad, "--", "touch", str(marker))
    assert done.returncode == 1
    assert done.stderr.startswith("stability-user: error: AuthenticationError (HTTP 401)")
    assert not marker.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc/<pid>/stat")
def test_a_failed_read_after_the_command_keeps_its_status(
    env: dict[str, str], served: Served
) -> None:
    # The command stops the stand-in and waits until its process has ended: the read after it
    # cannot succeed.
    pid = served.process.pid
    script = (
        f'kill -TERM {pid}; while [ "$(cut -d" " -f3 /proc/{pid}/stat)" != Z ]; '
        "do sleep 0.05; done; exit 4"
    )
    done = measure(env, "--timeout", "2", "--", "sh", "-c", script)
    assert done.returncode == 4
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "stability-user: spend unknown (125.50 before, default organization; the balance after: "
        "APIConnectionError: "
    )
    assert line.endswith("; the command exited with status 4")


def test_the_json_record(env: dict[str, str], tmp_path: Path) -> None:
    record_file = tmp_path / "spend.json"
    done = measure(env, "--json", str(record_file), "--", *shlex.split(SPEND), "1.5")
    assert done.returncode == 0
    record = json.loads(record_file.read_text())
    assert record["command"] == [*shlex.split(SPEND), "1.5"]
    assert record["exit_status"] == 0
    assert (record["before"], record["after"], record["credits"]) == (125.5, 124.0, 1.5)
    assert (record["organization"], record["all_organizations"], record["error"]) == (
        None,
        False,
        None,
    )
    assert record["seconds"] > 0
    assert record["started_at"] <= record["ended_at"]
    assert (record["label"], record["note"]) == (None, None)
    (job,) = jobs(env)
    assert record["jobs"] == [job["id"]]  # the job the ledger has of it
    for text in (done.stdout, done.stderr, record_file.read_text()):
        assert SAMPLE_API_KEY not in text


def test_ctrl_c_is_passed_to_a_command_that_traps_it(env: dict[str, str]) -> None:
    script = 'trap "echo trapped; exit 5" INT; echo ready; sleep 30 & wait $!'
    process = subprocess.Popen(
        [sys.executable, "-m", "stability_user", "measure", "--", "sh", "-c", script],
        env=env,
        stdin=subprocess.DEVNULL,  # not a terminal: nothing else delivers it to the command
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"  # the trap is set
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=50)
    finally:
        process.kill()
        process.wait()
    assert out == "trapped\n"
    assert process.returncode == 5
    assert err.startswith("stability-user: spent 0.00 credits (125.50 -> 125.50, ")
    assert err.endswith("; the command exited with status 5\n")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="apt-get install tmux")
def test_at_a_terminal_ctrl_c_is_left_to_the_terminal(env: dict[str, str], tmp_path: Path) -> None:
    # A terminal sends Ctrl-C to its whole foreground group, measure and its command alike, so
    # measure does not send it again; SIGTERM, which only measure gets, is passed on.
    log = tmp_path / "signals"
    script = (
        f'echo $PPID > {tmp_path}/measure.pid; trap "echo INT >> {log}" INT; '
        f'trap "echo TERM >> {log}; exit 3" TERM; echo ready; '
        "while :; do sleep 0.05; done"
    )
    command = (
        f"exec {PYTHON} -m stability_user measure -- sh -c {shlex.quote(script)} "
        f"2> {tmp_path}/measure.err"
    )
    with Terminal(command, env=env, cwd=tmp_path, socket=tmp_path / "t.sock") as terminal:
        terminal.wait_for("^ready$")
        terminal.send_keys("C-c")
        wait_until("the command's INT trap", lambda: log.exists() and log.read_text() == "INT\n")
        # Had measure passed SIGINT on, this INT would reach the command before the TERM.
        measure_pid = int((tmp_path / "measure.pid").read_text())
        os.kill(measure_pid, signal.SIGINT)
        os.kill(measure_pid, signal.SIGTERM)
        wait_until(
            "measure's report", lambda: "the command" in (tmp_path / "measure.err").read_text()
        )
    assert log.read_text() == "INT\nTERM\n"
    assert (tmp_path / "measure.err").read_text().endswith("; the command exited with status 3\n")


def test_no_command_is_a_usage_error(env: dict[str, str]) -> None:
    done = measure(env)
    assert done.returncode == 2
    assert "no command to run" in done.stderr
    done = measure(env, "--org", "x", "--all", "--", "true")
    assert done.returncode == 2
    assert "not allowed with argument" in done.stderr


def test_a_command_that_cannot_run(env: dict[str, str]) -> None:
    done = measure(env, "--", "no-such-command-anywhere")
    assert done.returncode == 127
    assert done.stderr == (
        "stability-user: error: cannot run 'no-such-command-anywhere': No such file or directory\n"
    )
    assert balance(env) == "125.50 credits (default organization)\n"


# -- the examples of "Budgets and spend" that are not Python or console blocks -----------------

PAGE = ROOT / "docs" / "budgets.md"


def page_blocks(language: str) -> list[str]:
    return [b.text for b in blocks(PAGE) if b.language == language]


def crontab_line(says: str) -> str:
    """The page's crontab line that holds ``says``, as cron would run it: the five time
    fields checked, unescaped ``%`` refused, ``\\%`` turned into ``%``."""
    (line,) = [
        text.strip()
        for text in page_blocks("text")
        if re.match(r"[\d*]+ [\d*]+ [\d*]+ [\d*]+ [\d*]+ ", text) and says in text
    ]
    fields = line.split(maxsplit=5)
    assert all(re.fullmatch(r"[\d*]+", field) for field in fields[:5]), line
    # cron turns an unescaped % into a newline and hands the rest to /bin/sh.
    assert "%" not in fields[5].replace("\\%", "")
    return fields[5].replace("\\%", "%")


def cron(command: str, env: dict[str, str], home: Path, *clock: str, status: int = 0) -> None:
    done = subprocess.run(
        [*clock, "/bin/sh", "-c", command],
        env={**env, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == status, done.stderr


def jobs(env: dict[str, str], *argv: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "stability_user", "jobs", "--json", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """The job the examples measure: ``./render-batch.sh``, spending 2.5 credits."""
    folder = tmp_path / "batch"
    folder.mkdir()
    script = folder / "render-batch.sh"
    script.write_text(f"#!/bin/sh\nexec {SPEND} 2.5\n")
    script.chmod(0o755)
    return folder


# What GitHub Actions puts in the page's expressions, for these runs.
GITHUB = {"github.repository": "acme/renders", "github.job": "render", "github.run_id": "42"}


def run_step(step: dict[str, object], env: dict[str, str], batch: Path) -> None:
    """A step's ``run`` as GitHub Actions runs it on Linux, its ``env`` set, its expressions
    filled in."""
    step_env = {
        name: re.sub(r"\$\{\{ ([\w.]+) \}\}", lambda m: GITHUB[m[1]], str(value))
        for name, value in dict(step.get("env") or {}).items()  # type: ignore[call-overload]
    }
    done = subprocess.run(
        ["bash", "-e", "-c", str(step["run"])],
        env={**env, **step_env},
        cwd=batch,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_ci_steps(env: dict[str, str], batch: Path, tmp_path: Path) -> None:
    import yaml

    env = {**env, "STABILITY_STATE_DIR": str(tmp_path / "state")}
    kept, labelled = [yaml.safe_load(text)[0] for text in page_blocks("yaml")]
    run_step(kept, env, batch)
    record = json.loads((batch / "spend.json").read_text())
    assert (record["credits"], record["exit_status"]) == (2.5, 0)
    run_step(labelled, env, batch)
    (job,) = jobs(env, "--label", "ci/acme/renders/render")
    assert (job["spent"], job["note"], job["program"]) == (2.5, "run 42", "render-batch.sh")


def test_the_crontab_line(env: dict[str, str], batch: Path) -> None:
    cron(crontab_line("--min-credits 50"), env, batch.parent)
    (record_file,) = batch.glob("spend-*.json")
    assert re.fullmatch(r"spend-\d{4}-\d\d-\d\d\.json", record_file.name)
    assert json.loads(record_file.read_text())["credits"] == 2.5
    log = (batch / "batch.log").read_text()
    assert "spent 2.50 credits (125.50 -> 123.00, default organization)" in log


def test_the_nightly_crontab_line_with_a_monthly_budget(
    env: dict[str, str], batch: Path, tmp_path: Path
) -> None:
    env = {**env, "STABILITY_STATE_DIR": str(tmp_path / "state")}
    line = crontab_line("--budget 300")
    cron(line, env, batch.parent)
    assert "spent 2.50 credits" in (batch / "batch.log").read_text()
    (job,) = jobs(env, "--label", "nightly")
    assert (job["spent"], job["program"]) == (2.5, "render-batch.sh")
    # Past the budget, the night's job does not start and the log says why.
    cron(line.replace("--budget 300", "--budget 2"), env, batch.parent, status=3)
    assert (batch / "batch.log").read_text().splitlines()[-1] == (
        "stability-user: label nightly: 2.50 credits spent this month, over its --budget 2.00 "
        "a month; the command was not started"
    )
    assert len(jobs(env, "--label", "nightly")) == 1


def test_the_monthly_csv_crontab_line(env: dict[str, str], batch: Path, tmp_path: Path) -> None:
    from support.tools import faketime

    env = {**env, "STABILITY_STATE_DIR": str(tmp_path / "state"), "TZ": "UTC"}
    clock = faketime()
    for when, label in [
        ("2026-11-30 23:00:00", "november"),
        ("2026-12-15 10:00:00", "december"),
        ("2027-01-01 00:30:00", "january"),
    ]:
        command = f'cd "$HOME" && stability-user measure --label {label} -- ./render-batch.sh'
        cron(command, env, batch, clock, when)
    (tmp_path / "reports").mkdir()
    cron(crontab_line("jobs --all"), env, tmp_path, clock, "2027-01-01 06:00:00")
    (report,) = (tmp_path / "reports").iterdir()
    assert report.name == "jobs-2026-12.csv"
    rows = list(csv.DictReader(io.StringIO(report.read_text())))
    assert [(row["label"], row["month"], float(row["spent"])) for row in rows] == [
        ("december", "2026-12", 2.5)
    ]


# -- what must be refused before the command spends anything -----------------------------------


@pytest.mark.parametrize("minimum", ["nan", "-1", "1e400", "inf", "ten"])
def test_a_minimum_that_is_not_a_number_of_credits_is_a_usage_error(
    env: dict[str, str], tmp_path: Path, minimum: str
) -> None:
    marker = tmp_path / "started"
    done = measure(env, "--min-credits", minimum, "--", "touch", str(marker))
    assert (done.returncode, done.stdout) == (2, "")
    assert (
        f"argument --min-credits: must be a finite number of credits >= 0, not {minimum!r}"
        in done.stderr
    )
    assert not marker.exists()


@pytest.mark.parametrize("where", ["missing-folder", "a-directory"])
def test_a_json_file_that_cannot_be_written_is_found_before_the_command_runs(
    env: dict[str, str], tmp_path: Path, where: str
) -> None:
    marker = tmp_path / "started"
    path = tmp_path / "no-such-folder" / "spend.json" if where == "missing-folder" else tmp_path
    done = measure(env, "--json", str(path), "--", "touch", str(marker))
    assert (done.returncode, done.stdout) == (2, "")
    problem = (
        f"the folder {path.parent} does not exist"
        if where == "missing-folder"
        else "is a directory"
    )
    assert done.stderr == f"stability-user measure: error: --json {path}: {problem}\n"
    assert not marker.exists()
    assert balance(env) == "125.50 credits (default organization)\n"  # nothing was spent


def test_the_json_record_replaces_an_older_one_whole(env: dict[str, str], tmp_path: Path) -> None:
    record_file = tmp_path / "spend.json"
    record_file.write_text('{"older": true}\n')
    kept = tmp_path / "older.json"
    os.link(record_file, kept)  # the older file, as a reader that had it open sees it
    done = measure(env, "--json", str(record_file), "--", *shlex.split(SPEND), "1")
    assert done.returncode == 0, done.stderr
    assert json.loads(record_file.read_text())["credits"] == 1.0
    assert kept.read_text() == '{"older": true}\n'  # renamed over, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["older.json", "spend.json"]


def test_totals_add_up_as_a_person_adds_them(env: dict[str, str], tmp_path: Path) -> None:
    # Balances of 0.1, 0.2 and 0: binary floats would total 0.30000000000000004.
    for credits, org in (("125.4", "personal"), ("41.8", "lumen"), ("3.25", "lab")):
        spend = subprocess.run(
            [*shlex.split(SPEND), credits, "--org", f"org-standin-{org}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )
        assert spend.returncode == 0, spend.stderr
    record_file = tmp_path / "spend.json"
    # The command spends exactly what is left: 0.1 and 0.2 (the stand-in allows it).
    command = f"{SPEND} 0.1 && {SPEND} 0.2 --org org-standin-lumen"
    done = measure(env, "--all", "--json", str(record_file), "--", "sh", "-c", command)
    assert done.returncode == 0, done.stderr
    record = json.loads(record_file.read_text())
    assert (record["before"], record["after"], record["credits"]) == (0.3, 0.0, 0.3)
    assert [part["before"] for part in record["organizations"]] == [0.1, 0.2, 0.0]
    assert "spent 0.30 credits (0.30 -> 0.00, 3 organizations)" in done.stderr


# -- signals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM"])
def test_every_signal_that_would_end_measure_reaches_the_command(
    env: dict[str, str], name: str
) -> None:
    short = name[3:]
    script = f'trap "echo got {short}; exit 9" {short}; echo ready; while :; do sleep 0.05; done'
    process = subprocess.Popen(
        [sys.executable, "-m", "stability_user", "measure", "--", "sh", "-c", script],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"  # the trap is set
        process.send_signal(getattr(signal, name))
        out, err = process.communicate(timeout=50)
    finally:
        process.kill()
        process.wait()
    # measure waited for the command and reported, as for SIGTERM; none was orphaned.
    assert (process.returncode, out) == (9, f"got {short}\n")
    assert err.startswith("stability-user: spent 0.00 credits (125.50 -> 125.50, ")
    assert err.endswith("; the command exited with status 9\n")


@pytest.mark.parametrize("name", ["SIGINT", "SIGHUP"])
def test_a_signal_ignored_when_measure_starts_stays_ignored_for_the_command(
    env: dict[str, str], name: str
) -> None:
    # nohup ignores SIGHUP; a shell without job control starts background jobs with SIGINT
    # ignored. The command must inherit that, not measure's own handler's default.
    probe = f"import signal; print(signal.getsignal(signal.{name}) is signal.SIG_IGN)"
    script = f'trap "" {name[3:]}; exec "$@"'
    measured = [sys.executable, "-m", "stability_user", "measure", "--", sys.executable]
    done = subprocess.run(
        ["sh", "-c", script, "sh", *measured, "-c", probe],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "True\n"), done.stderr
