"""The retry policy, shared by the sync and async clients: what to retry and how long to wait.

Idempotent GETs are retried on connection failures, timeouts, 408, 409, 429 and 5xx, with
exponential backoff and jitter, honouring ``Retry-After`` (seconds or an HTTP date) up to
``MAX_RETRY_AFTER`` seconds: one asking for longer waits that long (the flow says so in a
warning), never less as if it had not been asked. ``instant_waits()`` makes the waits zero for
tests while still recording what each would have been.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2

from .._constants import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RETRYABLE_STATUS_CODES,
)
from .._exceptions import retry_after_seconds

__all__ = [
    "backoff_delay",
    "effective_wait",
    "instant_waits",
    "is_retryable_error",
    "is_retryable_status",
    "retry_delay",
    "retry_wait",
]

# Failures where the request may not have reached the server, or the answer was lost on the
# way back: both harmless to repeat for a GET. Protocol violations on our side, unsupported
# schemes and proxy refusals would fail the same way again.
_RETRYABLE_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


def is_retryable_status(status_code: int) -> bool:
    """Whether a response with this status is worth another attempt."""
    return status_code >= 500 or status_code in RETRYABLE_STATUS_CODES


def is_retryable_error(exc: httpx2.HTTPError) -> bool:
    """Whether a transport failure is worth another attempt."""
    return isinstance(exc, _RETRYABLE_ERRORS)


def backoff_delay(attempt: int) -> float:
    """Exponential backoff for retry number ``attempt`` (0-based), capped, with jitter."""
    delay = min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY)
    # Up to 25% less, so that many clients failing together do not retry in lockstep.
    return delay * (1.0 - 0.25 * random.random())


def retry_wait(attempt: int, response: httpx2.Response | None) -> tuple[float, float | None]:
    """How long to wait before retry number ``attempt``, after ``response`` (if one came), and
    what its ``Retry-After`` asked for when that was more than ``MAX_RETRY_AFTER`` (else
    ``None``)."""
    if response is not None:
        asked = retry_after_seconds(response.headers)
        if asked is not None:
            if asked > MAX_RETRY_AFTER:
                return MAX_RETRY_AFTER, asked
            return asked, None
    return backoff_delay(attempt), None


def retry_delay(attempt: int, response: httpx2.Response | None) -> float:
    """How long to wait before retry number ``attempt``, after ``response`` (if one came)."""
    return retry_wait(attempt, response)[0]


class _WaitMode:
    """Process-wide switch for tests: waits become zero and are recorded instead."""

    recording: list[float] | None = None


def effective_wait(seconds: float) -> float:
    """The seconds a client should really sleep for a retry wait of ``seconds``."""
    recording = _WaitMode.recording
    if recording is None:
        return seconds
    recording.append(seconds)
    return 0.0


@contextmanager
def instant_waits() -> Iterator[list[float]]:
    """Make retry waits instant; yields the list of waits the policy asked for, in order."""
    previous = _WaitMode.recording
    waits: list[float] = []
    _WaitMode.recording = waits
    try:
        yield waits
    finally:
        _WaitMode.recording = previous
