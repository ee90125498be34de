"""A history store as an earlier release wrote it (schema 1 or 2), to upgrade.

The statements are those releases' own, copied from ``facade/stability_user/history/_store.py``
at commit cb0936b (schema 1: ``_SCHEMA``, and ``_ALERTS_TABLE``, which its first watcher adds)
and at commit d060bd7 (schema 2: the ledger's ``_JOBS``), not imported: the code under test
must not be what made the file it upgrades.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

__all__ = ["PREVIOUS_JOB", "PREVIOUS_READINGS", "previous_release_store"]

_SCHEMA_1 = """
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
);
"""
# What schema 2 (the ledger, issue 39) added.
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
# Those releases' application_id ("SUHS").
_APPLICATION_ID = 0x53554853

# Hours before now each reading was taken, and its credits.
PREVIOUS_READINGS = ((50.0, 100.0), (26.0, 90.0), (2.0, 75.5))
# The job a store of schema 2 holds: its label, program, and what it spent.
PREVIOUS_JOB = ("nightly", "render.py", 14.5)


def previous_release_store(
    path: Path, host: str, account: str, organization: str = "org-1", *, schema: int = 1
) -> list[tuple[float, float]]:
    """Make ``path`` a store of the release of ``schema``: ``account``'s readings of
    ``organization`` (its default, named ``Lab``) on ``host``, and an alert; from schema 2 a
    job (``PREVIOUS_JOB``) too; the readings (time, credits) it holds."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = time.time()
    readings = [(now - hours * 3600, credits) for hours, credits in PREVIOUS_READINGS]
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA_1 + (_JOBS if schema >= 2 else ""))
        db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={schema}")
        db.execute(
            "INSERT INTO series (host, account, organization, name, is_default) "
            "VALUES (?, ?, ?, 'Lab', 1)",
            (host, account, organization),
        )
        db.executemany("INSERT INTO readings (series, at, credits) VALUES (1, ?, ?)", readings)
        db.execute(
            "INSERT INTO alerts VALUES (?, ?, 'target', 'below', ?, ?, NULL, 't', 'b')",
            (host, account, organization, now),
        )
        if schema >= 2:
            label, program, spent = PREVIOUS_JOB
            db.execute(
                "INSERT INTO jobs (host, account, organization, label, program, started_at, "
                "ended_at, before, after, spent, exit_status) "
                "VALUES (?, ?, '', ?, ?, ?, ?, 90.0, ?, ?, 0)",
                (
                    host,
                    account,
                    label,
                    program,
                    now - 3 * 3600,
                    now - 3 * 3600 + 60,
                    90.0 - spent,
                    spent,
                ),
            )
    path.chmod(0o600)
    return readings
