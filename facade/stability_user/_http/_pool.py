"""Per-process and per-event-loop state: which connection pool a call may use.

A pooled socket must never be shared across ``os.fork()``: parent and child would read each
other's answers (and over TLS, corrupt each other's sessions). An ``httpx2.AsyncClient``'s
connections belong to the event loop that opened them, and are useless (or raise ``Event loop is
closed``) on the next one. So each client keeps its pools here, keyed by the process's fork
generation and, for the async client, by the running loop; a child process or a new loop gets a
fresh pool, and the stale one is dropped without being closed (closing would act on sockets the
parent still uses, or need a loop that is gone).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from .._exceptions import ClientClosedError

__all__ = ["PoolKeeper", "fork_generation"]

_Pool = TypeVar("_Pool")

_generation = 0


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def fork_generation() -> int:
    """How many forks lie between the first process and this one (0 in the first)."""
    return _generation


class PoolKeeper(Generic[_Pool]):
    """One pool per process, or per (process, event loop), made by ``factory`` on first use.

    ``get(loop)`` is a dict look-up after the first call; ``None`` as the loop means "no event
    loop" (the sync client).
    """

    __slots__ = ("_closed", "_factory", "_generation", "_lock", "_pools", "_sync_pool")

    def __init__(self, factory: Callable[[], _Pool]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._generation = _generation
        self._sync_pool: _Pool | None = None
        self._pools: weakref.WeakKeyDictionary[object, _Pool] = weakref.WeakKeyDictionary()
        self._closed = False

    def get(self, loop: object | None = None) -> _Pool:
        """The pool for this process (and ``loop``), created if there is none yet."""
        if self._generation != _generation:
            self._forget_after_fork()
        pool = self._sync_pool if loop is None else self._pools.get(loop)
        if pool is None:
            with self._lock:
                pool = self._sync_pool if loop is None else self._pools.get(loop)
                if pool is None:
                    if self._closed:  # closed while this call was on its way here
                        raise ClientClosedError("the client is closed; nothing was sent.")
                    pool = self._factory()
                    if loop is None:
                        self._sync_pool = pool
                    else:
                        self._pools[loop] = pool
        return pool

    def _forget_after_fork(self) -> None:
        # In a child: the parent's pools hold the parent's sockets. Drop them unclosed (the
        # parent keeps using them); the lock may have been held by a thread that did not fork.
        self._lock = threading.Lock()
        self._sync_pool = None
        self._pools = weakref.WeakKeyDictionary()
        self._generation = _generation

    def take_all(self) -> list[_Pool]:
        """Remove and return every pool of this process, for closing; make no more."""
        if self._generation != _generation:
            self._forget_after_fork()
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            if self._sync_pool is not None:
                pools.append(self._sync_pool)
            self._sync_pool = None
            self._pools = weakref.WeakKeyDictionary()
        return pools

    def current(self, loop: object | None = None) -> _Pool | None:
        """The pool for this process (and ``loop``) if one was made, without making one."""
        if self._generation != _generation:
            return None
        return self._sync_pool if loop is None else self._pools.get(loop)
