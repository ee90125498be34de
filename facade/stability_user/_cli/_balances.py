"""``stability-user balances``: every organization's credits, fetched concurrently."""

from __future__ import annotations

import json

from .._text import printable
from ._arguments import add_command, client_options
from ._balance import below
from ._output import (
    EXIT_API_ERROR,
    EXIT_BELOW_MIN,
    EXIT_OK,
    PROG,
    Output,
    credits_text,
    describe_error,
    table,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from .._models import OrganizationBalance

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ._prices import as_argument

    parser = add_command(
        commands,
        "balances",
        help="every organization's credits, fetched concurrently",
        description="Show every organization of the account with its credits.",
        min_credits=True,
    )
    as_argument(parser)


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from .._client import StabilityUser

    with StabilityUser(**client_options(args, err)) as client:
        results = client.get_balances()
    _show_balances(out, results, args.json, args.as_services or [])
    failed = [(result.organization.id, result.error) for result in results if result.error]
    for org, error in failed:
        err.print(f"{PROG}: {printable(org)}: {describe_error(error)}")
    if failed:  # a failure outranks a low balance: the failed organization's credits are unknown
        return EXIT_API_ERROR
    low = [
        (result.organization.id, result.balance.credits)
        for result in results
        if result.balance is not None and below(args.min_credits, result.balance.credits)
    ]
    if low:
        names = ", ".join(f"{printable(org)} ({credits_text(credits)})" for org, credits in low)
        err.print(f"{PROG}: below --min-credits {credits_text(args.min_credits)}: {names}")
        return EXIT_BELOW_MIN
    return EXIT_OK


def _show_balances(
    out: Output, results: Sequence[OrganizationBalance], as_json: bool, services: list[str]
) -> None:
    from ._prices import calls_of

    calls = [
        None if result.balance is None else calls_of(result.balance.credits, services)
        for result in results
    ]
    if as_json:
        shown = [result.to_dict() for result in results]
        if services:
            from ._balance import overrides_of

            overrides = overrides_of(services)
            for entry, counted in zip(shown, calls, strict=True):
                entry.update(calls=counted, overrides=overrides)
        out.print(json.dumps(shown, indent=2))
        return
    rows = [
        [
            printable(result.organization.id) + (" *" if result.organization.is_default else ""),
            printable(result.organization.name),
            printable(result.organization.role),
            "error" if result.balance is None else credits_text(result.balance.credits),
            *(("" if counted is None else str(counted[name])) for name in services),
        ]
        for result, counted in zip(results, calls, strict=True)
    ]
    header = ["ORGANIZATION", "NAME", "ROLE", "CREDITS", *(f"{name} calls" for name in services)]
    table(out, header, rows)
    out.print("* default organization")
    if services:
        from ._prices import yours

        note = yours(services)
        if note:
            out.print(note)
