"""The credits' history on disk: the balance readings of every organization, in one SQLite file.

``history.sqlite3`` in the state folder (``default_state_dir``: ``STABILITY_STATE_DIR``, else
``$XDG_STATE_HOME/stability-user``, else the platform's), folder 0700 and file 0600, in WAL mode
with a busy timeout, so that a prompt's refresh, a watcher, ``measure`` and an exporter can
write at once. The key is never written: a key's readings are named by a digest of it
(``account_of``), beside the organization's id and name as the API gave them.

A *series* is one key's readings of one organization on one API host; ``''`` stands for the
key's default organization while its id is unknown (``get_balance()`` does not say it), and is
read as that organization's once ``get_account()`` or ``get_balances()`` has named it. A reading
equal to its series' latest is stored at most once per ``HISTORY_HEARTBEAT``; one stamped well
before the latest (a clock set back) is stored at the latest's time, so a series never runs
backwards; one only a little earlier (a concurrent writer that read first) is sorted into place.

The ledger of jobs (``_ledger``) lives in the same file: one row per ``measure`` run or
``track_spend()`` block, written once the job has ended.

A file that is not a store of ours (corrupt, or another program's database) is set aside, renamed
with a timestamp, and a fresh store started; a newer schema than this code knows is refused
(``HistoryError``), never rewritten; an older one is upgraded in place, one step per version
(``_UPGRADES``), its readings kept. Standard library only, loaded only where a balance is
recorded or the history read (never on a ``status`` cache hit).
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
    "Alert",
    "CLOCK_SLACK",
    "SCHEMA_VERSION",
    "STORE_NAME",
    "HistoryError",
    "HistoryStore",
    "Observation",
    "StoredJob",
    "SeriesGroup",
    "SeriesInfo",
    "account_of",
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
# A reading stamped more than this before its series' latest is a clock that went back, not a
# concurrent writer that read first (a refresh takes seconds, bounded by its timeout).
CLOCK_SLACK = 300.0

_OFF = frozenset({"off", "0", "false", "no"})

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


# The upgrade path: step N (from 1) takes a store of schema N to schema N + 1, in place, in
# the transaction that sets the new user_version. A new file is made at schema 1 and taken up
# the same steps, so that every store of a schema has the same tables.
_UPGRADES: tuple[Callable[[sqlite3.Connection], None], ...] = (_add_jobs,)
# PRAGMA user_version of the files this code writes; a higher one is a newer program's.
SCHEMA_VERSION = 1 + len(_UPGRADES)


_ALERTS_TABLE = """
CREATE TABLE IF NOT EXISTS alerts (
    host TEXT NOT NULL,
    account TEXT NOT NULL,
    target TEXT NOT NULL,
    key TEXT NOT NULL,
    organization TEXT,
    started_at REAL NOT NULL,
    notified_at REAL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (host, account, target, key)
)
"""


class HistoryError(StabilityError):
    """The history store cannot be used: written by a newer stability-user, or unreadable."""


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as stored: since when its condition holds, when a notice was last delivered
    (``None``: its start was not yet), and the last finding's text for the resolved notice."""

    key: str
    organization: str | None
    started_at: float
    notified_at: float | None
    title: str
    body: str


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
class SeriesGroup:
    """The series read as one organization's history: every key's readings of its id, and
    the readings of keys whose default it is, recorded before it was named.

    Attributes:
        organization: Its id; ``None`` for a key's default organization never named.
        name: Its name, when known.
        series: The series' ids.
        accounts: The keys (digests) whose default organization it is.
    """

    organization: str | None
    name: str | None
    series: tuple[int, ...]
    accounts: frozenset[str]


def groups(infos: Sequence[SeriesInfo]) -> list[SeriesGroup]:
    """``infos`` (one host's series) as organizations, by id; a key's unnamed default series
    joins the organization the key's default is known to be, else stands alone."""
    defaults = {info.account: info.organization for info in infos if info.is_default}
    by_id: dict[str, list[SeriesInfo]] = {}
    alone: list[SeriesGroup] = []
    for info in infos:
        organization = info.organization or defaults.get(info.account)
        if organization is None:
            alone.append(SeriesGroup(None, None, (info.id,), frozenset({info.account})))
        else:
            by_id.setdefault(organization, []).append(info)
    named = [
        SeriesGroup(
            organization,
            next((info.name for info in members if info.name), None),
            tuple(info.id for info in members),
            frozenset(info.account for info in members if info.is_default or not info.organization),
        )
        for organization, members in sorted(by_id.items())
    ]
    return named + alone


def history_enabled(environ: Mapping[str, str]) -> bool:
    """Whether ``STABILITY_HISTORY`` leaves recording on (``off``, ``0``, ``false``, ``no``
    turn it off)."""
    return environ.get(HISTORY_ENV, "").strip().lower() not in _OFF


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
    """The store in ``directory``, made if missing; a file there that is not a store of ours is
    set aside (``warn`` is told where) and a fresh one started.

    Raises:
        OSError: The folder cannot be made or trusted, or the file cannot be opened.
        HistoryError: The file was written by a newer stability-user.
    """
    private_directory(directory, "state directory")
    path = os.path.join(directory, STORE_NAME)
    try:
        return HistoryStore(path)
    except sqlite3.DatabaseError as error:
        if not _unreadable(error):  # a full disk, a read-only folder, a store locked too long
            raise OSError(f"the history store {path} cannot be used: {error}") from error
        aside = _set_aside(path)
        if aside is not None:
            warn(f"{path} was not a history store ({error}); moved it to {aside}")
    try:
        return HistoryStore(path)
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
    """An open store: record readings, read series. One connection, one thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.exists(path):
            # Made 0600 before SQLite opens it (its WAL files take the same mode).
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600))
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
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # set once, kept in the file
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; no fsync per reading
        if db.execute("PRAGMA application_id").fetchone()[0] == 0:
            self._create()
        version = db.execute("PRAGMA user_version").fetchone()[0]
        application = db.execute("PRAGMA application_id").fetchone()[0]
        if application != _APPLICATION_ID:
            raise _Foreign("another program's database")
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"The history store {self.path} was written by a newer stability-user "
                f"(schema {version}; this one reads {SCHEMA_VERSION}). Upgrade stability-user, "
                "or set STABILITY_STATE_DIR to another folder."
            )
        if version < SCHEMA_VERSION:
            with self._transaction():  # one process upgrades; the others then see it done
                self._upgrade()

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
        (a repeat within the heartbeat is not)."""
        stored = 0
        with self._transaction():
            for observation in observations:
                series = self._series(host, account, observation)
                stored += self._add(series, observation.credits, at)
        return stored

    def learn(self, host: str, account: str, organizations: Sequence[Observation]) -> None:
        """Remember the organizations' names and which is the key's default (from the account;
        the credits of these observations are not read)."""
        with self._transaction():
            for organization in organizations:
                self._series(host, account, organization)

    def _series(self, host: str, account: str, observation: Observation) -> int:
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
            elif row is not None and row[2]:
                db.execute("UPDATE series SET is_default = 0 WHERE id = ?", (series_id,))
        return series_id

    def _add(self, series: int, credits: float, at: float) -> int:
        db = self._db
        latest = db.execute(
            "SELECT at, credits FROM readings WHERE series = ? ORDER BY at DESC, rowid DESC "
            "LIMIT 1",
            (series,),
        ).fetchone()
        if latest is not None:
            latest_at, latest_credits = latest
            if at < latest_at - CLOCK_SLACK:
                at = latest_at  # the clock went back: kept in the order it was taken
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

    # The watcher's alerts: a table of their own, made by the first watcher (older code that
    # reads this schema ignores it). One row per alert, key and target.

    def alerts(self, host: str, account: str, target: str) -> dict[str, Alert]:
        """The alerts of ``account`` on ``host`` as ``target`` (a digest) knows them."""
        if not self._has_alerts():
            return {}
        rows = self._db.execute(
            "SELECT key, organization, started_at, notified_at, title, body FROM alerts "
            "WHERE host = ? AND account = ? AND target = ?",
            (host, account, target),
        ).fetchall()
        return {row[0]: Alert(row[0], row[1], row[2], row[3], row[4], row[5]) for row in rows}

    def save_alerts(self, host: str, account: str, target: str, alerts: dict[str, Alert]) -> None:
        """Replace what ``target`` knows of ``account``'s alerts with ``alerts``."""
        db = self._db
        with self._transaction():
            db.execute(_ALERTS_TABLE)
            db.execute(
                "DELETE FROM alerts WHERE host = ? AND account = ? AND target = ?",
                (host, account, target),
            )
            db.executemany(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        host,
                        account,
                        target,
                        alert.key,
                        alert.organization,
                        alert.started_at,
                        alert.notified_at,
                        alert.title,
                        alert.body,
                    )
                    for alert in alerts.values()
                ],
            )

    def _has_alerts(self) -> bool:
        return bool(
            self._db.execute(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'alerts'"
            ).fetchone()[0]
        )

    # Reading

    def series(self, host: str) -> list[SeriesInfo]:
        """Every series of ``host``."""
        rows = self._db.execute(
            "SELECT id, account, organization, name, is_default FROM series WHERE host = ? "
            "ORDER BY organization, account",
            (host,),
        ).fetchall()
        return [SeriesInfo(row[0], row[1], row[2], row[3], bool(row[4])) for row in rows]

    def readings(
        self, series: Sequence[int], since: float | None = None
    ) -> list[tuple[float, float]]:
        """The readings (time, credits) of ``series``, merged, oldest first; from ``since``."""
        if not series:
            return []
        marks = ", ".join("?" for _ in series)
        query = f"SELECT at, credits FROM readings WHERE series IN ({marks})"
        parameters: list[float | int] = list(series)
        if since is not None:
            query += " AND at >= ?"
            parameters.append(since)
        rows = self._db.execute(query + " ORDER BY at, rowid", parameters).fetchall()
        return [(float(at), float(credits)) for at, credits in rows]

    def latest_before(self, series: Sequence[int], before: float) -> tuple[float, float] | None:
        """The last reading of ``series`` before ``before``, if any."""
        if not series:
            return None
        marks = ", ".join("?" for _ in series)
        row = self._db.execute(
            f"SELECT at, credits FROM readings WHERE series IN ({marks}) AND at < ? "
            "ORDER BY at DESC, rowid DESC LIMIT 1",
            [*series, before],
        ).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))
