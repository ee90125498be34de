"""What the last refreshes found: each organization's credits and the API calls they made.

Pure and thread-safe: a refresher (thread or task) writes the outcome of each
``get_balances()`` here, and scrapes read a consistent snapshot. A scrape never calls the API.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._cache._policy import failure_kind
from .._credits import credits_difference, credits_total
from .._exceptions import StabilityError
from .._logging import logger
from .._models import Organization, OrganizationBalance
from .._text import printable

__all__ = ["CreditsCache", "CreditsSnapshot", "OrganizationCredits"]


@dataclass(frozen=True, slots=True)
class OrganizationCredits:
    """One organization as the last refreshes left it.

    Attributes:
        organization: The organization.
        credits: The last credits fetched successfully, or ``None`` if never.
        refreshed: Whether the last refresh fetched its credits.
        last_success: When (Unix time) credits were last fetched, or ``None``.
        spent: Credits spent since the cache's first reading of the organization: the sum of
            the falls from one reading to the next (a rise, a top-up, is never spend).
    """

    organization: Organization
    credits: float | None
    refreshed: bool
    last_success: float | None
    spent: float = 0.0


@dataclass(frozen=True, slots=True)
class CreditsSnapshot:
    """A consistent view of the cache.

    Attributes:
        organizations: The organizations of the last successful account call, in its order.
        requests: API calls made so far, by ``(endpoint, outcome)``; the outcome is ``ok`` or
            the error's class name.
        refreshes: How many refreshes have completed (successful or not).
        last_refresh: When (Unix time) the last refresh completed, or ``None``.
        last_success: When the last refresh that fetched the account completed, or ``None``.
        refused: Whether the API refused the key (401 or 403) in the last refresh, for the
            account or for any organization's balance.
    """

    organizations: tuple[OrganizationCredits, ...]
    requests: tuple[tuple[tuple[str, str], int], ...]
    refreshes: int
    last_refresh: float | None
    last_success: float | None
    refused: bool = False


class CreditsCache:
    """The refresher writes, scrapes read; both from any thread."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._organizations: dict[str, OrganizationCredits] = {}
        self._requests: Counter[tuple[str, str]] = Counter()
        self._refreshes = 0
        self._last_refresh: float | None = None
        self._last_success: float | None = None
        self._refused = False

    def settle(self, outcome: Sequence[OrganizationBalance] | StabilityError) -> None:
        """A refresh's outcome: ``get_balances()``'s results, or the error it raised."""
        if isinstance(outcome, StabilityError):
            # The message may quote the API: escaped, it stays one line of the log.
            logger.warning(
                "credits refresh failed: %s: %s", type(outcome).__name__, printable(str(outcome))
            )
            self.record_failure(outcome)
        else:
            self.record(outcome)

    def record(self, results: Sequence[OrganizationBalance]) -> None:
        """A refresh whose account call succeeded, with each organization's outcome."""
        now = self._clock()
        with self._lock:
            self._requests["account", "ok"] += 1
            previous = self._organizations
            current: dict[str, OrganizationCredits] = {}
            for result in results:
                org = result.organization
                known = previous.get(org.id)
                if result.balance is not None:
                    self._requests["balance", "ok"] += 1
                    credits = result.balance.credits
                    current[org.id] = OrganizationCredits(
                        org, credits, True, now, _spent(known, credits)
                    )
                else:
                    outcome = type(result.error).__name__ if result.error else "error"
                    self._requests["balance", outcome] += 1
                    # A failed organization keeps its last good credits.
                    current[org.id] = OrganizationCredits(
                        org,
                        known.credits if known else None,
                        False,
                        known.last_success if known else None,
                        known.spent if known else 0.0,
                    )
            self._organizations = current
            self._refreshes += 1
            self._last_refresh = self._last_success = now
            self._refused = any(
                result.error is not None and failure_kind(result.error) == "refused"
                for result in results
            )

    def record_failure(self, error: StabilityError) -> None:
        """A refresh whose account call failed: every organization's refresh failed."""
        now = self._clock()
        with self._lock:
            self._requests["account", type(error).__name__] += 1
            self._organizations = {
                org_id: OrganizationCredits(
                    state.organization, state.credits, False, state.last_success, state.spent
                )
                for org_id, state in self._organizations.items()
            }
            self._refreshes += 1
            self._last_refresh = now
            self._refused = failure_kind(error) == "refused"

    def _after_fork(self) -> None:
        """In a forked child: a lock the parent's refresher held at the fork stays held."""
        self._lock = threading.Lock()

    def snapshot(self) -> CreditsSnapshot:
        """What the cache holds now."""
        with self._lock:
            return CreditsSnapshot(
                organizations=tuple(self._organizations.values()),
                requests=tuple(sorted(self._requests.items())),
                refreshes=self._refreshes,
                last_refresh=self._last_refresh,
                last_success=self._last_success,
                refused=self._refused,
            )


def _spent(known: OrganizationCredits | None, credits: float) -> float:
    """What ``known`` had spent, plus the fall from its last credits to ``credits``."""
    if known is None:
        return 0.0
    fall = 0.0 if known.credits is None else credits_difference(known.credits, credits)
    return credits_total((known.spent, fall)) if fall > 0 else known.spent
