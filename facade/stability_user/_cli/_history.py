"""``stability-user history``: the credits over time, from the readings the command line keeps.

Reads the local store only (``stability_user.history``), never the API: one row per day with
what was spent and added, the closing balance and a bar for the spend, then the burn rate and
the runway, or what it takes to have them. ``--json`` and ``--csv`` give the same rows.
"""

from __future__ import annotations

import argparse

from .._credits import runway_text
from .._text import csv_cell, printable
from ._arguments import as_type, endpoint_arguments
from ._output import EXIT_OK, Output, credits_text, table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..history import OrganizationHistory

__all__ = ["add_parser", "bar", "run"]

_DEFAULT_DAYS = 14
# The width of a full bar, in character cells; the largest day's spend fills it.
_BAR_WIDTH = 20
_EIGHTHS = " ▏▎▍▌▋▊▉█"
_NONE = "·"


def _days(text: str) -> int:
    from ..history import MAX_DAYS

    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_DAYS:
        raise ValueError(f"must be a whole number of days from 1 to {MAX_DAYS}, not {text!r}")
    return int(text)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "history",
        help="the credits over time: spend per day, burn rate, runway",
        description=(
            "Show what the local history of balance readings says: one row per day with the "
            "credits spent and added (a rise between two readings is a top-up, never negative "
            "spend) and the closing balance, then the burn rate over the last 7 days of "
            "readings (top-ups left out) and the runway at that rate. Nothing is sent: the "
            "readings are the ones balance, balances, measure, status and the exporter recorded."
        ),
        epilog=(
            "The history is in STABILITY_STATE_DIR, else $XDG_STATE_HOME/stability-user, else "
            "the platform's state folder; STABILITY_HISTORY=off (or --no-history) stops the "
            "recording. Without --org or --all: the default organization of the key in "
            "STABILITY_API_KEY, or every organization without a key."
        ),
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--org", metavar="ORG", help="organization id")
    scope.add_argument("--all", action="store_true", help="every organization recorded")
    parser.add_argument(
        "--days",
        type=as_type(_days),
        default=_DEFAULT_DAYS,
        metavar="N",
        help="how many days, today included (default: %(default)s)",
    )
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print JSON instead of a table")
    shape.add_argument("--csv", action="store_true", help="print the days as CSV")
    endpoint_arguments(parser)


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from ..history import read_history, state_directory
    from ._recording import show_warnings

    show_warnings(err)  # readings left out (a clock that ran ahead), in the command's words
    histories = read_history(
        args.org, all_organizations=args.all, days=args.days, base_url=args.base_url
    )
    if args.json:
        import json

        out.print(json.dumps([history.to_dict() for history in histories], indent=2))
    elif args.csv:
        _csv(out, histories)
    elif not histories:
        scope = f"organization {args.org}" if args.org else "this key's default organization"
        out.print(
            f"No readings of {scope} in the history ({state_directory()}) yet: "
            "balance, balances, measure and status record one each time they read the balance."
        )
    else:
        for index, history in enumerate(histories):
            if index:
                out.print()
            _show(out, history)
    return EXIT_OK


def _title(history: OrganizationHistory) -> str:
    if history.organization is None:
        return (
            "default organization (readings that cannot be told whose: taken before its id "
            "was known, or while it changed; `stability-user balances` names it from now on)"
        )
    organization = printable(history.organization)
    if history.name:
        return f"{printable(history.name)} ({organization})"
    return organization


def bar(spent: float, largest: float) -> str:
    """``spent`` as a bar of Unicode blocks, ``largest`` filling ``_BAR_WIDTH`` cells."""
    if spent <= 0 or largest <= 0:
        return ""
    eighths = max(1, round(spent / largest * _BAR_WIDTH * 8))
    return "█" * (eighths // 8) + _EIGHTHS[eighths % 8].strip()


def _show(out: Output, history: OrganizationHistory) -> None:
    out.print(out.bold(_title(history)))
    largest = max((day.spent for day in history.days), default=0.0)
    rows = []
    for day in history.days:
        if not day.readings:
            rows.append([day.date.isoformat(), _NONE, _NONE, _NONE, ""])
            continue
        rows.append(
            [
                day.date.isoformat(),
                credits_text(day.spent),
                credits_text(day.added) if day.added else "",
                credits_text(day.closing or 0.0),
                bar(day.spent, largest),
            ]
        )
    numbers = ("SPENT", "ADDED", "BALANCE")  # right-aligned, as figures read
    widths = [max(len(name), *(len(row[1 + i]) for row in rows)) for i, name in enumerate(numbers)]
    header = ["DAY", *(name.rjust(width) for name, width in zip(numbers, widths, strict=True)), ""]
    aligned = [[row[0], *(row[1 + i].rjust(widths[i]) for i in range(3)), row[4]] for row in rows]
    table(out, header, aligned)
    for line in _summary(history):
        out.print(line)


def _summary(history: OrganizationHistory) -> list[str]:
    rate = history.burn_rate
    if rate is None:
        return [history.too_little or ""]
    lines = [
        f"Burn rate: {credits_text(rate.credits_per_day)} credits/day over the last 7 days "
        f"(readings span {rate.covered_days:.1f} days, {rate.coverage:.0%} of them)"
    ]
    runway = history.runway
    if runway is None:
        lines.append("Runway: nothing was spent in the last 7 days")
        return lines
    when = runway.runs_out.astimezone().date().isoformat()
    span = runway_text(runway.days * 86400)
    lines.append(f"Runway: {span}: around {when} ({credits_text(runway.credits)} credits left)")
    return lines


def _csv(out: Output, histories: Sequence[OrganizationHistory]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["organization", "name", "date", "spent", "added", "closing", "readings"])
    for history in histories:
        for day in history.days:
            writer.writerow(
                [
                    csv_cell(history.organization),
                    csv_cell(history.name),
                    day.date.isoformat(),
                    day.spent,
                    day.added,
                    "" if day.closing is None else day.closing,
                    day.readings,
                ]
            )
    out.print(buffer.getvalue().rstrip("\n"))
