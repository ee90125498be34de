"""A history store as the previous release wrote it (schema 1), to upgrade.

The statements are that release's own, copied from ``facade/stability_user/history/_store.py``
at commit cb0936b (``_SCHEMA``, and ``_ALERTS_TABLE``, which its first watcher adds), not
imported: the code under test must not be what made the file it upgrades.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

__all__ = ["PREVIOUS_READINGS", "previous_release_store"]

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
# That release's application_id ("SUHS") and user_version.
_APPLICATION_ID = 0x53554853
_VERSION = 1

# Hours before now each reading was taken, and its credits.
PREVIOUS_READINGS = ((50.0, 100.0), (26.0, 90.0), (2.0, 75.5))


def previous_release_store(
    path: Path, host: str, account: str, organization: str = "org-1"
) -> list[tuple[float, float]]:
    """Make ``path`` a store of the previous release: ``account``'s readings of
    ``organization`` (its default, named ``Lab``) on ``host``, and an alert; the readings
    (time, credits) it holds."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = time.time()
    readings = [(now - hours * 3600, credits) for hours, credits in PREVIOUS_READINGS]
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA_1)
        db.execute(f"PRAGMA application_id={_APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={_VERSION}")
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
    path.chmod(0o600)
    return readings
