"""The history's store on disk: private files, WAL, the heartbeat, clocks, and files that are not
a store of ours."""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest

from stability_user.history._store import (
    _SCHEMA,
    CLOCK_SLACK,
    SCHEMA_VERSION,
    STORE_NAME,
    HistoryError,
    HistoryStore,
    Observation,
    account_of,
    default_state_dir,
    history_enabled,
    open_store,
)
from support.previous_store import PREVIOUS_JOB, previous_release_store

HOST = "https://api.stability.ai"
ACCOUNT = account_of(HOST, "key-a")
T0 = 1_796_000_000.0  # 2026-11-30


def opened(directory: Path) -> tuple[HistoryStore, list[str]]:
    warnings: list[str] = []
    return open_store(str(directory), warnings.append), warnings


def readings(store: HistoryStore, organization: str = "org-1") -> list[tuple[float, float]]:
    (group,) = [g for g in store.groups(HOST) if g.organization == organization]
    return store.readings(group.series)


def test_folder_0700_file_0600_in_wal_mode(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "stability-user"
    store, warnings = opened(folder)
    with store:
        store.record(HOST, ACCOUNT, [Observation("org-1", 5.0)], T0)
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for path in folder.iterdir():  # the WAL files SQLite made too
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert warnings == []


def test_a_repeat_is_stored_once_per_heartbeat(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    with store:
        stored = [
            store.record(HOST, ACCOUNT, [Observation("org-1", credits)], T0 + offset)
            for offset, credits in [
                (0, 10.0),
                (5, 10.0),  # a prompt a few seconds later: not stored
                (899, 10.0),
                (900, 10.0),  # 15 minutes on: the heartbeat
                (901, 9.0),  # a change is always stored
                (902, 10.0),
            ]
        ]
        assert stored == [1, 0, 0, 1, 1, 1]
        assert readings(store) == [(T0, 10.0), (T0 + 900, 10.0), (T0 + 901, 9.0), (T0 + 902, 10.0)]


def test_a_reading_from_a_clock_that_ran_ahead_is_set_aside(tmp_path: Path) -> None:
    # Changed with issue 41 (item 4): a reading stamped ahead of a new one is set aside, no
    # longer the time the new one is stored at.
    store, warnings = opened(tmp_path)
    with store:
        store.record(HOST, ACCOUNT, [Observation("org-1", 100.0)], T0)
        store.record(HOST, ACCOUNT, [Observation("org-1", 90.0)], T0 - 3600)  # an hour back
        store.record(HOST, ACCOUNT, [Observation("org-1", 80.0)], T0 - 3500)
        assert readings(store) == [(T0 - 3600, 90.0), (T0 - 3500, 80.0)]
        aside = store._db.execute("SELECT at, credits FROM readings_aside").fetchall()
        assert aside == [(T0, 100.0)]
    assert warnings == [
        "1 reading of the history stamped after now (the latest at 2026-11-30 00:53:20 UTC) "
        "was set aside, kept in history.sqlite3's readings_aside table: a clock that ran "
        "ahead when it was taken"
    ]


def test_a_store_of_the_previous_schema_is_read_as_it_is_and_upgraded_by_a_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / STORE_NAME
    with sqlite3.connect(path) as db:  # what the previous release made
        db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("PRAGMA application_id=1398098003")
        db.execute("PRAGMA user_version=1")
        db.execute(
            "INSERT INTO series VALUES (1, ?, ?, '', NULL, 0), (2, ?, ?, 'org-1', 'One', 1)",
            (HOST, ACCOUNT, HOST, ACCOUNT),
        )
        db.execute("INSERT INTO readings VALUES (1, ?, 10.0), (2, ?, 9.0)", (T0, T0 + 60))
    db.close()
    before = path.read_bytes()
    with HistoryStore(str(path), read_only=True) as reader:
        # The unnamed readings are org-1's, as the previous release read them.
        (group,) = [g for g in reader.groups(HOST) if reader.readings(g.series)]
        assert (group.organization, reader.readings(group.series)) == (
            "org-1",
            [(T0, 10.0), (T0 + 60, 9.0)],
        )
    assert path.read_bytes() == before  # read, not upgraded
    store, warnings = opened(tmp_path)
    with store:
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        (group,) = [g for g in store.groups(HOST) if store.readings(g.series)]
        assert store.readings(group.series) == [(T0, 10.0), (T0 + 60, 9.0)]
    assert warnings == []


def test_an_empty_file_is_read_as_an_empty_store_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / STORE_NAME
    path.touch()
    with HistoryStore(str(path), read_only=True) as reader:
        assert reader.groups(HOST) == []
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == [STORE_NAME]


def test_a_concurrent_writer_that_read_first_is_sorted_into_place(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    with store:
        store.record(HOST, ACCOUNT, [Observation("org-1", 90.0)], T0)
        store.record(HOST, ACCOUNT, [Observation("org-1", 100.0)], T0 - CLOCK_SLACK / 2)
        assert readings(store) == [(T0 - CLOCK_SLACK / 2, 100.0), (T0, 90.0)]


def test_one_default_per_key(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    with store:
        store.learn(
            HOST,
            ACCOUNT,
            [Observation("org-1", 0, "One", True), Observation("org-2", 0, "Two", False)],
        )
        store.learn(HOST, ACCOUNT, [Observation("org-2", 0, "Two!", True)])
        infos = {info.organization: info for info in store.series(HOST)}
        assert (infos["org-1"].is_default, infos["org-2"].is_default) == (False, True)
        assert infos["org-2"].name == "Two!"


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00" * 10, b"garbage, not SQLite" * 300, b"SQLite format 3\x00" + b"\xff" * 2000],
    ids=["empty", "zeros", "text", "torn-header"],
)
def test_a_corrupt_file_is_set_aside_and_a_fresh_store_started(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / STORE_NAME
    path.write_bytes(content)
    store, warnings = opened(tmp_path)
    with store:
        store.record(HOST, ACCOUNT, [Observation("org-1", 1.0)], T0)
        assert readings(store) == [(T0, 1.0)]
    if not content:  # an empty file is an empty database: used as it is
        assert warnings == []
        return
    (aside,) = [p for p in tmp_path.iterdir() if p.name.endswith(".unreadable")]
    assert aside.read_bytes() == content  # never deleted
    assert warnings == [
        f"{path} was not a history store (file is not a database); moved it to {aside}"
    ]


def test_another_programs_database_is_set_aside_not_written(tmp_path: Path) -> None:
    path = tmp_path / STORE_NAME
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")
    db.close()
    store, warnings = opened(tmp_path)
    store.close()
    (aside,) = [p for p in tmp_path.iterdir() if p.name.endswith(".unreadable")]
    with sqlite3.connect(aside) as db:
        assert db.execute("SELECT body FROM notes").fetchall() == [("mine",)]
    db.close()
    assert len(warnings) == 1
    assert "another program's database" in warnings[0]


def test_a_newer_schema_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    with store:
        store.record(HOST, ACCOUNT, [Observation("org-1", 1.0)], T0)
        store._db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    before = (tmp_path / STORE_NAME).read_bytes()
    with pytest.raises(HistoryError, match=rf"newer stability-user \(schema {SCHEMA_VERSION + 1}"):
        opened(tmp_path)
    assert (tmp_path / STORE_NAME).read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".unreadable")]


def test_the_state_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_state_dir({"STABILITY_STATE_DIR": "/s", "XDG_STATE_HOME": "/x"}) == "/s"
    assert default_state_dir({"XDG_STATE_HOME": "/x"}) == "/x/stability-user"
    warned: list[str] = []
    assert default_state_dir(
        {"STABILITY_STATE_DIR": "rel", "XDG_STATE_HOME": "x"}, warned.append
    ).endswith(".local/state/stability-user")
    assert warned == ["STABILITY_STATE_DIR 'rel' is not an absolute path; not using it"]


@pytest.mark.parametrize(
    ("value", "on"),
    [("", True), ("on", True), ("off", False), ("OFF ", False), ("0", False), ("no", False)],
)
def test_stability_history_switch(value: str, on: bool) -> None:
    assert history_enabled({"STABILITY_HISTORY": value}) is on


def test_the_account_digest_names_neither_key_nor_host() -> None:
    digest = account_of(HOST, "sk-LIVE0123456789abcdef")
    assert len(digest) == 64
    assert "LIVE" not in digest
    assert digest != account_of("http://127.0.0.1:8080", "sk-LIVE0123456789abcdef")


@pytest.mark.parametrize("schema", range(1, SCHEMA_VERSION))
def test_a_store_of_each_earlier_release_is_upgraded_in_place(tmp_path: Path, schema: int) -> None:
    path = tmp_path / STORE_NAME
    written = previous_release_store(path, HOST, ACCOUNT, schema=schema)
    before = _tables(path)
    store, warnings = opened(tmp_path)
    with store:
        assert readings(store) == written  # every reading, as it was
        # Its watcher's alerts are carried over from here (``_alerts._state``).
        ((target, key, organization, *_),) = store.legacy_alerts(HOST, ACCOUNT)
        assert (target, key, organization) == ("target", "below", "org-1")
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        jobs = [(job.label, job.program, job.spent) for job in store.jobs(HOST)]
        assert jobs == ([PREVIOUS_JOB] if schema >= 2 else [])
        # It knew only the default now: the key's default from the start, as it read it.
        assert [(run.organization, run.since) for run in store.default_runs(HOST)] == [
            ("org-1", 0.0)
        ]
    assert warnings == []
    assert _tables(path) == before | {"jobs", "defaults", "readings_aside"}
    assert not list(tmp_path.glob("*.unreadable"))  # upgraded, not set aside
    store, _ = opened(tmp_path)  # and opened again as it is now
    with store:
        assert readings(store) == written
        assert len(store.jobs(HOST)) == (schema >= 2)


def test_a_reader_of_an_earlier_release_store_reads_it_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / STORE_NAME
    written = previous_release_store(path, HOST, ACCOUNT, schema=1)
    before = path.read_bytes()
    with HistoryStore(str(path), read_only=True) as reader:
        assert readings(reader) == written
        assert reader.jobs(HOST) == []  # no ledger yet, and none made
    assert path.read_bytes() == before


def test_a_new_store_is_made_through_the_upgrade_path(tmp_path: Path) -> None:
    store, _ = opened(tmp_path)
    with store:
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert _tables(tmp_path / STORE_NAME) == {
        "series",
        "readings",
        "jobs",
        "defaults",
        "readings_aside",
    }


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}
