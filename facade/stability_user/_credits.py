"""Sums and differences of credits as a person would write them.

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

__all__ = ["CREDITS_DECIMALS", "credits_difference", "credits_text", "credits_total"]

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
