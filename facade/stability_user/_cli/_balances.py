"""``stability-user balances``: every organization's credits, fetched concurrently."""

from __future__ import annotations

import json

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
    add_command(
        commands,
        "balances",
        help="every organization's credits, fetched concurrently",
        description="Show every organization of the account with its credits.",
        min_credits=True,
    )


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from .._client import StabilityUser

    with StabilityUser(**client_options(args, err)) as client:
        results = client.get_balances()
    _show_balances(out, results, args.json)
    failed = [(result.organization.id, result.error) for result in results if result.error]
    for org, error in failed:
        err.print(f"{PROG}: {org}: {describe_error(error)}")
    if failed:  # a failure outranks a low balance: the failed organization's credits are unknown
        return EXIT_API_ERROR
    low = [
        (result.organization.id, result.balance.credits)
        for result in results
        if result.balance is not None and below(args.min_credits, result.balance.credits)
    ]
    if low:
        names = ", ".join(f"{org} ({credits_text(credits)})" for org, credits in low)
        err.print(f"{PROG}: below --min-credits {credits_text(args.min_credits)}: {names}")
        return EXIT_BELOW_MIN
    return EXIT_OK


def _show_balances(out: Output, results: Sequence[OrganizationBalance], as_json: bool) -> None:
    if as_json:
        out.print(json.dumps([result.to_dict() for result in results], indent=2))
        return
    rows = [
        [
            result.organization.id + (" *" if result.organization.is_default else ""),
            result.organization.name,
            result.organization.role,
            "error" if result.balance is None else credits_text(result.balance.credits),
        ]
        for result in results
    ]
    table(out, ["ORGANIZATION", "NAME", "ROLE", "CREDITS"], rows)
    out.print("* default organization")
