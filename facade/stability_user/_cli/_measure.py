"""``stability-user measure -- COMMAND``: what a command spends, from the balance either side.

The command inherits stdin, stdout and stderr; ``measure`` adds one line on stderr after it,
and exits with the command's status (128+N when signal N ended it). Every signal that would end
``measure`` (HUP, INT, QUIT, TERM, USR1, USR2) reaches the command instead, and ``measure`` waits
for it to end, then reports; one ignored when ``measure`` started stays ignored, for the command
too. A balance that cannot be read before: the command is not started (1). Below
``--min-credits`` (plus the ``--expect``ed cost, when given), or a ``--json`` file that could not
be written: not started either (3, 2). A balance that cannot be read after: the command's status
stands and the spend is unknown. ``--expect "100 ultra 20 core"`` adds what the plan should
cost, from the price catalogue, and how far the spend is from it, in percent; the job's ledger
entry keeps it, and a ``--budget`` counts it before the command starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import suppress

from ._arguments import (
    as_type,
    client_options,
    credits,
    endpoint_arguments,
    minimum_arguments,
    timeout_arguments,
)
from ._output import EXIT_API_ERROR, EXIT_BELOW_MIN, EXIT_USAGE, PROG, Output, credits_text
from ._recording import history_argument, recording
from ._types import label

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any

    from .._budget import Spend
    from .._exceptions import BudgetExceededError
    from ..history._recorder import JobRecorder
    from ..prices import Estimate

__all__ = ["add_parser", "run"]

# What a shell answers for a command it cannot find or cannot execute.
_EXIT_NOT_FOUND = 127
_EXIT_NOT_EXECUTABLE = 126


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "measure",
        help="run a command and say how many credits it spent",
        usage=f"{PROG} measure [--org ORG | --all] [--label NAME [--budget N [--per PERIOD]]] "
        "[--note TEXT] [--expect PLAN] [--min-credits N] [--json FILE] [options] "
        "-- COMMAND [ARG...]",
        description=(
            "Read the balance, run COMMAND (stdin, stdout and stderr are its own), read the "
            "balance again, and print on stderr what it spent, the balances either side and how "
            "long it ran. Exits with COMMAND's status. The spend is the organization's change "
            "over the run: other jobs spending from it meanwhile are counted too. Each run is "
            f"recorded as a job in the local history: see `{PROG} jobs`."
        ),
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--org", metavar="ORG", help="organization id (default: the default one)")
    scope.add_argument("--all", action="store_true", help="every organization, each and in total")
    parser.add_argument(
        "--label",
        type=as_type(label),
        metavar="NAME",
        help="record the job under NAME (1 to 64 of A-Z a-z 0-9 _ . : / -, e.g. client/acme)",
    )
    parser.add_argument(
        "--note", metavar="TEXT", help="record TEXT with the job (the command line is not kept)"
    )
    parser.add_argument(
        "--budget",
        type=credits,
        metavar="N",
        help=f"do not start COMMAND (status {EXIT_BELOW_MIN}) when the label's spend in the "
        "period would pass N credits",
    )
    parser.add_argument(
        "--per",
        choices=("day", "week", "month"),
        help="the budget's period: a calendar day, week or month, local time (default: month)",
    )
    parser.add_argument(
        "--expect",
        metavar="PLAN",
        help="what the command should spend, as COUNT NAME pairs ('100 ultra 20 core', from "
        "`stability-user prices`): the report adds it and the difference in percent; with "
        "--min-credits N, the command starts only when the balance covers it plus N; with "
        "--budget, it counts against the budget before the command starts",
    )
    minimum_arguments(parser)
    parser.add_argument(
        "--json",
        metavar="FILE",
        dest="json_file",
        help="also write the spend, the command and its status to FILE, as JSON",
    )
    endpoint_arguments(parser)
    timeout_arguments(parser)
    history_argument(parser)
    parser.add_argument("program", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    import logging

    from .._client import StabilityUser
    from .._logging import logger

    # The report line says when the balance after could not be read: logging's last resort
    # would print track_spend()'s warning as a second line (STABILITY_LOG still shows it).
    logger.addHandler(logging.NullHandler())

    command = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not command:
        err.print(f"{PROG} measure: error: no command to run: {PROG} measure -- COMMAND [ARG...]")
        return EXIT_USAGE
    problem = _unwritable(args.json_file) if args.json_file else None
    if problem:  # found before the command spends anything, not after
        err.print(f"{PROG} measure: error: --json {args.json_file}: {problem}")
        return EXIT_USAGE
    if args.per is not None and args.budget is None:
        err.print(f"{PROG} measure: error: --per is the period of --budget: give both")
        return EXIT_USAGE
    from .._exceptions import BudgetExceededError
    from .._job import plan_job

    expected = _expected(args.expect) if args.expect is not None else None
    plan = plan_job(
        label=args.label,
        budget=args.budget,
        per=args.per or "month",
        note=args.note,
        expected=None if expected is None else expected.total,
        program=command[0],
    )
    with StabilityUser(**client_options(args, err)) as client:
        job = client._job(plan, record=recording(args))
        try:
            with client._tracking(args.org, args.all, job) as spend:
                status = _run(command, spend, job, err, minimum=args.min_credits, expected=expected)
        except BudgetExceededError as refused:
            err.print(f"{PROG}: {_over_budget(refused)}; the command was not started")
            return EXIT_BELOW_MIN
    if status in _NOT_RUN:
        return _NOT_RUN[status]
    err.print(f"{PROG}: {_summary(spend, status, expected)}")
    if args.json_file:
        record = {
            **spend.to_dict(),
            "command": command,
            "exit_status": status,
            "label": plan.label,
            "note": plan.note,
            "jobs": [] if job is None else job.ids,  # its ids in the ledger (`jobs --json`)
        }
        if expected is not None:
            record["expected"] = _against(spend, expected)
        if not _write_record(args.json_file, record, err):
            return status or EXIT_API_ERROR
    return status


def _expected(text: str) -> Estimate:
    """``--expect``'s plan, priced; a usage error (status 2) before anything is read or run."""
    from ..prices import estimate
    from ..prices._plan import plan_from_words

    return estimate(plan_from_words(text.split()))


def _against(spend: Spend, expected: Estimate) -> dict[str, Any]:
    """The expected cost, and how far the spend is from it (``None`` when it cannot tell)."""
    from .._credits import credits_difference

    difference = percent = None
    if spend.credits is not None:
        difference = credits_difference(spend.credits, expected.total)
        if expected.total:
            percent = round(difference / expected.total * 100, 2)
    return {**expected.to_dict(), "difference": difference, "difference_percent": percent}


# What _run answers when the command did not run, and the status measure then exits with.
_BELOW_MIN, _CANNOT_RUN, _NOT_FOUND = -1, -2, -3
_NOT_RUN = {
    _BELOW_MIN: EXIT_BELOW_MIN,
    _CANNOT_RUN: _EXIT_NOT_EXECUTABLE,
    _NOT_FOUND: _EXIT_NOT_FOUND,
}


def _run(
    command: list[str],
    spend: Spend,
    job: JobRecorder | None,
    err: Output,
    *,
    minimum: float | None,
    expected: Estimate | None,
) -> int:
    """Run ``command`` unless the balance is below ``minimum`` (plus the ``expected`` cost);
    its status, or one of ``_NOT_RUN``'s when it did not run (the job is then not recorded)."""
    needed = minimum
    if minimum is not None and expected is not None:
        from .._credits import credits_total

        needed = credits_total((minimum, expected.total))
    low = _below_minimum(spend, needed)
    if low:
        plus = (
            ""
            if expected is None
            else f" plus the expected {credits_text(expected.total)} ({expected.plan})"
        )
        err.print(
            f"{PROG}: below --min-credits {credits_text(minimum or 0.0)}{plus}: {low}; "
            "the command was not started"
        )
        status = _BELOW_MIN
    else:
        try:
            status = _run_command(command)
        except OSError as error:  # nothing ran: nothing to report
            err.print(f"{PROG}: error: cannot run {command[0]!r}: {error.strerror or error}")
            status = _NOT_FOUND if isinstance(error, FileNotFoundError) else _CANNOT_RUN
    if job is not None and status in _NOT_RUN:
        job.discard()
    elif job is not None:
        job.exit_status = status
    return status


def _over_budget(refused: BudgetExceededError) -> str:
    """The line that says why a budget kept the command from starting."""
    from .._job import THIS_PERIOD

    this = THIS_PERIOD[refused.per]
    expected = "" if refused.expected is None else f" + {credits_text(refused.expected)} expected"
    return (
        f"label {refused.label}: {credits_text(refused.spent)} credits spent {this}{expected}, "
        f"over its --budget {credits_text(refused.budget)} a {refused.per}"
    )


def _below_minimum(spend: Spend, minimum: float | None) -> str:
    """What is below ``minimum`` (``org (credits)``, or the credits), or ``""``."""
    if minimum is None:
        return ""
    if spend.all_organizations:
        return ", ".join(
            f"{part.id} ({credits_text(part.before)})"
            for part in spend.organizations
            if part.before < minimum
        )
    return f"{credits_text(spend.before)} credits" if spend.before < minimum else ""


# The signals that would end measure, passed on to the command instead (POSIX names; those a
# platform lacks are left out).
_PASSED_ON = tuple(
    getattr(signal, name)
    for name in ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


def _run_command(command: list[str]) -> int:
    """Run ``command`` to its end, passing on every signal that would end ``measure``; its
    exit status.

    Raises:
        OSError: The command could not be started (not found, not executable).
    """
    import subprocess

    child: subprocess.Popen[bytes] | None = None
    early: list[int] = []
    # A terminal's Ctrl-C (and Ctrl-\) reaches every process of its foreground group, the
    # command included: passing it on as well would deliver it twice. So SIGINT and SIGQUIT are
    # passed on only when they cannot have come from a terminal (stdin is none), or when the
    # command left this process group; the others always (as uv run decides for SIGTERM).
    from_terminal = _stdin_is_a_terminal()
    keyboard = {signal.SIGINT, getattr(signal, "SIGQUIT", signal.SIGINT)}

    def pass_on(signum: int, frame: FrameType | None) -> None:
        if child is None:
            early.append(signum)
        elif signum not in keyboard or not from_terminal or not _same_group(child.pid):
            with suppress(ProcessLookupError):  # it has just ended; its status says how
                child.send_signal(signum)

    # A signal ignored when measure started (nohup's SIGHUP, a background job's SIGINT) stays
    # ignored: it is inherited so by the command, and would not have ended measure either.
    previous = {
        number: signal.signal(number, pass_on)
        for number in _PASSED_ON
        if signal.getsignal(number) is not signal.SIG_IGN
    }
    try:
        if early:  # interrupted before the command started: do not start it
            raise KeyboardInterrupt
        child = subprocess.Popen(command)
        if early:
            pass_on(early[0], None)
        code = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 128 - code if code < 0 else code


def _stdin_is_a_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def _same_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == os.getpgrp()
    except ProcessLookupError:
        return True


def _summary(spend: Spend, status: int, expected: Estimate | None = None) -> str:
    """The one line: what was spent (against what was expected), the balances either side, how
    long, the status."""
    if spend.all_organizations:
        scope = f"{len(spend.organizations)} organizations"
    elif spend.organization:
        scope = f"organization {spend.organization}"
    else:
        scope = "default organization"
    before = credits_text(spend.before)
    if spend.credits is None or spend.after is None:
        problem = f"{type(spend.error).__name__}: {spend.error}" if spend.error else "unknown"
        spent = f"spend unknown ({before} before, {scope}; the balance after: {problem})"
        if expected is not None:
            spent += f", {credits_text(expected.total)} expected ({expected.plan})"
    else:
        against = ""
        if expected is not None:
            percent = _against(spend, expected)["difference_percent"]
            off = "" if percent is None else f", {percent:+.1f}%"
            against = f" against {credits_text(expected.total)} expected ({expected.plan}{off})"
        spent = (
            f"spent {credits_text(spend.credits)} credits{against} "
            f"({before} -> {credits_text(spend.after)}, {scope})"
        )
    seconds = spend.seconds or 0.0
    ended = _status_text(status)
    return f"{spent} in {seconds:.1f} s; the command {ended}"


def _status_text(status: int) -> str:
    if status > 128:
        try:
            return f"was ended by {signal.Signals(status - 128).name} (status {status})"
        except ValueError:
            pass
    return f"exited with status {status}"


def _unwritable(path: str) -> str | None:
    """Why the record could not be written to ``path`` (its folder missing or read-only, a
    folder in its place), or ``None``."""
    folder = os.path.dirname(path) or os.curdir
    if os.path.isdir(path):
        return "is a directory"
    if not os.path.isdir(folder):
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    return None


def _write_record(path: str, record: dict[str, object], err: Output) -> bool:
    """Write ``record`` to a temporary file beside ``path``, then rename it over ``path``: a
    reader never sees half a record, and a failure leaves an older one whole."""
    import json
    import tempfile

    folder = os.path.dirname(path) or os.curdir
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
        )
        with open(descriptor, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=2)
            file.write("\n")
        os.chmod(temporary, 0o666 & ~_umask())  # as open() would have made it
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            with suppress(OSError):
                os.unlink(temporary)
        err.print(f"{PROG}: error: cannot write --json {path}: {error.strerror or error}")
        return False
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
