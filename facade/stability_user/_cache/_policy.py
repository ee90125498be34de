"""What the balance cache's users make of an entry: freshness, staleness, back-off, refreshes.

Shared by ``cached_balance()`` and ``stability-user status``; the entry's storage is
``_store``'s. The rules:

- A value younger than ``max_age`` is fresh: returned as it is, without the network.
- An older one is refreshed by one process at a time (a file lock per entry). Until a refresh
  fails it is shown plain, however old (a refresh is under way, or about to be); once one has
  failed it is *stale*: marked, with the failure's error.
- A failed refresh is remembered in the entry (when, how many in a row, its one line). No new
  attempt starts on a prompt for a back-off that doubles with each failure in a row
  (``STATUS_BACKOFF`` seconds, doubling, at most ``STATUS_BACKOFF_MAX``); ``cached_balance()``
  and ``status --refresh`` ask regardless (a program, or a person, asked for a value). A key
  the API refused (401, 403) is shown as an error, not as a stale value.
- ``lookup()`` refreshes in the foreground; ``glance()`` says what a prompt shows at once and
  whether a refresh should start behind it (``status`` starts it in a process of its own).

Like ``_store``, light to import: ``status`` loads it on every prompt.
"""

from __future__ import annotations

import time

from .._constants import STATUS_BACKOFF, STATUS_BACKOFF_MAX
from ._store import CachedBalance, Entry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ._store import BalanceCache

    # What a refresh's fetch returns: the credits, and when they run out (or None).
    Fetched = tuple[float, float | None]
    from .._exceptions import RememberedError, StabilityError

__all__ = [
    "ATTEMPT_GRACE",
    "BACKGROUND",
    "FOREGROUND",
    "Glance",
    "backoff",
    "balance_of",
    "failure_entry",
    "failure_kind",
    "attempting",
    "current",
    "glance",
    "lookup",
    "refresh_held",
    "remembered_error",
    "retry_at",
    "settled",
]

# How long past its --timeout a background refresh has to write what came of it (it is killed
# at 5 s past): after that it counts as failed.
ATTEMPT_GRACE = 10.0

# Glance.refresh: none, one started behind the prompt, or one waited for (nothing to show yet).
BACKGROUND = "background"
FOREGROUND = "foreground"


def backoff(failures: int) -> float:
    """Seconds after the ``failures``-th failure in a row before a prompt tries again."""
    return float(min(STATUS_BACKOFF * 2 ** min(failures - 1, 30), STATUS_BACKOFF_MAX))


def settled(entry: Entry | None, now: float) -> Entry | None:
    """``entry``, where a background refresh that should have ended by now without writing
    its outcome (killed, or never started) counts as a failure, at the time it was due."""
    if entry is None or entry.attempt_until is None or entry.attempt_until > now:
        return entry
    return _with_failure(
        entry,
        entry.attempt_until,
        "api",
        "StabilityError: The background refresh ended without writing what came of it.",
    )


def current(cache: BalanceCache, name: str, now: float) -> Entry | None:
    """The entry ``name`` as it stands at ``now`` (``settled``), or ``None``."""
    return settled(cache.read(name, now), now)


def attempting(entry: Entry | None, until: float) -> Entry:
    """``entry`` (settled) marked as refreshed in the background until ``until``."""
    return Entry(attempt_until=until) if entry is None else entry.replace(attempt_until=until)


def _with_failure(older: Entry | None, at: float, kind: str, line: str) -> Entry:
    """``older``'s value with a failure at ``at``, the next in a row; no attempt under way."""
    in_a_row = older.failures if older is not None and _failed_since_value(older) else 0
    return (older or Entry()).replace(
        failed_at=at, failures=in_a_row + 1, failure=kind, error=line, attempt_until=None
    )


def _failed_since_value(entry: Entry) -> bool:
    return entry.failed_at is not None and (
        entry.fetched_at is None or entry.failed_at >= entry.fetched_at
    )


def retry_at(entry: Entry) -> float | None:
    """When a prompt may try again after the entry's last failure; ``None``: at once."""
    if not _failed_since_value(entry) or entry.failure == "configuration":
        # The settings are the caller's, not the API's: a fixed setting is tried at once.
        return None
    assert entry.failed_at is not None  # narrowed by _failed_since_value
    return entry.failed_at + backoff(entry.failures)


def remembered_error(entry: Entry) -> RememberedError | None:
    """The failure since the entry's value, as an error; ``None`` if none has failed."""
    if not _failed_since_value(entry):
        return None
    from .._exceptions import RememberedError

    return RememberedError(
        entry.error or "the last refresh failed",
        refused=entry.failure == "refused",
        configuration=entry.failure == "configuration",
    )


def balance_of(entry: Entry | None, organization: str | None, now: float) -> CachedBalance | None:
    """The entry's value as a ``CachedBalance`` (stale once a refresh failed since it was
    read); ``None`` without one."""
    if entry is None or entry.credits is None or entry.fetched_at is None:
        return None
    error = remembered_error(entry)
    return CachedBalance(
        entry.credits,
        organization,
        entry.fetched_at,
        max(0.0, now - entry.fetched_at),
        stale=error is not None,
        error=error,
        runs_out_at=entry.runs_out_at,
    )


class Glance:
    """What a prompt shows for an entry, at once, and what refresh it calls for.

    Attributes:
        balance: The value to show, or ``None``.
        error: The error to show instead (a refused key, unusable settings, or a failure
            remembered with no value to show), or ``None``.
        refresh: ``None``, ``BACKGROUND`` (start one behind the prompt) or ``FOREGROUND``
            (nothing to show: ask and wait).
    """

    __slots__ = ("balance", "error", "refresh")

    def __init__(
        self,
        balance: CachedBalance | None = None,
        *,
        error: RememberedError | None = None,
        refresh: str | None = None,
    ) -> None:
        self.balance = balance
        self.error = error
        self.refresh = refresh


def glance(entry: Entry | None, organization: str | None, *, max_age: float, now: float) -> Glance:
    """What a prompt shows for ``entry`` without waiting (see the module's rules)."""
    value = balance_of(entry, organization, now)
    if value is not None and value.age < max_age:
        return Glance(value)
    waiting = entry is not None and (retry_at(entry) or 0.0) > now
    error = None if entry is None else remembered_error(entry)
    if value is None:
        if waiting:
            return Glance(error=error)
        return Glance(refresh=FOREGROUND)
    refresh = None if waiting else BACKGROUND
    if error is not None and (error.refused or error.configuration):
        return Glance(error=error, refresh=refresh)
    return Glance(value, refresh=refresh)


def lookup(
    cache: BalanceCache | None,
    name: str,
    organization: str | None,
    *,
    max_age: float,
    fetch: Callable[[float], Fetched],
    deadline: float,
    warn: Callable[[str], None],
    refresh: bool = False,
) -> CachedBalance:
    """The balance for entry ``name``: the cached value when young enough, else refreshed in
    the foreground by one process at a time (the others return the older value at once, or
    with none to return, wait for that refresh until ``deadline``).

    Args:
        cache: The cache, or ``None`` to fetch without one (an unusable folder).
        name: The entry (``entry_for()``).
        organization: What the entry is for.
        max_age: Seconds a cached value counts as fresh.
        fetch: Reads the credits from the API, by ``deadline``, with when they run out (or
            ``None``); raises ``StabilityError``.
        deadline: ``time.monotonic()`` by which to have waited for another process's refresh.
        warn: Told, in a sentence, that the cache could not be written.
        refresh: Refresh even a fresh value, and wait for another process's refresh rather
            than return an older value.

    Raises:
        ConfigurationError: From ``fetch``: the settings are unusable, whatever is cached.
        StabilityError: ``fetch``'s error, when there is no older value to return; an
            ``APITimeoutError`` when another process's refresh did not end by ``deadline``.
    """
    if cache is None:
        return refresh_held(None, name, organization, None, fetch=fetch, deadline=deadline)
    now = time.time()
    entry = current(cache, name, now)
    cached = balance_of(entry, organization, now)
    if cached is not None and not refresh and cached.age < max_age:
        return cached
    try:
        lock = cache.lock(name)
    except OSError as err:  # a folder that can be read, not written: refresh uncached
        warn(
            f"cache directory {cache.directory} cannot be written "
            f"({err.strerror or err}); the balance is not cached"
        )
        return refresh_held(None, name, organization, entry, fetch=fetch, deadline=deadline)
    with lock:
        if not lock.try_acquire():
            if cached is not None and not refresh:
                return cached  # another process is refreshing it
            if not lock.acquire_by(deadline):
                return _waited_too_long(cached)
        now = time.time()
        latest = current(cache, name, now)
        fresh = balance_of(latest, organization, now)
        if fresh is not None and (
            (cached is None or fresh.fetched_at > cached.fetched_at)  # refreshed meanwhile
            or (not refresh and fresh.age < max_age)
        ):
            return fresh
        return refresh_held(
            cache, name, organization, latest, fetch=fetch, deadline=deadline, warn=warn
        )


def refresh_held(
    cache: BalanceCache | None,
    name: str,
    organization: str | None,
    older: Entry | None,
    *,
    fetch: Callable[[float], Fetched],
    deadline: float,
    warn: Callable[[str], None] | None = None,
) -> CachedBalance:
    """Ask the API (the caller holds the entry's lock, if there is a cache) and write down what
    came of it: the value, or the failure beside ``older``'s value. The value, or ``older``'s
    marked stale when the API failed; the error when there is none.

    Raises:
        ConfigurationError: From ``fetch``, never remembered (the settings are the caller's).
        StabilityError: ``fetch``'s error, when ``older`` holds no value.
    """
    from .._exceptions import ConfigurationError, StabilityError

    try:
        credits, runs_out_at = fetch(deadline)
    except ConfigurationError:
        raise  # not the API's doing: an older value would hide it
    except StabilityError as err:
        failed = failure_entry(older, err, time.time())
        _write(cache, name, failed, warn)
        stale = balance_of(failed, organization, time.time())
        if stale is None:
            raise
        return CachedBalance(
            stale.credits,
            organization,
            stale.fetched_at,
            stale.age,
            stale=True,
            error=err,
            runs_out_at=stale.runs_out_at,
        )
    fetched_at = time.time()
    _write(cache, name, Entry(float(credits), fetched_at, runs_out_at=runs_out_at), warn)
    return CachedBalance(float(credits), organization, fetched_at, 0.0, runs_out_at=runs_out_at)


def failure_kind(error: StabilityError) -> str:
    """What ``error`` says failed: ``refused`` (the key: 401, 403), ``configuration`` (the
    settings), else ``api`` (the API or the network)."""
    from .._exceptions import (
        AuthenticationError,
        ConfigurationError,
        PermissionDeniedError,
        RememberedError,
    )

    if isinstance(error, RememberedError):
        return "refused" if error.refused else "configuration" if error.configuration else "api"
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return "refused"
    if isinstance(error, ConfigurationError):
        return "configuration"
    return "api"


def failure_entry(
    older: Entry | None, error: StabilityError, now: float, *, line: str | None = None
) -> Entry:
    """``older`` with ``error`` remembered as the latest failure in a row, as ``line`` (by
    default, its one line as ``describe_error`` writes it)."""
    from .._exceptions import describe_error

    return _with_failure(older, now, failure_kind(error), line or describe_error(error))


def _write(
    cache: BalanceCache | None, name: str, entry: Entry, warn: Callable[[str], None] | None
) -> None:
    if cache is None:
        return
    try:
        cache.write(name, entry)
    except OSError as err:
        if warn is not None:
            warn(f"could not write the cache entry in {cache.directory}: {err.strerror or err}")


def _waited_too_long(cached: CachedBalance | None) -> CachedBalance:
    """After waiting in vain for another process's refresh: the older value, marked stale with
    the wait's timeout, or that error."""
    from .._exceptions import APITimeoutError

    error = APITimeoutError("Timed out waiting for another process's refresh of the balance.")
    if cached is None:
        raise error
    return CachedBalance(
        cached.credits,
        cached.organization,
        cached.fetched_at,
        cached.age,
        stale=True,
        error=error,
        runs_out_at=cached.runs_out_at,
    )
