"""The balance cache on disk: the last balance read per (base URL, API version, key, organization).

``stability-user status`` reads it on every shell prompt, so a hit costs reading one small file:
this module imports no more of the standard library than that needs (no httpx2, no models, no
``typing``, and no ``json``, whose regular expressions alone cost a prompt more than the rest of
a hit), and what a refresh needs comes in as a callable. An entry is a few ``name value`` lines::

    stability-user balance cache 1
    entry 065df7a2...
    credits 125.5
    fetched_at 1796282684.3009503

(the organization is in the entry's name, not its content, so an entry's size does not depend on
what it is for). ``cached_balance()`` (``_default``) and the ``status`` command name entries with
one function, ``entry_for()``, and share ``lookup()``, the policy:

- a value younger than ``max_age`` is returned as it is, without the network;
- an older one is refreshed by one process at a time (a file lock per entry); the others return
  the older value marked stale at once, or, with none to return, wait for that refresh;
- a failed refresh returns the older value marked stale, with the error; with none, it raises.

Entries are named by a SHA-256 of what they are for, so the key is never written; files are
0600 in a 0700 folder, written atomically (a temporary file, then a rename). What cannot be
trusted (corrupt, truncated, another entry's content, another user's file, a folder others can
write or reached through another user's symbolic link) is never read as a balance. A folder that
can be read but not written (a read-only mount, a sandbox) still answers from what it holds;
refreshes then go uncached, with one warning.
"""

from __future__ import annotations

import math
import os
import sys
import time

TYPE_CHECKING = False  # typing costs a prompt-drawing ``status`` more than its own work
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from ._exceptions import StabilityError

__all__ = [
    "CACHE_FORMAT",
    "BalanceCache",
    "CachedBalance",
    "age_text",
    "default_cache_dir",
    "entry_for",
    "entry_name",
    "lookup",
    "open_cache",
]

# The first line of every entry; an entry with anything else is another program's or another
# version's, and is replaced.
CACHE_FORMAT = "stability-user balance cache 1"
_FIELDS = frozenset({"entry", "credits", "fetched_at"})
# Far more than an entry's few lines take, whatever it is for (the organization is not in it).
_MAX_ENTRY_BYTES = 4096
# An entry dated further ahead than this (a clock set back since) is not trusted.
_CLOCK_SKEW = 5.0
# How often a process waiting for another's refresh looks at the lock.
_LOCK_POLL = 0.01
_APP = "stability-user"


class CachedBalance:
    """A balance from the cache, or just read and cached.

    Attributes:
        credits: The credits.
        organization: The organization asked for; ``None`` for the key's default one.
        fetched_at: When the API answered with it (seconds since the epoch, UTC).
        age: Its age, in seconds, when it was returned.
        stale: Whether it is older than the ``max_age`` asked for (a refresh failed, or
            another process was refreshing it).
        error: Why a stale value was returned: the refresh's error, if it failed.
    """

    # Not a dataclass: `dataclasses` (and the `inspect` it imports) would cost a prompt's
    # `status` more than the rest of a cache hit.
    __slots__ = ("age", "credits", "error", "fetched_at", "organization", "stale")

    credits: float
    organization: str | None
    fetched_at: float
    age: float
    stale: bool
    error: StabilityError | None

    def __init__(
        self,
        credits: float,
        organization: str | None,
        fetched_at: float,
        age: float,
        *,
        stale: bool = False,
        error: StabilityError | None = None,
    ) -> None:
        for name, value in (
            ("credits", credits),
            ("organization", organization),
            ("fetched_at", fetched_at),
            ("age", age),
            ("stale", stale),
            ("error", error),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CachedBalance):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields()[:5])

    def _fields(self) -> tuple[Any, ...]:
        return (self.credits, self.organization, self.fetched_at, self.age, self.stale, self.error)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle would restore the slots with setattr, which an immutable record refuses.
        return (_restore, (self._fields(),))

    def __repr__(self) -> str:
        error = "" if self.error is None else f", error={type(self.error).__name__}"
        return (
            f"CachedBalance(credits={self.credits!r}, organization={self.organization!r}, "
            f"age={self.age:.1f}, stale={self.stale!r}{error})"
        )

    def _stale(self, error: StabilityError | None = None) -> CachedBalance:
        return CachedBalance(
            self.credits, self.organization, self.fetched_at, self.age, stale=True, error=error
        )

    @property
    def fetched_at_iso(self) -> str:
        """``fetched_at`` in ISO 8601, UTC, to the second (``2026-12-03T07:18:04Z``)."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.fetched_at))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields, ``fetched_at`` in ISO 8601, the error as its one-line text."""
        return {
            "credits": self.credits,
            "organization": self.organization,
            "fetched_at": self.fetched_at_iso,
            "age": round(self.age, 3),
            "stale": self.stale,
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
        }


def _restore(fields: tuple[Any, ...]) -> CachedBalance:
    credits, organization, fetched_at, age, stale, error = fields
    return CachedBalance(credits, organization, fetched_at, age, stale=stale, error=error)


def age_text(seconds: float) -> str:
    """An age as a prompt shows it: ``45s``, ``12m``, ``3h``, ``2d`` (whole units, rounded down)."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def default_cache_dir(environ: Mapping[str, str], warn: Callable[[str], None] | None = None) -> str:
    """Where the cache lives: ``STABILITY_CACHE_DIR``, else ``$XDG_CACHE_HOME/stability-user``,
    else the platform's cache folder (``~/.cache``, ``~/Library/Caches``, ``%LOCALAPPDATA%``).

    A relative value of either variable is not used (it would make a cache in every folder a
    prompt is drawn in): ``warn`` is told so for ``STABILITY_CACHE_DIR``, and the next rule
    applies, as the XDG specification says of its own variable.
    """
    from ._constants import CACHE_DIR_ENV

    explicit = environ.get(CACHE_DIR_ENV)
    if explicit and os.path.isabs(explicit):
        return explicit
    if explicit and warn is not None:
        warn(f"{CACHE_DIR_ENV} {explicit!r} is not an absolute path; not using it")
    xdg = environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is to be ignored
        return os.path.join(xdg, _APP)
    if sys.platform == "win32":
        local = environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(local, _APP, "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser(f"~/Library/Caches/{_APP}")
    return os.path.expanduser(f"~/.cache/{_APP}")


def entry_for(base_url: str, api_version: str, api_key: str, organization: str | None) -> str:
    """The entry for these settings, however they are written: ``status`` passes them as given,
    ``cached_balance()`` as its client resolved them, and both name the same entry."""
    from ._canonical import api_version_name, bare_key
    from ._canonical import base_url as canonical_base_url

    return entry_name(
        canonical_base_url(base_url), api_version_name(api_version), bare_key(api_key), organization
    )


def entry_name(base_url: str, api_version: str, api_key: str, organization: str | None) -> str:
    """The file name of an entry: a SHA-256 of what it is for, so the key is never written.

    The values are taken as the client resolves them (base URL without a trailing slash,
    the version's name, the key without ``Bearer``); ``None`` is the default organization.
    """
    import hashlib

    identity = repr((CACHE_FORMAT, base_url, api_version, api_key, organization))
    return hashlib.sha256(identity.encode()).hexdigest()


class BalanceCache:
    """One cache folder, checked to be safe to use (see ``open_cache``)."""

    __slots__ = ("directory",)

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _path(self, name: str, suffix: str = ".entry") -> str:
        return os.path.join(self.directory, name + suffix)

    def read(self, name: str, organization: str | None, now: float) -> CachedBalance | None:
        """The entry ``name`` (for ``organization``), or ``None`` when it is missing or cannot
        be trusted."""
        try:
            text = _read_private_file(self._path(name)).decode()
        except (OSError, ValueError):  # missing, unsafe, not UTF-8
            return None
        return _parse_entry(text, name, organization, now)

    def write(self, name: str, credits: float, fetched_at: float) -> None:
        """Store an entry atomically: readers see the old file or the new one, never a part.

        Raises:
            OSError: The folder could not be written.
        """
        lines = [
            CACHE_FORMAT,
            f"entry {name}",
            f"credits {credits!r}",
            f"fetched_at {fetched_at!r}",
        ]
        body = "".join(line + "\n" for line in lines).encode()
        temporary = self._path(f".{name}.{os.getpid()}.{os.urandom(4).hex()}", ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        try:
            try:
                os.write(descriptor, body)
            finally:
                os.close(descriptor)
            # No fsync: after a crash the entry may be empty, which reads as corrupt and is
            # replaced; a prompt should not wait for the disk.
            os.replace(temporary, self._path(name))
        except BaseException:
            _remove_quietly(temporary)
            raise

    def lock(self, name: str) -> _EntryLock:
        """The entry's refresh lock (held by one process at a time), released when closed (it
        is a context manager).

        Raises:
            OSError: The lock file cannot be opened or made (a read-only folder).
        """
        return _EntryLock(self._path(name, ".lock"))


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _read_private_file(path: str) -> bytes:
    """A small regular file of this user's that nobody else can write, else ``OSError``."""
    descriptor = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        status = os.fstat(descriptor)
        problem = _unsafe(status, directory=False)
        if problem or status.st_size > _MAX_ENTRY_BYTES:
            raise OSError(problem or "too large for a cache entry")
        return os.read(descriptor, _MAX_ENTRY_BYTES + 1)
    finally:
        os.close(descriptor)


def _unsafe(status: os.stat_result, *, directory: bool) -> str | None:
    """Why a file or folder may not be trusted, or ``None``. (POSIX: owner and mode.)"""
    import stat

    if directory != stat.S_ISDIR(status.st_mode) or not (directory or stat.S_ISREG(status.st_mode)):
        return "is not a directory" if directory else "is not a regular file"
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:  # Windows: the folder is under the user's own profile
        return None
    if status.st_uid != geteuid():
        return "is not owned by the current user"
    if status.st_mode & 0o022:
        return "is writable by other users"
    return None


def _parse_entry(
    text: str, name: str, organization: str | None, now: float
) -> CachedBalance | None:
    """The entry in ``text`` if it is whole and ``name``'s, else ``None``."""
    header, _, body = text.partition("\n")
    if header != CACHE_FORMAT or not body.endswith("\n"):  # another format, or truncated
        return None
    fields: dict[str, str] = {}
    for line in body[:-1].split("\n"):
        field, _, value = line.partition(" ")
        if field not in _FIELDS or field in fields or not value:
            return None
        fields[field] = value
    credits, fetched_at = _finite(fields.get("credits")), _finite(fields.get("fetched_at"))
    if (
        fields.get("entry") != name  # another entry's content, copied or renamed
        or credits is None
        or fetched_at is None
        or fetched_at > now + _CLOCK_SKEW
    ):
        return None
    return CachedBalance(credits, organization, fetched_at, max(0.0, now - fetched_at))


def _finite(text: str | None) -> float | None:
    """``text`` as a finite float, else ``None``."""
    try:
        value = float(text)  # type: ignore[arg-type]  # None: TypeError
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _remove_quietly(path: str) -> None:
    from contextlib import suppress

    with suppress(OSError):  # already gone; nothing else to do with a temporary file
        os.unlink(path)


def open_cache(directory: str) -> BalanceCache:
    """The cache in ``directory``, created (0700) if missing.

    Raises:
        OSError: The folder cannot be created, or may not be trusted: not the user's own,
            writable by others, or reached through a symbolic link another user owns (who
            could point it elsewhere later). The message says which.
    """
    link = None
    try:
        link = _foreign_link(directory)  # before anything is made through it
        if link is not None:
            raise OSError(
                f"cache directory {directory} is reached through {link}, a symbolic link of "
                "another user; not using it"
            )
        os.makedirs(directory, mode=0o700, exist_ok=True)
        status = os.stat(directory)
    except OSError as err:
        if link is not None:
            raise
        raise OSError(f"cache directory {directory} cannot be used: {err.strerror or err}") from err
    problem = _unsafe(status, directory=True)
    if problem:
        raise OSError(f"cache directory {directory} {problem}; not using it")
    return BalanceCache(directory)


# Symbolic links followed at most, as the kernel's own limit.
_MAX_LINKS = 40


def _foreign_link(directory: str) -> str | None:
    """The first symbolic link on the way to ``directory`` owned by neither this user nor
    root, or ``None``: its owner could point it elsewhere later (OpenSSH refuses its files
    for the same reason). A user's own link (``~/.cache`` on another disk) is fine."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:  # Windows: no owners to compare
        return None
    import stat

    trusted = {geteuid(), 0}
    pending = os.path.abspath(directory).split(os.sep)
    current, followed = os.sep, 0
    while pending:
        part = pending.pop(0)
        if part in ("", os.curdir):
            continue
        if part == os.pardir:
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            status = os.lstat(candidate)
        except FileNotFoundError:
            return None  # the rest is to be made, by this user
        if not stat.S_ISLNK(status.st_mode):
            current = candidate
            continue
        followed += 1
        if status.st_uid not in trusted or followed > _MAX_LINKS:
            return candidate
        target = os.readlink(candidate)
        if os.path.isabs(target):
            current = os.sep
        pending[:0] = target.split(os.sep)
    return None


class _EntryLock:
    """An exclusive ``flock`` on the entry's lock file, across processes.

    Where ``fcntl`` is missing (Windows) every attempt succeeds: refreshes are not serialized,
    which costs requests, never correctness.
    """

    __slots__ = ("_descriptor", "held")

    def __init__(self, path: str) -> None:
        self.held = False
        self._descriptor = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)

    def __enter__(self) -> _EntryLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def try_acquire(self) -> bool:
        """Take the lock if it is free; whether this process holds it now."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows)
            self.held = True
            return True
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.held = True
        return True

    def acquire_by(self, deadline: float) -> bool:
        """Wait for the lock until ``deadline`` (``time.monotonic()``); whether it was taken."""
        while not self.try_acquire():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(_LOCK_POLL, remaining))
        return True

    def close(self) -> None:
        """Release the lock (closing the file does) and the file."""
        os.close(self._descriptor)
        self.held = False


def lookup(
    cache: BalanceCache | None,
    name: str,
    organization: str | None,
    *,
    max_age: float,
    fetch: Callable[[float], float],
    deadline: float,
    warn: Callable[[str], None],
    refresh: bool = False,
) -> CachedBalance:
    """The balance for entry ``name``: cached when young enough, else refreshed (see the module).

    Args:
        cache: The cache, or ``None`` to fetch without one (an unusable folder).
        name: The entry (``entry_for()``).
        organization: What the entry is for.
        max_age: Seconds a cached value counts as fresh.
        fetch: Reads the credits from the API, by ``deadline``; raises ``StabilityError``.
        deadline: ``time.monotonic()`` by which to have waited for another process's refresh.
        warn: Told, in a sentence, that a fresh value could not be written to the cache.
        refresh: Refresh even a fresh value, and wait for another process's refresh rather
            than return an older value.

    Raises:
        ConfigurationError: From ``fetch``: the settings are unusable, whatever is cached.
        StabilityError: ``fetch``'s error, when there is no older value to return; an
            ``APITimeoutError`` when another process's refresh did not end by ``deadline``.
    """
    if cache is None:
        return _refresh(None, name, organization, None, fetch=fetch, deadline=deadline, warn=warn)
    cached = cache.read(name, organization, time.time())
    if cached is not None and not refresh and cached.age < max_age:
        return cached
    try:
        lock = cache.lock(name)
    except OSError as err:  # a folder that can be read, not written: refresh uncached
        warn(
            f"cache directory {cache.directory} cannot be written "
            f"({err.strerror or err}); the balance is not cached"
        )
        return _refresh(None, name, organization, cached, fetch=fetch, deadline=deadline, warn=warn)
    with lock:
        if not lock.try_acquire():
            if cached is not None and not refresh:
                return cached._stale()  # another process is refreshing it
            if not lock.acquire_by(deadline):
                return _waited_too_long(cached)
        latest = cache.read(name, organization, time.time())
        if latest is not None and (
            (cached is None or latest.fetched_at > cached.fetched_at)  # refreshed meanwhile
            or (not refresh and latest.age < max_age)
        ):
            return latest
        return _refresh(
            cache, name, organization, latest or cached, fetch=fetch, deadline=deadline, warn=warn
        )


def _refresh(
    cache: BalanceCache | None,
    name: str,
    organization: str | None,
    older: CachedBalance | None,
    *,
    fetch: Callable[[float], float],
    deadline: float,
    warn: Callable[[str], None],
) -> CachedBalance:
    """Ask the API, and keep the answer in ``cache`` (if any); ``older`` marked stale when the
    API fails, or the error without one."""
    from ._exceptions import ConfigurationError, StabilityError

    try:
        credits = fetch(deadline)
    except ConfigurationError:
        raise  # not the API's doing: an older value would hide it
    except StabilityError as err:
        if older is None:
            raise
        return older._stale(err)
    fresh = _fetched(credits, organization)
    if cache is not None:
        try:
            cache.write(name, fresh.credits, fresh.fetched_at)
        except OSError as err:
            warn(f"could not write the cache entry in {cache.directory}: {err.strerror or err}")
    return fresh


def _fetched(credits: float, organization: str | None) -> CachedBalance:
    return CachedBalance(float(credits), organization, time.time(), 0.0)


def _waited_too_long(cached: CachedBalance | None) -> CachedBalance:
    from ._exceptions import APITimeoutError

    error = APITimeoutError("Timed out waiting for another process's refresh of the balance.")
    if cached is None:
        raise error
    return cached._stale(error)
