"""What ``stability-user watch`` notifies, and when: its conditions, and the start, repeat and
resolved rule for each.

Pure: a cycle's findings and the alerts' state in, the notices to send and the next state out;
``_watch`` does the reading, the sending and the storing. The rules:

- An alert starts when its condition holds (for ``unreachable``, once it has held for its
  delay): one notice. While it holds, a reminder every ``repeat`` seconds. When it no longer
  holds, one "resolved" notice, if its start was sent.
- A condition back within its margin of the threshold (a balance hovering at it) neither
  starts an alert nor resolves one: the alert stays as it is (``Finding.holds`` false).
- A notice is marked sent only once it was delivered; one that failed is due again next cycle.
- A watcher owns the alerts of its own conditions and organizations (``owns``), and never
  resolves another watcher's; the key's own alerts (refused, unreachable) are every watcher's.
- What a cycle could not judge stays as it is (``known``): the organizations whose balance was
  not read, the history's conditions while the history cannot be read, and the key's alerts
  until a reading proves them over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

__all__ = [
    "KEY_ALERTS",
    "KIND_REPEAT",
    "KIND_RESOLVED",
    "KIND_START",
    "Alert",
    "Finding",
    "Notice",
    "alert_key",
    "due",
    "elapsed_text",
    "number_key",
    "scope_of",
    "settle",
]

# The key's own alerts (the balance's organization does not matter to them).
KEY_ALERTS = frozenset({"refused", "unreachable"})
# What a kind of alert needs known, beyond the organization's balance: the history (its
# runway, its spend), or an answer about the key's access to it (``forbidden``).
_SCOPES = {"runway": "history", "spend": "history", "forbidden": "access"}

KIND_START = "start"
KIND_REPEAT = "repeat"
KIND_RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as kept: since when its condition holds, when a notice was last delivered
    (``None``: its start was not yet), and the last finding's text for the resolved notice."""

    key: str
    organization: str | None
    started_at: float
    notified_at: float | None
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition that holds now, or hovers within its margin.

    Attributes:
        key: What it is, stably (``alert_key``): ``below:50:org-1``, ``refused``.
        organization: The organization it is about; ``None`` for the key's default or the key.
        title: The notice's title.
        body: The figures: the organization, the credits, the condition's numbers.
        delay: Seconds it must have held before it is notified (``unreachable``'s).
        holds: False when the condition no longer holds but is within its margin: an alert
            already started stays as it is, and none starts.
        timed: The title and body say how long it has held, and since when.
    """

    key: str
    organization: str | None
    title: str
    body: str
    delay: float = 0.0
    holds: bool = True
    timed: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    """A notice to send: its kind (start, repeat, resolved), the alert it is for, its text."""

    kind: str
    alert: Alert
    title: str
    body: str


def number_key(value: float) -> str:
    """A figure as an alert's key holds it, exactly: ``50``, ``12.5``, ``1000001`` (``:g``
    would make ``1e+06`` of both 1000000 and 1000001)."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def alert_key(kind: str, *figures: float, organization: str) -> str:
    """An alert's key: its kind, its condition's figures, its organization (``''`` for the
    key's default): ``below:50:``, ``spend:20:3600:org-1``, ``forbidden::org-1``."""
    return f"{kind}:{':'.join(number_key(figure) for figure in figures)}:{organization}"


def scope_of(key: str, organization: str | None) -> str:
    """What must be known for the alert ``key`` to be judged: ``key`` (a reading of any
    organization), ``organization:ID`` (its balance read), ``history:ID`` (its history read),
    ``access:ID`` (its balance read, or refused while the key works); ID empty for the key's
    default organization."""
    if key in KEY_ALERTS:
        return "key"
    kind = key.partition(":")[0]
    where = _SCOPES.get(kind, "organization")
    return f"{where}:{organization or ''}"


def due(
    alerts: dict[str, Alert],
    findings: list[Finding],
    *,
    known: set[str],
    owns: Callable[[str], bool],
    now: float,
    repeat: float,
) -> tuple[dict[str, Alert], list[Notice]]:
    """The alerts after this cycle's ``findings`` and the notices due.

    ``known`` holds the scopes this cycle could judge (``scope_of``); an alert of any other
    stays as it is, and so does one this watcher does not ``own``. An alert that no longer
    holds stays until its resolved notice is delivered (``settle``).
    """
    found = {finding.key: finding for finding in findings}
    after = dict(alerts)
    notices = []
    for finding in findings:
        alert = after.get(finding.key)
        if not finding.holds:
            continue  # within its margin: as it is
        if alert is None:
            alert = Alert(finding.key, finding.organization, now, None, finding.title, finding.body)
        title, body = _texts(finding, alert.started_at, now)
        alert = replace(alert, title=title, body=body)
        after[finding.key] = alert
        if now - alert.started_at < finding.delay:
            continue
        if alert.notified_at is None:
            notices.append(Notice(KIND_START, alert, title, body))
        elif now - alert.notified_at >= repeat:
            notices.append(Notice(KIND_REPEAT, alert, f"Still: {title}", body))
    for key, alert in alerts.items():
        if key in found or not owns(key) or scope_of(key, alert.organization) not in known:
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


def elapsed_text(seconds: float) -> str:
    """How long something has lasted: ``45m``, ``2h 5m``, ``1d 3h``."""
    minutes = max(0, int(seconds // 60))
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def _texts(finding: Finding, started_at: float, now: float) -> tuple[str, str]:
    if not finding.timed:
        return finding.title, finding.body
    import time

    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started_at))
    held = elapsed_text(now - started_at)
    return (
        f"{finding.title} for {held} (since {since})",
        f"{finding.body}\n\nSince: {since} ({held})",
    )


def _resolved(alert: Alert) -> str:
    return f"No longer: {alert.title}.\n\nWhen it started:\n{alert.body}"
