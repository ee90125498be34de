"""Plans of calls: their counts checked, their cost summed exactly, a balance in calls.

A plan is ``{"ultra": 100, "core": 20}``, pairs (``[("ultra", 100), ...]``, a ``Price`` in
place of a name for one at other parameters), or the words people type (``"100 ultra 20
core"``). Counts are whole numbers from 0 to ``MAX_COUNT``; anything else is a
``ConfigurationError`` before anything is sent. Sums and products are exact decimals (three
``sd3.5-large`` at 6.5 are 19.5, ten ``erase`` at 0.1 are 1), as ``Spend`` sums credits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from .._credits import credits_total
from .._exceptions import ConfigurationError
from ._catalogue import lookup
from ._records import Estimate, EstimateLine, Price

__all__ = ["MAX_COUNT", "Plan", "calls_for", "check_count", "estimate", "plan_from_words"]

MAX_COUNT = 1_000_000_000
"""The most calls one line of a plan may hold: a billion, far past any batch, far below where a
count stops being one (``1e400``)."""

Plan = Mapping[str, int] | Iterable[tuple[str | Price, int]] | str
"""What ``estimate()`` takes: ``{"ultra": 100, "core": 20}``, pairs (``[("ultra", 100)]``, a
``Price`` in place of a name), or words (``"100 ultra 20 core"``)."""


def check_count(count: object, name: str) -> int:
    """``count`` if it is a whole number from 0 to ``MAX_COUNT``, else ``ConfigurationError``."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        raise ConfigurationError(
            f"The count of {name} must be a whole number from 0 to {MAX_COUNT:,}, not {count!r}.",
            cli_message=f"the count of {name} must be a whole number from 0 to {MAX_COUNT:,}, "
            f"not {count!r}",
        )
    return count


def plan_from_words(words: Sequence[str]) -> list[tuple[str, int]]:
    """``["100", "ultra", "20", "core"]`` as pairs; a count that is not a plain whole number
    (``-1``, ``2.5``, ``ten``, ``1e400``) is a ``ConfigurationError``."""
    if not words or len(words) % 2:
        raise ConfigurationError(
            f"A plan is COUNT NAME pairs, such as '100 ultra 20 core', not {' '.join(words)!r}.",
            cli_message="give the plan as COUNT NAME pairs, such as 100 ultra 20 core",
        )
    pairs = []
    for count, name in zip(words[::2], words[1::2], strict=True):
        plain = count.isascii() and count.isdigit() and len(count) <= len(str(MAX_COUNT))
        value: object = int(count) if plain else count
        pairs.append((name, check_count(value, name)))
    return pairs


def _pairs(plan: Plan) -> list[tuple[str | Price, int]]:
    if isinstance(plan, str):
        return list(plan_from_words(plan.split()))
    if isinstance(plan, Mapping):
        return list(plan.items())
    try:
        pairs = list(plan)
    except TypeError:
        raise ConfigurationError(
            f"A plan is a mapping of names to counts, pairs or words, not {type(plan).__name__}."
        ) from None
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ConfigurationError(f"A plan's pairs are (name, count), not {pair!r}.")
    return pairs


def _price_of(name: str | Price) -> Price:
    return name if isinstance(name, Price) else lookup(name, {})


def _times(count: int, credits: float) -> float:
    from decimal import Decimal

    return float(count * Decimal(repr(credits)))


def estimate(plan: Plan) -> Estimate:
    """What ``plan`` costs: a line per service and the total, summed exactly.

    Args:
        plan: ``{"ultra": 100, "core": 20}``; or pairs, a ``Price`` (``price("stable-audio-2",
            steps=100)``) in place of a name for one at other parameters; or words,
            ``"100 ultra 20 core"``. A service named twice is added up.

    Raises:
        ConfigurationError: An empty plan, an unknown name (the closest named), a count that is
            not a whole number from 0 to ``MAX_COUNT``, or an unusable ``STABILITY_PRICES``.
    """
    pairs = _pairs(plan)
    if not pairs:
        raise ConfigurationError("A plan names at least one service.")
    counts: dict[Price, int] = {}
    for name, count in pairs:
        price = _price_of(name)
        checked = check_count(count, price.name)
        counts[price] = check_count(counts.get(price, 0) + checked, price.name)
    lines = tuple(
        EstimateLine(price.name, count, price.credits, _times(count, price.credits), price)
        for price, count in counts.items()
    )
    return Estimate(lines, credits_total(line.credits for line in lines))


def calls_for(credits: float, name: str | Price, /, **parameters: str | int) -> int:
    """How many whole calls of ``name`` ``credits`` pay for (0 for a balance below one call).

    Args:
        credits: A balance, or any number of credits.
        name: A service's name or an endpoint's path (or a ``Price``).
        parameters: As for ``price()``.

    Raises:
        ConfigurationError: ``credits`` is not a finite number, or the name or parameters are
            not the catalogue's.
    """
    try:
        balance = float(credits) if isinstance(credits, int | float) else math.nan
    except OverflowError:  # an integer beyond any float
        balance = math.inf
    if isinstance(credits, bool) or not math.isfinite(balance):
        raise ConfigurationError(f"credits must be a finite number, not {credits!r}.")
    if isinstance(name, Price):
        if parameters:
            raise ConfigurationError("A Price carries its parameters: give none with it.")
        each = name.credits
    else:
        each = lookup(name, parameters).credits
    if balance <= 0:
        return 0
    from decimal import Decimal, localcontext

    # Exact whatever the magnitudes: a float has at most 17 significant digits and exponents
    # within 10**±324, so no quotient of two of them has more than about 650 digits (the
    # default context's 28 raised DivisionImpossible for calls_for(1e30, "ultra")).
    with localcontext(prec=700):
        return int(Decimal(repr(balance)) // Decimal(repr(each)))
