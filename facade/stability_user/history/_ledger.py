"""The ledger: who spent the credits, one job at a time, by label.

Every ``measure`` run and every ``track_spend()`` block that asks for it is one *job* in the
history store: its label, organization, window, the balance either side, what it spent, how it
ended, the program's name (never its arguments) and, when given, a note and its expected cost.
A job is written once it has ended, and a budget checked before it starts, by the client's
recorder (``_recorder.JobRecorder``); this module reads them.

How the ledger reads (``read_jobs``, ``job_totals``, budgets):

- A job's window runs from before the balance was read before it to after the balance was read
  after it, so every change the two readings saw happened within it.
- Jobs of one organization whose windows overlap cannot be told apart by the balance: each
  one's spend is the organization's whole change over its window, the others' included. Each is
  marked with the ids of the jobs it overlapped. Where every job of such a group (the jobs linked
  by overlaps) has an expected cost, the group's spend (the balance before its first job less the
  balance after its last) is split in proportion to them, marked as estimated; otherwise it is
  not split.
- A job counts in the day, week (from Monday) and month, local time, that it started in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from .._credits import credits_difference, credits_total
from .._exceptions import ConfigurationError
from .._job import check_label, check_scope
from ._store import (
    DefaultRun,
    HistoryError,
    HistoryStore,
    SeriesInfo,
    StoredJob,
    account_of,
    default_spans,
    groups,
    reader_place,
)

__all__ = [
    "Job",
    "JobTotal",
    "job_totals",
    "label_spend",
    "period_start",
    "read_jobs",
    "settle",
]

# What ``job_totals`` groups by.
_GROUPINGS = {
    "label": ("label",),
    "month": ("month",),
    "label,month": ("label", "month"),
    "month,label": ("label", "month"),
}


def period_start(per: str, now: float) -> float:
    """When the calendar ``per`` (day, week from Monday, month) holding ``now`` began, local
    time (seconds since the epoch)."""
    moment = datetime.fromtimestamp(now)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if per == "week":
        start -= timedelta(days=start.weekday())
    elif per == "month":
        start = start.replace(day=1)
    return start.timestamp()


@dataclass(frozen=True, slots=True)
class Job:
    """One job of the ledger: a ``stability-user measure`` run or a ``track_spend()`` block.

    Attributes:
        id: Its number in the ledger.
        label: Its label; ``None`` when it was given none.
        organization: The organization measured; ``None`` for a key's default organization
            whose id the history has not learnt yet (``stability-user balances`` teaches it).
        name: The organization's name, when known.
        account: The key it was measured with, as the history names it (a digest, never the
            key).
        started_at: When it began (UTC): before the balance was read before it.
        ended_at: When it ended (UTC): after the balance was read after it.
        before: The organization's credits before it.
        after: Its credits after it; ``None`` when that reading failed.
        spent: ``before - after``, the organization's change over the job (other work on it
            meanwhile included; negative after a top-up); ``None`` when unknown.
        exit_status: The command's exit status (``measure``; 128+N when signal N ended it);
            ``None`` for a ``track_spend()`` block.
        raised: Whether the block raised (``track_spend()``); ``None`` for a command.
        program: The program's name, never its arguments.
        note: The note recorded with it.
        expected: The cost expected before it started, when one was given.
        overlaps: The ids of the jobs of the same organization whose windows overlapped its
            own: the balance cannot tell their spends apart.
        attributed: What totals and budgets count for it: ``spent``, or, when it overlapped
            others and each of them had an expected cost, its part of their shared spend in
            proportion to those costs (``estimated``); ``None`` when unknown.
        estimated: Whether ``attributed`` is such an estimated part.
    """

    id: int
    label: str | None
    organization: str | None
    name: str | None
    account: str
    started_at: datetime
    ended_at: datetime
    before: float
    after: float | None
    spent: float | None
    exit_status: int | None
    raised: bool | None
    program: str
    note: str | None
    expected: float | None
    overlaps: tuple[int, ...]
    attributed: float | None
    estimated: bool

    @property
    def month(self) -> str:
        """The month it started in, local time: ``"2026-12"``."""
        return self.started_at.astimezone().strftime("%Y-%m")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: times in ISO 8601 (UTC)."""
        return {
            "id": self.id,
            "label": self.label,
            "organization": self.organization,
            "name": self.name,
            "account": self.account,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "before": self.before,
            "after": self.after,
            "spent": self.spent,
            "exit_status": self.exit_status,
            "raised": self.raised,
            "program": self.program,
            "note": self.note,
            "expected": self.expected,
            "overlaps": list(self.overlaps),
            "attributed": self.attributed,
            "estimated": self.estimated,
        }


@dataclass(frozen=True, slots=True)
class JobTotal:
    """The jobs of one label, one month, or one label in one month (``job_totals``).

    Attributes:
        by: What the totals were grouped by: ``("label",)``, ``("month",)`` or
            ``("label", "month")``.
        label: The label; ``None`` for the jobs without one, or when not grouped by label.
        month: The month the jobs started in, local time (``"2026-12"``); ``None`` when not
            grouped by month.
        jobs: How many jobs.
        spent: The credits they spent: the sum of their ``attributed`` credits, where known.
        unknown: How many of them spent an unknown amount (a reading failed): not in ``spent``.
        overlapping: How much of ``spent`` is in jobs that overlapped others: each counts the
            organization's whole change over its window, so these share credits.
        estimated: How much of ``spent`` is estimated parts of overlaps split by expected cost.
    """

    by: tuple[str, ...]
    label: str | None
    month: str | None
    jobs: int
    spent: float
    unknown: int
    overlapping: float
    estimated: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the keys grouped by (``label``, ``month``), then the figures."""
        keys: dict[str, object] = {name: getattr(self, name) for name in self.by}
        return {
            **keys,
            "jobs": self.jobs,
            "spent": self.spent,
            "unknown": self.unknown,
            "overlapping": self.overlapping,
            "estimated": self.estimated,
        }


def job_totals(jobs: Iterable[Job], by: str | Sequence[str] = "label") -> list[JobTotal]:
    """``jobs`` totalled by label, by month, or by both: ``by`` is ``"label"``, ``"month"``,
    ``"label,month"`` or a sequence of those names. Labels in order (the jobs without one
    last), months oldest first.

    Raises:
        ConfigurationError: ``by`` is none of these.
    """
    spelled = by if isinstance(by, str) else ",".join(str(name) for name in by)
    grouping = _GROUPINGS.get(spelled.replace(" ", ""))
    if grouping is None:
        raise ConfigurationError(
            f"by must be 'label', 'month' or 'label,month', not {by!r}.",
            cli_message="--by must be label, month or label,month.",
        )
    buckets: dict[tuple[str | None, str | None], list[Job]] = {}
    for job in jobs:
        key = (
            job.label if "label" in grouping else None,
            job.month if "month" in grouping else None,
        )
        buckets.setdefault(key, []).append(job)

    def order(key: tuple[str | None, str | None]) -> tuple[bool, str, str]:
        return (key[0] is None, key[0] or "", key[1] or "")

    return [_total(grouping, key, buckets[key]) for key in sorted(buckets, key=order)]


def _total(
    grouping: tuple[str, ...], key: tuple[str | None, str | None], jobs: list[Job]
) -> JobTotal:
    known = [job for job in jobs if job.attributed is not None]
    return JobTotal(
        by=grouping,
        label=key[0],
        month=key[1],
        jobs=len(jobs),
        spent=credits_total(job.attributed or 0.0 for job in known),
        unknown=len(jobs) - len(known),
        overlapping=credits_total(job.attributed or 0.0 for job in known if job.overlaps),
        estimated=credits_total(job.attributed or 0.0 for job in known if job.estimated),
    )


def settle(
    rows: Sequence[StoredJob], infos: Sequence[SeriesInfo], runs: Sequence[DefaultRun] = ()
) -> list[Job]:
    """The stored ``rows`` as jobs: organizations named from ``infos`` (the host's series), a
    job of a key's unnamed default organization joined to the one that was its default when
    the job started (``runs``, as the history's readings are: ``default_spans``), or to none;
    overlaps found and split where they can be."""
    names = {group.organization: group.name for group in groups(infos) if group.organization}
    organization = {row.id: row.organization or _default_then(row, runs) for row in rows}
    overlaps: dict[int, list[int]] = {row.id: [] for row in rows}
    by_organization: dict[tuple[str, str], list[StoredJob]] = {}
    for row in rows:  # an unnamed default organization is told apart by its key
        named = organization[row.id]
        by_organization.setdefault((named or "", "" if named else row.account), []).append(row)
    parts: dict[int, float | None] = {}
    for members in by_organization.values():
        running: list[StoredJob] = []
        for row in sorted(members, key=lambda member: (member.started_at, member.id)):
            running = [other for other in running if other.ended_at > row.started_at]
            for other in running:
                overlaps[row.id].append(other.id)
                overlaps[other.id].append(row.id)
            running.append(row)
        for group in _linked(members, overlaps):
            parts.update(_split(group))
    return [
        Job(
            id=row.id,
            label=row.label,
            organization=organization[row.id],
            name=row.name or names.get(organization[row.id] or ""),
            account=row.account,
            started_at=datetime.fromtimestamp(row.started_at, UTC),
            ended_at=datetime.fromtimestamp(row.ended_at, UTC),
            before=row.before,
            after=row.after,
            spent=row.spent,
            exit_status=row.exit_status,
            raised=row.raised,
            program=row.program,
            note=row.note,
            expected=row.expected,
            overlaps=tuple(sorted(overlaps[row.id])),
            attributed=parts.get(row.id, row.spent),
            estimated=row.id in parts,
        )
        for row in rows
    ]


def _linked(members: Sequence[StoredJob], overlaps: dict[int, list[int]]) -> list[list[StoredJob]]:
    """The groups of ``members`` linked by overlaps, each of two jobs or more."""
    by_id = {row.id: row for row in members}
    seen: set[int] = set()
    found = []
    for row in members:
        if row.id in seen or not overlaps[row.id]:
            continue
        group, todo = [], [row.id]
        seen.add(row.id)
        while todo:
            current = todo.pop()
            group.append(by_id[current])
            for other in overlaps[current]:
                if other not in seen and other in by_id:
                    seen.add(other)
                    todo.append(other)
        found.append(group)
    return found


def _split(group: Sequence[StoredJob]) -> dict[int, float | None]:
    """Each job's part of ``group``'s spend, in proportion to the expected costs, when every
    job has one (and they are not all 0) and the group's spend is known; else nothing."""
    weights = [row.expected for row in group]
    if any(weight is None for weight in weights):
        return {}
    total_weight = credits_total(weight or 0.0 for weight in weights)
    first = min(group, key=lambda row: (row.started_at, row.id))
    last = max(group, key=lambda row: (row.ended_at, row.id))
    if total_weight <= 0 or last.after is None:
        return {}
    shared = credits_difference(first.before, last.after)
    return {row.id: round(shared * (row.expected or 0.0) / total_weight, 10) + 0.0 for row in group}


def _load(store: HistoryStore, host: str, since: float | None) -> list[StoredJob]:
    """The jobs of ``host`` that ended at ``since`` or later, and every job linked to them by
    overlaps however long before (a split needs the whole group)."""
    rows = store.jobs(host, since)
    while since is not None and rows and rows[0].started_at < since:
        since = rows[0].started_at
        rows = store.jobs(host, since)
    return rows


def _default_then(row: StoredJob, runs: Sequence[DefaultRun]) -> str | None:
    """The organization that was ``row``'s key's default when it started, if known."""
    mine = sorted((run for run in runs if run.account == row.account), key=lambda run: run.since)
    for organization, since, until in default_spans(mine):
        if (since is None or row.started_at >= since) and (until is None or row.started_at < until):
            return organization
    return None


def label_spend(store: HistoryStore, host: str, label: str, since: float) -> float:
    """What the jobs of ``label`` on ``host`` that started at ``since`` or later spent, as
    totals count it (their ``attributed`` credits)."""
    jobs = settle(_load(store, host, since), store.series(host), store.default_runs(host))
    return credits_total(
        job.attributed or 0.0
        for job in jobs
        if job.label == label and job.started_at.timestamp() >= since
    )


def _bound(value: object, name: str, *, end: bool) -> float | None:
    """``since``/``until`` as seconds since the epoch: a date's local midnight (the next day's
    for ``until``, so that the day is included), a datetime's instant (naive: local time)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime(day.year, day.month, day.day).timestamp()
    raise ConfigurationError(f"{name} must be a date or a datetime, not {type(value).__name__}.")


def read_jobs(
    *,
    label: str | None = None,
    organization: str | None = None,
    all_organizations: bool = False,
    since: date | None = None,
    until: date | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
) -> list[Job]:
    """The jobs of the ledger, newest first: what each ``stability-user measure`` run and each
    ``track_spend()`` block recorded.

    Reads the local store only: nothing is sent. Without ``organization`` or
    ``all_organizations``, the jobs of the key's default organization (the key, from
    ``api_key`` or ``STABILITY_API_KEY``); without a key, every organization's.

    Args:
        label: Only the jobs of this label.
        organization: Only the jobs of this organization id.
        all_organizations: The jobs of every organization recorded for the API host.
        since: Only the jobs started on this day (local time) or later; a datetime is an
            instant.
        until: Only the jobs started on this day (local time) or earlier; a datetime: before
            this instant.
        api_key: Whose default organization; defaults to ``STABILITY_API_KEY``.
        base_url: The API host the jobs were measured on; defaults to ``STABILITY_BASE_URL``,
            then ``API_HOST``, then ``https://api.stability.ai``.
        state_dir: The store's folder; defaults to ``state_directory()``.

    Raises:
        ConfigurationError: A label that breaks the rule, conflicting arguments, or ``since``
            after ``until``.
        HistoryError: The store cannot be read, or a newer stability-user wrote it.
    """
    check_scope(organization, all_organizations)
    check_label(label)
    low, high = _bound(since, "since", end=False), _bound(until, "until", end=True)
    if low is not None and high is not None and low >= high:
        raise ConfigurationError(
            "since is after until.", cli_message="--since is after --until: nothing is between."
        )
    host, key, path = reader_place(api_key, base_url, state_dir)
    if not os.path.exists(path):
        return []
    try:
        with HistoryStore(path, read_only=True) as store:  # reading writes nothing
            infos = store.series(host)
            jobs = settle(_load(store, host, low), infos, store.default_runs(host))
    except HistoryError:
        raise
    except Exception as error:  # sqlite3.DatabaseError, OSError: say which file
        raise HistoryError(f"The history store {path} cannot be read: {error}") from error
    if organization is None and not all_organizations and key:
        account = account_of(host, key)
        default = next(
            (i.organization for i in infos if i.account == account and i.is_default), None
        )
        jobs = [
            job
            for job in jobs
            if job.organization == default or (job.organization is None and job.account == account)
        ]
    elif organization is not None:
        jobs = [job for job in jobs if job.organization == organization]
    chosen = [
        job
        for job in jobs
        if (label is None or job.label == label)
        and (low is None or job.started_at.timestamp() >= low)
        and (high is None or job.started_at.timestamp() < high)
    ]
    return sorted(chosen, key=lambda job: (job.started_at, job.id), reverse=True)
