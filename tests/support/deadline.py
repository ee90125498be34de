"""Waiting for many results with a deadline well inside pytest-timeout's ceiling.

A hang fails the test quickly, with a message that says how many of what did not arrive,
instead of pytest-timeout's traceback of whichever thread happened to be waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, wait
from typing import TypeVar

_T = TypeVar("_T")

# pytest-timeout's ceiling is 60 s a test; a deadline leaves room for set-up and teardown.
DEADLINE = 30.0


async def gather_within(
    what: str, awaitables: Sequence[Awaitable[_T]], seconds: float = DEADLINE
) -> list[_T | BaseException]:
    """Every outcome (result or exception) of ``awaitables``, all of them within ``seconds``."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    _, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    assert not pending, f"{len(pending)} of {len(tasks)} {what} had not finished after {seconds} s"
    return [t.exception() or t.result() for t in tasks]


def results_within(
    what: str, futures: Sequence[Future[_T]], seconds: float = DEADLINE
) -> list[_T | BaseException]:
    """Every outcome of ``futures`` (threads' work), all of them within ``seconds``."""
    _, pending = wait(futures, timeout=seconds)
    for future in pending:
        future.cancel()
    assert not pending, (
        f"{len(pending)} of {len(futures)} {what} had not finished after {seconds} s"
    )
    return [f.exception() or f.result() for f in futures]


def wait_until(what: str, condition: Callable[[], object], seconds: float = DEADLINE) -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds} s"
        time.sleep(0.01)
