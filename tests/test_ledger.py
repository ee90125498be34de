"""Who spent it: ``measure --label`` records jobs in the history's ledger, ``jobs`` lists and
totals them, ``--budget`` refuses a job that would pass its label's budget. Through the real
command line, each job spending through the stand-in from its own process
(``python -m stability_user.testing spend``)."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from stability_user import ConfigurationError
from stability_user._job import program_name
from stability_user._text import csv_cell, printable
from stability_user.history import HistoryError, Job, job_totals, read_jobs
from stability_user.history._ledger import label_spend
from stability_user.history._store import (
    SCHEMA_VERSION,
    STORE_NAME,
    StoredJob,
    account_of,
    open_store,
)
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInOrganization, StandInServer
from support.deadline import wait_until
from support.previous_store import previous_release_store
from support.tools import faketime
from support.unwritable import HOW, unwritable

SPEND = [sys.executable, "-m", "stability_user.testing", "spend"]
PERSONAL = "org-standin-personal"
FORMULA = '=HYPERLINK("x")'


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


class Shell:
    """``stability-user`` run as a shell would, against a served stand-in, with a history of
    its own."""

    def __init__(self, server: StandInServer, state: Path, **extra: str) -> None:
        self.env = {
            **os.environ,
            "STABILITY_API_KEY": SAMPLE_API_KEY,
            "STABILITY_BASE_URL": server.url,
            "STABILITY_STATE_DIR": str(state),
            "NO_COLOR": "1",
            **extra,
        }

    def argv(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "stability_user", *argv]

    def run(
        self, *argv: str, wrapper: Sequence[str] = (), **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*wrapper, *self.argv(*argv)],
            env={**self.env, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )

    def ok(self, *argv: str, **env: str) -> str:
        done = self.run(*argv, **env)
        assert done.returncode == 0, (argv, done.stderr)
        return done.stdout

    def spend(
        self, credits: float, *options: str, org: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A labelled (or not) ``measure`` of a job spending ``credits`` (of ``org``)."""
        scope = [] if org is None else ["--org", org]
        done = self.run("measure", *options, *scope, "--", *SPEND, str(credits), *scope)
        assert done.returncode == 0, done.stderr
        return done

    def jobs(self, *argv: str) -> list[dict[str, object]]:
        found: list[dict[str, object]] = json.loads(self.ok("jobs", "--json", *argv))
        return found


@pytest.fixture
def shell(standin_server: StandInServer, state: Path) -> Shell:
    return Shell(standin_server, state)


# Done when: four jobs, their totals, and the CSV for finance


@pytest.fixture
def formula_org() -> StandInAPI:
    """A stand-in whose key's default organization is named like a spreadsheet formula."""
    api = StandInAPI()
    api.add_account(
        SAMPLE_API_KEY,
        email="finance@example.com",
        organizations=[
            StandInOrganization("org-formula", FORMULA, "OWNER", True, 100.0),
            StandInOrganization("org-other", "Other", "MEMBER", False, 10.0),
        ],
    )
    return api


def test_who_spent_it_jobs_totals_and_the_csv(formula_org: StandInAPI, state: Path) -> None:
    with formula_org.serve() as server:
        shell = Shell(server, state)
        shell.ok("account")  # names the organizations, and which is the default
        shell.spend(2.5, "--label", "render")
        shell.spend(1.25, "--label", "nightly")
        shell.spend(4, "--label", "render", "--note", "-2+3 from the batch")
        shell.spend(0.5)
        jobs = shell.jobs()
        by_label = shell.ok("jobs", "--by", "label")
        totals = json.loads(shell.ok("jobs", "--by", "label", "--json"))
        table = shell.ok("jobs", "--csv")

    assert [(job["label"], job["spent"]) for job in jobs] == [  # newest first
        (None, 0.5),
        ("render", 4.0),
        ("nightly", 1.25),
        ("render", 2.5),
    ]
    for job in jobs:
        assert (job["organization"], job["name"], job["program"]) == (
            "org-formula",
            FORMULA,
            "python",
        )
        assert (job["exit_status"], job["overlaps"], job["expected"]) == (0, [], None)
        assert str(job["started_at"]) <= str(job["ended_at"])
    assert [job["before"] for job in jobs] == [92.25, 96.25, 97.5, 100.0]
    assert by_label.splitlines() == [
        "LABEL    JOBS  SPENT  UNKNOWN  OVERLAPPING",
        "nightly     1   1.25        0         0.00",
        "render      2   6.50        0         0.00",
        "-           1   0.50        0         0.00",
    ]
    assert totals == [
        {
            "label": "nightly",
            "jobs": 1,
            "spent": 1.25,
            "unknown": 0,
            "overlapping": 0.0,
            "estimated": 0.0,
        },
        {
            "label": "render",
            "jobs": 2,
            "spent": 6.5,
            "unknown": 0,
            "overlapping": 0.0,
            "estimated": 0.0,
        },
        {
            "label": None,
            "jobs": 1,
            "spent": 0.5,
            "unknown": 0,
            "overlapping": 0.0,
            "estimated": 0.0,
        },
    ]

    rows = list(csv.DictReader(io.StringIO(table)))
    assert [row["label"] for row in rows] == ["", "render", "nightly", "render"]
    assert {row["name"] for row in rows} == {"'" + FORMULA}  # text, not a formula
    assert rows[1]["note"] == "'-2+3 from the batch"
    for row, job in zip(rows, jobs, strict=True):
        assert float(row["spent"]) == job["spent"]  # a number, as the spreadsheet reads it
        assert int(row["exit_status"]) == 0
        assert int(row["id"]) == job["id"]
        assert datetime.fromisoformat(row["started_at"]).utcoffset() is not None
        assert row["month"] == datetime.fromisoformat(row["started_at"]).astimezone().strftime(
            "%Y-%m"
        )
    for line in table.splitlines()[1:]:
        assert not line.startswith(("=", "+", "-", "@"))
        assert ",=" not in line  # no cell starts a formula
        assert ',"=' not in line


def test_by_month_and_by_label_and_month(shell: Shell) -> None:
    shell.spend(1, "--label", "a")
    shell.spend(2, "--label", "b")
    shell.spend(3, "--label", "a")
    month = datetime.now().strftime("%Y-%m")
    assert json.loads(shell.ok("jobs", "--by", "month", "--json")) == [
        {
            "month": month,
            "jobs": 3,
            "spent": 6.0,
            "unknown": 0,
            "overlapping": 0.0,
            "estimated": 0.0,
        }
    ]
    assert shell.ok("jobs", "--by", "label,month", "--csv").splitlines() == [
        "label,month,jobs,spent,unknown,overlapping,estimated",
        f"a,{month},2,4.0,0,0.0,0.0",
        f"b,{month},1,2.0,0,0.0,0.0",
    ]
    assert shell.ok("jobs", "--by", "month").splitlines() == [
        "MONTH    JOBS  SPENT  UNKNOWN  OVERLAPPING",
        f"{month}     3   6.00        0         0.00",
    ]
    listed = shell.ok("jobs", "--label", "a").splitlines()
    assert listed[0].split() == [
        "JOB",
        "STARTED",
        "LABEL",
        "PROGRAM",
        "SPENT",
        "STATUS",
        "OVERLAPPED",
    ]
    assert [line.split()[3:] for line in listed[1:]] == [
        ["a", "python", "3.00", "0"],
        ["a", "python", "1.00", "0"],
    ]


def test_the_filters(shell: Shell, standin: StandInAPI) -> None:
    shell.spend(1, "--label", "a")
    shell.spend(1, "--label", "b", org="org-standin-lab")
    today = datetime.now().date().isoformat()
    assert [job["label"] for job in shell.jobs()] == ["a"]  # the key's default organization
    assert [job["label"] for job in shell.jobs("--all")] == ["b", "a"]
    assert [job["label"] for job in shell.jobs("--org", "org-standin-lab")] == ["b"]
    assert [job["label"] for job in shell.jobs("--all", "--label", "b")] == ["b"]
    assert len(shell.jobs("--all", "--since", today, "--until", today)) == 2
    assert shell.jobs("--all", "--since", "2999-01-01") == []
    assert shell.jobs("--all", "--until", "2000-01-01") == []
    nothing = shell.ok("jobs", "--label", "c")
    assert nothing.startswith("No jobs in the history (")
    assert shell.ok("jobs", "--label", "c", "--csv").startswith("id,started_at,")


# Done when: overlapping jobs are marked, each naming the other


def held_at_once(
    shell: Shell, folder: Path, labels: Sequence[str], then: str = ""
) -> list[tuple[int, str]]:
    """``measure --label L`` of each of ``labels`` at once, each command held until all have
    started, then running ``then`` (a shell line: ``$0`` is Python, ``$1`` the job's index);
    each run's status and stderr."""
    go = folder / "go"
    processes = []
    for index, label in enumerate(labels):
        script = f'touch "{folder}/started.$1"; while [ ! -e "{go}" ]; do sleep 0.02; done; {then}'
        argv = shell.argv("measure", "--label", label, "--", "sh", "-c", script)
        processes.append(
            subprocess.Popen(
                [*argv, sys.executable, str(index)],
                env=shell.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        everyone = len(labels)
        wait_until(
            f"{everyone} jobs started", lambda: len(list(folder.glob("started.*"))) == everyone, 50
        )
        go.touch()  # every one is running at once
        errors = [process.communicate(timeout=50)[1] for process in processes]
        return [
            (process.returncode, error) for process, error in zip(processes, errors, strict=True)
        ]
    finally:
        for process in processes:
            if process.poll() is None:  # the test failed before it ended
                process.kill()
                process.communicate()


def test_two_jobs_held_open_at_once_name_each_other(shell: Shell, tmp_path: Path) -> None:
    # Both spend; each ends only once both have spent.
    then = (
        f'"$0" -m stability_user.testing spend 1 && touch "{tmp_path}/spent.$1" && '
        f'while [ "$(ls "{tmp_path}" | grep -c "^spent[.]")" != 2 ]; do sleep 0.02; done'
    )
    ended = held_at_once(shell, tmp_path, ["first", "second"], then)
    assert ended == [(0, ended[0][1]), (0, ended[1][1])], ended
    first, second = sorted(shell.jobs(), key=lambda job: str(job["label"]))
    assert first["overlaps"] == [second["id"]]
    assert second["overlaps"] == [first["id"]]
    assert first["spent"] == second["spent"] == 2.0  # each saw both: the balance cannot tell
    (total,) = json.loads(shell.ok("jobs", "--by", "month", "--json"))
    assert (total["spent"], total["overlapping"], total["estimated"]) == (4.0, 4.0, 0.0)
    listed = shell.ok("jobs").splitlines()
    assert listed[-1] == (
        "Overlapping jobs of one organization share their spend: each counts the "
        "organization's whole change over its run."
    )
    overlapped = {line.split()[3]: line.split()[-1] for line in listed[1:3]}
    assert overlapped == {"first": str(second["id"]), "second": str(first["id"])}


def test_twenty_labelled_runs_at_once_record_twenty_jobs(shell: Shell, tmp_path: Path) -> None:
    ended = held_at_once(shell, tmp_path, ["batch"] * 20)  # they end, and write, together
    assert [status for status, _ in ended] == [0] * 20, ended
    assert all("warning" not in error for _, error in ended), ended
    jobs = shell.jobs("--label", "batch")
    ids = {job["id"] for job in jobs}
    assert len(ids) == 20
    for job in jobs:
        assert set(job["overlaps"]) == ids - {job["id"]}  # type: ignore[call-overload]


# Done when: budgets per label, and the months of local time


def test_a_budget_starts_the_command_below_it_and_not_above(shell: Shell, tmp_path: Path) -> None:
    shell.spend(20, "--label", "render")
    started = tmp_path / "started"
    done = shell.run("measure", "--label", "render", "--budget", "25", "--", "touch", str(started))
    assert done.returncode == 0, done.stderr
    assert started.exists()
    started.unlink()
    shell.spend(10, "--label", "render")  # 30 spent this month
    shell.spend(10, "--label", "other")  # another label's spend counts for it, not here
    done = shell.run("measure", "--label", "render", "--budget", "25", "--", "touch", str(started))
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (
        "stability-user: label render: 30.00 credits spent this month, over its --budget 25.00 "
        "a month; the command was not started\n"
    )
    assert not started.exists()
    assert len(shell.jobs("--label", "render")) == 3  # the refused one is not a job
    done = shell.run("measure", "--label", "other", "--budget", "25", "--per", "week", "--", "true")
    assert done.returncode == 0, done.stderr


def test_a_job_before_midnight_does_not_count_against_the_next_month(
    standin_server: StandInServer, state: Path, tmp_path: Path
) -> None:
    # Pacific time: 23:50 on 31 December is already 1 January in UTC, where a month taken in
    # UTC would put it.
    shell = Shell(standin_server, state, TZ="PST8")
    clock = faketime()

    def at(when: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return shell.run(*argv, wrapper=[clock, when])

    spent = at("2026-12-31 23:50:00", "measure", "--label", "nightly", "--", *SPEND, "30")
    assert spent.returncode == 0, spent.stderr
    budget = ["measure", "--label", "nightly", "--budget", "25", "--", "touch"]
    refused = at("2026-12-31 23:55:00", *budget, str(tmp_path / "december"))
    assert refused.returncode == 3, refused.stderr
    assert not (tmp_path / "december").exists()
    started = at("2027-01-01 00:10:00", *budget, str(tmp_path / "january"))
    assert started.returncode == 0, started.stderr
    assert (tmp_path / "january").exists()
    months = json.loads(shell.ok("jobs", "--by", "month", "--json"))
    assert [(total["month"], total["spent"]) for total in months] == [
        ("2026-12", 30.0),
        ("2027-01", 0.0),
    ]


def test_a_budget_cannot_be_checked_with_the_history_off(
    shell: Shell, tmp_path: Path, standin: StandInAPI
) -> None:
    started = tmp_path / "started"
    budget = ["measure", "--label", "a", "--budget", "5", "--", "touch", str(started)]
    for done in (
        shell.run(*budget, STABILITY_HISTORY="off"),
        shell.run("measure", "--no-history", *budget[1:]),
    ):
        assert done.returncode == 2
        assert done.stderr == (
            "stability-user: error: --budget is checked against the history: "
            "STABILITY_HISTORY=off and --no-history turn it off.\n"
        )
    assert not started.exists()
    assert standin.requests == []
    # A label alone with the history off: the command runs, nothing is recorded.
    assert (
        shell.run("measure", "--label", "a", "--", "true", STABILITY_HISTORY="off").returncode == 0
    )
    assert shell.jobs() == []


@pytest.mark.parametrize(
    "argv",
    [
        ["measure", "--label", "two words"],
        ["measure", "--label", ""],
        ["measure", "--label", "x" * 65],
        ["measure", "--label", "über"],
        ["measure", "--label", "a", "--budget", "-1"],
        ["measure", "--label", "a", "--budget", "nan"],
        ["measure", "--label", "a", "--budget", "inf"],
        ["measure", "--label", "a", "--budget", "1e400"],
        ["measure", "--label", "a", "--budget", "5", "--per", "fortnight"],
        ["measure", "--budget", "5"],
        ["measure", "--label", "a", "--per", "week"],
        ["measure", "--label", "a", "--note", "n" * 1001],
    ],
)
def test_bad_input_is_a_usage_error_before_anything_runs(
    shell: Shell, standin: StandInAPI, tmp_path: Path, argv: list[str]
) -> None:
    started = tmp_path / "started"
    done = shell.run(*argv, "--", "touch", str(started))
    assert done.returncode == 2, done.stderr
    assert "error" in done.stderr
    assert not started.exists()
    assert standin.requests == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--since", "2026-13-01"], "must be a date such as 2026-12-01, not '2026-13-01'"),
        (["--until", "yesterday"], "must be a date such as 2026-12-01, not 'yesterday'"),
        (["--since", "20261201"], "not '20261201'"),
        (["--since", "2026-12-02", "--until", "2026-12-01"], "--since is after --until"),
        (["--by", "week"], "must be label, month or label,month, not 'week'"),
        (["--label", "a b"], "must be 1 to 64 of"),
        (["--org", "o", "--all"], "not allowed with argument"),
    ],
)
def test_jobs_bad_input_is_a_usage_error(shell: Shell, argv: list[str], says: str) -> None:
    done = shell.run("jobs", *argv)
    assert done.returncode == 2
    assert says in done.stderr
    assert done.stdout == ""


# Done when: the key and the command line stay out of the store


def test_the_key_never_reaches_the_store_and_only_the_programs_name_does(
    shell: Shell, state: Path
) -> None:
    secret = "--token=hunter2-not-for-the-ledger"
    done = shell.run(
        "measure", "--label", "a", "--note", "on purpose", "--", "sh", "-c", "exit 0", secret
    )
    assert done.returncode == 0, done.stderr
    (job,) = shell.jobs()
    assert (job["program"], job["note"]) == ("sh", "on purpose")
    files = [path for path in state.iterdir() if path.is_file()]
    assert any(path.name == STORE_NAME for path in files)
    for path in files:
        data = path.read_bytes()
        assert SAMPLE_API_KEY.encode() not in data, path
        assert b"hunter2" not in data, path
        assert b"exit 0" not in data, path
    with closing(sqlite3.connect(state / STORE_NAME)) as db:
        (program,) = db.execute("SELECT program FROM jobs").fetchone()
    assert program == "sh"


def test_a_killed_command_is_recorded_with_its_status(shell: Shell) -> None:
    done = shell.run("measure", "--label", "a", "--", "sh", "-c", "kill -KILL $$")
    assert done.returncode == 137
    (job,) = shell.jobs()
    assert (job["exit_status"], job["raised"], job["spent"]) == (137, None, 0.0)


def test_a_command_that_never_started_is_no_job(shell: Shell) -> None:
    assert shell.run("measure", "--label", "a", "--", "no-such-program-here").returncode == 127
    assert (
        shell.run("measure", "--label", "a", "--min-credits", "1000", "--", "true").returncode == 3
    )
    assert shell.jobs() == []


# Faults: a ledger that cannot be written is one warning; a budget that cannot be checked, no job


@pytest.mark.parametrize("how", HOW)
def test_a_ledger_that_cannot_be_written_costs_one_warning(
    shell: Shell, state: Path, how: str
) -> None:
    shell.spend(1, "--label", "a")  # the store exists: now it cannot be written
    try:
        done = shell.run(
            "measure", "--label", "a", "--", *SPEND, "2", wrapper=unwritable(how, state, [])
        )
    finally:
        state.chmod(0o700)
    assert done.returncode == 0
    assert done.stdout == "122.5 credits left in org-standin-personal\n"
    warning, summary = done.stderr.splitlines()
    assert warning.startswith(
        "stability-user: warning: the balance was not recorded in the history: "
    )
    assert summary.startswith("stability-user: spent 2.00 credits (124.50 -> 122.50")
    assert len(shell.jobs()) == 1
    exit_status = shell.run(
        "measure", "--label", "a", "--", "sh", "-c", "exit 9", wrapper=unwritable(how, state, [])
    )
    state.chmod(0o700)
    assert exit_status.returncode == 9


def test_a_ledger_locked_past_the_busy_timeout_costs_one_warning(
    shell: Shell, state: Path, tmp_path: Path
) -> None:
    shell.spend(1, "--label", "a")
    held, release = tmp_path / "held", tmp_path / "release"
    holder = (
        "import os, sqlite3, time\n"
        f"db = sqlite3.connect({str(state / STORE_NAME)!r}, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        f"open({str(held)!r}, 'w').close()\n"
        f"while not os.path.exists({str(release)!r}): time.sleep(0.02)\n"
        "db.close()\n"
        f"os.remove({str(held)!r})\n"
    )
    # The command leaves a holder of the store's lock behind it: the reading after it and the
    # job both wait out the busy timeout.
    script = (
        f'"$0" -c "$1" </dev/null >/dev/null 2>&1 & while [ ! -e "{held}" ]; do sleep 0.02; done'
    )
    try:
        done = shell.run(
            "measure", "--label", "a", "--", "sh", "-c", script, sys.executable, holder
        )
    finally:
        release.touch()
    assert done.returncode == 0
    warning, summary = done.stderr.splitlines()
    assert warning.startswith(
        "stability-user: warning: the balance was not recorded in the history"
    )
    assert "database is locked" in warning
    assert summary.startswith("stability-user: spent 0.00 credits")
    wait_until("the holder let go", lambda: not held.exists())  # the holder has let go
    assert len(shell.jobs()) == 1  # the first job only


def test_a_budget_that_cannot_be_checked_refuses_to_start(
    shell: Shell, state: Path, tmp_path: Path
) -> None:
    shell.spend(1, "--label", "a")
    started = tmp_path / "started"
    argv = ["measure", "--label", "a", "--budget", "50", "--", "touch", str(started)]
    try:
        done = shell.run(*argv, wrapper=unwritable("no-permission", state, []))
    finally:
        state.chmod(0o700)
    assert done.returncode == 1
    assert done.stderr.startswith(
        "stability-user: error: HistoryError: The budget of label a cannot be checked: "
    )
    assert not started.exists()


# A store written by the previous release


def test_measure_records_in_a_store_of_the_previous_release(shell: Shell, state: Path) -> None:
    host = shell.env["STABILITY_BASE_URL"]
    account = account_of(host, SAMPLE_API_KEY)
    readings = previous_release_store(state / STORE_NAME, host, account, PERSONAL)
    shell.spend(1, "--label", "after-upgrade")
    (job,) = shell.jobs()
    assert (job["label"], job["organization"], job["name"]) == ("after-upgrade", PERSONAL, "Lab")
    with closing(sqlite3.connect(state / STORE_NAME)) as db:
        kept = db.execute(
            "SELECT at, credits FROM readings WHERE series = 1 ORDER BY at"
        ).fetchall()
    assert kept == readings  # measure's own went to the key's unnamed default series
    (history,) = json.loads(shell.ok("history", "--json", "--days", "7"))
    days = history["days"]
    # 100 -> 90 -> 75.5 read by the previous release; 125.5 -> 124.5 by measure (50 added).
    assert (sum(day["spent"] for day in days), sum(day["added"] for day in days)) == (25.5, 50.0)


# A job of the key's unnamed default organization


def test_a_job_joins_the_organization_that_was_the_default_when_it_ran(
    shell: Shell, standin: StandInAPI
) -> None:
    # measure never names the default: a job is the organization's that `balances` last said
    # was the default before it, never whichever is the default when the ledger is read.
    shell.spend(1, "--label", "unnamed")  # before anything named the default: no one's
    shell.ok("balances")  # names Ada's studio (personal) the default
    shell.spend(2, "--label", "personal")
    shell.ok("balances")  # still it: the job ran while it was the default
    shell.spend(4, "--label", "changing")  # the default changes at a moment no answer tells
    lumen_default = [
        StandInOrganization(PERSONAL, "Ada's studio", "OWNER", False, 60.0),
        StandInOrganization("org-standin-lumen", "Lumen Games", "MEMBER", True, 42.0),
    ]
    standin.add_account(
        SAMPLE_API_KEY, id="user-standin-0001", email="ada@example.com", organizations=lumen_default
    )
    shell.ok("balances")  # Lumen's now
    shell.spend(3, "--label", "lumen")
    jobs = {job["label"]: job["organization"] for job in shell.jobs("--all")}
    assert jobs == {
        "unnamed": None,
        "personal": PERSONAL,
        "changing": None,
        "lumen": "org-standin-lumen",
    }
    mine = [job["label"] for job in shell.jobs()]  # the key's default's, and its unnamed ones
    assert sorted(mine) == ["changing", "lumen", "unnamed"]


# The SDK reads what the command line recorded


def test_read_jobs_and_job_totals(shell: Shell, state: Path) -> None:
    shell.spend(1.5, "--label", "render")
    shell.spend(0.25, "--label", "render")
    jobs = read_jobs(
        state_dir=state, api_key=SAMPLE_API_KEY, base_url=shell.env["STABILITY_BASE_URL"]
    )
    assert [job.spent for job in jobs] == [0.25, 1.5]
    assert jobs[0].organization is None  # the default's id was never read by these commands
    assert jobs[0].account != SAMPLE_API_KEY
    (total,) = job_totals(jobs)
    assert (total.label, total.jobs, total.spent) == ("render", 2, 1.75)


# What is printed: spreadsheet cells and names from outside


def test_spreadsheet_cells() -> None:
    for number in (0, 7, -2.5, 1e-9):
        assert csv_cell(number) == number  # numbers stay numbers, negative ones too
    assert (csv_cell(None), csv_cell(True), csv_cell(False)) == ("", "true", "false")
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", FORMULA):
        assert csv_cell(text) == "'" + text
    # A tab or a carriage return is inert and, like every control character, shown escaped.
    assert (csv_cell("\tx"), csv_cell("\rx")) == ("'\\tx", "'\\rx")
    for text in ("render", "a=b", "client/acme", "", "1e3"):
        assert csv_cell(text) == text


def test_printable() -> None:
    assert printable("Ada's studio") == "Ada's studio"
    assert printable("Lumière ✓") == "Lumière ✓"
    assert printable("\x1b]0;owned\x07name") == "\\x1b]0;owned\\x07name"
    assert printable("a\r\nb\x7f\x9b") == "a\\r\\nb\\x7f\\x9b"
    assert printable("\u202eevil\u2028") == "\\u202eevil\\u2028"


def test_the_table_escapes_a_programs_name_and_shows_organizations(
    shell: Shell, tmp_path: Path
) -> None:
    program = tmp_path / "run\x1b[2Jme"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    assert shell.run("measure", "--label", "a", "--", str(program)).returncode == 0
    shell.spend(1, "--label", "b", org="org-standin-lab")
    listed = shell.ok("jobs", "--all").splitlines()
    assert "\x1b" not in "".join(listed)
    assert listed[0].split() == [
        "JOB",
        "STARTED",
        "LABEL",
        "ORGANIZATION",
        "PROGRAM",
        "SPENT",
        "STATUS",
        "OVERLAPPED",
    ]
    assert listed[1].split()[3:] == ["b", "org-standin-lab", "python", "1.00", "0"]
    assert listed[2].split()[3:] == ["a", "default", "run\\x1b[2Jme", "0.00", "0"]


# The ledger's rules, on jobs written to a store directly


HOST = "https://api.stability.ai"
ACCOUNT = "digest-of-a-key"
T0 = 1_796_000_000.0  # 2026-11-30


def job_row(
    started: float, ended: float, before: float, after: float | None, **fields: object
) -> StoredJob:
    values: dict[str, object] = {
        "id": 0,
        "account": ACCOUNT,
        "organization": "org-1",
        "name": None,
        "label": "a",
        "program": "render",
        "note": None,
        "started_at": T0 + started,
        "ended_at": T0 + ended,
        "before": before,
        "after": after,
        "spent": None if after is None else before - after,
        "exit_status": 0,
        "raised": None,
        "expected": None,
    }
    return StoredJob(**{**values, **fields})  # type: ignore[arg-type]


def stored_jobs(folder: Path, *rows: StoredJob) -> list[int]:
    with open_store(str(folder), print) as store:
        return store.add_jobs(HOST, rows)


def read(folder: Path, **options: object) -> list[Job]:
    return read_jobs(all_organizations=True, base_url=HOST, state_dir=folder, **options)  # type: ignore[arg-type]


def test_a_group_of_overlaps_is_read_whole_however_far_back_it_starts(tmp_path: Path) -> None:
    # a overlaps b, b overlaps c: one group, split by expected costs over 100 -> 70 (30 spent).
    a, b, c, later = stored_jobs(
        tmp_path,
        job_row(0, 100, 100.0, 95.0, expected=1.0),
        job_row(50, 300, 97.0, 80.0, expected=1.0),
        job_row(250, 400, 82.0, 70.0, expected=1.0, label="c"),
        job_row(500, 600, 70.0, 60.0, expected=1.0, label="c"),
    )
    since = datetime.fromtimestamp(T0 + 350, UTC)
    found = read(tmp_path, since=since)
    assert [job.id for job in found] == [later]  # started from `since` on
    _, only = read(tmp_path, since=datetime.fromtimestamp(T0 + 200, UTC), label="c")
    assert only.id == c
    assert (only.overlaps, only.attributed, only.estimated) == ((b,), 10.0, True)
    everything = {job.id: job for job in read(tmp_path)}
    assert everything[a].overlaps == (b,)
    assert everything[b].overlaps == (a, c)
    assert [everything[i].attributed for i in (a, b, c, later)] == [10.0, 10.0, 10.0, 10.0]
    with open_store(str(tmp_path), print) as store:  # what a budget counts, from T0 + 200
        assert label_spend(store, HOST, "c", T0 + 200) == 20.0
        assert label_spend(store, HOST, "a", T0 + 40) == 10.0


@pytest.mark.parametrize(
    "second",
    [
        {"expected": None},  # not every job has an expected cost
        {"expected": 0.0, "first": 0.0},  # every cost expected is 0: nothing to split by
        {"expected": 1.0, "after": None},  # the group's last balance is unknown
    ],
)
def test_an_overlap_that_cannot_be_split_is_not(tmp_path: Path, second: dict[str, object]) -> None:
    first_expected = second.pop("first", 1.0)
    after = second.pop("after", 90.0)
    stored_jobs(
        tmp_path,
        job_row(0, 100, 100.0, 95.0, expected=first_expected),
        job_row(50, 150, 98.0, after, **second),  # type: ignore[arg-type]
    )
    b, a = read(tmp_path)
    assert (a.estimated, b.estimated) == (False, False)
    assert (a.attributed, b.attributed) == (5.0, None if after is None else 8.0)
    assert (a.overlaps, b.overlaps) == ((b.id,), (a.id,))
    (total,) = job_totals([a, b])
    assert (total.jobs, total.spent, total.unknown, total.overlapping) == (
        2,
        5.0 + (0.0 if after is None else 8.0),
        0 if after is not None else 1,
        5.0 + (0.0 if after is None else 8.0),
    )


def test_jobs_of_other_organizations_and_keys_do_not_overlap(tmp_path: Path) -> None:
    stored_jobs(
        tmp_path,
        job_row(0, 100, 100.0, 95.0),
        job_row(0, 100, 50.0, 45.0, organization="org-2"),
        job_row(0, 100, 10.0, 9.0, organization="", account="another key"),
        job_row(100, 200, 95.0, 94.0),  # starts as the first ends: one after the other
    )
    assert [job.overlaps for job in read(tmp_path)] == [(), (), (), ()]


def test_read_jobs_refuses_bad_arguments_and_unreadable_stores(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="since must be a date or a datetime, not str"):
        read(tmp_path, since="2026-12-01")
    with pytest.raises(ConfigurationError, match="since is after until"):
        read(tmp_path, since=date(2026, 12, 2), until=date(2026, 12, 1))
    with pytest.raises(ConfigurationError, match="label must be 1 to 64"):
        read(tmp_path, label="a b")
    with pytest.raises(ConfigurationError, match="not both"):
        read_jobs(organization="org-1", all_organizations=True, state_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="by must be 'label', 'month' or 'label,month'"):
        job_totals([], by="week")
    assert job_totals([], by=["month", "label"]) == []
    assert read(tmp_path) == []  # no store yet: no jobs
    (tmp_path / STORE_NAME).write_bytes(b"not a database at all" * 100)
    with pytest.raises(HistoryError, match="cannot be read"):
        read(tmp_path)
    (tmp_path / STORE_NAME).unlink()
    stored_jobs(tmp_path, job_row(0, 1, 1.0, 1.0))
    with closing(sqlite3.connect(tmp_path / STORE_NAME)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(HistoryError, match="newer stability-user"):
        read(tmp_path)


@pytest.mark.parametrize(
    ("argv0", "name"),
    [
        ("/usr/local/bin/render-batch", "render-batch"),
        ("./render.sh", "render.sh"),
        ("/srv/app/mypackage/__main__.py", "mypackage"),
        ("-c", "python"),
        ("", "python"),
    ],
)
def test_a_programs_name_is_its_last_part_only(argv0: str, name: str) -> None:
    assert program_name(argv0) == name


def test_the_table_of_blocks_unknown_spends_and_estimated_parts(tmp_path: Path) -> None:
    stored_jobs(
        tmp_path,
        job_row(0, 100, 100.0, 94.0, expected=2.0, exit_status=None, raised=False),
        job_row(50, 90, 99.0, 96.0, expected=1.0, exit_status=None, raised=True, label="b"),
        job_row(200, 300, 94.0, None, label="c"),  # the reading after it failed
    )
    env = {**os.environ, "STABILITY_STATE_DIR": str(tmp_path), "TZ": "UTC", "NO_COLOR": "1"}

    def jobs(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "stability_user", "jobs", "--base-url", HOST, *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=50,
            check=True,
        )
        return done.stdout

    assert jobs("--all").splitlines() == [
        "JOB  STARTED           LABEL  PROGRAM    SPENT  STATUS  OVERLAPPED",
        "3    2026-11-30 00:56  c      render   unknown  0",
        "2    2026-11-30 00:54  b      render     ~2.00  raised  1",
        "1    2026-11-30 00:53  a      render     ~4.00  ok      2",
        "Overlapping jobs of one organization share their spend: each counts the "
        "organization's whole change over its run.",
        "~ an estimated part of the overlap's spend, in proportion to expected costs.",
    ]
    assert jobs("--all", "--by", "label").splitlines() == [
        "LABEL  JOBS  SPENT  UNKNOWN  OVERLAPPING",
        "a         1   4.00        0         4.00",
        "b         1   2.00        0         2.00",
        "c         1   0.00        1         0.00",
    ]
    assert jobs("--all", "--by", "month", "--label", "nope").startswith("No jobs in the history")
    assert jobs("--all", "--by", "month,label", "--csv", "--label", "nope") == (
        "label,month,jobs,spent,unknown,overlapping,estimated\n"
    )


# --expect (issue 38's plans) in the ledger and the budget


def test_an_expected_cost_is_kept_with_the_job_and_counted_by_the_budget(
    shell: Shell, tmp_path: Path
) -> None:
    shell.spend(3, "--label", "render", "--expect", "1 core")
    (job,) = shell.jobs("--label", "render")
    assert (job["spent"], job["expected"]) == (3.0, 3.0)  # core: 3 credits a result
    started = tmp_path / "started"
    # 3 spent so far and 30 expected pass a budget of 25 that the spend alone would not.
    done = shell.run(
        "measure", "--label", "render", "--budget", "25", "--expect", "10 core",
        "--", "touch", str(started),
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (
        "stability-user: label render: 3.00 credits spent this month + 30.00 expected, over its "
        "--budget 25.00 a month; the command was not started\n"
    )
    assert not started.exists()
    done = shell.run(
        "measure", "--label", "render", "--budget", "35", "--expect", "10 core",
        "--", "touch", str(started),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert started.exists()
    assert [job["expected"] for job in shell.jobs("--label", "render")] == [30.0, 3.0]
