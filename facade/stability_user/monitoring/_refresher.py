"""Keep a ``CreditsCache`` current: a background thread (sync client) or task (async client).

Each refresh is one ``get_balances()``, so it goes through the client's rate limiter, bounded
fan-out and retries; refreshes happen every ``interval`` seconds (a second at the least),
never on a scrape. A thread
refresher goes on in a child after ``os.fork()`` (the parent's thread does not come along: the
child gets one of its own, as OpenTelemetry's periodic reader does).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import weakref
from typing import TYPE_CHECKING, Self

from .._exceptions import StabilityError
from .._models import OrganizationBalance
from .._values import check_interval
from ._cache import CreditsCache

if TYPE_CHECKING:
    from .._async_client import AsyncStabilityUser
    from .._client import StabilityUser

__all__ = ["AsyncRefresher", "Refreshed", "ThreadRefresher"]


def _check_interval(interval: object) -> float:
    return check_interval(interval, "interval", cli_name="--interval")


# The thread refreshers running in this process, for a forked child to go on with.
_RUNNING: weakref.WeakSet[ThreadRefresher] = weakref.WeakSet()


def _go_on_in_child() -> None:
    for refresher in list(_RUNNING):
        refresher._go_on_after_fork()


os.register_at_fork(after_in_child=_go_on_in_child)


class ThreadRefresher:
    """Refreshes ``cache`` from a ``StabilityUser`` on a daemon thread until ``stop()``."""

    def __init__(self, client: StabilityUser, cache: CreditsCache, interval: float) -> None:
        self._client = client
        self._cache = cache
        self._interval = _check_interval(interval)
        self._stopping = threading.Event()
        self._thread = self._new_thread()

    def _new_thread(self) -> threading.Thread:
        return threading.Thread(target=self._loop, name="stability-user-credits", daemon=True)

    def start(self) -> None:
        """Refresh now, then every ``interval`` seconds."""
        _RUNNING.add(self)
        self._thread.start()

    def _go_on_after_fork(self) -> None:
        # In a child: the parent's thread is not here, and a lock it held at the fork would
        # stay held. Fresh ones, and a thread of the child's own, refreshing now.
        self._cache._after_fork()
        self._stopping = threading.Event()
        self._thread = self._new_thread()
        self._thread.start()

    def refresh(self) -> None:
        """One refresh, in the calling thread."""
        outcome: list[OrganizationBalance] | StabilityError
        try:
            outcome = self._client.get_balances()
        except StabilityError as error:
            outcome = error
        self._cache.settle(outcome)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.refresh()
            self._stopping.wait(self._interval)

    def stop(self) -> None:
        """Stop refreshing; a refresh under way finishes first."""
        _RUNNING.discard(self)
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()


class AsyncRefresher:
    """Refreshes ``cache`` from an ``AsyncStabilityUser`` in a task of the running loop."""

    def __init__(self, client: AsyncStabilityUser, cache: CreditsCache, interval: float) -> None:
        self._client = client
        self._cache = cache
        self._interval = _check_interval(interval)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Refresh now, then every ``interval`` seconds, in a task of the running loop."""
        self._task = asyncio.get_running_loop().create_task(
            self._loop(), name="stability-user-credits"
        )

    async def refresh(self) -> None:
        """One refresh."""
        outcome: list[OrganizationBalance] | StabilityError
        try:
            outcome = await self._client.get_balances()
        except StabilityError as error:
            outcome = error
        self._cache.settle(outcome)

    async def _loop(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        """Cancel the task and wait for it to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # the cancellation we asked for
                await task

    def cancel(self) -> None:
        """Cancel the task without waiting for it (its loop's thread or any other): it ends at
        its next step."""
        task = self._task
        if task is None or task.done():
            return
        loop = task.get_loop()
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            task.cancel()
        else:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nothing runs it
                loop.call_soon_threadsafe(task.cancel)


class Refreshed:
    """What ``CreditsCollector`` and ``CreditsMeter`` share: a ``cache`` kept current in the
    background by the refresher the client calls for (a thread for ``StabilityUser``, a task of
    the running loop for ``AsyncStabilityUser``), stopped by ``close()`` or ``aclose()``, or at
    the end of a ``with`` or ``async with`` block."""

    cache: CreditsCache
    _refresher: ThreadRefresher | AsyncRefresher

    def _refresh_from(
        self, client: StabilityUser | AsyncStabilityUser, interval: float, *, start: bool
    ) -> None:
        from .._async_client import AsyncStabilityUser

        self.cache = CreditsCache()
        if isinstance(client, AsyncStabilityUser):
            self._refresher = AsyncRefresher(client, self.cache, interval)
        else:
            self._refresher = ThreadRefresher(client, self.cache, interval)
        if start:
            self._refresher.start()

    def close(self) -> None:
        """Stop refreshing: a thread ends after a refresh under way; a task is cancelled
        (``await aclose()`` to wait for it to end)."""
        if isinstance(self._refresher, ThreadRefresher):
            self._refresher.stop()
        else:
            self._refresher.cancel()

    async def aclose(self) -> None:
        """Stop the refresher, thread or task."""
        if isinstance(self._refresher, AsyncRefresher):
            await self._refresher.stop()
        else:
            self._refresher.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
