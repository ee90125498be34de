"""``stability-user estimate COUNT NAME [COUNT NAME...]``: what a plan of calls costs, against
the balance now.

The lines and their total from the price catalogue (``STABILITY_PRICES`` over it), the balance
of the organization, and what is left or short, in credits and in calls. Exit 0 when the balance
covers the plan (and ``--min-credits`` more), 3 when it does not, 1 when the balance cannot be
read, 2 for a usage error. Without a key it prints the cost alone, says no balance was read,
and exits 0; with ``--min-credits``, which asks for the balance, a missing key is a usage error.
"""

from __future__ import annotations

import json
import math

from ._arguments import add_command, client_options, credits
from ._balance import organization_argument
from ._output import EXIT_API_ERROR, EXIT_BELOW_MIN, EXIT_OK, PROG, Output, credits_text, table
from ._prices import price_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from .._exceptions import StabilityError
    from ..prices import Estimate

__all__ = ["add_parser", "in_calls", "run", "short_in_calls"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        commands,
        "estimate",
        help="what a plan of calls costs, against the balance",
        description=(
            "Show what COUNT calls of each NAME cost (e.g. '100 ultra 20 core'; names as "
            "`stability-user prices` lists them), per successful result, and whether the "
            "balance covers it: what is left or short, in credits and in calls. Exit status: "
            "0 it does (or no key: the cost alone), 3 it does not, 1 the balance cannot be read, "
            "2 a usage error."
        ),
    )
    organization_argument(parser)
    parser.add_argument(
        "--min-credits",
        type=credits,
        metavar="N",
        help=f"also keep N credits: exit with status {EXIT_BELOW_MIN} unless the balance covers "
        "the plan and N more",
    )
    parser.add_argument(
        "plan", nargs="+", metavar="COUNT NAME", help="how many calls of which service"
    )


def in_calls(credits: float, estimate: Estimate) -> dict[str, int]:
    """How many more calls of each of the plan's services ``credits`` pay for."""
    from ..prices import calls_for

    return {line.name: calls_for(max(credits, 0.0), line.price) for line in estimate.lines}


def short_in_calls(short: float, estimate: Estimate) -> dict[str, int]:
    """How many calls of each of the plan's services ``short`` credits are worth, rounded up."""
    from decimal import Decimal

    return {
        line.name: math.ceil(Decimal(repr(short)) / Decimal(repr(line.credits_each)))
        for line in estimate.lines
        if line.credits_each > 0
    }


def _calls_text(calls: dict[str, int], more: str = "") -> str:
    return " or ".join(f"{count} {more}{name}" for name, count in calls.items()) + " calls"


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from .._exceptions import ConfigurationError, MissingAPIKeyError, StabilityError
    from ..prices import estimate
    from ..prices._plan import plan_from_words

    planned = estimate(plan_from_words(args.plan))  # usage errors before anything is sent
    balance: float | None = None
    organization: str | None = None
    problem: StabilityError | None = None
    try:
        from .._client import StabilityUser

        with StabilityUser(**client_options(args, err)) as client:
            organization = args.org or client.organization
            try:
                balance = client.get_balance(args.org).credits
            except ConfigurationError:
                raise  # a usage error (status 2), not a balance that cannot be read
            except StabilityError as error:
                problem = error
    except MissingAPIKeyError as missing:
        if args.min_credits is not None:
            raise  # the balance was asked for: a usage error (status 2)
        problem = missing
    required = planned.total + (args.min_credits or 0.0)
    report = _report(planned, balance, organization, args.min_credits, problem)
    if args.json:
        out.print(json.dumps(report, indent=2))
    else:
        _show(out, planned, report)
    if balance is None:
        if isinstance(problem, MissingAPIKeyError):
            return EXIT_OK
        from ._output import describe_error

        err.print(f"{PROG}: error: {describe_error(problem)}")  # type: ignore[arg-type]
        return EXIT_API_ERROR
    return EXIT_OK if balance >= required else EXIT_BELOW_MIN


def _report(
    planned: Estimate,
    balance: float | None,
    organization: str | None,
    minimum: float | None,
    problem: StabilityError | None,
) -> dict[str, Any]:
    from .._credits import credits_difference
    from ..prices import catalogue

    required = planned.total + (minimum or 0.0)
    report: dict[str, Any] = {
        **planned.to_dict(),
        "min_credits": minimum,
        "required": required,
        "organization": organization,
        "balance": balance,
        "left": None,
        "short": None,
        "enough": None,
        "left_in_calls": None,
        "short_in_calls": None,
        "overrides": catalogue().overrides if planned.overridden else None,
        "no_balance": None if problem is None else _reason(problem),
    }
    if balance is not None:
        left = credits_difference(balance, planned.total)
        short = max(0.0, credits_difference(required, balance))
        report.update(
            left=left,
            short=short,
            enough=short == 0,
            left_in_calls=in_calls(left, planned),
            short_in_calls=short_in_calls(short, planned) if short else None,
        )
    return report


def _reason(problem: StabilityError) -> str:
    from .._exceptions import MissingAPIKeyError
    from ._output import describe_error

    if isinstance(problem, MissingAPIKeyError):
        return "STABILITY_API_KEY is not set"
    return describe_error(problem)


def _show(out: Output, planned: Estimate, report: dict[str, Any]) -> None:
    rows = [
        [
            line.label.partition(" ")[2],
            str(line.count),
            price_text(line.credits_each),
            credits_text(line.credits),
        ]
        for line in planned.lines
    ]
    rows.append(["total", "", "", credits_text(planned.total)])
    table(out, ["SERVICE", "CALLS", "EACH", "CREDITS"], rows)
    if report["overrides"]:
        yours = ", ".join(
            dict.fromkeys(line.name for line in planned.lines if line.price.overridden)
        )
        out.print(f"Your prices from STABILITY_PRICES={report['overrides']}: {yours}.")
    balance = report["balance"]
    if balance is None:
        out.print(f"No balance read ({report['no_balance']}): the cost alone.")
        return
    organization = report["organization"]
    scope = f"Organization {organization}" if organization else "The default organization"
    minimum = report["min_credits"]
    kept = f" and {credits_text(minimum)} more (--min-credits)" if minimum else ""
    if report["short"]:
        out.print(
            f"{scope} has {credits_text(balance)} credits: short by "
            f"{credits_text(report['short'])} for the plan{kept} "
            f"({_calls_text(report['short_in_calls'])})."
        )
        return
    out.print(
        f"{scope} has {credits_text(balance)} credits: {credits_text(report['left'])} left "
        f"after the plan ({_calls_text(report['left_in_calls'], 'more ')})."
    )
