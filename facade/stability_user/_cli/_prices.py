"""``stability-user prices [NAME...]``: what each call costs, from Stability's own document.

The catalogue ``make generate`` reads from the Credits sections of Stability's v2beta
document, with ``STABILITY_PRICES`` over it; nothing is asked of the API.
"""

from __future__ import annotations

import json

from .._constants import PRICES_ENV
from ._output import EXIT_OK, Output, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from ..prices import Catalogue, Price

__all__ = [
    "add_parser",
    "as_argument",
    "calls_of",
    "calls_text",
    "overrides_line",
    "price_text",
    "run",
    "selected",
    "yours",
]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "prices",
        help="what each call costs, from Stability's own API document",
        description=(
            "Show the credits each service costs per successful result (failed calls are free), "
            "as Stability's v2beta API document states them, with the document's date and "
            f"SHA-256; {PRICES_ENV}=FILE (TOML: [prices] name = credits) puts your own rates "
            "over them. Asks nothing of the API."
        ),
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="services to show (names such as ultra or core, or endpoint paths); default: all",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def as_argument(parser: argparse.ArgumentParser) -> None:
    """``--as NAME``: a balance also in calls of a service (``balance``, ``balances``)."""
    from ._arguments import service

    parser.add_argument(
        "--as",
        dest="as_services",
        action="append",
        type=service,
        metavar="NAME",
        help="also show each balance in calls of NAME (a service of `stability-user prices`, "
        "such as ultra); repeat it for more",
    )


def calls_of(credits: float, names: Sequence[str]) -> dict[str, int]:
    """How many whole calls of each of ``names`` ``credits`` pay for."""
    from ..prices import calls_for

    return {name: calls_for(credits, name) for name in names}


def calls_text(calls: dict[str, int]) -> str:
    """``15 ultra or 41 core calls`` (``1 ultra call``)."""
    text = " or ".join(f"{count} {name}" for name, count in calls.items())
    return text + (" call" if list(calls.values()) == [1] else " calls")


def yours(names: Sequence[str]) -> str | None:
    """The line saying which of ``names`` are at your own rates, or ``None``."""
    from ..prices import catalogue, price

    overrides = catalogue().overrides
    used = [name for name in dict.fromkeys(names) if price(name).overridden]
    if overrides is None or not used:
        return None
    return f"Your prices from {PRICES_ENV}={overrides}: {', '.join(used)}."


def price_text(credits: float) -> str:
    """A price as Stability writes it: ``8``, ``6.5``, ``1,250``."""
    return f"{credits:,.10f}".rstrip("0").rstrip(".")


def _credits_cell(price: Price, document_credits: dict[tuple[str, str | None], float]) -> str:
    if price.overridden:
        stated = document_credits.get((price.path, price.model))
        return f"{price_text(price.credits)} (yours; the document: {price_text(stated or 0)})"
    formula = price.formula
    if formula is None:
        return price_text(price.credits)
    return f"{formula} ({price_text(price.credits)} at {formula.default} {formula.parameter})"


def selected(catalogue: Catalogue, names: Sequence[str]) -> list[Price]:
    """The catalogue's prices of ``names`` (services or paths; all when none), each checked."""
    if not names:
        return list(catalogue.prices)
    from ..prices import price

    for name in names:
        price(name)  # an unknown name raises, with the closest ones
    wanted = set(names)
    return [p for p in catalogue.prices if p.name in wanted or p.path in wanted]


def overrides_line(catalogue: Catalogue, prices: Sequence[Price]) -> str | None:
    """The line that says which prices are yours, or ``None``."""
    yours = sorted({price.name for price in prices if price.overridden})
    if catalogue.overrides is None or not yours:
        return None
    return f"Your prices from {PRICES_ENV}={catalogue.overrides}: {', '.join(yours)}."


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from ..prices import catalogue as read_catalogue

    catalogue = read_catalogue()
    prices = selected(catalogue, args.names)
    if args.json:
        out.print(json.dumps([price.to_dict() for price in prices], indent=2))
        return EXIT_OK
    document_credits = _document_credits() if catalogue.overrides else {}
    rows = [
        [
            price.name,
            f"{price.method} {price.path}",
            price.model or "-",
            _credits_cell(price, document_credits),
        ]
        for price in prices
    ]
    table(out, ["SERVICE", "ENDPOINT", "MODEL", "CREDITS"], rows)
    document = catalogue.document
    out.print(
        f"Credits per successful result (failed calls are free), from Stability's "
        f"{document.file} copied {document.copied} (sha256 {document.sha256[:16]}), "
        f"published at {document.url}."
    )
    yours = overrides_line(catalogue, prices)
    if yours:
        out.print(yours)
    if not args.names and catalogue.not_priced:
        out.print("Not priced in the document:")
        for item in catalogue.not_priced:
            cents = " (priced in cents instead)" if "in cents" in item.reason else ""
            out.print(f"  {item.method} {item.path}{cents}")
    return EXIT_OK


def _document_credits() -> dict[tuple[str, str | None], float]:
    """What the document states, at the default parameters, where your prices replace it."""
    from ..prices import catalogue as read_catalogue

    return {(p.path, p.model): p.credits for p in read_catalogue(overrides=False).prices}
