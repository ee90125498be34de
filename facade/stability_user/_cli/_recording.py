"""Whether a command records the balances it reads in the history, and how it says it could not.

The commands that read a balance (``account`` for the names, ``balance``, ``balances``,
``measure``, ``status`` when it refreshes, ``exporter``) record it unless ``--no-history`` or
``STABILITY_HISTORY=off`` says not to. A recording that fails is one warning on stderr, in the
command line's own words; the command's output and exit status are unchanged.
"""

from __future__ import annotations

import logging

from ._output import PROG, Output, say

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

    from ._status_options import StatusArguments

__all__ = ["history_argument", "recording", "show_warnings"]


def history_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-history",
        action="store_true",
        help="do not record the balances read in the local history (STABILITY_HISTORY=off "
        "turns it off everywhere)",
    )


def recording(args: argparse.Namespace | StatusArguments) -> bool:
    """Whether the command's client records what it reads (``STABILITY_HISTORY`` is the
    client's to read)."""
    return not getattr(args, "no_history", False)


class _ToStderr(logging.Handler):
    def __init__(self, err: Output) -> None:
        super().__init__(logging.WARNING)
        self.err = err

    def emit(self, record: logging.LogRecord) -> None:
        say(self.err, f"{PROG}: warning: {record.getMessage()}")


def show_warnings(err: Output) -> None:
    """Print the history's warnings on ``err`` as the command's own."""
    from ..history._recorder import history_logger

    for handler in [h for h in history_logger.handlers if isinstance(h, _ToStderr)]:
        history_logger.removeHandler(handler)  # an earlier main()'s, in the same process
    # With a handler of its own, logging's last resort stays quiet: one line, not two.
    history_logger.addHandler(_ToStderr(err))
