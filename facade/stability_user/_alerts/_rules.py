"""What ``stability-user watch`` notifies, and when: its conditions, and the start, repeat and
resolved rule for each.

Pure: a cycle's readings and the alerts' state in, the notices to send and the next state out;
``_cli._watch`` does the reading, the sending and the storing. The rules:

- An alert starts when its condition holds (for ``unreachable``, once it has held for its
  delay): one notice. While it holds, a reminder every ``repeat`` seconds. When it no longer
  holds, one "resolved" notice, if its start was sent.
- A notice is marked sent only once it was delivered; one that failed is due again next cycle.
- While the balance cannot be read, the organizations' alerts stay as they are: nothing is
  known of their conditions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..history._store import Alert

__all__ = [
    "KEY_ALERTS",
    "KIND_REPEAT",
    "KIND_RESOLVED",
    "KIND_START",
    "Alert",
    "Finding",
    "Notice",
    "due",
    "settle",
]

# The key's own alerts (the balance's organization does not matter to them).
KEY_ALERTS = frozenset({"refused", "unreachable"})

KIND_START = "start"
KIND_REPEAT = "repeat"
KIND_RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition that holds now.

    Attributes:
        key: What it is, stably: ``below:50:org-1``, ``refused``, ``unreachable``.
        organization: The organization it is about; ``None`` for the key's default or the key.
        title: The notice's title.
        body: The figures: the organization, the credits, the condition's numbers.
        delay: Seconds it must have held before it is notified (``unreachable``'s).
    """

    key: str
    organization: str | None
    title: str
    body: str
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice to send: its kind (start, repeat, resolved), the alert it is for, its text."""

    kind: str
    alert: Alert
    title: str
    body: str


def due(
    alerts: dict[str, Alert],
    findings: list[Finding],
    *,
    known: set[str | None],
    now: float,
    repeat: float,
) -> tuple[dict[str, Alert], list[Notice]]:
    """The alerts after this cycle's ``findings`` and the notices due.

    ``known`` holds what this cycle could judge: the organizations whose balance was read, and
    ``"key"`` for the key's own conditions (refused, unreachable); an alert of anything else
    stays as it is. An alert that no longer holds stays until its resolved notice is delivered
    (``settle``).
    """
    found = {finding.key: finding for finding in findings}
    after = dict(alerts)
    notices = []
    for finding in findings:
        alert = after.get(finding.key)
        if alert is None:
            alert = Alert(finding.key, finding.organization, now, None, finding.title, finding.body)
        alert = replace(alert, title=finding.title, body=finding.body)
        after[finding.key] = alert
        if now - alert.started_at < finding.delay:
            continue
        if alert.notified_at is None:
            notices.append(Notice(KIND_START, alert, finding.title, finding.body))
        elif now - alert.notified_at >= repeat:
            notices.append(Notice(KIND_REPEAT, alert, f"Still: {finding.title}", finding.body))
    for key, alert in alerts.items():
        if key in found or _scope(alert) not in known:
            continue
        if alert.notified_at is None:
            del after[key]  # never notified: nothing to resolve
        else:
            notices.append(
                Notice(KIND_RESOLVED, alert, f"Resolved: {alert.title}", _resolved(alert))
            )
    return after, notices


def settle(alerts: dict[str, Alert], notice: Notice, now: float) -> dict[str, Alert]:
    """The alerts once ``notice`` was delivered."""
    after = dict(alerts)
    if notice.kind == KIND_RESOLVED:
        after.pop(notice.alert.key, None)
    elif notice.alert.key in after:
        after[notice.alert.key] = replace(after[notice.alert.key], notified_at=now)
    return after


def _scope(alert: Alert) -> str | None:
    return "key" if alert.key in KEY_ALERTS else alert.organization


def _resolved(alert: Alert) -> str:
    return f"No longer: {alert.title}.\n\nWhen it started:\n{alert.body}"
