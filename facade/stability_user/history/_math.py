"""What a series of balance readings says: spend and top-ups per day, the burn rate, the runway.

Pure (readings in, records out), shared by ``stability_user.history``, ``stability-user
history`` and the runway ``status`` keeps in its cache entry. The rules:

- A fall between two readings is spend, a rise a top-up (never negative spend); both count on
  the day (local time) of the later reading.
- The burn rate is what was spent over the readings of the last ``BURN_WINDOW_DAYS`` days,
  top-ups left out, per day of the time those readings span. It is given only when they span
  at least ``MIN_SPAN_DAYS`` with at least ``MIN_READINGS`` readings: less is a number the
  history cannot stand behind.
- The runway is the latest balance over the burn rate, from the latest reading; none when
  nothing was spent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from .._credits import credits_difference, credits_total

__all__ = [
    "BURN_WINDOW_DAYS",
    "MIN_READINGS",
    "MIN_SPAN_DAYS",
    "BurnRate",
    "Day",
    "Runway",
    "burn_rate",
    "day_rows",
    "local_date",
    "runway",
    "spent_between",
    "spent_since",
    "too_little",
]

BURN_WINDOW_DAYS = 7
MIN_SPAN_DAYS = 1.0
MIN_READINGS = 3
_DAY = 86400.0

Reading = tuple[float, float]  # (seconds since the epoch, credits)


@dataclass(frozen=True, slots=True)
class Day:
    """One day of an organization's history (local time).

    Attributes:
        date: The day.
        spent: Credits spent: the falls between readings that ended on this day.
        added: Credits added: the rises (top-ups) between readings that ended on this day.
        closing: The balance at the day's last reading; ``None`` on a day without readings.
        readings: How many readings were taken on the day.
    """

    date: date
    spent: float
    added: float
    closing: float | None
    readings: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the date in ISO 8601."""
        return {
            "date": self.date.isoformat(),
            "spent": self.spent,
            "added": self.added,
            "closing": self.closing,
            "readings": self.readings,
        }


@dataclass(frozen=True, slots=True)
class BurnRate:
    """Credits spent per day over the last 7 days of readings, top-ups left out.

    Attributes:
        credits_per_day: The rate.
        spent: What was spent between the first and the last reading of the window.
        since: The window's first reading (UTC).
        until: Its last reading (UTC).
        coverage: The share of the 7 days the readings span, 0 to 1.
        readings: How many readings the window holds.
    """

    credits_per_day: float
    spent: float
    since: datetime
    until: datetime
    coverage: float
    readings: int

    @property
    def covered_days(self) -> float:
        """The days the readings span."""
        return (self.until - self.since).total_seconds() / _DAY

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the times in ISO 8601."""
        return {
            "credits_per_day": self.credits_per_day,
            "spent": self.spent,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "coverage": self.coverage,
            "readings": self.readings,
        }


@dataclass(frozen=True, slots=True)
class Runway:
    """How long the credits last at the burn rate.

    Attributes:
        credits: The latest balance read.
        runs_out: When, at the burn rate, it reaches zero (UTC).
        days: Days from the moment it was computed to ``runs_out`` (0 when past).
    """

    credits: float
    runs_out: datetime
    days: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the time in ISO 8601."""
        return {"credits": self.credits, "runs_out": self.runs_out.isoformat(), "days": self.days}


def local_date(at: float) -> date:
    """The local calendar day of a moment (seconds since the epoch)."""
    return datetime.fromtimestamp(at).date()


def day_rows(
    readings: Sequence[Reading], *, first: date, last: date, before: Reading | None = None
) -> list[Day]:
    """One ``Day`` for each day from ``first`` to ``last``; ``readings`` (oldest first) are
    those from ``first`` on, and ``before`` the last one before it (so the first day's spend
    is known)."""
    spent: dict[date, list[float]] = {}
    added: dict[date, list[float]] = {}
    closing: dict[date, float] = {}
    counts: dict[date, int] = {}
    previous = before
    for at, credits in readings:
        day = local_date(at)
        if previous is not None:
            change = credits_difference(credits, previous[1])
            if change < 0:
                spent.setdefault(day, []).append(-change)
            elif change > 0:
                added.setdefault(day, []).append(change)
        closing[day] = credits
        counts[day] = counts.get(day, 0) + 1
        previous = (at, credits)
    rows = []
    day = first
    while day <= last:
        rows.append(
            Day(
                day,
                credits_total(spent.get(day, ())),
                credits_total(added.get(day, ())),
                closing.get(day),
                counts.get(day, 0),
            )
        )
        day += timedelta(days=1)
    return rows


def burn_rate(readings: Sequence[Reading], now: float) -> BurnRate | None:
    """The burn rate over the readings of the last 7 days before ``now`` (``readings`` oldest
    first; older ones are ignored); ``None`` when they are too few or span too little."""
    window = [reading for reading in readings if now - BURN_WINDOW_DAYS * _DAY <= reading[0]]
    if too_little(window):
        return None
    spent = spent_between(window)
    span = window[-1][0] - window[0][0]
    return BurnRate(
        credits_per_day=round(spent / (span / _DAY), 10),
        spent=spent,
        since=datetime.fromtimestamp(window[0][0], UTC),
        until=datetime.fromtimestamp(window[-1][0], UTC),
        coverage=min(1.0, round(span / (BURN_WINDOW_DAYS * _DAY), 4)),
        readings=len(window),
    )


def spent_between(readings: Sequence[Reading]) -> float:
    """What was spent between these readings (oldest first): the falls, top-ups left out."""
    falls = []
    for (_, earlier), (_, later) in pairwise(readings):
        change = credits_difference(later, earlier)
        if change < 0:
            falls.append(-change)
    return credits_total(falls)


def spent_since(readings: Sequence[Reading], since: float, before: Reading | None = None) -> float:
    """What was spent from ``since`` on: the falls between ``readings`` (oldest first, all from
    ``since`` on) and, with ``before`` (the last reading before ``since``), the share of the
    fall from it to the first of them that the time from ``since`` is of the time between the
    two (the spend taken as even between two readings). So a fall across the window's edge
    counts for its part in the window, and a gap of days before it does not count whole."""
    spent = spent_between(readings)
    if before is None or not readings:
        return spent
    first_at, first = readings[0]
    fall = -credits_difference(first, before[1])
    if fall <= 0:
        return spent
    gap = first_at - before[0]
    share = 1.0 if gap <= 0 else min(1.0, max(0.0, (first_at - since) / gap))
    return credits_total((spent, fall * share))


def too_little(window: Sequence[Reading]) -> bool:
    """Whether these readings are too few, or span too little, for a burn rate."""
    return len(window) < MIN_READINGS or window[-1][0] - window[0][0] < MIN_SPAN_DAYS * _DAY


def runway(latest: Reading, rate: BurnRate | None, now: float) -> Runway | None:
    """How long ``latest``'s credits last at ``rate``; ``None`` without a rate or a spend."""
    if rate is None or rate.credits_per_day <= 0:
        return None
    at, credits = latest
    lasts = max(0.0, credits) / rate.credits_per_day * _DAY
    if not math.isfinite(lasts) or at + lasts > 253402300799:  # past year 9999
        return None
    runs_out = at + lasts
    return Runway(
        credits=credits,
        runs_out=datetime.fromtimestamp(runs_out, UTC),
        days=max(0.0, (runs_out - now) / _DAY),
    )
