"""``stability-user status``: the balance in one short line, for a prompt or a status bar.

Shells, tmux and agent CLIs run it on every prompt or every few seconds, from many terminals at
once, so it answers from the balance cache (``.._balance_cache``, ``.._cache_policy``) and never
waits for the network while it has a value to show: an entry older than ``--max-age`` is
printed at once and refreshed behind the prompt by a detached process (``_background``), one
per entry at a time. Only with nothing to show (or ``--refresh``) does it ask and wait, within
``--timeout``. A cache hit imports what reading one small file and printing need, nothing more
(not even argparse, for the usual invocations): the client, httpx2 and the models load only to
refresh in the foreground.

Never a traceback, never more than one line on stdout, never a read of stdin: 0 with a value
(fresh, or stale after a failed refresh), 1 with nothing to show or a key the API refused (one
line on stderr), 2 for a usage or configuration error.
"""

from __future__ import annotations

import os
import time

from .._cache._policy import BACKGROUND, FOREGROUND, current, glance, lookup
from .._cache._store import (
    CachedBalance,
    age_text,
    default_cache_dir,
    open_cache,
)
from .._constants import (
    CACHE_DIR_ENV,
    ORGANIZATION_ENV,
    STATUS_MAX_AGE,
    STATUS_TIMEOUT,
)
from .._credits import runway_text
from ._output import EXIT_API_ERROR, EXIT_OK, EXIT_USAGE, PROG, Output, credits_text, say
from ._status_options import StatusArguments, entry_of, fetch_credits
from ._types import CallsField

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from .._cache._policy import Glance
    from .._cache._store import BalanceCache

__all__ = ["PARSER_TEXT", "add_arguments", "add_parser", "render", "run"]

PARSER_TEXT: dict[str, Any] = {
    "description": (
        "Print the balance in one short line (e.g. '125.50 cr') for a prompt or a status bar, "
        "from a cache on disk, never waiting for the network while there is a value to show: "
        "a value younger than --max-age is printed as it is; an older one is printed at once "
        "and refreshed in the background (within --timeout), for the next run. Once a refresh "
        "has failed, the value is marked stale with its age ('~125.50 cr (12m)') and no new "
        "refresh starts for a back-off (30 s, doubling, at most 10 min). Many runs at once "
        "make one API call."
    ),
    "epilog": (
        f"The cache is in {CACHE_DIR_ENV}, else $XDG_CACHE_HOME/stability-user, else the "
        "platform's cache folder; the key is never written to it. --format fields: "
        "{credits} (a number: {credits:,.0f}), {organization}, {age} (e.g. 12m), {stale} "
        "('~' when stale, else empty), {runway} (e.g. 9d: how long the credits last at the "
        "burn rate of the local history, empty when it cannot tell), {calls:NAME} (how many "
        "calls of a service the credits pay for, e.g. {calls:ultra}; see `stability-user "
        "prices`). A refresh records the "
        "balance in that history unless --no-history. Exit status: 0 a value was printed, "
        "1 nothing to show or a key the API refused, 2 a usage or configuration error."
    ),
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status", help="the balance in one line, cached: for prompts and status bars", **PARSER_TEXT
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments, as argparse reads them (``--help``, and whatever ``read_arguments``
    leaves to it)."""
    from . import _arguments

    parser.add_argument(
        "--org",
        metavar="ORG",
        help=f"organization id (default: {ORGANIZATION_ENV}, else the default)",
    )
    parser.add_argument(
        "--max-age",
        type=_arguments.non_negative_seconds,
        default=STATUS_MAX_AGE,
        metavar="SECONDS",
        help="print a cached value younger than this without calling the API "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--timeout",
        type=_arguments.seconds,
        default=STATUS_TIMEOUT,
        metavar="SECONDS",
        help="the longest a refresh may take, in the background or, with nothing to show "
        "yet, in the foreground (default: %(default)g)",
    )
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument(
        "--format",
        type=_arguments.template,
        metavar="TEMPLATE",
        help="a template over {credits}, {organization}, {age}, {stale}, {runway}, "
        "{calls:NAME}, e.g. '{credits:,.0f} cr {runway}'",
    )
    shape.add_argument("--json", action="store_true", help="print the fields as one JSON object")
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="call the API now and wait for it, however young the cached value",
    )
    _arguments.endpoint_arguments(parser)
    from ._recording import history_argument

    history_argument(parser)


def _fields(record: CachedBalance) -> dict[str, Any]:
    return {
        "credits": record.credits,
        "organization": record.organization or "default",
        "age": age_text(record.age),
        "stale": "~" if record.stale else "",
        "runway": _runway(record.runs_out_at, record.fetched_at + record.age),
        "calls": CallsField(record.credits),  # the prices load only if the template asks
    }


def _runway(runs_out_at: float | None, now: float) -> str:
    """``{runway}``: ``9d``, ``5h`` under a day, ``0h`` once past; empty without one."""
    if runs_out_at is None:
        return ""
    return runway_text(runs_out_at - now, short=True)


def render(record: CachedBalance, *, format: str | None, as_json: bool) -> str:
    """The one line printed for ``record``."""
    if as_json:
        import json

        return json.dumps(record.to_dict())
    if format is not None:
        return format.format_map(_fields(record))
    if record.stale:
        return f"~{credits_text(record.credits)} cr ({age_text(record.age)})"
    return f"{credits_text(record.credits)} cr"


def run(args: argparse.Namespace | StatusArguments, out: Output, err: Output) -> int:
    try:
        record = _status(args, err)
    except Exception as error:
        # Imported only now: a cache hit never needs the exception classes.
        from .._exceptions import RememberedError, StabilityError

        if isinstance(error, RememberedError):  # what the last refresh found, said again
            say(err, f"{PROG}: error: {error}")
            return EXIT_USAGE if error.configuration else EXIT_API_ERROR
        if isinstance(error, StabilityError):
            raise  # said in one line by the caller, with its exit status
        say(err, f"{PROG}: error: {type(error).__name__}: {error}")  # never a traceback
        return EXIT_API_ERROR
    out.print(render(record, format=args.format, as_json=args.json))
    return EXIT_OK


def _status(args: argparse.Namespace | StatusArguments, err: Output) -> CachedBalance:
    """The record to print; raises the error to print instead."""
    deadline = time.monotonic() + args.timeout
    organization, name = entry_of(args)

    def warn(text: str) -> None:
        say(err, f"{PROG}: warning: {text}")

    try:
        cache = open_cache(default_cache_dir(os.environ, warn))
    except OSError as error:
        warn(str(error))
        cache = None

    def wait_for_the_api() -> CachedBalance:
        from ._recording import show_warnings

        show_warnings(err)
        return _shown(
            lookup(
                cache,
                name,
                organization,
                max_age=args.max_age,
                refresh=args.refresh,
                fetch=lambda by: fetch_credits(args, organization, by),
                deadline=deadline,
                warn=warn,
            )
        )

    if cache is None or args.refresh or args.max_age == 0:
        return wait_for_the_api()
    now = time.time()
    seen = glance(current(cache, name, now), organization, max_age=args.max_age, now=now)
    if seen.refresh == FOREGROUND:
        return wait_for_the_api()
    if seen.refresh == BACKGROUND:
        seen = _refresh_behind(cache, name, organization, args, seen)
        if seen.refresh == FOREGROUND:  # no process could be started for it
            return wait_for_the_api()
    if seen.error is not None:
        raise seen.error
    assert seen.balance is not None  # a glance without an error shows a value
    return seen.balance


def _shown(record: CachedBalance) -> CachedBalance:
    """``record``, unless the refresh behind it found the key refused: that error instead."""
    from .._cache._policy import failure_kind

    if record.error is not None and failure_kind(record.error) != "api":
        raise record.error
    return record


def _refresh_behind(
    cache: BalanceCache,
    name: str,
    organization: str | None,
    args: argparse.Namespace | StatusArguments,
    seen: Glance,
) -> Glance:
    """What to show while a refresh starts behind the prompt, in a process of its own; one
    asking to refresh in the foreground when none can be started (a sandbox that forbids it,
    a cache that cannot be written)."""
    from .._cache._policy import ATTEMPT_GRACE, Glance, attempting

    try:
        lock = cache.lock(name)
    except OSError:  # a read-only folder: the foreground refresh says so, once
        return Glance(refresh=FOREGROUND)
    with lock:
        if not lock.try_acquire():
            return Glance(seen.balance, error=seen.error)  # one is under way
        now = time.time()
        latest = current(cache, name, now)
        now_seen = glance(latest, organization, max_age=args.max_age, now=now)
        if now_seen.refresh != BACKGROUND:  # refreshed, or failed, since it was read
            return now_seen
        try:
            cache.write(name, attempting(latest, now + args.timeout + ATTEMPT_GRACE))
        except OSError:
            return Glance(refresh=FOREGROUND)
        from ._background import start

        if not start(lock.descriptor, args):
            return Glance(refresh=FOREGROUND)
    return Glance(now_seen.balance, error=now_seen.error)
