"""What the history says: days, burn rate, runway (pure, hand-computed), and whose readings
``read_history()`` returns."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stability_user import ConfigurationError
from stability_user._credits import runway_text
from stability_user.history import HistoryError, read_history
from stability_user.history._math import burn_rate, day_rows, runway, spent_since
from stability_user.history._store import (
    DefaultRun,
    Observation,
    account_of,
    default_spans,
    open_store,
)

HOST = "https://api.stability.ai"
DAY = 86400.0


def at(text: str) -> float:
    """A UTC time (the tests run with TZ=UTC, so local days are UTC days)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def record(directory: Path, key: str, readings: list[tuple[str, Observation]]) -> None:
    warnings: list[str] = []
    with open_store(str(directory), warnings.append) as store:
        for when, observation in readings:
            store.record(HOST, account_of(HOST, key), [observation], at(when))
    assert warnings == []


# Days


def test_falls_are_spend_and_rises_are_top_ups_on_the_later_readings_day() -> None:
    readings = [
        (at("2026-12-01T09:00:00"), 125.5),
        (at("2026-12-01T18:00:00"), 115.0),
        (at("2026-12-02T09:00:00"), 95.0),
        (at("2026-12-02T12:00:00"), 195.0),
        (at("2026-12-04T00:30:00"), 180.0),
    ]
    days = day_rows(readings, first=date(2026, 12, 1), last=date(2026, 12, 4))
    assert [(d.date.day, d.spent, d.added, d.closing, d.readings) for d in days] == [
        (1, 10.5, 0.0, 115.0, 2),
        (2, 20.0, 100.0, 195.0, 2),
        (3, 0.0, 0.0, None, 0),  # no readings: the fall to the 4th counts on the 4th
        (4, 15.0, 0.0, 180.0, 1),
    ]


def test_the_reading_before_the_window_makes_the_first_days_spend_known() -> None:
    days = day_rows(
        [(at("2026-12-02T10:00:00"), 90.0)],
        first=date(2026, 12, 2),
        last=date(2026, 12, 2),
        before=(at("2026-11-28T10:00:00"), 100.0),
    )
    assert (days[0].spent, days[0].closing) == (10.0, 90.0)


def test_spend_is_exact_in_decimal_terms() -> None:
    readings = [
        (at("2026-12-01T00:00:00") + i, credits) for i, credits in enumerate((0.3, 0.2, 0.1))
    ]
    (day,) = day_rows(readings, first=date(2026, 12, 1), last=date(2026, 12, 1))
    assert day.spent == 0.2  # not 0.19999999999999998


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40))
def test_spend_minus_top_ups_is_the_net_change(credits: list[float]) -> None:
    readings = [(at("2026-12-01T00:00:00") + 60 * i, value) for i, value in enumerate(credits)]
    (day,) = day_rows(readings, first=date(2026, 12, 1), last=date(2026, 12, 1))
    assert day.spent >= 0
    assert day.added >= 0
    assert math.isclose(day.added - day.spent, credits[-1] - credits[0], abs_tol=1e-6)


# Burn rate and runway


def test_burn_rate_leaves_top_ups_out_and_divides_by_the_span() -> None:
    now = at("2026-12-04T10:00:00")
    readings = [
        (at("2026-11-20T09:00:00"), 500.0),  # older than 7 days: not in the window
        (at("2026-12-01T09:00:00"), 125.5),
        (at("2026-12-01T18:00:00"), 115.0),
        (at("2026-12-02T09:00:00"), 95.0),
        (at("2026-12-02T12:00:00"), 195.0),
        (at("2026-12-03T09:00:00"), 180.0),
        (at("2026-12-04T09:00:00"), 150.0),
    ]
    rate = burn_rate(readings, now)
    assert rate is not None
    assert rate.spent == 75.5  # 10.5 + 20 + 15 + 30; the 100 added is not negative spend
    assert rate.credits_per_day == round(75.5 / 3, 10)
    assert rate.coverage == round(3 / 7, 4)
    assert rate.readings == 6
    assert rate.covered_days == 3.0
    lasts = runway(readings[-1], rate, now)
    assert lasts is not None
    assert lasts.credits == 150.0
    expected = at("2026-12-04T09:00:00") + 150.0 / (75.5 / 3) * DAY
    assert abs(lasts.runs_out.timestamp() - expected) < 1e-3
    assert math.isclose(lasts.days, (expected - now) / DAY)


@pytest.mark.parametrize(
    "readings",
    [
        [],
        [("2026-12-03T09:00:00", 10.0), ("2026-12-04T09:30:00", 5.0)],  # two readings
        [("2026-12-04T01:00:00", 10.0), ("2026-12-04T05:00:00", 8.0), ("2026-12-04T09:00:00", 5.0)],
    ],
    ids=["none", "two", "under-a-day"],
)
def test_too_little_history_gives_no_burn_rate(readings: list[tuple[str, float]]) -> None:
    rate = burn_rate([(at(when), credits) for when, credits in readings], at("2026-12-04T10:00:00"))
    assert rate is None


def test_nothing_spent_is_no_runway() -> None:
    now = at("2026-12-04T10:00:00")
    readings = [(now - DAY * i, 40.0) for i in (3, 2, 1)]
    rate = burn_rate(readings, now)
    assert rate is not None
    assert rate.credits_per_day == 0
    assert runway(readings[-1], rate, now) is None


def test_an_overdrawn_balance_has_run_out() -> None:
    now = at("2026-12-04T10:00:00")
    readings = [(now - DAY * 2, 10.0), (now - DAY, 0.0), (now - 60, -2.0)]
    lasts = runway(readings[-1], burn_rate(readings, now), now)
    assert lasts is not None
    assert lasts.days == 0.0


# read_history(): whose readings


def test_a_keys_default_readings_join_the_organization_that_was_the_default_then(
    tmp_path: Path,
) -> None:
    # Changed with issue 41 (item 5): the reading taken before any answer named the default
    # stays apart (whose it was is not known); those after join the organization named.
    record(
        tmp_path,
        "key-a",
        [
            ("2026-12-01T09:00:00", Observation(None, 100.0)),  # `balance`: id not known
            ("2026-12-02T09:00:00", Observation("org-1", 90.0, "Studio", True)),  # `balances`
            ("2026-12-03T09:00:00", Observation(None, 80.0)),
        ],
    )
    now = at("2026-12-03T10:00:00")
    (history,) = read_history(api_key="key-a", state_dir=tmp_path, days=3, now=now)
    assert (history.organization, history.name) == ("org-1", "Studio")
    assert [day.closing for day in history.days] == [90.0, 80.0]
    assert read_history("org-1", state_dir=tmp_path, days=3, now=now) == [history]
    named, before = read_history(all_organizations=True, state_dir=tmp_path, days=3, now=now)
    assert named == history
    assert (before.organization, before.credits) == (None, 100.0)


def test_a_changed_default_joins_no_one_between_the_two_answers(tmp_path: Path) -> None:
    record(
        tmp_path,
        "key-a",
        [
            ("2026-12-01T09:00:00", Observation("org-1", 100.0, "One", True)),
            ("2026-12-01T12:00:00", Observation(None, 90.0)),  # org-1's, or org-2's?
            ("2026-12-02T09:00:00", Observation("org-2", 20.0, "Two", True)),
            ("2026-12-02T12:00:00", Observation(None, 19.0)),
        ],
    )
    now = at("2026-12-02T13:00:00")
    one, two, unknown = read_history(all_organizations=True, state_dir=tmp_path, days=2, now=now)
    assert (one.organization, one.credits) == ("org-1", 100.0)
    assert (two.organization, two.credits) == ("org-2", 19.0)
    assert (unknown.organization, unknown.credits) == (None, 90.0)


def test_an_unnamed_default_stands_alone(tmp_path: Path) -> None:
    record(tmp_path, "key-a", [("2026-12-01T09:00:00", Observation(None, 100.0))])
    (history,) = read_history(
        api_key="key-a", state_dir=tmp_path, days=1, now=at("2026-12-01T10:00:00")
    )
    assert history.organization is None
    assert history.credits == 100.0
    assert read_history(api_key="key-b", state_dir=tmp_path, now=at("2026-12-01T10:00:00")) == []


def test_two_keys_of_one_organization_are_one_history(tmp_path: Path) -> None:
    record(tmp_path, "key-a", [("2026-12-01T09:00:00", Observation("org-1", 100.0))])
    record(tmp_path, "key-b", [("2026-12-01T12:00:00", Observation("org-1", 95.0))])
    (history,) = read_history("org-1", state_dir=tmp_path, days=1, now=at("2026-12-01T13:00:00"))
    assert (history.days[0].spent, history.days[0].readings) == (5.0, 2)


def test_another_hosts_readings_are_not_mixed_in(tmp_path: Path) -> None:
    record(tmp_path, "key-a", [("2026-12-01T09:00:00", Observation("org-1", 100.0))])
    assert (
        read_history(all_organizations=True, base_url="http://127.0.0.1:9", state_dir=tmp_path)
        == []
    )
    assert len(read_history(all_organizations=True, state_dir=tmp_path)) == 1


def test_an_organization_gone_from_the_account_keeps_its_past(tmp_path: Path) -> None:
    record(
        tmp_path,
        "key-a",
        [
            ("2026-11-20T09:00:00", Observation("org-gone", 50.0, "Old team", False)),
            ("2026-11-21T09:00:00", Observation("org-gone", 40.0)),
            ("2026-12-03T09:00:00", Observation("org-1", 100.0, "Studio", True)),
        ],
    )
    now = at("2026-12-03T10:00:00")
    gone, kept = sorted(
        read_history(all_organizations=True, state_dir=tmp_path, days=30, now=now),
        key=lambda history: history.organization != "org-gone",
    )
    assert (gone.organization, gone.name, gone.credits) == ("org-gone", "Old team", 40.0)
    assert sum(day.spent for day in gone.days) == 10.0
    assert gone.burn_rate is None
    assert gone.runway is None
    assert gone.too_little is not None
    assert "no readings in the last 7 days" in gone.too_little
    assert kept.organization == "org-1"


def test_the_default_moving_to_another_organization(tmp_path: Path) -> None:
    record(
        tmp_path,
        "key-a",
        [
            ("2026-12-01T09:00:00", Observation("org-1", 10.0, "One", True)),
            ("2026-12-02T09:00:00", Observation("org-2", 20.0, "Two", True)),
            ("2026-12-02T10:00:00", Observation(None, 19.0)),
        ],
    )
    (history,) = read_history(
        api_key="key-a", state_dir=tmp_path, days=2, now=at("2026-12-02T11:00:00")
    )
    assert (history.organization, history.credits) == ("org-2", 19.0)


def test_no_store_is_no_history_and_makes_nothing(tmp_path: Path) -> None:
    assert read_history(all_organizations=True, state_dir=tmp_path / "none") == []
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("days", [0, -1, 3661, 2.5, True, "7"])
def test_days_out_of_range_is_a_configuration_error(days: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="days must be a whole number"):
        read_history(days=days, state_dir=tmp_path)  # type: ignore[arg-type]


def test_org_and_all_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        read_history("org-1", all_organizations=True, state_dir=tmp_path)


def test_an_unreadable_store_is_a_history_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "history.sqlite3").write_bytes(b"not a database at all" * 100)
    with pytest.raises(HistoryError, match=r"history\.sqlite3 cannot be read"):
        read_history(all_organizations=True, state_dir=tmp_path)


def test_records_are_immutable_and_json_ready(tmp_path: Path) -> None:
    import dataclasses
    import json

    record(
        tmp_path,
        "key-a",
        [(f"2026-12-0{d}T09:00:00", Observation("org-1", 100.0 - 10 * d)) for d in (1, 2, 3)],
    )
    (history,) = read_history("org-1", state_dir=tmp_path, days=3, now=at("2026-12-03T10:00:00"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        history.credits = 1.0  # type: ignore[misc]
    data = json.loads(json.dumps(history.to_dict()))
    assert data["burn_rate"]["credits_per_day"] == 10.0
    assert data["runway"]["runs_out"] == "2026-12-10T09:00:00+00:00"
    assert [day["date"] for day in data["days"]] == ["2026-12-01", "2026-12-02", "2026-12-03"]


# The spend across a window's edge, whose unnamed readings are, the runway's words


def test_a_fall_across_the_windows_start_counts_for_its_share() -> None:
    since = at("2026-12-01T09:05:00")
    before = (at("2026-12-01T09:00:00"), 1000.0)
    inside = [(at("2026-12-01T09:15:00"), 700.0), (at("2026-12-01T09:16:00"), 690.0)]
    assert spent_since(inside, since, before) == 200.0 + 10.0  # 300 over 15 min, 10 of them in
    assert spent_since(inside, since) == 10.0
    assert spent_since(inside, since, (before[0], 600.0)) == 10.0  # a top-up: no spend
    days_before = (at("2026-11-28T09:15:00"), 1000.0)
    assert spent_since(inside, since, days_before) == pytest.approx(10.0 + 300 * 600 / 259200)


def test_default_spans_tell_whose_an_unnamed_reading_is() -> None:
    one = DefaultRun("k", "org-1", 100.0, 200.0)
    two = DefaultRun("k", "org-2", 300.0, 300.0)
    again = DefaultRun("k", "org-1", 400.0, 500.0)
    assert default_spans([]) == [(None, None, None)]
    assert default_spans([one, two, again]) == [
        (None, None, 100.0),  # before anything named it
        ("org-1", 100.0, 200.0),
        (None, 200.0, 400.0),  # it changed (twice), nobody knows when
        ("org-1", 400.0, None),  # until told otherwise
    ]
    assert default_spans([one, DefaultRun("k", "org-1", 300.0, 300.0)]) == [
        (None, None, 100.0),
        ("org-1", 100.0, None),
    ]


@pytest.mark.parametrize(
    ("seconds", "long", "short"),
    [
        (1.99 * DAY, "about 1 day", "1d"),
        (2 * DAY, "about 2 days", "2d"),
        (23.9 * 3600, "about 23 hours", "23h"),
        (3599, "less than an hour", "0h"),
        (-5, "less than an hour", "0h"),
    ],
)
def test_one_runway_rule(seconds: float, long: str, short: str) -> None:
    assert (runway_text(seconds), runway_text(seconds, short=True)) == (long, short)
