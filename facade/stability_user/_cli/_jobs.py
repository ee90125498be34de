"""``stability-user jobs``: who spent the credits, from the ledger ``measure`` keeps.

Reads the local store only (``stability_user.history.read_jobs``), never the API: the jobs newest
first, or with ``--by`` their totals per label, month or both. ``--json`` and ``--csv`` give the
same rows; the CSV is for a spreadsheet (numbers as numbers, ISO 8601 times, text cells that
would start a formula made inert), the table for a terminal (names from outside escaped).
"""

from __future__ import annotations

import argparse

from .._text import csv_cell, printable
from ._arguments import as_type, endpoint_arguments
from ._output import EXIT_OK, Output, credits_text, table
from ._types import date, label, totals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..history import Job, JobTotal

__all__ = ["add_parser", "run"]

# The CSV's columns for jobs, in order; each a field of Job (``overlaps`` as ids joined by
# spaces), with ``month`` (local time) for a spreadsheet's pivot.
_JOB_COLUMNS = (
    "id",
    "started_at",
    "ended_at",
    "month",
    "label",
    "organization",
    "name",
    "program",
    "exit_status",
    "raised",
    "before",
    "after",
    "spent",
    "expected",
    "attributed",
    "estimated",
    "overlaps",
    "note",
)
_TOTAL_COLUMNS = ("jobs", "spent", "unknown", "overlapping", "estimated")
_NONE = "-"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "jobs",
        help="who spent it: the jobs measure recorded, by label and month",
        description=(
            "List the jobs of the local ledger, newest first: each `measure` run (and each "
            "track_spend() block that asked), with its label, program, what it spent, how it "
            "ended, and the jobs of the same organization it overlapped (the balance cannot "
            "tell overlapping jobs' spends apart). --by gives the totals instead. Nothing is "
            "sent."
        ),
        epilog=(
            "Dates are days, YYYY-MM-DD, in local time, both included. Without --org or --all: "
            "the default organization of the key in STABILITY_API_KEY, or every organization "
            "without a key."
        ),
    )
    parser.add_argument("--label", type=as_type(label), metavar="NAME", help="this label's only")
    parser.add_argument(
        "--since", type=as_type(date), metavar="DATE", help="the jobs started on DATE or later"
    )
    parser.add_argument(
        "--until", type=as_type(date), metavar="DATE", help="the jobs started on DATE or earlier"
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--org", metavar="ORG", help="organization id")
    scope.add_argument("--all", action="store_true", help="every organization recorded")
    parser.add_argument(
        "--by",
        type=as_type(totals),
        metavar="label|month|label,month",
        help="print the totals per label, per month (local time) or both: jobs, spent, jobs "
        "whose spend is unknown, spend in overlapping jobs",
    )
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print JSON instead of a table")
    shape.add_argument("--csv", action="store_true", help="print CSV for a spreadsheet")
    endpoint_arguments(parser)


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from ..history import job_totals, read_jobs, state_directory

    jobs = read_jobs(
        label=args.label,
        organization=args.org,
        all_organizations=args.all,
        since=args.since,
        until=args.until,
        base_url=args.base_url,
    )
    if args.by:
        sums = job_totals(jobs, by=args.by)
        if args.json:
            _json(out, [total.to_dict() for total in sums])
        elif args.csv:
            by = sums[0].by if sums else tuple(args.by.split(","))
            _csv(out, [*by, *_TOTAL_COLUMNS], [_total_cells(total) for total in sums])
        elif sums:
            _show_totals(out, sums)
        else:
            out.print(_nothing(state_directory()))
    elif args.json:
        _json(out, [job.to_dict() for job in jobs])
    elif args.csv:
        _csv(out, list(_JOB_COLUMNS), [_job_cells(job) for job in jobs])
    elif jobs:
        _show(out, jobs)
    else:
        out.print(_nothing(state_directory()))
    return EXIT_OK


def _nothing(folder: str) -> str:
    return (
        f"No jobs in the history ({folder}) match: `stability-user measure --label NAME -- "
        "COMMAND` records one."
    )


def _json(out: Output, rows: list[dict[str, object]]) -> None:
    import json

    out.print(json.dumps(rows, indent=2))


def _csv(out: Output, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    out.print(buffer.getvalue().rstrip("\n"))


def _job_cells(job: Job) -> list[object]:
    fields = job.to_dict()
    fields["started_at"] = job.started_at.isoformat(timespec="seconds")
    fields["ended_at"] = job.ended_at.isoformat(timespec="seconds")
    fields["month"] = job.month
    fields["overlaps"] = " ".join(str(other) for other in job.overlaps)
    return [fields[column] for column in _JOB_COLUMNS]


def _total_cells(total: JobTotal) -> list[object]:
    fields = total.to_dict()
    return [fields[column] for column in (*total.by, *_TOTAL_COLUMNS)]


def _status(job: Job) -> str:
    if job.exit_status is not None:
        return str(job.exit_status)
    return "raised" if job.raised else "ok"


def _spent(job: Job) -> str:
    if job.attributed is None:
        return "unknown"
    return ("~" if job.estimated else "") + credits_text(job.attributed)


def _show(out: Output, jobs: Sequence[Job]) -> None:
    # The organization is a column only where the jobs are of more than one (--all, --org).
    several = len({job.organization or job.account for job in jobs}) > 1
    rows = []
    for job in jobs:
        row = [
            str(job.id),
            job.started_at.astimezone().strftime("%Y-%m-%d %H:%M"),
            printable(job.label or _NONE),
            printable(job.program),
            _spent(job),
            _status(job),
            ", ".join(str(other) for other in job.overlaps),
        ]
        if several:
            row.insert(3, printable(job.organization or "default"))
        rows.append(row)
    spent = 5 if several else 4
    width = max(len("SPENT"), *(len(row[spent]) for row in rows))
    for row in rows:
        row[spent] = row[spent].rjust(width)
    header = ["JOB", "STARTED", "LABEL", "PROGRAM", "SPENT".rjust(width), "STATUS", "OVERLAPPED"]
    if several:
        header.insert(3, "ORGANIZATION")
    table(out, header, rows)
    if any(job.overlaps for job in jobs):
        out.print(
            "Overlapping jobs of one organization share their spend: each counts the "
            "organization's whole change over its run."
        )
    if any(job.estimated for job in jobs):
        out.print("~ an estimated part of the overlap's spend, in proportion to expected costs.")


def _show_totals(out: Output, sums: Sequence[JobTotal]) -> None:
    by = sums[0].by
    names = ("JOBS", "SPENT", "UNKNOWN", "OVERLAPPING")
    figures = [
        [
            str(total.jobs),
            credits_text(total.spent),
            str(total.unknown),
            credits_text(total.overlapping),
        ]
        for total in sums
    ]
    widths = [max(len(name), *(len(row[i]) for row in figures)) for i, name in enumerate(names)]
    rows = [
        [
            *(
                printable(total.label or _NONE) if name == "label" else total.month or ""
                for name in by
            ),
            *(cell.rjust(width) for cell, width in zip(row, widths, strict=True)),
        ]
        for total, row in zip(sums, figures, strict=True)
    ]
    header = [name.upper() for name in by]
    header += [name.rjust(width) for name, width in zip(names, widths, strict=True)]
    table(out, header, rows)
