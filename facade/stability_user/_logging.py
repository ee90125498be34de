"""The ``stability_user`` logger, switched on by ``STABILITY_LOG=debug|info``.

It logs each attempt, its outcome and any retry delay, never a header value: the API key
cannot reach a log record through this package.
"""

from __future__ import annotations

import logging
import os

from ._constants import LOG_ENV

__all__ = ["configure_from_env", "logger"]

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
