"""How the commands print: exit statuses, colour, credits, tables, one-line errors.

Imports nothing beyond ``os``, ``sys`` and ``_credits`` (standard library only, nothing loaded)
at run time: ``stability-user status`` loads it on every prompt.
"""

from __future__ import annotations

import os
import sys

from .._credits import credits_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

    from .._exceptions import StabilityError

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_BELOW_MIN",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNSAVED",
    "EXIT_USAGE",
    "PROG",
    "Output",
    "OutputError",
    "credits_text",
    "describe_error",
    "flush_stdout",
    "say",
    "silence_stdout",
    "table",
]

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_BELOW_MIN = 3
EXIT_UNSAVED = 4  # watch --once: the alerts' state could not be read or saved
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

PROG = "stability-user"


class Output:
    """Where and how to print: colour only on a terminal, and never with NO_COLOR."""

    __slots__ = ("colour", "stream")

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.colour = stream.isatty() and not os.environ.get("NO_COLOR")

    def bold(self, text: str) -> str:
        return f"\033[1m{text}\033[0m" if self.colour else text

    def print(self, text: str = "") -> None:
        try:
            print(text, file=self.stream)
        except BrokenPipeError:
            raise  # the reader went away: not an error to report (see main)
        except OSError as error:
            raise OutputError(error.errno, error.strerror or str(error)) from error


class OutputError(OSError):
    """stdout or stderr could not be written (a full disk, ``> /dev/full``); the command's own
    ``OSError`` (a port in use, a file it reads) is not one."""


def table(out: Output, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    out.print(out.bold(line(header).rstrip()))
    for row in rows:
        out.print(line(row).rstrip())


def describe_error(error: StabilityError) -> str:
    """An SDK error in one line: its class, the HTTP status if any, and its message."""
    from .._exceptions import describe_error as describe

    return describe(error)


def flush_stdout() -> None:
    """Flush stdout, where a closed pipe or a full disk shows; ``OutputError`` for the latter."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        raise OutputError(error.errno, error.strerror or str(error)) from error


def say(err: Output, text: str) -> None:
    """Print ``text`` on stderr unless stderr is gone too (nothing more can be said then)."""
    from contextlib import suppress

    with suppress(OSError):
        err.print(text)


def silence_stdout() -> None:
    """Point stdout at the null device, so the flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured, replaced)
        pass
