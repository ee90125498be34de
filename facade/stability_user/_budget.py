"""Budget guards and spend records: what ``require_credits()`` and ``track_spend()`` decide.

Pure, shared by both clients: they read the balances (their only I/O) and hand them here. A job's
spend is the balance before minus the balance after, so it is the organization's change over
the window: other jobs on the same organization are counted in it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._credits import check_credits, credits_difference, credits_total
from ._exceptions import InsufficientCreditsError, StabilityError
from ._logging import logger

if TYPE_CHECKING:
    from ._models import Balance, OrganizationBalance
    from .prices import Estimate

__all__ = [
    "OrganizationSpend",
    "Spend",
    "begin_spend",
    "end_spend",
    "enough_credits",
    "requirement",
]


def requirement(minimum: object) -> tuple[float, Estimate | None]:
    """What ``require_credits()`` asks for: an ``Estimate``'s total with the estimate, else
    ``minimum`` checked by ``_credits.check_credits``."""
    if not isinstance(minimum, int | float):  # a number never loads the prices
        from .prices import Estimate

        if isinstance(minimum, Estimate):
            return minimum.total, minimum
    return check_credits(minimum), None


def _scope(organization: str | None) -> str:
    return "the default organization" if organization is None else f"organization {organization}"


def enough_credits(
    balance: Balance, minimum: float, organization: str | None, estimate: Estimate | None = None
) -> Balance:
    """``balance`` if it holds at least ``minimum`` credits, else ``InsufficientCreditsError``
    (naming ``estimate``'s plan, when the minimum is its total)."""
    if balance.credits >= minimum:
        return balance
    scope = _scope(organization)
    plan = "" if estimate is None else f" for {estimate.plan}"
    raise InsufficientCreditsError(
        f"{scope[0].upper()}{scope[1:]} has {balance.credits:,.2f} credits; "
        f"{minimum:,.2f} are required{plan}.",
        required=minimum,
        available=balance.credits,
        organization=organization,
        estimate=estimate,
    )


@dataclass(frozen=True, slots=True)
class OrganizationSpend:
    """One organization's part of a ``Spend`` over every organization.

    Attributes:
        id: The organization's id.
        name: Its display name.
        before: Its credits when the block began.
        after: Its credits when it ended; ``None`` if they could not be read.
        credits: ``before - after``; ``None`` when ``after`` is.
        error: Why ``after`` is missing.
    """

    id: str
    name: str
    before: float
    after: float | None = None
    credits: float | None = None
    error: StabilityError | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, the error as its one-line text."""
        return {
            "id": self.id,
            "name": self.name,
            "before": self.before,
            "after": self.after,
            "credits": self.credits,
            "error": _error_text(self.error),
        }


class Spend:
    """What a block of work cost: the balance before it, after it, and the difference.

    Yielded by ``track_spend()`` with ``before`` and ``started_at`` set; the rest is filled in
    when the block ends, whether it returned or raised, and the record is frozen then. The
    spend is the organization's change over the window: another job spending from the same
    organization meanwhile is counted too, and a top-up makes it negative.

    Attributes:
        organization: The organization asked for; ``None`` for the default one (and for every
            organization, with ``all_organizations``).
        all_organizations: Whether every organization was measured (``organizations`` holds
            each, and the credits fields are their totals).
        before: The credits when the block began.
        after: The credits when it ended; ``None`` while it runs, or if they could not be read.
        credits: Credits spent, ``before - after`` (negative if credits were added); ``None``
            while the block runs, or if ``after`` could not be read.
        started_at: When the block began (UTC).
        ended_at: When it ended (UTC); ``None`` while it runs.
        seconds: How long it ran; ``None`` while it runs.
        organizations: With ``all_organizations``, each organization's part.
        error: Why ``after`` (or part of it) could not be read; ``None`` if it was.
    """

    __slots__ = (
        "_started",
        "after",
        "all_organizations",
        "before",
        "credits",
        "ended_at",
        "error",
        "organization",
        "organizations",
        "seconds",
        "started_at",
    )

    organization: str | None
    all_organizations: bool
    before: float
    after: float | None
    credits: float | None
    started_at: datetime
    ended_at: datetime | None
    seconds: float | None
    organizations: tuple[OrganizationSpend, ...]
    error: StabilityError | None
    _started: float

    def __init__(
        self,
        organization: str | None,
        before: float,
        *,
        organizations: tuple[OrganizationSpend, ...] = (),
        all_organizations: bool = False,
    ) -> None:
        self._set(
            organization=organization,
            all_organizations=all_organizations,
            before=before,
            after=None,
            credits=None,
            started_at=datetime.now(UTC),
            ended_at=None,
            seconds=None,
            organizations=organizations,
            error=None,
            _started=time.monotonic(),
        )

    def _set(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: track_spend() fills it in")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: track_spend() fills it in")

    @property
    def finished(self) -> bool:
        """Whether the block has ended (and the record is final)."""
        return self.ended_at is not None

    def __repr__(self) -> str:
        scope = "all organizations" if self.all_organizations else self.organization
        if not self.finished:
            return f"Spend({scope!r}, before={self.before!r}, running)"
        error = "" if self.error is None else f", error={type(self.error).__name__}"
        return (
            f"Spend({scope!r}, before={self.before!r}, after={self.after!r}, "
            f"credits={self.credits!r}, seconds={self.seconds:.3f}{error})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times in ISO 8601 (UTC), errors as their one-line text."""
        return {
            "organization": self.organization,
            "all_organizations": self.all_organizations,
            "before": self.before,
            "after": self.after,
            "credits": self.credits,
            "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "seconds": self.seconds,
            "organizations": [part.to_dict() for part in self.organizations],
            "error": _error_text(self.error),
        }


def _error_text(error: StabilityError | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"


def begin_spend(organization: str | None, reading: Balance | list[OrganizationBalance]) -> Spend:
    """The record of a block about to run, from the balance read before it.

    ``reading`` is ``get_balance()``'s answer, or ``get_balances()``'s for every organization;
    an organization whose balance failed raises its error (nothing has run yet).
    """
    if not isinstance(reading, list):
        return Spend(organization, reading.credits)
    parts = []
    for entry in reading:
        if entry.balance is None:
            raise entry.error or StabilityError(f"No balance for {entry.organization.id}.")
        parts.append(
            OrganizationSpend(entry.organization.id, entry.organization.name, entry.balance.credits)
        )
    return Spend(
        None,
        credits_total(part.before for part in parts),
        organizations=tuple(parts),
        all_organizations=True,
    )


def end_spend(spend: Spend, reading: Balance | list[OrganizationBalance] | StabilityError) -> None:
    """Complete ``spend`` with the balance read after the block, or the error reading it.

    Never raises: a failed read is recorded in ``error`` (and logged), the spend left unknown.
    """
    error = reading if isinstance(reading, StabilityError) else None
    after: float | None = None
    parts = spend.organizations
    if isinstance(reading, list):
        parts, error = _parts_after(parts, reading)
        if error is None:
            after = credits_total(part.after for part in parts if part.after is not None)
    elif error is None:
        after = reading.credits  # type: ignore[union-attr]
    if error is not None:
        logger.warning("The balance after the block could not be read: %s", _error_text(error))
    spend._set(
        after=after,
        credits=None if after is None else credits_difference(spend.before, after),
        organizations=parts,
        error=error,
        ended_at=datetime.now(UTC),
        seconds=time.monotonic() - spend._started,
    )


def _parts_after(
    parts: tuple[OrganizationSpend, ...], reading: list[OrganizationBalance]
) -> tuple[tuple[OrganizationSpend, ...], StabilityError | None]:
    """Each organization's part completed from ``reading``; the first error, if any."""
    found = {entry.organization.id: entry for entry in reading}
    completed = []
    first_error: StabilityError | None = None
    for part in parts:
        entry = found.get(part.id)
        if entry is None or entry.balance is None:
            error = (entry.error if entry else None) or StabilityError(
                f"Organization {part.id} was not among the account's organizations after the block."
            )
            first_error = first_error or error
            completed.append(OrganizationSpend(part.id, part.name, part.before, error=error))
            continue
        after = entry.balance.credits
        completed.append(
            OrganizationSpend(
                part.id, part.name, part.before, after, credits_difference(part.before, after)
            )
        )
    return tuple(completed), first_error
