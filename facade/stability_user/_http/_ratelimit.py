"""The client-side rate limiter: keep under Stability's 150 requests per 10 seconds.

Past that limit the API answers 429 and locks the key out for 60 seconds, so it is far cheaper
to wait a little before sending than to be told off. One ``RateLimiter`` belongs to one client
and is shared by its threads and tasks: ``reserve()`` is quick, takes a lock only for a few
list operations, and returns how long the caller must wait before sending (the caller sleeps,
with ``time.sleep`` or ``asyncio.sleep``; the limiter itself never blocks).

Which base URLs get a limiter by default is the small table ``DEFAULT_RATE_LIMITS``, by host.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .._constants import MAX_SECONDS
from .._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "STABILITY_RATE_LIMIT",
    "RateLimit",
    "RateLimiter",
    "resolve_rate_limit",
]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` requests started in any window of ``per_seconds`` seconds.

    Attributes:
        requests: How many requests a window allows (a whole number, at least 1).
        per_seconds: The window's length in seconds (positive).
    """

    requests: int
    per_seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.requests, bool) or not isinstance(self.requests, int):
            raise ConfigurationError(f"RateLimit.requests must be an int, not {self.requests!r}.")
        if self.requests < 1:
            raise ConfigurationError(f"RateLimit.requests must be >= 1, not {self.requests}.")
        seconds = self.per_seconds
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not 0 < seconds <= MAX_SECONDS
        ):
            raise ConfigurationError(
                f"RateLimit.per_seconds must be a positive number up to {MAX_SECONDS:g} "
                f"(a day), not {seconds!r}."
            )


# "150 requests every 10 seconds ... you will receive a 429 response and be timed out for 60
# seconds" (Stability's rate-limit documentation).
STABILITY_RATE_LIMIT = RateLimit(requests=150, per_seconds=10.0)

# Host -> the limit applied when the caller does not say. Any other host (the stand-in,
# loopback, a company gateway with limits of its own) gets none unless asked for.
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {"api.stability.ai": STABILITY_RATE_LIMIT}


def resolve_rate_limit(value: object, host: str) -> RateLimit | None:
    """The limit for ``rate_limit=value`` on ``host``.

    ``None`` (the default) looks the host up in ``DEFAULT_RATE_LIMITS``; ``True`` is
    Stability's limit on any host; ``False`` turns limiting off; a ``RateLimit`` is used as is.
    """
    if value is None:
        return DEFAULT_RATE_LIMITS.get(host.lower())
    if value is True:
        return STABILITY_RATE_LIMIT
    if value is False:
        return None
    if isinstance(value, RateLimit):
        return value
    raise ConfigurationError(
        f"rate_limit must be None (by host), True, False or a RateLimit, not {value!r}."
    )


class RateLimiter:
    """A sliding-window log of reserved start times, shared by one client's threads and tasks.

    Each ``reserve()`` books the earliest start time that keeps every window of
    ``per_seconds`` at ``requests`` starts or fewer, and returns the wait until it.
    """

    __slots__ = ("_clock", "_limit", "_lock", "_starts")

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._starts: deque[float] = deque()

    @property
    def limit(self) -> RateLimit:
        """The limit enforced."""
        return self._limit

    def reserve(self) -> float:
        """Book a start time for one request; returns the seconds to wait before sending."""
        limit = self._limit
        with self._lock:
            now = self._clock()
            starts = self._starts
            # Forget starts that no longer share a window with anything booked from now on.
            while starts and starts[0] <= now - limit.per_seconds:
                starts.popleft()
            start = now
            if len(starts) >= limit.requests:
                # The window must have moved past the request `requests` places back.
                start = max(now, starts[-limit.requests] + limit.per_seconds)
            starts.append(start)
            return start - now
