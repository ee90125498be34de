"""Recording balance readings and jobs in the history, for a client that was asked to.

Both clients hold one ``HistoryRecorder`` (``ClientCore``) when made with ``history=True`` and
``STABILITY_HISTORY`` does not turn it off; they hand it what they read, the sync client at
once, the async one on a worker thread (SQLite blocks). A recording that fails (a full disk, a
read-only folder, a store locked past its busy timeout) is skipped with one warning on the
``stability_user.history`` logger: history never breaks a call. The command line shows those
warnings as its own.

A job of the ledger (``track_spend()``'s, ``measure``'s) is written by a ``JobRecorder`` through
the client's recorder (or one of its own when the client does not record readings), so that
one failure is one warning; its budget is checked before it starts, and a budget the store
cannot tell about refuses the job (``HistoryError``) instead of running it unchecked.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .._credits import credits_total
from .._exceptions import BudgetExceededError, ConfigurationError
from .._job import THIS_PERIOD
from ._ledger import label_spend, period_start
from ._store import (
    HistoryError,
    HistoryStore,
    Observation,
    StoredJob,
    account_of,
    default_state_dir,
    history_enabled,
    open_store,
)

if TYPE_CHECKING:
    from .._budget import Spend
    from .._job import JobPlan
    from .._models import Account, OrganizationBalance

__all__ = [
    "HistoryRecorder",
    "JobRecorder",
    "history_logger",
    "job_recorder",
    "reason_of",
    "recorder_for",
]

history_logger = logging.getLogger("stability_user.history")


def recorder_for(base_url: str, api_key: str) -> HistoryRecorder | None:
    """The recorder of a client asked to record (``history=True``); ``None`` when
    ``STABILITY_HISTORY`` turns recording off."""
    if not history_enabled(os.environ, history_logger.warning):
        return None
    return HistoryRecorder(base_url, account_of(base_url, api_key))


class HistoryRecorder:
    """Writes one client's readings (its host, its key's digest) to the store."""

    __slots__ = ("_warned", "account", "host")

    def __init__(self, host: str, account: str) -> None:
        self.host = host
        self.account = account
        # The cause of this recorder's failure, while it lasts: a long-lived client (the
        # exporter's) says a failure once, not at every refresh, and again only once its cause
        # changed or recording worked meanwhile; many clients in one process (the exporter's
        # targets) say one cause they share once (_FAILING).
        self._warned: str | None = None

    def balance(self, organization: str | None, credits: float) -> None:
        """A balance of ``organization`` (``None``: the key's default) read now."""
        reading = [Observation(organization, credits)]
        self.write(lambda store: store.record(self.host, self.account, reading, time.time()))

    def balances(self, results: Sequence[OrganizationBalance]) -> None:
        """``get_balances()``'s answer: each balance read, with the names and the default."""
        observations = [
            Observation(
                result.organization.id,
                result.balance.credits,
                result.organization.name,
                result.organization.is_default,
            )
            for result in results
            if result.balance is not None
        ]
        learnt = [
            Observation(org.id, 0.0, org.name, org.is_default)
            for org in (result.organization for result in results if result.balance is None)
        ]

        def write(store: HistoryStore) -> None:
            now = time.time()
            store.learn(self.host, self.account, learnt, now)
            store.record(self.host, self.account, observations, now)

        self.write(write)

    def learn_account(self, account: Account) -> None:
        """The organizations' names and which is the key's default."""
        learnt = [
            Observation(organization.id, 0.0, organization.name, organization.is_default)
            for organization in account.organizations
        ]
        self.write(lambda store: store.learn(self.host, self.account, learnt, time.time()))

    def runs_out_at(self, organization: str | None, now: float) -> float | None:
        """When ``organization``'s credits run out at its burn rate (seconds since the epoch),
        as the history tells it now; ``None`` when it cannot."""
        from . import runs_out_at

        outcome: list[float | None] = [None]

        def read(store: HistoryStore) -> None:
            outcome[0] = runs_out_at(store, self.host, self.account, organization, now)

        self.write(read, failed="the runway could not be read from the history")
        return outcome[0]

    def write(
        self,
        action: Callable[[HistoryStore], object],
        failed: str = "the balance was not recorded in the history",
    ) -> bool:
        """Run ``action`` on the store; whether it could. A failure is one warning (``failed``
        and its cause), said once while its cause lasts, whichever write met it: a ``measure``
        whose state folder is read-only says so once, not for each reading and the job."""
        warn = history_logger.warning
        try:
            with open_store(default_state_dir(os.environ, warn), warn) as store:
                action(store)
        except Exception as error:  # history never breaks a call
            reason = reason_of(error)
            if _FAILING.change(self._warned, reason):
                warn("%s: %s", failed, reason)
            self._warned = reason
            return False
        _FAILING.change(self._warned, None)
        self._warned = None
        return True


class _Failing:
    """The causes of failure the process's recorders are in, each with how many are in it: a
    cause is said when the first recorder meets it, and not again while any other is still in
    it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recorders: Counter[str] = Counter()

    def change(self, before: str | None, after: str | None) -> bool:
        """One recorder moved from ``before`` to ``after`` (``None``: working); whether
        ``after`` is new to the process and should be said."""
        if before == after:
            return False
        with self._lock:
            if before is not None:
                self._recorders[before] -= 1
                if self._recorders[before] <= 0:
                    del self._recorders[before]
            if after is None:
                return False
            self._recorders[after] += 1
            return self._recorders[after] == 1


_FAILING = _Failing()


def reason_of(error: Exception) -> str:
    """Why the store could not be used, in one line (the file and the system's words)."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror}"
    return str(error) or type(error).__name__


class JobRecorder:
    """One job on its way to the ledger: ``begin()`` checks its budget and stamps its start,
    ``record()`` writes it once the block has ended (a failure is one warning, through the
    client's ``HistoryRecorder``; ``ids`` then holds its ids, one per organization). Set
    ``exit_status`` for a command; ``discard()`` a job that did not run."""

    __slots__ = ("_discarded", "_started", "_writer", "exit_status", "ids", "plan")

    def __init__(self, plan: JobPlan, writer: HistoryRecorder) -> None:
        self.plan = plan
        self._writer = writer
        self._started = 0.0
        self._discarded = False
        self.exit_status: int | None = None
        self.ids: list[int] = []

    def begin(self, organization: str | None) -> None:
        """Check the budget (``BudgetExceededError``; ``HistoryError`` when the store cannot
        tell), then stamp the job's start: call it before the balance is read before it."""
        plan = self.plan
        if plan.budget is not None and plan.label is not None:
            spent = self._spent_so_far(plan.label, plan.per)
            if credits_total((spent, plan.expected or 0.0)) > plan.budget:
                raise _over_budget(plan, spent, organization)
        self._started = time.time()

    def _spent_so_far(self, label: str, per: str) -> float:
        warn = history_logger.warning
        try:
            with open_store(default_state_dir(os.environ, warn), warn) as store:
                return label_spend(store, self._writer.host, label, period_start(per, time.time()))
        except Exception as error:
            raise HistoryError(
                f"The budget of label {label} cannot be checked: {reason_of(error)}"
            ) from error

    def discard(self) -> None:
        """Record nothing: the job did not run (its command could not start)."""
        self._discarded = True

    def record(self, spend: Spend, *, raised: bool) -> None:
        """Write the job ``spend`` measured (one row per organization with
        ``all_organizations``); ``raised``: whether the block raised."""
        if self._discarded:
            return
        rows = self._rows(spend, raised)

        def write(store: HistoryStore) -> None:
            self.ids = store.add_jobs(self._writer.host, rows)

        self._writer.write(write, failed="the job was not recorded in the history")

    def _rows(self, spend: Spend, raised: bool) -> list[StoredJob]:
        plan, ended = self.plan, (spend.ended_at or datetime.now(UTC)).timestamp()
        parts: list[tuple[str, str | None, float, float | None, float | None]]
        if spend.all_organizations:
            parts = [
                (part.id, part.name, part.before, part.after, part.credits)
                for part in spend.organizations
            ]
        else:
            parts = [(spend.organization or "", None, spend.before, spend.after, spend.credits)]
        return [
            StoredJob(
                id=0,
                account=self._writer.account,
                organization=organization,
                name=name,
                label=plan.label,
                program=plan.program,
                note=plan.note,
                started_at=self._started,
                ended_at=max(ended, self._started),
                before=before,
                after=after,
                spent=spent,
                exit_status=self.exit_status,
                raised=None if self.exit_status is not None else raised,
                expected=plan.expected,
            )
            for organization, name, before, after, spent in parts
        ]


def _over_budget(plan: JobPlan, spent: float, organization: str | None) -> BudgetExceededError:
    budget, label, expected = plan.budget or 0.0, plan.label or "", plan.expected
    this = THIS_PERIOD[plan.per]
    cost = "" if expected is None else f" and the block is expected to cost {expected:,.2f}"
    return BudgetExceededError(
        f"Label {label} has spent {spent:,.2f} credits {this}{cost}: more than its budget of "
        f"{budget:,.2f} a {plan.per}. The block was not run.",
        label=label,
        budget=budget,
        spent=spent,
        per=plan.per,
        expected=expected,
        organization=organization,
    )


def job_recorder(
    host: str,
    api_key: str,
    plan: JobPlan,
    recorder: HistoryRecorder | None,
    *,
    record: bool,
) -> JobRecorder | None:
    """The recorder of a job that is to be recorded (``record``, and ``STABILITY_HISTORY``
    does not turn the history off), writing through ``recorder`` (the client's, when it
    records); ``None`` for one that is not. A budget cannot be checked without the history:
    ``ConfigurationError``."""
    if not record or not history_enabled(os.environ):
        if plan.budget is not None:
            raise ConfigurationError(
                "A budget is checked against the history, and STABILITY_HISTORY=off (or "
                "history=False without a label) turns it off.",
                cli_message="--budget is checked against the history: STABILITY_HISTORY=off "
                "and --no-history turn it off.",
            )
        return None
    if recorder is None:
        recorder = HistoryRecorder(host, account_of(host, api_key))
    return JobRecorder(plan, recorder)
