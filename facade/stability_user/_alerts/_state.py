"""The alerts' state of one key: for each target, each alert's start, its last notice and its
text. In a file of its own in the state folder, apart from the history, so that a history
store set aside as corrupt, or locked by another process, takes none of it.

``alerts-<key digest>.json`` (0600) is replaced whole, by an atomic rename, so it is never
half-written; it is read and written only while the watcher holds the key's notify lock. A
watcher writes its own alerts (``owns``) and the key's, and leaves every other one as it
found it. What it delivered is also kept in memory for as long as it runs: when the file
cannot be written (a full disk, a folder that cannot be written), the watcher goes by what it
remembers rather than by the file, so a notice delivered is never delivered again by it.

A file that is not a state of ours is set aside (renamed ``.unreadable``, never deleted); the
alerts an earlier release kept in the history store are carried over the first time.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence

from ._rules import Alert

__all__ = ["STATE_FORMAT", "AlertState", "StateError"]

STATE_FORMAT = "stability-user alerts 1"
# Far more than the alerts of any watcher take (a few hundred bytes each).
_MAX_BYTES = 8 * 1024 * 1024

Alerts = dict[str, dict[str, Alert]]  # target -> key -> alert


class StateError(Exception):
    """The state file cannot be read or written now (the reason, in a few words)."""


class AlertState:
    """One key's alerts' state in ``directory``; ``account`` names the key (a digest).

    ``legacy`` gives the rows an earlier release kept (``HistoryStore.legacy_alerts``), read
    only when there is no file yet; ``warn`` is told of a file set aside.
    """

    def __init__(
        self,
        directory: str,
        account: str,
        *,
        legacy: Callable[[], Sequence[tuple[object, ...]]],
        warn: Callable[[str], None],
    ) -> None:
        self.path = os.path.join(directory, f"alerts-{account[:16]}.json")
        self._legacy = legacy
        self._warn = warn
        self._memory: Alerts = {}  # this watcher's alerts after its last cycle
        self._unsaved = False  # the memory holds what the file does not

    @property
    def unsaved(self) -> bool:
        """Whether this watcher remembers what the file does not hold (a save failed)."""
        return self._unsaved

    def load(self, owns: Callable[[str], bool]) -> tuple[Alerts, str | None]:
        """The alerts of every target, and why the file could not be read (``None`` when it
        could): this watcher's own as it remembers them when the file lacks them."""
        try:
            stored = self._read()
        except StateError as error:
            return _copy(self._memory), str(error)
        if self._unsaved:
            for target, alerts in self._memory.items():
                stored[target] = {
                    **{key: a for key, a in stored.get(target, {}).items() if not owns(key)},
                    **alerts,
                }
        return stored, None

    def save(self, alerts: Alerts, owns: Callable[[str], bool]) -> str | None:
        """Keep ``alerts`` (each target's after this cycle): this watcher's own replace what the
        file held of them, every other stays. Why it could not be written, or ``None``."""
        mine = {
            target: {key: alert for key, alert in held.items() if owns(key)}
            for target, held in alerts.items()
        }
        self._memory = mine
        try:
            stored = self._read()
            for target, held in mine.items():
                others = {k: a for k, a in stored.get(target, {}).items() if not owns(k)}
                stored[target] = {**others, **held}
            self._write({target: held for target, held in stored.items() if held})
        except StateError as error:
            self._unsaved = True
            return str(error)
        self._unsaved = False
        return None

    def _read(self) -> Alerts:
        from .._files import NotRegularFileError, TooLargeError, read_regular_file

        try:
            data = read_regular_file(self.path, _MAX_BYTES)
        except FileNotFoundError:
            return self._carried_over()
        except (NotRegularFileError, TooLargeError) as error:
            return self._set_aside(str(error))
        except OSError as error:
            raise StateError(f"{self.path}: {error.strerror or error}") from error
        try:
            return _decoded(json.loads(data))
        except (ValueError, TypeError, KeyError) as error:
            return self._set_aside(f"{type(error).__name__}: {error}")

    def _carried_over(self) -> Alerts:
        alerts: Alerts = {}
        for target, key, organization, started, notified, title, body in self._legacy():
            alerts.setdefault(str(target), {})[str(key)] = Alert(
                str(key),
                None if organization is None else str(organization),
                float(started),  # type: ignore[arg-type]
                None if notified is None else float(notified),  # type: ignore[arg-type]
                str(title),
                str(body),
            )
        return alerts

    def _set_aside(self, why: str) -> Alerts:
        aside = f"{self.path}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}.unreadable"
        try:
            os.replace(self.path, aside)
        except OSError as error:
            raise StateError(f"{self.path} is not an alerts' state ({why})") from error
        self._warn(
            f"{self.path} was not an alerts' state ({why}); moved it to {aside}: what it held "
            "is lost, so conditions that hold are notified again"
        )
        return {}

    def _write(self, alerts: Alerts) -> None:
        text = json.dumps({"format": STATE_FORMAT, "alerts": _encoded(alerts)}, indent=1)
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
            descriptor = os.open(temporary, flags, 0o600)
            try:
                data = memoryview(text.encode())
                while data:
                    data = data[os.write(descriptor, data) :]
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temporary, self.path)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise StateError(f"{self.path}: {error.strerror or error}") from error


def _copy(alerts: Alerts) -> Alerts:
    return {target: dict(held) for target, held in alerts.items()}


def _encoded(alerts: Alerts) -> dict[str, dict[str, dict[str, object]]]:
    return {
        target: {
            key: {
                "organization": alert.organization,
                "started_at": alert.started_at,
                "notified_at": alert.notified_at,
                "title": alert.title,
                "body": alert.body,
            }
            for key, alert in held.items()
        }
        for target, held in alerts.items()
    }


def _decoded(document: object) -> Alerts:
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise ValueError(f"not {STATE_FORMAT!r}")
    alerts: Alerts = {}
    for target, held in dict(document["alerts"]).items():
        alerts[str(target)] = {
            str(key): Alert(
                str(key),
                None if entry["organization"] is None else str(entry["organization"]),
                float(entry["started_at"]),
                None if entry["notified_at"] is None else float(entry["notified_at"]),
                str(entry["title"]),
                str(entry["body"]),
            )
            for key, entry in dict(held).items()
        }
    return alerts
