"""Sums and differences of credits as a person would write them, and the rule an amount asked for
follows (``check_credits``).

Credits are decimal amounts (``125.5``, ``0.2``) held in binary floats, so ``0.1 + 0.2`` is
``0.30000000000000004`` and ``0.3 - 0.1`` falls short of ``0.2``. What the API says is passed
through untouched; what we compute from it (totals, spend, the stand-in's debits) is summed
exactly (``math.fsum``) and rounded to ``CREDITS_DECIMALS`` places, far below a credit's smallest
price and far above a float's noise.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "CREDITS_DECIMALS",
    "check_credits",
    "credits_difference",
    "credits_text",
    "credits_total",
    "runway_text",
]

CREDITS_DECIMALS = 10


def credits_total(amounts: Iterable[float]) -> float:
    """The sum of ``amounts``, exact to ``CREDITS_DECIMALS`` places (0.0 for none)."""
    from math import fsum  # here: a prompt's ``status`` shows credits and never sums them

    return round(fsum(amounts), CREDITS_DECIMALS) + 0.0  # + 0.0: never -0.0


def credits_difference(minuend: float, subtrahend: float) -> float:
    """``minuend - subtrahend``, exact to ``CREDITS_DECIMALS`` places."""
    return credits_total((minuend, -subtrahend))


def credits_text(value: float) -> str:
    """Credits as every command and notice shows them: ``1,072.50``."""
    return f"{value:,.2f}"


def check_credits(value: object, name: str = "minimum") -> float:
    """``value`` as a number of credits: finite and not negative, else ``ConfigurationError``
    naming the argument ``name`` (``require_credits()``'s minimum; ``track_spend()``'s budget
    and expected cost follow the same rule)."""
    import math

    from ._exceptions import ConfigurationError

    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number of credits, not {type(value).__name__}.")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float, such as 10**400
        raise ConfigurationError(
            f"{name} must be a finite number >= 0, not an integer too large for a float."
        ) from None
    if not (0 <= number < math.inf):
        raise ConfigurationError(f"{name} must be a finite number >= 0, not {value!r}.")
    return number


def runway_text(seconds: float, *, short: bool = False) -> str:
    """How long credits last, as every command and notice says it (``history``, ``status``'s
    ``{runway}``, ``watch``'s notices): whole days from a day on, whole hours under a day,
    rounded down, so that the credits last at least that long. ``short``: ``9d``, ``5h``;
    else ``about 9 days``, ``about 5 hours``, ``less than an hour``."""
    left = max(0.0, seconds)
    count, unit, word = (
        (int(left // 86400), "d", "day") if left >= 86400 else (int(left // 3600), "h", "hour")
    )
    if short:
        return f"{count}{unit}"
    if count == 0:
        return "less than an hour"
    return f"about {count} {word}{'s' * (count != 1)}"
