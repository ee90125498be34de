"""The watcher's rule, pure: start, repeat, resolved, what is not known, what was not delivered;
and the durations its options take."""

from __future__ import annotations

import pytest

from stability_user._alerts._rules import (
    KIND_REPEAT,
    KIND_RESOLVED,
    KIND_START,
    Alert,
    Finding,
    due,
    settle,
)
from stability_user._cli._types import duration

LOW = Finding("below:50:org-1", "org-1", "low", "body")
DAY = 86400.0


def cycle(
    alerts: dict[str, Alert],
    findings: list[Finding],
    now: float,
    *,
    delivered: bool = True,
    known: set[str | None] | None = None,
) -> tuple[dict[str, Alert], list[str]]:
    after, notices = due(
        alerts, findings, known={"key", "org-1"} if known is None else known, now=now, repeat=DAY
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
