"""The balance cache on disk: the last balance read per (base URL, API version, key, organization),
and what became of the last attempt to refresh it.

``stability-user status`` reads it on every shell prompt, so a hit costs reading one small file:
this module imports no more of the standard library than that needs (no httpx2, no models, no
``typing``, and no ``json``, whose regular expressions alone cost a prompt more than the rest of
a hit). An entry is a few ``name value`` lines::

    stability-user balance cache 2
    entry 065df7a2...
    credits 125.5
    fetched_at 1796282684.3009503
    failed_at 1796282990.12
    failures 2
    failure api
    error APITimeoutError: No answer from the API within --timeout 2 s.
    attempt_until 1796283012.5

The value (``credits``, ``fetched_at``) or the failure (``failed_at``, ``failures`` in a row,
its ``failure`` kind and ``error`` line) may be missing, not both; ``attempt_until`` says a
background refresh was started and should have written its outcome by then. The organization is
in the entry's name, not its content, so an entry's size does not depend on what it is for.
``cached_balance()`` and the ``status`` command name entries with one function, ``entry_for()``;
what they do with an entry is ``_policy``'s.

Entries are named by a SHA-256 of what they are for, so the key is never written; files are
0600 in a 0700 folder, written atomically (a temporary file, then a rename). What cannot be
trusted (corrupt, truncated, another entry's content, another user's file, a folder others can
write or reached through another user's symbolic link) is never read.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing costs a prompt-drawing ``status`` more than its own work
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from .._exceptions import StabilityError

__all__ = [
    "CACHE_FORMAT",
    "FAILURE_KINDS",
    "BalanceCache",
    "CachedBalance",
    "Entry",
    "EntryLock",
    "age_text",
    "default_cache_dir",
    "entry_for",
    "entry_name",
    "open_cache",
    "private_directory",
    "user_folder",
]

# The first line of every entry; an entry with anything else is another program's or another
# version's, and is replaced.
CACHE_FORMAT = "stability-user balance cache 3"
_VALUE_FIELDS = ("credits", "fetched_at")
_FAILURE_FIELDS = ("failed_at", "failures", "failure", "error")
_FIELDS = frozenset({"entry", "attempt_until", "runs_out_at", *_VALUE_FIELDS, *_FAILURE_FIELDS})
# What failed: the API or the network ("api"), the key, refused with a 401 or 403 ("refused"),
# or the settings, before anything was sent ("configuration").
FAILURE_KINDS = ("api", "refused", "configuration")
# The longest error line kept: far more than the API's messages take.
_MAX_ERROR_CHARS = 500
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
        stale: Whether a refresh has failed since it was read (however old it is: a value
            older than ``max_age`` while a refresh is under way is not stale yet).
        error: Why it is stale: the failed refresh's error (a ``RememberedError``, its one
            line, when another process's refresh failed).
        runs_out_at: When the credits run out at the burn rate the history told when the value
            was read (seconds since the epoch); ``None`` without a history that can tell
            (``cached_balance(history=True)``, the command line's ``status``).
    """

    # Not a dataclass: `dataclasses` (and the `inspect` it imports) would cost a prompt's
    # `status` more than the rest of a cache hit.
    __slots__ = ("age", "credits", "error", "fetched_at", "organization", "runs_out_at", "stale")

    credits: float
    organization: str | None
    fetched_at: float
    age: float
    stale: bool
    error: StabilityError | None
    runs_out_at: float | None

    def __init__(
        self,
        credits: float,
        organization: str | None,
        fetched_at: float,
        age: float,
        *,
        stale: bool = False,
        error: StabilityError | None = None,
        runs_out_at: float | None = None,
    ) -> None:
        for name, value in (
            ("credits", credits),
            ("organization", organization),
            ("fetched_at", fetched_at),
            ("age", age),
            ("stale", stale),
            ("error", error),
            ("runs_out_at", runs_out_at),
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
        return (
            self.credits,
            self.organization,
            self.fetched_at,
            self.age,
            self.stale,
            self.error,
            self.runs_out_at,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle would restore the slots with setattr, which an immutable record refuses.
        return (_restore, (self._fields(),))

    def __repr__(self) -> str:
        error = "" if self.error is None else f", error={type(self.error).__name__}"
        return (
            f"CachedBalance(credits={self.credits!r}, organization={self.organization!r}, "
            f"age={self.age:.1f}, stale={self.stale!r}{error})"
        )

    @property
    def fetched_at_iso(self) -> str:
        """``fetched_at`` in ISO 8601, UTC, to the second (``2026-12-03T07:18:04Z``)."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.fetched_at))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields, ``fetched_at`` in ISO 8601, the error as its one line."""
        error = None
        if self.error is not None:
            from .._exceptions import describe_error

            error = describe_error(self.error)
        return {
            "credits": self.credits,
            "organization": self.organization,
            "fetched_at": self.fetched_at_iso,
            "age": round(self.age, 3),
            "stale": self.stale,
            "error": error,
            "runs_out_at": None
            if self.runs_out_at is None
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.runs_out_at)),
        }


def _restore(fields: tuple[Any, ...]) -> CachedBalance:
    credits, organization, fetched_at, age, stale, error, runs_out_at = fields
    return CachedBalance(
        credits, organization, fetched_at, age, stale=stale, error=error, runs_out_at=runs_out_at
    )


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
    See ``user_folder``."""
    from .._constants import CACHE_DIR_ENV

    return user_folder(
        environ,
        CACHE_DIR_ENV,
        "XDG_CACHE_HOME",
        posix="~/.cache",
        macos="~/Library/Caches",
        windows="Cache",
        warn=warn,
    )


def user_folder(
    environ: Mapping[str, str],
    variable: str,
    xdg_variable: str,
    *,
    posix: str,
    macos: str,
    windows: str,
    warn: Callable[[str], None] | None = None,
) -> str:
    """One of the user's folders for stability-user: ``variable``'s, else
    ``$xdg_variable/stability-user``, else the platform's (``posix`` or ``macos`` joined with
    ``stability-user``; ``%LOCALAPPDATA%\\stability-user\\windows``).

    A relative value of either variable is not used (it would make a folder in every folder a
    prompt is drawn in): ``warn`` is told so for ``variable``, and the next rule applies, as
    the XDG specification says of its own variables.
    """
    explicit = environ.get(variable)
    if explicit and os.path.isabs(explicit):
        return explicit
    if explicit and warn is not None:
        warn(f"{variable} {explicit!r} is not an absolute path; not using it")
    xdg = environ.get(xdg_variable)
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is to be ignored
        return os.path.join(xdg, _APP)
    if sys.platform == "win32":
        local = environ.get("LOCALAPPDATA") or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(local, _APP, windows)
    if sys.platform == "darwin":
        return os.path.expanduser(f"{macos}/{_APP}")
    return os.path.expanduser(f"{posix}/{_APP}")


def entry_for(base_url: str, api_version: str, api_key: str, organization: str | None) -> str:
    """The entry for these settings, however they are written: ``status`` passes them as given,
    ``cached_balance()`` as its client resolved them, and both name the same entry."""
    from ._canonical import api_version_name, bare_key
    from ._canonical import base_url as canonical_base_url

    return entry_name(
        canonical_base_url(base_url), api_version_name(api_version), bare_key(api_key), organization
    )


def _sha256(data: bytes) -> Any:
    """SHA-256 from CPython's own implementation where it has one (``_sha2`` from 3.12,
    ``_sha256`` before): ``hashlib`` loads OpenSSL, which alone costs a prompt's ``status``
    a fifth of its run. The digests are the same (SHA-256 is SHA-256); ``hashlib`` elsewhere."""
    for module in ("_sha2", "_sha256"):
        try:
            return __import__(module).sha256(data)
        except ImportError:
            continue
    import hashlib

    return hashlib.sha256(data)


def entry_name(base_url: str, api_version: str, api_key: str, organization: str | None) -> str:
    """The file name of an entry: a SHA-256 of what it is for, so the key is never written.

    The values are taken as the client resolves them (base URL without a trailing slash,
    the version's name, the key without ``Bearer``); ``None`` is the default organization.
    """
    identity = repr((CACHE_FORMAT, base_url, api_version, api_key, organization))
    digest: str = _sha256(identity.encode()).hexdigest()
    return digest


class Entry:
    """What an entry holds: the last value read, and the last failure since, if any.

    Attributes:
        credits: The last balance read; ``None`` if none has been.
        fetched_at: When it was read (seconds since the epoch); ``None`` with ``credits``.
        failed_at: When the last refresh failed; ``None`` if none has since the value.
        failures: How many refreshes in a row have failed (0 with ``failed_at`` None).
        failure: What failed (``FAILURE_KINDS``): ``api``, ``refused`` or ``configuration``.
        error: The failure's one line, as the command line prints it.
        attempt_until: When a background refresh started should have written its outcome
            by; ``None`` when none is under way.
        runs_out_at: When the value's credits run out at the history's burn rate, as it told
            when the value was read; ``None`` when it could not.
    """

    __slots__ = (
        "attempt_until",
        "credits",
        "error",
        "failed_at",
        "failure",
        "failures",
        "fetched_at",
        "runs_out_at",
    )

    credits: float | None
    fetched_at: float | None
    failed_at: float | None
    failures: int
    failure: str | None
    error: str | None
    attempt_until: float | None
    runs_out_at: float | None

    def __init__(
        self,
        credits: float | None = None,
        fetched_at: float | None = None,
        *,
        failed_at: float | None = None,
        failures: int = 0,
        failure: str | None = None,
        error: str | None = None,
        attempt_until: float | None = None,
        runs_out_at: float | None = None,
    ) -> None:
        self.attempt_until = attempt_until
        self.runs_out_at = runs_out_at
        self.credits = credits
        self.fetched_at = fetched_at
        self.failed_at = failed_at
        self.failures = failures
        self.failure = failure
        self.error = error

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in Entry.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in Entry.__slots__)
        return f"Entry({fields})"

    def replace(self, **changes: Any) -> Entry:
        """A copy with ``changes`` (field names as the constructor takes them)."""
        fields = {name: getattr(self, name) for name in Entry.__slots__}
        fields.update(changes)
        return Entry(**fields)

    def lines(self, name: str) -> list[str]:
        """The entry's file, line by line (``name`` is the entry's own)."""
        lines = [CACHE_FORMAT, f"entry {name}"]
        if self.credits is not None:
            lines += [f"credits {self.credits!r}", f"fetched_at {self.fetched_at!r}"]
            if self.runs_out_at is not None:
                lines.append(f"runs_out_at {self.runs_out_at!r}")
        if self.failed_at is not None:
            error = "".join(c if c.isprintable() else " " for c in self.error or "?")
            lines += [
                f"failed_at {self.failed_at!r}",
                f"failures {self.failures}",
                f"failure {self.failure}",
                f"error {error[:_MAX_ERROR_CHARS]}",
            ]
        if self.attempt_until is not None:
            lines.append(f"attempt_until {self.attempt_until!r}")
        return lines


class BalanceCache:
    """One cache folder, checked to be safe to use (see ``open_cache``)."""

    __slots__ = ("directory",)

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _path(self, name: str, suffix: str = ".entry") -> str:
        return os.path.join(self.directory, name + suffix)

    def read(self, name: str, now: float) -> Entry | None:
        """The entry ``name``, or ``None`` when it is missing or cannot be trusted."""
        try:
            text = _read_private_file(self._path(name)).decode()
        except (OSError, ValueError):  # missing, unsafe, not UTF-8
            return None
        return _parse_entry(text, name, now)

    def write(self, name: str, entry: Entry) -> None:
        """Store ``entry`` atomically: readers see the old file or the new one, never a part.

        Raises:
            OSError: The folder could not be written.
        """
        lines = entry.lines(name)
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

    def lock(self, name: str) -> EntryLock:
        """The entry's refresh lock (held by one process at a time), released when closed (it
        is a context manager).

        Raises:
            OSError: The lock file cannot be opened or made (a read-only folder).
        """
        return EntryLock(self._path(name, ".lock"))

    def lock_path(self, name: str) -> str:
        """The file the entry's lock is taken on."""
        return self._path(name, ".lock")


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


def _parse_entry(text: str, name: str, now: float) -> Entry | None:
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
    if fields.pop("entry", None) != name:  # another entry's content, copied or renamed
        return None
    entry = Entry()
    if any(field in fields for field in _VALUE_FIELDS):
        credits, fetched_at = _finite(fields.get("credits")), _finite(fields.get("fetched_at"))
        if credits is None or fetched_at is None or fetched_at > now + _CLOCK_SKEW:
            return None
        entry.credits, entry.fetched_at = credits, fetched_at
    if any(field in fields for field in _FAILURE_FIELDS):
        failed_at, failures = _finite(fields.get("failed_at")), fields.get("failures", "")
        if (
            failed_at is None
            or failed_at > now + _CLOCK_SKEW
            or not (failures.isdigit() and failures.isascii() and int(failures) >= 1)
            or fields.get("failure") not in FAILURE_KINDS
            or "error" not in fields
        ):
            return None
        entry.failed_at, entry.failures = failed_at, int(failures)
        entry.failure, entry.error = fields["failure"], fields["error"]
    for field in ("attempt_until", "runs_out_at"):
        if field in fields:
            number = _finite(fields[field])
            if number is None:
                return None
            setattr(entry, field, number)
    if entry.credits is None and (  # a runway is written only beside a value
        entry.runs_out_at is not None or (entry.failed_at is None and entry.attempt_until is None)
    ):
        return None
    return entry


def _finite(text: str | None) -> float | None:
    """``text`` as a finite float, else ``None``."""
    try:
        value = float(text)  # type: ignore[arg-type]  # None: TypeError
    except (TypeError, ValueError):
        return None
    # Finite: inf - inf and nan - nan are nan (not math.isfinite: math costs a prompt).
    return value if value - value == 0.0 else None


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
    private_directory(directory, "cache directory")
    return BalanceCache(directory)


def private_directory(directory: str, label: str) -> None:
    """Make ``directory`` (0700) if missing, and check it may be trusted (``open_cache``'s
    rules; the history's state folder follows them too). ``label`` names it in the error.

    Raises:
        OSError: It cannot be made, or may not be trusted.
    """
    link = None
    try:
        link = _foreign_link(directory)  # before anything is made through it
        if link is not None:
            raise OSError(
                f"{label} {directory} is reached through {link}, a symbolic link of "
                "another user; not using it"
            )
        os.makedirs(directory, mode=0o700, exist_ok=True)
        status = os.stat(directory)
    except OSError as err:
        if link is not None:
            raise
        raise OSError(f"{label} {directory} cannot be used: {err.strerror or err}") from err
    problem = _unsafe(status, directory=True)
    if problem:
        raise OSError(f"{label} {directory} {problem}; not using it")


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


class EntryLock:
    """An exclusive ``flock`` on the entry's lock file, across processes.

    Where ``fcntl`` is missing (Windows) every attempt succeeds: refreshes are not serialized,
    which costs requests, never correctness.
    """

    __slots__ = ("_descriptor", "held")

    def __init__(self, path: str) -> None:
        self.held = False
        self._descriptor = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)

    def __enter__(self) -> EntryLock:
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

    @property
    def descriptor(self) -> int:
        """The lock file's descriptor: a process it is handed to (``status``'s background
        refresh) holds the lock with it, until that process ends or closes it too."""
        return self._descriptor

    def close(self) -> None:
        """Release the lock (closing the file does, unless another process shares it) and
        the file."""
        os.close(self._descriptor)
        self.held = False
