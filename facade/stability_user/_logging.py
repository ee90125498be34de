"""The ``stability_user`` logger, switched on by ``STABILITY_LOG=debug|info``.

It logs each attempt, its outcome and any retry delay, never a header value: the API key
cannot reach a log record through this package.
"""

from __future__ import annotations

import logging
import os
import re

from ._constants import LOG_ENV

__all__ = ["configure_from_env", "logger", "one_line"]

logger = logging.getLogger("stability_user")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_configured = False


def configure_from_env() -> None:
    """Attach a stderr handler at the level ``STABILITY_LOG`` names; once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    level = _LEVELS.get(os.environ.get(LOG_ENV, "").strip().lower())
    if level is None:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


# Control characters (C0, DEL, C1), the Unicode line and paragraph separators, lone surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def one_line(text: str) -> str:
    """``text`` for a line of a log: what the API or a file said (an organization id, an error
    message) shown with its control characters escaped (``\\r``, ``\\n``, ``\\x1b``), never raw,
    so that it cannot break the line or forge another."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return match[0].encode("unicode_escape", "backslashreplace").decode("ascii")
