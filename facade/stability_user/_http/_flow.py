"""One API call with retries, written once as a generator of I/O steps (sans-I/O).

The flow yields either an ``httpx2.Request`` to send or a ``Wait`` to sleep, and is sent back
the ``httpx2.Response`` (or has the ``httpx2`` exception thrown in). The sync and async clients
each drive it with a few lines that do only the I/O, so retry decisions, error mapping and
parsing exist in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import httpx2

from .._logging import logger
from ._error_mapping import connection_error, status_error
from ._retry import is_retryable_error, is_retryable_status, retry_wait

if TYPE_CHECKING:
    from ._ratelimit import RateLimiter

__all__ = ["Flow", "Wait", "call"]

_Result = TypeVar("_Result")


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep this many seconds before the next attempt."""

    seconds: float


Flow = Generator["httpx2.Request | Wait", "httpx2.Response | None", _Result]


def call(
    request: httpx2.Request,
    parse: Callable[[httpx2.Response], _Result],
    *,
    max_retries: int,
    secret: str,
    notice: str | None = None,
    limiter: RateLimiter | None = None,
) -> Flow[_Result]:
    """Send ``request`` until it succeeds or the policy gives up; return ``parse(response)``.

    Raises:
        APIStatusError: A non-2xx answer that is not retried, or the last of those retried.
        APIConnectionError: A transport failure, likewise.
        InvalidResponseError: From ``parse``: a 2xx whose body breaks the contract.

    ``notice`` (the API version's retirement notice) is added to a status error's message
    where the status suggests the path itself is gone. With a ``limiter``, every attempt
    (retries included) first books its start and waits when the limit says so.
    """
    attempt = 0
    # Asked once a call: the debug lines come on every attempt of every call.
    debug = logger.isEnabledFor(logging.DEBUG)
    while True:
        if limiter is not None:
            hold = limiter.reserve()
            if hold > 0:
                logger.info(
                    "%s %s: rate limit, waiting %.2fs", request.method, request.url.path, hold
                )
                yield Wait(hold)
        if debug:
            logger.debug("%s %s: attempt %d", request.method, request.url.path, attempt + 1)
        try:
            response = yield request
        except httpx2.HTTPError as exc:
            error = connection_error(exc, request=request, secret=secret)
            if attempt >= max_retries or not is_retryable_error(exc):
                raise error from exc
            response, outcome = None, type(exc).__name__
        else:
            assert response is not None  # the driver sends a response for every request
            status = response.status_code
            if debug:
                logger.debug("%s %s: HTTP %d", request.method, request.url.path, status)
            if 200 <= status <= 299:  # Response.is_success, without its enum look-up
                return parse(response)
            if attempt >= max_retries or not is_retryable_status(status):
                raise status_error(response, secret=secret, notice=notice)
            outcome = f"HTTP {status}"
        delay, capped = retry_wait(attempt, response)
        if capped is not None:
            logger.warning(
                "%s %s: Retry-After asks for %.0f s; waiting %g s, the most a retry waits",
                request.method,
                request.url.path,
                capped,
                delay,
            )
        logger.info(
            "%s %s: %s, retry %d of %d in %.2fs",
            request.method,
            request.url.path,
            outcome,
            attempt + 1,
            max_retries,
            delay,
        )
        yield Wait(delay)
        attempt += 1
