"""The ``stability-user`` command (also ``python -m stability_user``).

One module per command (``_account``, ``_balance``, ``_balances``, ``_status``, ``_history``,
``_watch``, ``_measure``, ``_jobs``, ``_prices``, ``_estimate``, ``_exporter``, ``_mcp``), the
grammar in ``_parser`` and ``_types``, printing in ``_output``, the history's recording in
``_recording``; ``_background`` is the refresh ``status`` starts behind a prompt. Only the
command that runs is
imported, and only argparse up front: ``--help`` and ``--version`` never import httpx2 or the
client, and ``status`` reads its usual arguments without argparse and loads the client only to
refresh in the foreground. Exit statuses: 0
success, 1 API or network failure (or output that cannot be written), 2 usage or configuration
error, 3 a balance below ``--min-credits`` (or one that does not cover ``estimate``'s plan,
or ``measure --budget`` passed), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import sys

from ._output import (
    EXIT_API_ERROR,
    EXIT_BELOW_MIN,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Output,
    OutputError,
    describe_error,
    flush_stdout,
    say,
    silence_stdout,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import NoReturn

    from ._status_options import StatusArguments

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_BELOW_MIN",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "main",
    "run",
]


def run() -> NoReturn:
    """The program (``stability-user``, ``python -m stability_user``): ``main()``, then exit.

    After Ctrl-C it exits at once, skipping the interpreter's shutdown: that would wait for
    ``get_balances()``'s worker threads to finish their requests, and a KeyboardInterrupt that
    lands while the executor holds one of its locks makes that wait hang, or end by SIGINT
    instead of status 130. So it does after ``status`` started a refresh behind the prompt,
    and after ``watch`` gave up on a delivery (a service that answers a byte at a time), whose
    thread the shutdown would wait for.
    """
    status = main()
    if status == EXIT_INTERRUPTED or _refresh_started() or _delivery_given_up():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed or broken stream
            pass
        os._exit(status)
    sys.exit(status)


def _refresh_started() -> bool:
    """Whether ``status`` started a background refresh: then the prompt's run ends at once,
    output flushed, instead of tearing the interpreter down while the refresh starts on the
    same CPU (a third of the run's time on one core; nothing is left to tear down)."""
    background = sys.modules.get(f"{__name__}._background")
    return background is not None and bool(background.started)


def _delivery_given_up() -> bool:
    """Whether ``watch`` gave up on a delivery that is still under way."""
    notify = sys.modules.get("stability_user._alerts._notify")
    return notify is not None and bool(notify.given_up())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    command, args = _parse(list(sys.argv[1:] if argv is None else argv))
    out, err = Output(sys.stdout), Output(sys.stderr)
    try:
        code = _main(command, args, out, err)
        flush_stdout()  # a closed pipe or a full disk shows here, not at exit
    except KeyboardInterrupt:
        say(err, f"{PROG}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head -1`): Python's documented recipe, so that the flush
        # at exit does not fail again with a traceback.
        silence_stdout()
        return EXIT_API_ERROR
    except OutputError as error:  # e.g. `> /dev/full`
        silence_stdout()
        say(err, f"{PROG}: error: cannot write the output: {error.__cause__ or error}")
        return EXIT_API_ERROR
    except OSError as error:  # the command's own: a port in use, a file it cannot read
        say(err, f"{PROG}: error: {error.strerror if error.filename is None else error}")
        return EXIT_API_ERROR
    return code


def _parse(argv: list[str]) -> tuple[str, argparse.Namespace | StatusArguments]:
    """The command's name and its arguments."""
    if argv[:1] == ["status"]:  # on every prompt: no argparse for the usual invocations
        from ._status_options import read_arguments

        quick = read_arguments(argv[1:])
        if quick is not None:
            return "status", quick
        from ._parser import status_parser

        return "status", status_parser().parse_args(argv[1:])
    from ._parser import build_parser

    args = build_parser().parse_args(argv)
    return args.command, args


def _main(
    command: str, args: argparse.Namespace | StatusArguments, out: Output, err: Output
) -> int:
    # __import__, not importlib.import_module: importlib (and the warnings it loads) would
    # cost a prompt's status a twentieth of its run.
    module = __import__(f"{__name__}._{command}", fromlist=["run"])
    try:
        status: int = module.run(args, out, err)
    except Exception as error:
        # Imported here: a command that succeeds never needs the exception classes.
        from .._exceptions import ConfigurationError, StabilityError

        if isinstance(error, ConfigurationError):
            err.print(f"{PROG}: error: {error.cli_message or error}")
            return EXIT_USAGE
        if isinstance(error, StabilityError):
            err.print(f"{PROG}: error: {describe_error(error)}")
            return EXIT_API_ERROR
        raise
    return status
