"""Each attempt's total deadline: the connect and read timeouts together, however the answer's
bytes trickle in.

httpx2's timeouts (and the aiohttp backend's, which keep httpx2's meaning) bound each wait for
bytes; an answer dripped a byte a second within them never ends. So every attempt also has a
deadline: ``begin()`` sets it in a context variable for the attempt (both clients' drivers call
it around sending and reading), and every wait on the wire is cut to what it leaves. That is
one rule for all four ways a request goes out:

- httpx2, sync and async: the connection pool's network backend is wrapped (``_bounded``), so
  that each connect, TLS handshake, read and write waits at most what the attempt has left;
- aiohttp: the transport (``_aiohttp``) cuts its waits the same way with ``left()``.

Past the deadline a wait raises the transport's timeout (a ``ReadTimeout`` for httpx2), which
the retry policy treats as any timeout. A request without a read timeout has no deadline.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx2

__all__ = ["Deadline", "begin", "current", "end", "expired", "left"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """When the current attempt must be over (``time.monotonic()``), and its length."""

    at: float
    seconds: float

    @property
    def message(self) -> str:
        return (
            f"the answer had not come whole within {self.seconds:g} s (the connect and read "
            "timeouts together)"
        )


_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "stability_user_attempt_deadline", default=None
)


def begin(request: httpx2.Request) -> contextvars.Token[Deadline | None] | None:
    """Start ``request``'s attempt clock; ``end()`` the token when the answer is read."""
    timeouts = request.extensions.get("timeout") or {}
    read = timeouts.get("read")
    if read is None:
        return None
    seconds = read + (timeouts.get("connect") or 0.0)
    return _CURRENT.set(Deadline(time.monotonic() + seconds, seconds))


def end(token: contextvars.Token[Deadline | None] | None) -> None:
    if token is not None:
        _CURRENT.reset(token)


def current() -> Deadline | None:
    """The deadline of the attempt under way in this thread or task, if any."""
    return _CURRENT.get()


def left(timeout: float | None) -> float | None:
    """``timeout`` cut to what the current attempt has left.

    Raises:
        TimeoutError: The attempt's deadline has passed (its message says so).
    """
    deadline = _CURRENT.get()
    if deadline is None:
        return timeout
    remaining = deadline.at - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(deadline.message)
    return remaining if timeout is None or remaining < timeout else timeout


def expired(error: type[Exception]) -> Exception | None:
    """``error`` saying the deadline passed, for a wait that timed out at it; else ``None``."""
    deadline = _CURRENT.get()
    if deadline is not None and time.monotonic() >= deadline.at:
        return error(deadline.message)
    return None
