"""``stability-user balance``: the credits of the default or a named organization."""

from __future__ import annotations

import json

from .._constants import ORGANIZATION_ENV
from ._arguments import add_command, client_options, effective
from ._output import EXIT_BELOW_MIN, EXIT_OK, PROG, Output, credits_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from .._models import Balance

__all__ = ["add_parser", "below", "organization_argument", "overrides_of", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ._prices import as_argument

    parser = add_command(
        commands,
        "balance",
        help="credits of the default or a named organization",
        description="Show the credits of the default organization, or of --org.",
        min_credits=True,
    )
    organization_argument(parser)
    as_argument(parser)


def organization_argument(parser: argparse.ArgumentParser) -> None:
    organization = effective((ORGANIZATION_ENV,), "the account's default organization")
    parser.add_argument("--org", metavar="ORG", help=f"organization id (default: {organization})")


def below(minimum: float | None, credits: float) -> bool:
    """Whether ``credits`` is below ``--min-credits`` (never, without one)."""
    return minimum is not None and credits < minimum


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from .._client import StabilityUser

    with StabilityUser(**client_options(args, err)) as client:
        org = args.org or client.organization
        balance = client.get_balance(args.org)
    _show_balance(out, balance, org, args.json, args.as_services or [])
    if below(args.min_credits, balance.credits):
        err.print(
            f"{PROG}: {credits_text(balance.credits)} credits is below --min-credits "
            f"{credits_text(args.min_credits)}"
        )
        return EXIT_BELOW_MIN
    return EXIT_OK


def _show_balance(
    out: Output, balance: Balance, org: str | None, as_json: bool, services: list[str]
) -> None:
    calls = None
    if services:
        from ._prices import calls_of

        calls = calls_of(balance.credits, services)
    if as_json:
        # Which organization the credits are of; null for the account's default.
        shown = {"organization": org, **balance.to_dict()}
        if calls is not None:
            shown.update(calls=calls, overrides=overrides_of(services))
        out.print(json.dumps(shown))
        return
    scope = f"organization {org}" if org else "default organization"
    if calls is None:
        out.print(f"{credits_text(balance.credits)} credits ({scope})")
        return
    from ._prices import calls_text, yours

    out.print(f"{credits_text(balance.credits)} credits ({scope}): {calls_text(calls)}")
    note = yours(services)
    if note:
        out.print(note)


def overrides_of(services: list[str]) -> str | None:
    """The ``STABILITY_PRICES`` file, if one of ``services`` is priced by it."""
    from ..prices import catalogue, price

    used = any(price(name).overridden for name in services)
    return catalogue().overrides if used else None
