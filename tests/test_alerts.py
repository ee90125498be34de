"""The watcher's rule, pure: start, repeat, resolved, what is not known, what was not delivered,
whose an alert is; the durations its options take; its state on disk; how a URL is shown."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from stability_user._alerts._notify import shown_url
from stability_user._alerts._rules import (
    KIND_REPEAT,
    KIND_RESOLVED,
    KIND_START,
    Alert,
    Finding,
    alert_key,
    due,
    elapsed_text,
    number_key,
    scope_of,
    settle,
)
from stability_user._alerts._state import AlertState
from stability_user._cli._types import duration

LOW = Finding("below:50:org-1", "org-1", "low", "body")
DAY = 86400.0


def cycle(
    alerts: dict[str, Alert],
    findings: list[Finding],
    now: float,
    *,
    delivered: bool = True,
    known: set[str] | None = None,
    owns: Callable[[str], bool] = lambda key: True,
) -> tuple[dict[str, Alert], list[str]]:
    after, notices = due(
        alerts,
        findings,
        known={"key", "organization:org-1"} if known is None else known,
        owns=owns,
        now=now,
        repeat=DAY,
    )
    if delivered:
        for notice in notices:
            after = settle(after, notice, now)
    return after, [notice.kind for notice in notices]


def test_start_then_quiet_then_a_reminder_a_day_on_then_resolved() -> None:
    alerts, kinds = cycle({}, [LOW], 0)
    assert kinds == [KIND_START]
    alerts, kinds = cycle(alerts, [LOW], DAY - 1)
    assert kinds == []
    alerts, kinds = cycle(alerts, [LOW], DAY)
    assert kinds == [KIND_REPEAT]
    alerts, kinds = cycle(alerts, [], DAY + 5)
    assert kinds == [KIND_RESOLVED]
    assert alerts == {}


def test_an_undelivered_start_is_due_again_and_an_undelivered_resolved_too() -> None:
    alerts, kinds = cycle({}, [LOW], 0, delivered=False)
    assert kinds == [KIND_START]
    alerts, kinds = cycle(alerts, [LOW], 60)
    assert kinds == [KIND_START]
    alerts, kinds = cycle(alerts, [], 120, delivered=False)
    assert kinds == [KIND_RESOLVED]
    alerts, kinds = cycle(alerts, [], 180)
    assert kinds == [KIND_RESOLVED]
    assert alerts == {}


def test_what_could_not_be_read_stays_as_it_is() -> None:
    alerts, _ = cycle({}, [LOW], 0)
    after, kinds = cycle(alerts, [], 60, known={"key"})  # org-1's balance not read
    assert kinds == []
    assert after == alerts


def test_another_watchers_alert_is_left_as_it_is() -> None:
    alerts, _ = cycle({}, [LOW], 0)
    after, kinds = cycle(alerts, [], 60, owns=lambda key: key != LOW.key)
    assert kinds == []
    assert after == alerts


def test_within_the_margin_an_alert_neither_starts_nor_ends() -> None:
    hovering = Finding(LOW.key, "org-1", "low", "body", holds=False)
    assert cycle({}, [hovering], 0) == ({}, [])
    alerts, _ = cycle({}, [LOW], 0)
    after, kinds = cycle(alerts, [hovering], 60)
    assert (after, kinds) == (alerts, [])
    _, kinds = cycle(after, [], 120)
    assert kinds == [KIND_RESOLVED]


def test_alert_keys_hold_figures_exactly() -> None:
    assert alert_key("below", 1000000, organization="") != alert_key(
        "below", 1000001, organization=""
    )
    assert [number_key(v) for v in (50.0, 12.5, 1e6, 0.1, 1e20)] == [
        "50",
        "12.5",
        "1000000",
        "0.1",
        "1e+20",
    ]
    assert alert_key("spend", 20, 3600, organization="org-1") == "spend:20:3600:org-1"
    # What each needs known: an organization the key cannot read keeps its other alerts.
    assert [
        scope_of(key, "org-1")
        for key in ("below:50:org-1", "runway:7:org-1", "forbidden::org-1", "refused")
    ] == ["organization:org-1", "history:org-1", "access:org-1", "key"]


def test_a_delay_holds_the_start_back_and_a_never_notified_alert_ends_quietly() -> None:
    down = Finding("unreachable", None, "down", "body", delay=1800)
    alerts, kinds = cycle({}, [down], 0)
    assert kinds == []
    assert alerts["unreachable"].started_at == 0
    alerts, kinds = cycle(alerts, [], 600)  # back before its delay: nothing to resolve
    assert (alerts, kinds) == ({}, [])
    alerts, _ = cycle({}, [down], 0)
    alerts, kinds = cycle(alerts, [down], 1800)
    assert kinds == [KIND_START]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("30m", 1800),
        ("6h", 21600),
        ("1d", 86400),
        ("2w", 1209600),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-1m", "soon", "5x", "nan", "inf", "5w", " 5m", "1e400"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        duration(text)


# The alerts' state on disk (``_state``): each watcher's own, and what it remembers


def state_in(folder: Path, legacy: list[tuple[object, ...]] | None = None) -> AlertState:
    return AlertState(str(folder), "a" * 64, legacy=lambda: legacy or [], warn=WARNED.append)


WARNED: list[str] = []
MINE = Alert("below:50:", None, 0.0, 10.0, "mine", "body")
THEIRS = Alert("below:20:", None, 0.0, 10.0, "theirs", "body")


def test_a_watcher_saves_its_own_alerts_and_leaves_anothers(tmp_path: Path) -> None:
    ours, theirs = state_in(tmp_path), state_in(tmp_path)
    assert theirs.save({"t": {THEIRS.key: THEIRS}}, lambda key: key == THEIRS.key) is None
    assert ours.save({"t": {}}, lambda key: key == MINE.key) is None  # knows none of theirs
    assert ours.save({"t": {MINE.key: MINE}}, lambda key: key == MINE.key) is None
    alerts, problem = state_in(tmp_path).load(lambda key: False)
    assert (alerts, problem) == ({"t": {MINE.key: MINE, THEIRS.key: THEIRS}}, None)


def test_what_could_not_be_saved_is_remembered_and_saved_later(tmp_path: Path) -> None:
    state = state_in(tmp_path)
    blocker = Path(f"{state.path}.{os.getpid()}.tmp")
    blocker.mkdir()  # where the new file is written first: it cannot be
    problem = state.save({"t": {MINE.key: MINE}}, lambda key: True)
    assert problem == f"{state.path}: Is a directory"
    assert state.unsaved
    assert state.load(lambda key: True) == ({"t": {MINE.key: MINE}}, None)
    blocker.rmdir()
    assert state.save({"t": {MINE.key: MINE}}, lambda key: True) is None
    assert not state.unsaved
    assert state_in(tmp_path).load(lambda key: True) == ({"t": {MINE.key: MINE}}, None)


def test_a_file_that_is_not_a_state_is_set_aside(tmp_path: Path) -> None:
    WARNED.clear()
    state = state_in(tmp_path)
    Path(state.path).write_text("{not json")
    assert state.load(lambda key: True) == ({}, None)
    (aside,) = tmp_path.glob("*.unreadable")
    assert aside.read_text() == "{not json"
    assert [
        f"{state.path} was not an alerts' state (JSONDecodeError: Expecting property name "
        f"enclosed in double quotes: line 1 column 2 (char 1)); moved it to {aside}: what it "
        "held is lost, so conditions that hold are notified again"
    ] == WARNED


def test_an_earlier_releases_alerts_are_carried_over(tmp_path: Path) -> None:
    row = ("t", MINE.key, None, 0.0, 10.0, "mine", "body")
    assert state_in(tmp_path, [row]).load(lambda key: True) == ({"t": {MINE.key: MINE}}, None)


# How a URL is shown


@pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")  # Apprise's
@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "json://user:pw@127.0.0.1:8080/path?+Authorization=Bearer%20T&-apikey=k",
            "json://127.0.0.1:8080",
        ),
        ("form://hooks.example.com/a?-apikey=k", "form://hooks.example.com"),
        ("tgram://123456789:ABCdefGHIjklMNO/12345/", "tgram://…"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general", "slack://…"),
        ("ntfy://my-secret-topic", "ntfys://…"),
        ("xml://[::1]:80/x", "xml://[::1]:80"),
    ],
)
def test_a_url_is_shown_as_its_scheme_its_host_and_a_keyed_digest(url: str, shown: str) -> None:
    import apprise

    server = apprise.Apprise.instantiate(url)
    first, second = shown_url(server, b"k" * 32), shown_url(server, b"j" * 32)
    assert re.fullmatch(re.escape(shown) + r" \([0-9a-f]{8}\)", first)
    assert first != second  # keyed: a digest in a log cannot be matched against guesses
    assert shown_url(server, b"k" * 32) == first


def test_elapsed_text() -> None:
    assert [elapsed_text(s) for s in (59, 60 * 45, 3600 * 2 + 300, 86400, 86400 + 3600 * 3)] == [
        "0m",
        "45m",
        "2h 5m",
        "1d",
        "1d 3h",
    ]
