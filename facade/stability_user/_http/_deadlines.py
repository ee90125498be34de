"""Read deadlines for requests waiting for their answer's headers, on one loop timer.

The aiohttp backend keeps httpx2's read timeout itself (aiohttp's ``sock_read`` sets and
cancels two loop timers per request and stops after an interim answer). A request's wait
starts when it has its connection and ends when the answer's headers have come; an expired
wait cancels its task, and the transport tells that cancellation from any other as
``asyncio.timeout`` does, raising ``TimeoutError`` in its place.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._attempt import Deadline

__all__ = ["HeadersWait", "ReadDeadlines"]


class HeadersWait:
    """One request's wait for its answer's headers, bounded by its read timeout."""

    __slots__ = ("cancelling", "cut", "deadline", "done", "expired", "seconds", "task")

    def __init__(self, task: asyncio.Task[object], seconds: float) -> None:
        self.task = task
        self.seconds = seconds
        self.cut: Deadline | None = None  # the attempt's deadline, when it comes first
        # Cancellations already asked of the task: an expiry is told from them as
        # asyncio.timeout tells its own.
        self.cancelling = task.cancelling()
        self.deadline = 0.0  # set when the connection is there
        self.done = False
        self.expired = False

    def cut_to(self, attempt: Deadline | None) -> None:
        """Shorten the wait to what ``attempt`` (the attempt's deadline) leaves, if less; when
        the connection is there, before ``ReadDeadlines.arm()``. Rare: the deadline is the
        connect and read timeouts together, so only a slow connect brings it nearer."""
        if attempt is None:
            return
        remaining = attempt.at - time.monotonic()
        if remaining < self.seconds:
            self.seconds = max(remaining, 0.0)
            self.cut = attempt

    def end(self, cancelled: asyncio.CancelledError | None = None) -> TimeoutError | None:
        """Mark the wait over, and say what a ``cancelled`` that ended it stands for.

        Returns the ``TimeoutError`` to raise in its place when it is this wait's expiry alone;
        ``None`` otherwise (no expiry, or something else asked for a cancellation as well: it is
        the caller's to re-raise). An expiry's own cancellation request is taken back however
        the wait ended, as ``asyncio.timeout`` does, so the task is left as it was found.
        """
        self.done = True
        if not self.expired or self.task.uncancel() > self.cancelling or cancelled is None:
            return None
        message = f"no answer within the read timeout ({self.seconds:g} s)"
        error = TimeoutError(message if self.cut is None else self.cut.message)
        error.__cause__ = cancelled
        return error


class ReadDeadlines:
    """The headers' waits of one event loop, expired by a single loop timer.

    Waits of one duration expire in the order they were armed, so each duration keeps a FIFO
    and the one timer is set for the earliest head. A wait that ends is only marked, and is
    dropped once it reaches a head: a warm call costs an append and a pop, where a timer of its
    own would cost a handle, a heap entry and a cancellation. The timer fires about once a read
    timeout while requests keep coming, and not at all when none are waiting.
    """

    __slots__ = ("_loop", "_queues", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[HeadersWait]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def arm(self, wait: HeadersWait) -> None:
        """Start ``wait``'s clock: it expires ``wait.seconds`` from now unless marked done."""
        wait.deadline = deadline = self._loop.time() + wait.seconds
        queue = self._queues.get(wait.seconds)
        if queue is None:
            queue = self._queues[wait.seconds] = deque()
        else:
            while queue and queue[0].done:
                queue.popleft()
        queue.append(wait)
        if self._timer is None or deadline < self._timer_at:
            self._schedule(deadline)

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer = None
        # The loop may run a timer a clock tick early; what it was set for is due.
        due = max(self._loop.time(), self._timer_at)
        earliest: float | None = None
        for seconds, queue in list(self._queues.items()):
            while queue and (queue[0].done or queue[0].deadline <= due):
                wait = queue.popleft()
                if not wait.done:
                    wait.expired = True
                    wait.task.cancel()
            if not queue:
                del self._queues[seconds]
            elif earliest is None or queue[0].deadline < earliest:
                earliest = queue[0].deadline
        if earliest is not None:
            self._schedule(earliest)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queues.clear()
