"""Recording balance readings in the history, for a client that was asked to.

Both clients hold one ``HistoryRecorder`` (``ClientCore``) when made with ``history=True`` and
``STABILITY_HISTORY`` does not turn it off; they hand it what they read, the sync client at
once, the async one on a worker thread (SQLite blocks). A recording that fails (a full disk, a
read-only folder, a store locked past its busy timeout) is skipped with one warning on the
``stability_user.history`` logger: history never breaks a call. The command line shows those
warnings as its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ._store import (
    HistoryStore,
    Observation,
    account_of,
    default_state_dir,
    history_enabled,
    open_store,
)

if TYPE_CHECKING:
    from .._models import Account, OrganizationBalance

__all__ = ["HistoryRecorder", "history_logger", "recorder_for"]

history_logger = logging.getLogger("stability_user.history")


def recorder_for(base_url: str, api_key: str) -> HistoryRecorder | None:
    """The recorder of a client asked to record (``history=True``); ``None`` when
    ``STABILITY_HISTORY`` turns recording off."""
    if not history_enabled(os.environ):
        return None
    return HistoryRecorder(base_url, account_of(base_url, api_key))


class HistoryRecorder:
    """Writes one client's readings (its host, its key's digest) to the store."""

    __slots__ = ("_warned", "account", "host")

    def __init__(self, host: str, account: str) -> None:
        self.host = host
        self.account = account
        # This recorder's failure, while it lasts: a long-lived client (the exporter's) says a
        # failure once, not at every refresh, and again only once it changed or recording
        # worked meanwhile; many clients in one process (the exporter's targets) say one
        # failure they share once (_FAILING).
        self._warned: str | None = None

    def balance(self, organization: str | None, credits: float) -> None:
        """A balance of ``organization`` (``None``: the key's default) read now."""
        reading = [Observation(organization, credits)]
        self._write(lambda store: store.record(self.host, self.account, reading, time.time()))

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
            store.learn(self.host, self.account, learnt)
            store.record(self.host, self.account, observations, time.time())

        self._write(write)

    def learn_account(self, account: Account) -> None:
        """The organizations' names and which is the key's default."""
        learnt = [
            Observation(organization.id, 0.0, organization.name, organization.is_default)
            for organization in account.organizations
        ]
        self._write(lambda store: store.learn(self.host, self.account, learnt))

    def runs_out_at(self, organization: str | None, now: float) -> float | None:
        """When ``organization``'s credits run out at its burn rate (seconds since the epoch),
        as the history tells it now; ``None`` when it cannot."""
        from . import runs_out_at

        outcome: list[float | None] = [None]

        def read(store: HistoryStore) -> None:
            outcome[0] = runs_out_at(store, self.host, self.account, organization, now)

        self._write(read, failed="the runway could not be read from the history")
        return outcome[0]

    def _write(
        self,
        action: Callable[[HistoryStore], object],
        failed: str = "the balance was not recorded in the history",
    ) -> None:
        warn = history_logger.warning
        try:
            with open_store(default_state_dir(os.environ, warn), warn) as store:
                action(store)
        except Exception as error:  # history never breaks a call
            text = f"{failed}: {_reason(error)}"
            if _FAILING.change(self._warned, text):
                warn("%s", text)
            self._warned = text
        else:
            _FAILING.change(self._warned, None)
            self._warned = None


class _Failing:
    """The failures the process's recorders are in, each with how many are in it: a failure
    is said when the first recorder meets it, and not again while any other is still in it."""

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


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror}"
    return str(error) or type(error).__name__
