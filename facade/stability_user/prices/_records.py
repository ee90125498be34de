"""The values ``stability_user.prices`` hands out: a price, a formula, an estimate and its lines,
the catalogue and where it comes from. Frozen, hashable, JSON-ready through ``to_dict()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Catalogue", "Document", "Estimate", "EstimateLine", "Formula", "Price", "Unpriced"]


@dataclass(frozen=True, slots=True)
class Formula:
    """Credits that depend on a parameter: ``base + rate * <parameter>``.

    Attributes:
        base: The credits at a parameter of 0 (``17``).
        rate: The credits each unit of the parameter adds (``0.06``).
        parameter: The request's field it depends on (``"steps"``).
        default: The parameter's value when a request leaves it out (``50``).
    """

    base: float
    rate: float
    parameter: str
    default: int

    def __str__(self) -> str:
        return f"{self.base:g} + {self.rate:g} * {self.parameter}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the formula's text."""
        return {
            "text": str(self),
            "base": self.base,
            "rate": self.rate,
            "parameter": self.parameter,
            "default": self.default,
        }


@dataclass(frozen=True, slots=True)
class Price:
    """What one call of a service costs, per successful result (failed calls are free).

    Attributes:
        name: The service's short name (``"ultra"``, ``"sd3.5-large"``).
        credits: Credits per successful result, at ``parameter_value`` when there is a formula.
        method: The HTTP method of its endpoint (``"POST"``).
        path: Its endpoint (``"/v2beta/stable-image/generate/ultra"``); a service on several
            endpoints at one price gives its first in the document.
        model: The request's ``model`` this price is for, when the endpoint takes one.
        formula: How the credits depend on a parameter, when they do; ``None`` for a flat
            price, and for an overridden one (an override is flat).
        parameter_value: The value of ``formula.parameter`` the credits are for (its default
            unless given); ``None`` without a formula.
        source: Where ``credits`` comes from: Stability's document (its file name), or the
            ``STABILITY_PRICES`` file that overrides it.
        stated: What Stability's document says, quoted from the operation's Credits section.
        overridden: Whether ``credits`` is your own rate from ``STABILITY_PRICES``.
    """

    name: str
    credits: float
    method: str
    path: str
    model: str | None
    formula: Formula | None
    parameter_value: int | None
    source: str
    stated: str
    overridden: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the formula as its text (``"17 + 0.06 * steps"``) with its parameter,
        default and the value the credits are for."""
        formula = self.formula
        return {
            "name": self.name,
            "credits": self.credits,
            "method": self.method,
            "path": self.path,
            "model": self.model,
            "formula": None if formula is None else str(formula),
            "parameter": None if formula is None else formula.parameter,
            "default": None if formula is None else formula.default,
            "parameter_value": self.parameter_value,
            "source": self.source,
            "stated": self.stated,
            "overridden": self.overridden,
        }


@dataclass(frozen=True, slots=True)
class EstimateLine:
    """One service of a plan: how many calls, at what price, for how many credits.

    Attributes:
        name: The service's short name.
        count: How many calls (successful results) the plan holds.
        credits_each: Credits per call.
        credits: ``count * credits_each``, exactly.
        price: The ``Price`` the line is at.
    """

    name: str
    count: int
    credits_each: float
    credits: float
    price: Price

    @property
    def label(self) -> str:
        """``100 ultra``, ``10 stable-audio-2 at 100 steps``: how a plan names the line."""
        price = self.price
        at = (
            f" at {price.parameter_value} {price.formula.parameter}"
            if price.formula is not None
            and price.parameter_value is not None
            and price.parameter_value != price.formula.default
            else ""
        )
        return f"{self.count} {self.name}{at}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "count": self.count,
            "credits_each": self.credits_each,
            "credits": self.credits,
            "method": self.price.method,
            "path": self.price.path,
            "model": self.price.model,
            "parameter_value": self.price.parameter_value,
            "overridden": self.price.overridden,
        }


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a plan of calls costs: each service's line and their total, summed exactly.

    Give one to ``require_credits()`` to stop before a batch the balance does not cover.

    Attributes:
        lines: One per service (a service named twice is added up), in the plan's order.
        total: The credits of every line, summed exactly (to 10 decimals).
    """

    lines: tuple[EstimateLine, ...]
    total: float

    @property
    def plan(self) -> str:
        """The plan in words: ``100 ultra + 20 core``."""
        return " + ".join(line.label for line in self.lines)

    @property
    def overridden(self) -> bool:
        """Whether a line is at your own rate from ``STABILITY_PRICES``."""
        return any(line.price.overridden for line in self.lines)

    def __str__(self) -> str:
        return f"{self.plan}: {self.total:,.2f} credits"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "plan": self.plan,
            "total": self.total,
            "lines": [line.to_dict() for line in self.lines],
            "overridden": self.overridden,
        }


@dataclass(frozen=True, slots=True)
class Document:
    """The Stability document the catalogue was read from.

    Attributes:
        file: Its file name in the project (``spec/upstream/``).
        url: Where Stability publishes it.
        copied: The day (UTC, ISO 8601) the copy was made.
        sha256: The SHA-256 of the copy the catalogue was generated from.
    """

    file: str
    url: str | None
    copied: str | None
    sha256: str


@dataclass(frozen=True, slots=True)
class Unpriced:
    """An operation of the document that states no credits (result polling, retired ones).

    Attributes:
        method: Its HTTP method.
        path: Its path.
        reason: Why it has no price here.
    """

    method: str
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every price of the catalogue, at the default parameters, with your overrides applied.

    Attributes:
        prices: One per priced endpoint and model, in the document's order.
        not_priced: The operations that state no credits.
        document: The document it was read from.
        overrides: The ``STABILITY_PRICES`` file in use, if any.
    """

    prices: tuple[Price, ...]
    not_priced: tuple[Unpriced, ...]
    document: Document
    overrides: str | None

    @property
    def names(self) -> tuple[str, ...]:
        """Every service's short name, once each, in the document's order."""
        return tuple(dict.fromkeys(price.name for price in self.prices))
