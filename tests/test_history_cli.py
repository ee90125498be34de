"""``stability-user history`` and ``{runway}``: a week of readings taken through the real command
line, each at a time faketime sets, the stand-in's credits spent and topped up between them, and
every figure checked against one worked out by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stability_user.history._store import STORE_NAME
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer
from support.tools import faketime

PERSONAL = "org-standin-personal"


class Clockwork:
    """Runs ``stability-user`` at a chosen time (UTC), with the stand-in and a history of its
    own."""

    def __init__(self, server: StandInServer, state: Path, cache: Path) -> None:
        self.env = {
            **os.environ,
            "STABILITY_API_KEY": SAMPLE_API_KEY,
            "STABILITY_BASE_URL": server.url,
            "STABILITY_STATE_DIR": str(state),
            "XDG_CACHE_HOME": str(cache),
            "TZ": "UTC",
        }
        self.faketime = faketime()

    def at(self, when: str, *argv: str, warns: str = "") -> str:
        """What ``stability-user ARGV`` prints at ``when``; it warns only of ``warns``."""
        result = subprocess.run(
            [self.faketime, when, sys.executable, "-m", "stability_user", *argv],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, (argv, result.stderr)
        if warns:
            assert warns in result.stderr, result.stderr
            return result.stdout
        assert result.stderr == "" or argv[0] == "measure", result.stderr  # it reports there
        assert "warning" not in result.stderr
        return result.stdout


@pytest.fixture
def week(standin: StandInAPI, standin_server: StandInServer, tmp_path: Path) -> Clockwork:
    """Four days of readings of the default organization (hand-worked figures in comments)."""
    clock = Clockwork(standin_server, tmp_path / "state", tmp_path / "cache")
    clock.at("2026-12-01 09:00:00", "balances")  # 125.50, and the names of all three
    standin.spend(PERSONAL, 10.5)
    assert clock.at("2026-12-01 18:00:00", "balance") == "115.00 credits (default organization)\n"
    standin.spend(PERSONAL, 20)
    clock.at("2026-12-02 09:00:00", "balance")  # 95.00
    standin.set_credits(PERSONAL, 195.0)  # a top-up of 100
    clock.at("2026-12-02 12:00:00", "balance")  # 195.00
    standin.spend(PERSONAL, 15)
    clock.at("2026-12-03 09:00:00", "measure", "--", "true")  # 180.00, before and after
    standin.spend(PERSONAL, 30)
    # 75.50 spent over 3 days: 25.1666... a day; 150 credits last 5.96 days from 12-04 09:00.
    line = clock.at(
        "2026-12-04 09:00:00",
        "status",
        "--refresh",
        "--timeout",
        "30",
        "--format",
        "{credits:.0f} {runway}",
    )
    assert line == "150 5d\n"
    return clock


TABLE = """\
Ada's studio (org-standin-personal)
DAY         SPENT   ADDED  BALANCE
2026-12-01  10.50           115.00  ███████
2026-12-02  20.00  100.00   195.00  █████████████▍
2026-12-03  15.00           180.00  ██████████
2026-12-04  30.00           150.00  ████████████████████
Burn rate: 25.17 credits/day over the last 7 days (readings span 3.0 days, 43% of them)
Runway: about 5 days: around 2026-12-10 (150.00 credits left)
"""


def test_the_table(week: Clockwork) -> None:
    # --days 5 is 11-30 to 12-04; the history starts on 12-01, so do the rows.
    assert week.at("2026-12-04 10:00:00", "history", "--days", "5") == TABLE
    assert week.at("2026-12-04 10:00:00", "history", "--org", PERSONAL, "--days", "5") == TABLE


def test_json(week: Clockwork) -> None:
    (history,) = json.loads(week.at("2026-12-04 10:00:00", "history", "--days", "5", "--json"))
    assert (history["organization"], history["name"], history["credits"]) == (
        PERSONAL,
        "Ada's studio",
        150.0,
    )
    assert history["read_at"].startswith("2026-12-04T09:00:0")
    assert [
        (day["date"], day["spent"], day["added"], day["closing"], day["readings"])
        for day in history["days"]
    ] == [
        ("2026-12-01", 10.5, 0.0, 115.0, 2),
        ("2026-12-02", 20.0, 100.0, 195.0, 2),
        ("2026-12-03", 15.0, 0.0, 180.0, 1),
        ("2026-12-04", 30.0, 0.0, 150.0, 1),
    ]
    rate = history["burn_rate"]
    assert (rate["spent"], rate["readings"], rate["coverage"]) == (75.5, 6, 0.4286)
    # faketime starts each process at its time and lets it run: a reading is taken a little
    # after (up to seconds on a loaded machine), so the span is 3 days give or take that.
    assert rate["credits_per_day"] == pytest.approx(75.5 / 3, rel=1e-3)
    assert rate["since"].startswith("2026-12-01T09:00:0")
    runway = history["runway"]
    assert runway["credits"] == 150.0
    # 150 / (75.5 / 3) = 5.9603 days after 2026-12-04 09:00: 2026-12-10 08:02:39.
    runs_out = datetime.fromisoformat(runway["runs_out"])
    assert abs(runs_out - datetime(2026, 12, 10, 8, 2, 39, tzinfo=UTC)) < timedelta(minutes=5)
    assert runway["days"] == pytest.approx(150 / (75.5 / 3) - 1 / 24, abs=5e-3)
    assert history["too_little"] is None


def test_csv_has_the_same_rows_for_every_organization(week: Clockwork) -> None:
    assert week.at("2026-12-04 10:00:00", "history", "--all", "--days", "4", "--csv") == (
        "organization,name,date,spent,added,closing,readings\n"
        "org-standin-lab,Research Lab,2026-12-01,0.0,0.0,3.25,1\n"
        "org-standin-lab,Research Lab,2026-12-02,0.0,0.0,,0\n"
        "org-standin-lab,Research Lab,2026-12-03,0.0,0.0,,0\n"
        "org-standin-lab,Research Lab,2026-12-04,0.0,0.0,,0\n"
        "org-standin-lumen,Lumen Games,2026-12-01,0.0,0.0,42.0,1\n"
        "org-standin-lumen,Lumen Games,2026-12-02,0.0,0.0,,0\n"
        "org-standin-lumen,Lumen Games,2026-12-03,0.0,0.0,,0\n"
        "org-standin-lumen,Lumen Games,2026-12-04,0.0,0.0,,0\n"
        "org-standin-personal,Ada's studio,2026-12-01,10.5,0.0,115.0,2\n"
        "org-standin-personal,Ada's studio,2026-12-02,20.0,100.0,195.0,2\n"
        "org-standin-personal,Ada's studio,2026-12-03,15.0,0.0,180.0,1\n"
        "org-standin-personal,Ada's studio,2026-12-04,30.0,0.0,150.0,1\n"
    )


def test_runway_in_the_status_line_from_the_cache(week: Clockwork) -> None:
    # A cache hit an hour later: the runway counted down from the entry, no SQLite opened.
    line = week.at("2026-12-04 10:00:00", "status", "--max-age", "86400", "--format", "{runway}")
    assert line == "5d\n"
    # Past the projection, 0h; a day before it, hours.
    assert (
        week.at("2026-12-09 10:00:00", "status", "--max-age", "1e9", "--format", "{runway}")
        == "22h\n"
    )
    assert (
        week.at("2026-12-11 10:00:00", "status", "--max-age", "1e9", "--format", "{runway}")
        == "0h\n"
    )


def test_too_little_history_says_so_and_how_to_get_more(
    standin: StandInAPI, standin_server: StandInServer, tmp_path: Path
) -> None:
    # The first day of `week`, on its own (read back on it, the days after it would be
    # readings from the future, left out with a warning).
    clock = Clockwork(standin_server, tmp_path / "state", tmp_path / "cache")
    clock.at("2026-12-01 09:00:00", "balances")
    standin.spend(PERSONAL, 10.5)
    clock.at("2026-12-01 18:00:00", "balance")
    text = clock.at("2026-12-01 19:00:00", "history", "--days", "1")
    assert text.splitlines()[-1] == (
        "Not enough history for a burn rate: 2 readings over 9.0 h in the last 7 days; it takes "
        "3 readings over at least 1 day. Read the balance through the day to record more: "
        "`stability-user watch` reads it every 5 minutes, `stability-user status` in a prompt "
        "whenever it refreshes."
    )
    assert "Runway" not in text
    assert (
        clock.at(
            "2026-12-01 19:00:00",
            "status",
            "--max-age",
            "1e9",
            "--timeout",
            "30",  # nothing cached yet: refreshed in the foreground
            "--format",
            "[{runway}]",
        )
        == "[]\n"
    )


def test_a_week_without_spend_has_no_runway(standin_server: StandInServer, tmp_path: Path) -> None:
    clock = Clockwork(standin_server, tmp_path / "state", tmp_path / "cache")
    for day in ("01", "02", "03"):
        clock.at(f"2026-12-{day} 09:00:00", "balance")
    text = clock.at("2026-12-03 10:00:00", "history", "--days", "3")
    assert text.splitlines()[-2:] == [
        "Burn rate: 0.00 credits/day over the last 7 days (readings span 2.0 days, 29% of them)",
        "Runway: nothing was spent in the last 7 days",
    ]


def test_no_history_yet(standin_server: StandInServer, tmp_path: Path) -> None:
    clock = Clockwork(standin_server, tmp_path / "state", tmp_path / "cache")
    assert clock.at("2026-12-01 09:00:00", "history") == (
        f"No readings of this key's default organization in the history ({tmp_path / 'state'}) "
        "yet: balance, balances, measure and status record one each time they read the balance.\n"
    )
    assert clock.at("2026-12-01 09:00:00", "history", "--json") == "[]\n"


def test_history_reads_an_empty_store_file_and_writes_nothing(tmp_path: Path) -> None:
    # Issue 41, item 11: it made the tables and switched the file to WAL.
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / STORE_NAME).touch()
    result = subprocess.run(
        [sys.executable, "-m", "stability_user", "history"],
        env={**os.environ, "STABILITY_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("No readings of this key's default organization")
    assert (state / STORE_NAME).read_bytes() == b""
    assert [path.name for path in state.iterdir()] == [STORE_NAME]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--days", "0"], "must be a whole number of days from 1 to 3660"),
        (["--days", "x"], "must be a whole number of days"),
        (["--org", "o", "--all"], "not allowed with argument"),
        (["--json", "--csv"], "not allowed with argument"),
    ],
)
def test_usage_errors(argv: list[str], says: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stability_user", "history", *argv],
        env={**os.environ, "STABILITY_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert says in result.stderr
    assert list(tmp_path.iterdir()) == []
