"""The credits over time: what the local history of balance readings says, day by day.

Stability's API tells how many credits are left now, nothing about before. The command line
records every balance it reads (``balance``, ``balances``, ``status`` when it refreshes,
``measure``) in a local store, and so do the clients when asked (``StabilityUser(history=True)``,
``cached_balance(history=True)``); this module reads it::

    from stability_user.history import read_history

    for organization in read_history(days=14):
        print(organization.name, organization.burn_rate, organization.runway)

The store is one SQLite file in ``STABILITY_STATE_DIR``, else ``$XDG_STATE_HOME/stability-user``,
else the platform's state folder; it never holds the key. ``STABILITY_HISTORY=off`` turns the
recording off everywhere. How the figures are made:

- A fall between two readings is spend; a rise is a top-up, never negative spend. Both count on
  the day (local time) of the later reading.
- The burn rate is what was spent over the readings of the last 7 days, top-ups left out, per
  day those readings span; given only when at least 3 readings span at least a day.
- The runway is the latest balance over the burn rate, counted from the latest reading.
- A reading stamped more than 5 minutes after the moment it is read back (a clock that ran
  ahead when it was taken) is left out, with one warning on the ``stability_user.history``
  logger; the next reading recorded moves it aside for good.

The same store keeps the ledger: one *job* per ``stability-user measure`` run and per
``track_spend()`` block that asks for it, with its label, what it spent and how it ended.
``read_jobs()`` lists them and ``job_totals()`` adds them up by label and month::

    from stability_user.history import job_totals, read_jobs

    for total in job_totals(read_jobs(all_organizations=True), by="label,month"):
        print(total.label, total.month, total.spent)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .._exceptions import ConfigurationError
from .._job import check_scope
from ._ledger import Job, JobTotal, job_totals, read_jobs
from ._math import (
    BURN_WINDOW_DAYS,
    MIN_READINGS,
    MIN_SPAN_DAYS,
    BurnRate,
    Day,
    Runway,
    burn_rate,
    day_rows,
    local_date,
    runway,
)
from ._store import (
    CLOCK_SLACK,
    HistoryError,
    HistoryStore,
    SeriesGroup,
    account_of,
    default_state_dir,
    reader_place,
)

__all__ = [
    "MAX_DAYS",
    "BurnRate",
    "Day",
    "HistoryError",
    "Job",
    "JobTotal",
    "OrganizationHistory",
    "Runway",
    "job_totals",
    "read_history",
    "read_jobs",
    "state_directory",
]

# The longest window read_history() takes: ten years of days.
MAX_DAYS = 3660


@dataclass(frozen=True, slots=True)
class OrganizationHistory:
    """One organization's history over the days asked for.

    Attributes:
        organization: Its id; ``None`` for a key's default organization whose id the history
            has not learnt yet (``stability-user balances`` or ``get_account()`` teach it).
        name: Its name, when the API gave it.
        days: One ``Day`` per day of the window, oldest first (today last); from the day of
            the first reading when the history starts within the window.
        credits: The latest balance read; ``None`` without readings.
        read_at: When it was read (UTC); ``None`` without readings.
        burn_rate: Credits per day over the last 7 days of readings; ``None`` when the history
            is too short to tell (see ``too_little``).
        runway: How long the credits last at that rate; ``None`` without a burn rate or with
            nothing spent.
        too_little: Why there is no burn rate, in a sentence with how to get one; ``None``
            when there is one.
    """

    organization: str | None
    name: str | None
    days: tuple[Day, ...]
    credits: float | None
    read_at: datetime | None
    burn_rate: BurnRate | None
    runway: Runway | None
    too_little: str | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: dates and times in ISO 8601."""
        return {
            "organization": self.organization,
            "name": self.name,
            "credits": self.credits,
            "read_at": None if self.read_at is None else self.read_at.isoformat(),
            "burn_rate": None if self.burn_rate is None else self.burn_rate.to_dict(),
            "runway": None if self.runway is None else self.runway.to_dict(),
            "too_little": self.too_little,
            "days": [day.to_dict() for day in self.days],
        }


def state_directory() -> str:
    """The folder the history is kept in, from the environment (see the module's help)."""
    return default_state_dir(os.environ)


def read_history(
    organization: str | None = None,
    *,
    all_organizations: bool = False,
    days: int = 30,
    api_key: str | None = None,
    base_url: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    now: float | None = None,
) -> list[OrganizationHistory]:
    """The history of an organization, or of every one recorded, over the last ``days`` days.

    Reads the local store only: nothing is sent. Without ``organization`` or
    ``all_organizations``, the key's default organization (the key, from ``api_key`` or
    ``STABILITY_API_KEY``, only names whose readings they are; without one, every organization
    is returned). An organization the history has no readings of is not returned.

    Args:
        organization: An organization id.
        all_organizations: Every organization recorded for the API host.
        days: How many days, today included: 1 to ``MAX_DAYS``.
        api_key: Whose default organization; defaults to ``STABILITY_API_KEY``.
        base_url: The API host the readings were taken from; defaults to
            ``STABILITY_BASE_URL``, then ``API_HOST``, then ``https://api.stability.ai``.
        state_dir: The store's folder; defaults to ``state_directory()``.
        now: The time to compute from (seconds since the epoch); defaults to now.

    Raises:
        ConfigurationError: Conflicting or out-of-range arguments.
        HistoryError: The store cannot be read, or a newer stability-user wrote it.
    """
    check_scope(organization, all_organizations)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ConfigurationError(
            f"days must be a whole number from 1 to {MAX_DAYS}, not {days!r}.",
            cli_message=f"--days must be a whole number from 1 to {MAX_DAYS}.",
        )
    host, key, path = reader_place(api_key, base_url, state_dir)
    when = time.time() if now is None else float(now)
    if not os.path.exists(path):
        return []
    try:
        with HistoryStore(path, read_only=True) as store:
            found = _with_readings(store, host, when)
            chosen = _choose(found, organization, all_organizations, key and account_of(host, key))
            future: list[float] = []
            histories = [_history_of(store, group, days, when, future) for group in chosen]
    except HistoryError:
        raise
    except Exception as error:  # sqlite3.DatabaseError, OSError: say which file
        raise HistoryError(f"The history store {path} cannot be read: {error}") from error
    if future:
        _say_set_aside(future)
    return histories


def _with_readings(store: HistoryStore, host: str, now: float) -> list[SeriesGroup]:
    """``host``'s organizations that have a reading to show at ``now``."""
    return [
        group
        for group in store.groups(host)
        if store.latest_before(group.series, now + CLOCK_SLACK + 1e-6) is not None
    ]


def _say_set_aside(future: Sequence[float]) -> None:
    import logging

    count = len(future)
    latest = datetime.fromtimestamp(min(max(future), 253402300799.0), UTC)
    logging.getLogger("stability_user.history").warning(  # _recorder's history_logger
        "%s, stamped after now (the latest at %s), %s left out: a clock that ran ahead when "
        "%s taken",
        f"{count} reading{'s' * (count != 1)} of the history",
        latest.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "are" if count != 1 else "is",
        "they were" if count != 1 else "it was",
    )


def _choose(
    found: Sequence[SeriesGroup],
    organization: str | None,
    all_organizations: bool,
    account: str,
) -> list[SeriesGroup]:
    if organization is not None:
        return [group for group in found if group.organization == organization]
    if all_organizations or not account:
        return list(found)
    return [group for group in found if account in group.accounts][:1]


def _as_of(
    store: HistoryStore,
    group: SeriesGroup,
    since: float,
    now: float,
    future: list[float] | None = None,
) -> list[tuple[float, float]]:
    """``group``'s readings from ``since`` as of ``now``: one stamped more than
    ``CLOCK_SLACK`` later (a clock that ran ahead) is left out, its time added to ``future``."""
    readings = []
    for reading in store.readings(group.series, since=since):
        if reading[0] <= now + CLOCK_SLACK:
            readings.append(reading)
        elif future is not None:
            future.append(reading[0])
    return readings


def readings_since(
    store: HistoryStore,
    host: str,
    *,
    account: str,
    organization: str | None,
    since: float,
    now: float,
) -> tuple[tuple[float, float] | None, list[tuple[float, float]]]:
    """The last reading of ``organization`` (``None``: ``account``'s default) before ``since``,
    and its readings from ``since`` to ``now``, oldest first (what ``status`` and ``watch``
    work their figures out from: ``spent_since`` takes both)."""
    group = _group(store, host, account, organization, now)
    if group is None:
        return None, []
    return store.latest_before(group.series, since), _as_of(store, group, since, now)


def _group(
    store: HistoryStore, host: str, account: str, organization: str | None, now: float
) -> SeriesGroup | None:
    found = _choose(_with_readings(store, host, now), organization, False, account)
    return found[0] if found else None


def runs_out_at(
    store: HistoryStore, host: str, account: str, organization: str | None, now: float
) -> float | None:
    """When the credits of ``organization`` (``None``: ``account``'s default) run out at the
    burn rate, as the history tells it at ``now``; ``None`` when it cannot (what ``status``
    keeps in its cache entry for ``{runway}``)."""
    _, readings = readings_since(
        store,
        host,
        account=account,
        organization=organization,
        since=now - BURN_WINDOW_DAYS * 86400.0,
        now=now,
    )
    if not readings:
        return None
    lasts = runway(readings[-1], burn_rate(readings, now), now)
    return None if lasts is None else lasts.runs_out.timestamp()


def _history_of(
    store: HistoryStore, group: SeriesGroup, days: int, now: float, future: list[float]
) -> OrganizationHistory:
    last = local_date(now)
    first = last - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time()).timestamp()  # local midnight
    burn_start = now - BURN_WINDOW_DAYS * 86400.0
    readings = _as_of(store, group, min(start, burn_start), now, future)
    before = store.latest_before(group.series, start)
    rate = burn_rate(readings, now)
    latest = readings[-1] if readings else before
    shown = [reading for reading in readings if reading[0] >= start]
    if before is None and shown:  # nothing was read before: the days start with the first
        first = max(first, local_date(shown[0][0]))
    return OrganizationHistory(
        organization=group.organization,
        name=group.name,
        days=tuple(
            day_rows(
                shown,
                first=first,
                last=last,
                before=before,
            )
        ),
        credits=None if latest is None else latest[1],
        read_at=None if latest is None else datetime.fromtimestamp(latest[0], UTC),
        burn_rate=rate,
        runway=None if latest is None else runway(latest, rate, now),
        too_little=None if rate is not None else _too_little(readings, now),
    )


def _too_little(readings: Sequence[tuple[float, float]], now: float) -> str:
    window = [at for at, _ in readings if now - BURN_WINDOW_DAYS * 86400.0 <= at]
    held = "no readings" if not window else f"{len(window)} reading{'s' * (len(window) != 1)}"
    if len(window) > 1:
        hours = (window[-1] - window[0]) / 3600
        held += f" over {hours:.1f} h"
    return (
        f"Not enough history for a burn rate: {held} in the last {BURN_WINDOW_DAYS} days; it "
        f"takes {MIN_READINGS} readings over at least {MIN_SPAN_DAYS:g} day. Read the balance "
        "through the day to record more: `stability-user watch` reads it every 5 minutes, "
        "`stability-user status` in a prompt whenever it refreshes."
    )
