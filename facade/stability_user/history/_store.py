"""The credits' history on disk: the balance readings of every organization, in one SQLite file.

``history.sqlite3`` in the state folder (``default_state_dir``: ``STABILITY_STATE_DIR``, else
``$XDG_STATE_HOME/stability-user``, else the platform's), folder 0700 and file 0600, in WAL mode
with a busy timeout, so that a prompt's refresh, a watcher, ``measure`` and an exporter can
write at once. The key is never written: a key's readings are named by a digest of it
(``account_of``), beside the organization's id and name as the API gave them.

A *series* is one key's readings of one organization on one API host; ``''`` stands for the
key's default organization while its id is unknown (``get_balance()`` does not say it). Such a
reading is read as the organization that was the key's default when it was taken, as the
``defaults`` table tells it (each stretch of time ``get_account()`` or ``get_balances()`` said
one organization was the default: ``default_spans``), or as no organization's when that is not
known (before any said it, or between two that said different ones). A reading equal to its
series' latest is stored at most once per ``HISTORY_HEARTBEAT``. A reading stamped more than
``CLOCK_SLACK`` after the moment a new one is taken (a clock that ran ahead, a dual-boot
machine's) is moved to ``readings_aside``, never deleted and never used again; one only a
little later (a concurrent writer that read first) is sorted into place.

The ledger of jobs (``_ledger``) lives in the same file: one row per ``measure`` run or
``track_spend()`` block, written once the job has ended.

A file that is not a store of ours (corrupt, or another program's database) is set aside, renamed
with a timestamp, and a fresh store started; a newer schema than this code knows is refused
(``HistoryError``), never rewritten; an older one is upgraded in place by the first process that
writes to it, one step per version (``_UPGRADES``), its readings kept. A reader (``read_only``)
writes nothing, not even to make the tables of an empty file or to upgrade an older one.
Standard library only, loaded only where a balance is recorded or the history read (never on a
``status`` cache hit).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .._cache._store import _sha256, private_directory, user_folder
from .._constants import HISTORY_ENV, HISTORY_HEARTBEAT, STATE_DIR_ENV
from .._exceptions import StabilityError

__all__ = [
    "CLOCK_SLACK",
    "SCHEMA_VERSION",
    "STORE_NAME",
    "DefaultRun",
    "HistoryError",
    "HistoryStore",
    "Observation",
    "StoredJob",
    "SeriesGroup",
    "SeriesInfo",
    "Span",
    "account_of",
    "default_spans",
    "default_state_dir",
    "groups",
    "history_enabled",
    "open_store",
    "reader_place",
]

STORE_NAME = "history.sqlite3"
# SQLite's application_id: marks the file as ours ("SUHS"), so another program's database at
# the path is told apart from an empty one.
_APPLICATION_ID = 0x53554853
# How long a writer waits for another's transaction (seconds): far longer than one takes.
BUSY_TIMEOUT = 5.0
# A reading stamped more than this after the moment it is read back, or a new one taken, is
# from a clock that ran ahead, not a concurrent writer that read first (a refresh takes
# seconds, bounded by its timeout).
CLOCK_SLACK = 300.0

_OFF = frozenset({"off", "0", "false", "no"})
_ON = frozenset({"", "on", "1", "true", "yes"})

# Schema 1, what a new file starts from; _UPGRADES takes it to SCHEMA_VERSION.
_SCHEMA = """
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    account TEXT NOT NULL,
    organization TEXT NOT NULL,
    name TEXT,
    is_default INTEGER NOT NULL DEFAULT 0,
    UNIQUE (host, account, organization)
);
CREATE TABLE readings (
    series INTEGER NOT NULL REFERENCES series (id),
    at REAL NOT NULL,
    credits REAL NOT NULL
);
CREATE INDEX readings_by_time ON readings (series, at);
"""

# Schema 2: the ledger. A job's organization is '' for the key's default one while unnamed, as
# in series; its window runs from before the balance was read before it to after the balance
# was read after it (seconds since the epoch); spent is NULL when a reading failed; exit_status
# is a command's (measure), raised whether a block raised (track_spend()).
_JOBS = """
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    account TEXT NOT NULL,
    organization TEXT NOT NULL,
    name TEXT,
    label TEXT,
    program TEXT NOT NULL,
    note TEXT,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    before REAL NOT NULL,
    after REAL,
    spent REAL,
    exit_status INTEGER,
    raised INTEGER,
    expected REAL
);
CREATE INDEX jobs_by_end ON jobs (host, ended_at);
"""


def _statements(script: str) -> list[str]:
    """``script``'s statements, to run one by one: executescript() would commit the
    transaction they are part of first."""
    return [statement for statement in script.split(";") if statement.strip()]


def _add_jobs(db: sqlite3.Connection) -> None:
    for statement in _statements(_JOBS):
        db.execute(statement)


# Schema 3: when each organization was a key's default (each stretch of time an answer of the
# API said so), to join a reading of the unnamed default to the organization that was the
# default when it was taken; and the readings set aside, stamped by a clock that ran ahead.
_DEFAULTS = """
CREATE TABLE defaults (
    host TEXT NOT NULL,
    account TEXT NOT NULL,
    organization TEXT NOT NULL,
    since REAL NOT NULL,
    until REAL NOT NULL
);
CREATE INDEX defaults_by_key ON defaults (host, account, since);
CREATE TABLE readings_aside (
    series INTEGER NOT NULL REFERENCES series (id),
    at REAL NOT NULL,
    credits REAL NOT NULL,
    set_aside_at REAL NOT NULL
);
"""
# A store of an earlier schema knew only which organization is a key's default now, and read its
# unnamed readings as that one's: so the upgrade says it was the default from the start (since 0).
_SEED_DEFAULTS = """
INSERT INTO defaults (host, account, organization, since, until)
SELECT host, account, organization, 0.0, 0.0 FROM series
WHERE is_default AND organization != ''
"""


def _add_defaults(db: sqlite3.Connection) -> None:
    for statement in _statements(_DEFAULTS):
        db.execute(statement)
    db.execute(_SEED_DEFAULTS)


# The upgrade path: step N (from 1) takes a store of schema N to schema N + 1, in place, in
# the transaction that sets the new user_version. A new file is made at schema 1 and taken up
# the same steps, so that every store of a schema has the same tables.
_UPGRADES: tuple[Callable[[sqlite3.Connection], None], ...] = (_add_jobs, _add_defaults)
# PRAGMA user_version of the files this code writes; a higher one is a newer program's.
SCHEMA_VERSION = 1 + len(_UPGRADES)


class HistoryError(StabilityError):
    """The history store cannot be used: written by a newer stability-user, or unreadable."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One balance read, to record.

    Attributes:
        organization: The organization's id; ``None`` for the key's default one, unnamed.
        credits: Its credits.
        name: Its name, when the API gave it.
        is_default: Whether it is the key's default organization, when the API said.
    """

    organization: str | None
    credits: float
    name: str | None = None
    is_default: bool | None = None


@dataclass(frozen=True, slots=True)
class StoredJob:
    """A row of the ledger, as stored (see ``_JOBS``); ``organization`` is ``''`` for the
    key's default organization while unnamed."""

    id: int
    account: str
    organization: str
    name: str | None
    label: str | None
    program: str
    note: str | None
    started_at: float
    ended_at: float
    before: float
    after: float | None
    spent: float | None
    exit_status: int | None
    raised: bool | None
    expected: float | None


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """A series as stored: whose (``account``), of which organization (``''`` for the
    key's default one while unnamed), its name and whether it is the key's default."""

    id: int
    account: str
    organization: str
    name: str | None
    is_default: bool


@dataclass(frozen=True, slots=True)
class Span:
    """The readings of one series from ``since`` (inclusive) to ``until`` (exclusive); ``None``
    for no bound."""

    series: int
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class DefaultRun:
    """A stretch of time a key's default organization was said to be ``organization``: from
    the first time an answer of the API said so to the last (``get_account()``,
    ``get_balances()``)."""

    account: str
    organization: str
    since: float
    until: float


@dataclass(frozen=True, slots=True)
class SeriesGroup:
    """The readings read as one organization's history: every key's readings of its id, and
    the unnamed readings of keys taken while it was their default.

    Attributes:
        organization: Its id; ``None`` for readings of a key's default organization that
            cannot be told whose (taken before any answer named the default, or while it
            changed).
        name: Its name, when known.
        series: The spans of series read.
        accounts: The keys (digests) whose default organization it is now (for ``None``: the
            key whose unnamed readings these are).
    """

    organization: str | None
    name: str | None
    series: tuple[Span, ...]
    accounts: frozenset[str]


def default_spans(
    runs: Sequence[DefaultRun],
) -> list[tuple[str | None, float | None, float | None]]:
    """Whose the unnamed readings of one key are, by when they were taken: ``(organization,
    since, until)`` covering all time, ``runs`` being the key's ``DefaultRun``s oldest first.

    Before the first run, nothing said which organization was the default: no one's. Within a
    run, and after the last (until an answer says otherwise), its organization's. Between two
    runs of different organizations the default changed at a moment no answer tells: no one's.
    """
    if not runs:
        return [(None, None, None)]
    spans: list[tuple[str | None, float | None, float | None]] = [(None, None, runs[0].since)]
    for run, following in zip(runs, [*runs[1:], None], strict=True):
        spans.append((run.organization, run.since, run.until))
        if following is None:
            spans.append((run.organization, run.until, None))
        else:
            same = following.organization == run.organization
            spans.append((run.organization if same else None, run.until, following.since))
    merged: list[tuple[str | None, float | None, float | None]] = []
    for organization, since, until in spans:
        if since is not None and until is not None and until <= since:
            continue  # empty
        if merged and merged[-1][0] == organization and merged[-1][2] == since:
            merged[-1] = (organization, merged[-1][1], until)
        else:
            merged.append((organization, since, until))
    return merged


def groups(infos: Sequence[SeriesInfo], runs: Sequence[DefaultRun] = ()) -> list[SeriesGroup]:
    """``infos`` (one host's series) as organizations, by id; a key's unnamed default series
    is split by ``default_spans`` between the organizations that were its default (``runs``,
    that host's) and a group of its own for what cannot be told whose."""
    by_account: dict[str, list[DefaultRun]] = {}
    for run in sorted(runs, key=lambda run: (run.since, run.until)):
        by_account.setdefault(run.account, []).append(run)
    members: dict[str, list[Span]] = {}
    names: dict[str, str] = {}
    current: dict[str, set[str]] = {}
    alone: list[SeriesGroup] = []
    for info in infos:
        if info.organization:
            members.setdefault(info.organization, []).append(Span(info.id))
            if info.name and info.organization not in names:
                names[info.organization] = info.name
            if info.is_default:
                current.setdefault(info.organization, set()).add(info.account)
            continue
        unknown: list[Span] = []
        for organization, since, until in default_spans(by_account.get(info.account, [])):
            span = Span(info.id, since, until)
            if organization is None:
                unknown.append(span)
            else:
                members.setdefault(organization, []).append(span)
        if unknown:
            alone.append(SeriesGroup(None, None, tuple(unknown), frozenset({info.account})))
    named = [
        SeriesGroup(
            organization,
            names.get(organization),
            tuple(spans),
            frozenset(current.get(organization, ())),
        )
        for organization, spans in sorted(members.items())
    ]
    return named + alone


def history_enabled(environ: Mapping[str, str], warn: Callable[[str], None] | None = None) -> bool:
    """Whether ``STABILITY_HISTORY`` leaves recording on: ``off``, ``0``, ``false``, ``no`` turn
    it off; unset, empty, ``on``, ``1``, ``true``, ``yes`` leave it on. Any other value leaves
    it on too, and ``warn`` is told (once a process), with the values taken."""
    value = environ.get(HISTORY_ENV, "").strip().lower()
    if value in _OFF:
        return False
    if value not in _ON and warn is not None and value not in _WARNED_VALUES:
        _WARNED_VALUES.add(value)
        warn(
            f"{HISTORY_ENV}={environ.get(HISTORY_ENV, '')!r} is not a value it takes, so the "
            "history is recorded: off, 0, false or no turn it off; on, 1, true or yes (or "
            "leaving it unset) keep it on"
        )
    return True


# The unknown STABILITY_HISTORY values said already: once a process, however many clients.
_WARNED_VALUES: set[str] = set()


def default_state_dir(environ: Mapping[str, str], warn: Callable[[str], None] | None = None) -> str:
    """Where the history lives: ``STABILITY_STATE_DIR``, else ``$XDG_STATE_HOME/stability-user``,
    else the platform's state folder (``~/.local/state``, ``~/Library/Application Support``,
    ``%LOCALAPPDATA%``). A relative value is not used, as for the cache folder."""
    return user_folder(
        environ,
        STATE_DIR_ENV,
        "XDG_STATE_HOME",
        posix="~/.local/state",
        macos="~/Library/Application Support",
        windows="State",
        warn=warn,
    )


def reader_place(
    api_key: str | None, base_url: str | None, state_dir: str | os.PathLike[str] | None
) -> tuple[str, str, str]:
    """Where a reader of the history looks: the API host (``base_url``, else
    ``STABILITY_BASE_URL``, ``API_HOST``, Stability's), the key (``api_key``, else
    ``STABILITY_API_KEY``; ``''`` without one) and the store's path (in ``state_dir``, else
    ``default_state_dir``)."""
    from .._cache._canonical import bare_key
    from .._cache._canonical import base_url as canonical_base_url
    from .._constants import API_KEY_ENV, BASE_URL_ENV, BASE_URL_FALLBACK_ENV, DEFAULT_BASE_URL

    environ = os.environ
    host = canonical_base_url(
        base_url
        or environ.get(BASE_URL_ENV)
        or environ.get(BASE_URL_FALLBACK_ENV)
        or DEFAULT_BASE_URL
    )
    key = bare_key(api_key or environ.get(API_KEY_ENV) or "")
    directory = os.fspath(state_dir) if state_dir is not None else default_state_dir(environ)
    return host, key, os.path.join(directory, STORE_NAME)


def account_of(host: str, api_key: str) -> str:
    """The name a key's readings are stored under: a SHA-256 of the host and the key, as the
    balance cache names its entries; the key itself is never written."""
    digest: str = _sha256(repr(("stability-user history", host, api_key)).encode()).hexdigest()
    return digest


def open_store(directory: str, warn: Callable[[str], None]) -> HistoryStore:
    """The store in ``directory``, made if missing (or upgraded from the previous schema); a
    file there that is not a store of ours is set aside (``warn`` is told where) and a fresh
    one started. ``warn`` is also told of readings set aside (``HistoryStore.record``).

    Raises:
        OSError: The folder cannot be made or trusted, or the file cannot be opened.
        HistoryError: The file was written by a newer stability-user.
    """
    private_directory(directory, "state directory")
    path = os.path.join(directory, STORE_NAME)
    try:
        return HistoryStore(path, warn=warn)
    except sqlite3.DatabaseError as error:
        if not _unreadable(error):  # a full disk, a read-only folder, a store locked too long
            raise OSError(f"the history store {path} cannot be used: {error}") from error
        aside = _set_aside(path)
        if aside is not None:
            warn(f"{path} was not a history store ({error}); moved it to {aside}")
    try:
        return HistoryStore(path, warn=warn)
    except sqlite3.DatabaseError as error:
        raise OSError(f"the history store {path} cannot be used: {error}") from error


class _Foreign(sqlite3.DatabaseError):
    """A database, not ours: another program's tables."""


# SQLite's result codes for a file that is not a database, or a damaged one.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def _busy(error: sqlite3.OperationalError) -> bool:
    """Whether ``error`` is another process holding the file (locked, or busy)."""
    text = str(error)
    return "locked" in text or "busy" in text


def _unreadable(error: sqlite3.DatabaseError) -> bool:
    """Whether ``error`` says the file is not a store of ours (to set aside), rather than one
    that cannot be used now (to skip: full, read-only, locked)."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, _Foreign) or code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _set_aside(path: str) -> str | None:
    """Rename the file at ``path`` (and its WAL files) with a timestamp; where it went, or
    ``None`` when another process has already done so. Under a lock, so that two processes
    that both found it unreadable do not set aside the fresh store one of them made."""
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows: no flock; a rare race costs a store)
            pass
        else:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            HistoryStore(path).close()  # made readable meanwhile, by another process?
            return None
        except sqlite3.DatabaseError as error:
            if not _unreadable(error):
                raise
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = f"{path}.{stamp}.{os.getpid()}.unreadable"
        os.replace(path, aside)
        for suffix in ("-wal", "-shm", "-journal"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        return aside
    finally:
        os.close(lock)


class HistoryStore:
    """An open store: record readings, read series. One connection, one thread.

    ``read_only``: the file is only read (``read_history()``): nothing is made, switched or
    upgraded in it; an empty file reads as an empty store. ``warn`` is told of readings set
    aside when recording."""

    def __init__(
        self, path: str, *, read_only: bool = False, warn: Callable[[str], None] | None = None
    ) -> None:
        self.path = path
        self.read_only = read_only
        self._warn = warn
        self._tables: frozenset[str] = frozenset()
        if read_only:
            from urllib.parse import quote

            self._db = sqlite3.connect(
                f"file:{quote(path)}?mode=ro", uri=True, timeout=BUSY_TIMEOUT, isolation_level=None
            )
        else:
            if not os.path.exists(path):
                # Made 0600 before SQLite opens it (its WAL files take the same mode).
                flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                os.close(os.open(path, flags, 0o600))
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        """Check the file and set the connection up, waiting out other processes that do the
        same: switching a new file to WAL takes an exclusive lock, and SQLite answers "database
        is locked" at once, not after its busy timeout, to a process that asks meanwhile."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self._prepare_once()
                return
            except sqlite3.OperationalError as error:
                if not _busy(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005 + 0.02 * (os.getpid() % 7) / 7)  # apart, not in step

    def _prepare_once(self) -> None:
        db = self._db
        if not self.read_only:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # kept in the file
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; no fsync per reading
            if db.execute("PRAGMA application_id").fetchone()[0] == 0:
                self._create()
        version = db.execute("PRAGMA user_version").fetchone()[0]
        application = db.execute("PRAGMA application_id").fetchone()[0]
        if application != _APPLICATION_ID:
            if self.read_only and application == 0 and not self._table_names():
                return  # an empty file: an empty store, left as it is
            raise _Foreign("another program's database")
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"The history store {self.path} was written by a newer stability-user "
                f"(schema {version}; this one reads {SCHEMA_VERSION}). Upgrade stability-user, "
                "or set STABILITY_STATE_DIR to another folder."
            )
        if version < SCHEMA_VERSION and not self.read_only:
            with self._transaction():  # one process upgrades; the others then see it done
                self._upgrade()
        self._tables = self._table_names()

    def _table_names(self) -> frozenset[str]:
        rows = self._db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
        return frozenset(row[0] for row in rows)

    def _create(self) -> None:
        """Make the tables in an empty file; another program's database is refused."""
        db = self._db
        with self._transaction():  # one process makes them; the others then see them
            if db.execute("PRAGMA application_id").fetchone()[0] == 0:
                if db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]:
                    raise _Foreign("another program's database")
                for statement in _statements(_SCHEMA):
                    db.execute(statement)
                db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                db.execute("PRAGMA user_version=1")
                self._upgrade()

    def _upgrade(self) -> None:
        """Take the store from the schema it has to ``SCHEMA_VERSION``, one step per version;
        in a write transaction, so that the version read is the one upgraded."""
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for step in _UPGRADES[max(version, 1) - 1 :]:
            step(db)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction, begun at once (BEGIN IMMEDIATE: the write lock is waited for
        under the busy timeout, never upgraded mid-way), committed, or rolled back on error."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the connection (the last one to close folds the WAL into the file)."""
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Writing

    def record(
        self, host: str, account: str, observations: Iterable[Observation], at: float
    ) -> int:
        """Store the readings taken at ``at`` (seconds since the epoch); how many were stored
        (a repeat within the heartbeat is not). Readings of the key stamped more than
        ``CLOCK_SLACK`` after ``at`` are set aside first (``warn`` is told)."""
        stored = 0
        with self._transaction():
            aside = self._set_aside_future(host, account, at)
            for observation in observations:
                series = self._series(host, account, observation, at)
                stored += self._add(series, observation.credits, at)
        if aside and self._warn is not None:
            count, latest = aside
            self._warn(
                f"{count} reading{'s' * (count != 1)} of the history stamped after now (the "
                f"latest at {_utc(latest)}) {'were' if count != 1 else 'was'} set aside, kept "
                f"in {STORE_NAME}'s readings_aside table: a clock that ran ahead when "
                f"{'they were' if count != 1 else 'it was'} taken"
            )
        return stored

    def learn(
        self,
        host: str,
        account: str,
        organizations: Sequence[Observation],
        at: float | None = None,
    ) -> None:
        """Remember the organizations' names and which is the key's default at ``at`` (from the
        account; the credits of these observations are not read)."""
        when = time.time() if at is None else at
        with self._transaction():
            for organization in organizations:
                self._series(host, account, organization, when)

    def _series(self, host: str, account: str, observation: Observation, at: float) -> int:
        db = self._db
        organization = observation.organization or ""
        row = db.execute(
            "SELECT id, name, is_default FROM series "
            "WHERE host = ? AND account = ? AND organization = ?",
            (host, account, organization),
        ).fetchone()
        if row is None:
            cursor = db.execute(
                "INSERT INTO series (host, account, organization, name, is_default) "
                "VALUES (?, ?, ?, ?, ?)",
                (host, account, organization, observation.name, bool(observation.is_default)),
            )
            series_id = int(cursor.lastrowid or 0)
        else:
            series_id = int(row[0])
            if observation.name is not None and observation.name != row[1]:
                db.execute("UPDATE series SET name = ? WHERE id = ?", (observation.name, series_id))
        if observation.is_default is not None and organization:
            if observation.is_default:  # one default per key: the API says which, now
                db.execute(
                    "UPDATE series SET is_default = (id = ?) WHERE host = ? AND account = ?",
                    (series_id, host, account),
                )
                self._default_at(host, account, organization, at)
            elif row is not None and row[2]:
                db.execute("UPDATE series SET is_default = 0 WHERE id = ?", (series_id,))
        return series_id

    def _default_at(self, host: str, account: str, organization: str, at: float) -> None:
        """The API said at ``at`` that ``organization`` is the key's default: the run it
        continues, or a new one."""
        db = self._db
        # What a clock that ran ahead said is not kept as said: the runs end by now.
        ahead = at + CLOCK_SLACK
        key = (host, account)
        db.execute(
            "DELETE FROM defaults WHERE host = ? AND account = ? AND since > ?", (*key, ahead)
        )
        db.execute(
            "UPDATE defaults SET until = ? WHERE host = ? AND account = ? AND until > ?",
            (at, *key, ahead),
        )
        latest = db.execute(
            "SELECT rowid, organization, until FROM defaults WHERE host = ? AND account = ? "
            "ORDER BY until DESC, rowid DESC LIMIT 1",
            (host, account),
        ).fetchone()
        if latest is not None and latest[1] == organization:
            if at > latest[2]:
                db.execute("UPDATE defaults SET until = ? WHERE rowid = ?", (at, latest[0]))
            return
        if latest is not None and at <= latest[2]:
            # Said before the latest run ended (a concurrent writer that read first): the
            # change is not placed in time; the runs stay as they are.
            return
        db.execute(
            "INSERT INTO defaults (host, account, organization, since, until) "
            "VALUES (?, ?, ?, ?, ?)",
            (host, account, organization, at, at),
        )

    def _set_aside_future(self, host: str, account: str, at: float) -> tuple[int, float] | None:
        """Move the key's readings stamped after ``at`` + ``CLOCK_SLACK`` to readings_aside;
        how many, and the latest stamp, when there were any."""
        db = self._db
        found = db.execute(
            "SELECT count(*), max(readings.at) FROM readings JOIN series ON series.id = "
            "readings.series WHERE series.host = ? AND series.account = ? AND readings.at > ?",
            (host, account, at + CLOCK_SLACK),
        ).fetchone()
        if not found[0]:
            return None
        chosen = "series IN (SELECT id FROM series WHERE host = ? AND account = ?) AND at > ?"
        db.execute(
            "INSERT INTO readings_aside (series, at, credits, set_aside_at) "
            f"SELECT series, at, credits, ? FROM readings WHERE {chosen}",
            (at, host, account, at + CLOCK_SLACK),
        )
        db.execute(f"DELETE FROM readings WHERE {chosen}", (host, account, at + CLOCK_SLACK))
        return int(found[0]), float(found[1])

    def _add(self, series: int, credits: float, at: float) -> int:
        db = self._db
        latest = db.execute(
            "SELECT at, credits FROM readings WHERE series = ? ORDER BY at DESC, rowid DESC "
            "LIMIT 1",
            (series,),
        ).fetchone()
        if latest is not None:
            latest_at, latest_credits = latest
            if credits == latest_credits and latest_at <= at < latest_at + HISTORY_HEARTBEAT:
                return 0
        db.execute(
            "INSERT INTO readings (series, at, credits) VALUES (?, ?, ?)", (series, at, credits)
        )
        return 1

    # The ledger

    def add_jobs(self, host: str, jobs: Sequence[StoredJob]) -> list[int]:
        """Store ``jobs`` (their ``id`` is not read), in one transaction; the ids given."""
        ids = []
        with self._transaction():
            for job in jobs:
                cursor = self._db.execute(
                    "INSERT INTO jobs (host, account, organization, name, label, program, note, "
                    "started_at, ended_at, before, after, spent, exit_status, raised, expected) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        host,
                        job.account,
                        job.organization,
                        job.name,
                        job.label,
                        job.program,
                        job.note,
                        job.started_at,
                        job.ended_at,
                        job.before,
                        job.after,
                        job.spent,
                        job.exit_status,
                        job.raised,
                        job.expected,
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def jobs(self, host: str, ended_since: float | None = None) -> list[StoredJob]:
        """The jobs of ``host`` that ended at ``ended_since`` or later (every one without it),
        in the order they started."""
        if "jobs" not in self._tables:  # a reader of a store older than the ledger
            return []
        query = (
            "SELECT id, account, organization, name, label, program, note, started_at, "
            "ended_at, before, after, spent, exit_status, raised, expected FROM jobs "
            "WHERE host = ?"
        )
        parameters: list[str | float] = [host]
        if ended_since is not None:
            query += " AND ended_at >= ?"
            parameters.append(ended_since)
        rows = self._db.execute(query + " ORDER BY started_at, id", parameters).fetchall()
        return [
            StoredJob(
                id=row[0],
                account=row[1],
                organization=row[2],
                name=row[3],
                label=row[4],
                program=row[5],
                note=row[6],
                started_at=row[7],
                ended_at=row[8],
                before=row[9],
                after=row[10],
                spent=row[11],
                exit_status=row[12],
                raised=None if row[13] is None else bool(row[13]),
                expected=row[14],
            )
            for row in rows
        ]

    # What a watcher of an earlier release kept here: read once, to carry its alerts over
    # (``stability_user._alerts._state`` keeps them now, in a file of their own).

    def legacy_alerts(self, host: str, account: str) -> list[tuple[object, ...]]:
        """The rows of the alerts table an earlier ``watch`` kept for ``account`` on ``host``:
        ``(target, key, organization, started_at, notified_at, title, body)``."""
        if "alerts" not in self._tables:
            return []
        rows = self._db.execute(
            "SELECT target, key, organization, started_at, notified_at, title, body FROM alerts "
            "WHERE host = ? AND account = ?",
            (host, account),
        ).fetchall()
        return [tuple(row) for row in rows]

    # Reading

    def series(self, host: str) -> list[SeriesInfo]:
        """Every series of ``host``."""
        if "series" not in self._tables:
            return []
        rows = self._db.execute(
            "SELECT id, account, organization, name, is_default FROM series WHERE host = ? "
            "ORDER BY organization, account",
            (host,),
        ).fetchall()
        return [SeriesInfo(row[0], row[1], row[2], row[3], bool(row[4])) for row in rows]

    def default_runs(self, host: str) -> list[DefaultRun]:
        """When each key of ``host`` had which default organization, as the API said it. A
        store of schema 1 (read, not upgraded) knew only the default now: from the start."""
        if "defaults" not in self._tables:
            return [
                DefaultRun(info.account, info.organization, 0.0, 0.0)
                for info in self.series(host)
                if info.is_default and info.organization
            ]
        rows = self._db.execute(
            "SELECT account, organization, since, until FROM defaults WHERE host = ? "
            "ORDER BY since, until, rowid",
            (host,),
        ).fetchall()
        return [DefaultRun(row[0], row[1], float(row[2]), float(row[3])) for row in rows]

    def groups(self, host: str) -> list[SeriesGroup]:
        """``host``'s readings as organizations (``groups``)."""
        return groups(self.series(host), self.default_runs(host))

    def readings(
        self, series: Sequence[Span], since: float | None = None
    ) -> list[tuple[float, float]]:
        """The readings (time, credits) of ``series``, merged, oldest first; from ``since``."""
        if not series or "readings" not in self._tables:
            return []
        where, parameters = _spans(series)
        query = f"SELECT at, credits FROM readings WHERE ({where})"
        if since is not None:
            query += " AND at >= ?"
            parameters.append(since)
        rows = self._db.execute(query + " ORDER BY at, rowid", parameters).fetchall()
        return [(float(at), float(credits)) for at, credits in rows]

    def latest_before(self, series: Sequence[Span], before: float) -> tuple[float, float] | None:
        """The last reading of ``series`` before ``before``, if any."""
        if not series or "readings" not in self._tables:
            return None
        where, parameters = _spans(series)
        row = self._db.execute(
            f"SELECT at, credits FROM readings WHERE ({where}) AND at < ? "
            "ORDER BY at DESC, rowid DESC LIMIT 1",
            [*parameters, before],
        ).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))


def _spans(spans: Sequence[Span]) -> tuple[str, list[float | int]]:
    """A WHERE clause choosing the readings of ``spans``, and its parameters."""
    clauses = []
    parameters: list[float | int] = []
    for span in spans:
        clause = "series = ?"
        parameters.append(span.series)
        if span.since is not None:
            clause += " AND at >= ?"
            parameters.append(span.since)
        if span.until is not None:
            clause += " AND at < ?"
            parameters.append(span.until)
        clauses.append(f"({clause})")
    return " OR ".join(clauses), parameters


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(min(at, 253402300799.0)))
