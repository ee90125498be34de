"""The watcher behind ``stability-user watch``: read, judge and notify, once a cycle.

Every cycle it reads the balance (the default organization, one, or every one), which the
client records in the history, and notifies when a condition starts, reminds while it holds
and says when it ends (``_rules``): a balance under a threshold, a runway under some days, more
than some credits spent within a window, a key the API refuses, an API unreadable for longer
than a delay. The alerts' state lives with the history, per target, so a cycle under cron or a
restarted watcher repeats nothing; a lock keeps two watchers of one key from both sending; a
notice that fails is retried next cycle.

The command line (``_cli._watch``) parses the arguments into ``Conditions``, prints what a
cycle reports and turns it into an exit status; this module prints nothing itself (``say``
and ``warn`` are the caller's).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

from .._constants import TOP_UP_URL
from .._credits import credits_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator

    from .._client import StabilityUser
    from .._exceptions import StabilityError
    from ._notify import Delivery, Target
    from ._rules import Finding, Notice

__all__ = [
    "Conditions",
    "Cycle",
    "Watcher",
    "delivery_dict",
    "send_test",
    "watch",
]


@dataclass(frozen=True, slots=True)
class Conditions:
    """What a watcher reads and when it notifies.

    Attributes:
        organization: The organization to read; ``None`` for the key's default one.
        every_organization: Read every organization of the account instead.
        below: Balance thresholds, each its own alert.
        runway_below: Days of runway under which to notify.
        spend_above: Credits spent ``within`` a window over which to notify.
        within: ``spend_above``'s window, in seconds.
        unreachable_after: Seconds the API may be unreadable before a notice.
        repeat: Seconds between reminders while a condition holds.
    """

    organization: str | None
    every_organization: bool
    below: tuple[float, ...]
    runway_below: float | None
    spend_above: float | None
    within: float | None
    unreachable_after: float
    repeat: float


@dataclass(frozen=True, slots=True)
class Cycle:
    """What one cycle found: the report ``--json`` prints, the reading's failure if any, and
    whether a condition holds."""

    report: dict[str, object]
    failure: StabilityError | None
    holding: bool


@dataclass(frozen=True, slots=True)
class _Reading:
    """One organization read this cycle (``organization`` ``None``: the key's default)."""

    organization: str | None
    name: str | None
    credits: float


def send_test(targets: list[Target]) -> list[Delivery]:
    """Send a test message to every target."""
    return [
        target.send(
            "stability-user watch: a test message",
            f"This is a test from stability-user watch. Alerts about your credits will come "
            f"here.\n\nTop up: {TOP_UP_URL}",
            "info",
        )
        for target in targets
    ]


def delivery_dict(delivery: Delivery) -> dict[str, object]:
    """A delivery as ``--json`` shows it."""
    return {"target": delivery.target, "ok": delivery.ok, "error": delivery.error}


def watch(
    watcher: Watcher, every: float, stop: threading.Event, each: Callable[[Cycle], object]
) -> None:
    """Cycle every ``every`` seconds, giving each cycle to ``each``, until ``stop`` is set,
    which ends it after the cycle under way (a notice in flight is sent, and its state
    written)."""
    while not stop.is_set():
        each(watcher.cycle(send=True))
        stop.wait(every)


class Watcher:
    """One key's conditions and targets; ``cycle()`` reads, judges and notifies once.

    ``say`` takes the lines a person reads (what was sent, what would be); ``None`` for a
    machine reader (``--json``), which reads the report instead, the failed reading included.
    ``warn`` takes the warnings, which go out either way.
    """

    def __init__(
        self,
        client: StabilityUser,
        targets: list[Target],
        conditions: Conditions,
        *,
        state_dir: str,
        say: Callable[[str], None] | None,
        warn: Callable[[str], None],
    ) -> None:
        from ..history._store import account_of

        self.client = client
        self.targets = targets
        self.conditions = conditions
        self.say = say
        self.warn = warn
        self.state_dir = state_dir  # where the alerts' state and the readings are
        self.host = client.base_url
        self.account = account_of(self.host, client._settings.api_key)

    def cycle(self, *, send: bool) -> Cycle:
        """One cycle: read, judge, notify (or with ``send`` false, say what would be sent)."""
        readings, failure = self._read()
        now = time.time()  # after the reading, which the history holds by now
        findings, known = self._findings(readings, failure, now)
        report: dict[str, object] = {
            "at": now,
            "balances": [
                {"organization": r.organization, "name": r.name, "credits": r.credits}
                for r in readings
            ],
            "error": None if failure is None else _describe(failure),
            "holding": [finding.key for finding in findings],
            "notices": [],
        }
        if failure is not None and self.say is not None:
            self.warn(f"the balance could not be read: {_describe(failure)}")
        with self._exclusive() as held:
            if held:
                report["notices"] = self._notify(findings, known, now, send=send)
        return Cycle(report, failure, bool(findings))

    def _read(self) -> tuple[list[_Reading], StabilityError | None]:
        from .._exceptions import StabilityError

        conditions = self.conditions
        try:
            if conditions.every_organization:
                results = self.client.get_balances()
                return [
                    _Reading(r.organization.id, r.organization.name, r.balance.credits)
                    for r in results
                    if r.balance is not None
                ], None
            balance = self.client.get_balance(conditions.organization)
        except StabilityError as error:
            return [], error
        organization = conditions.organization or self.client.organization
        return [_Reading(organization, None, balance.credits)], None

    def _findings(
        self, readings: list[_Reading], failure: StabilityError | None, now: float
    ) -> tuple[list[Finding], set[str | None]]:
        from .._cache._policy import failure_kind
        from ._rules import Finding

        findings: list[Finding] = []
        known: set[str | None] = {"key"}
        if failure is not None and failure_kind(failure) == "refused":
            findings.append(
                Finding(
                    "refused",
                    None,
                    "Stability refused the API key",
                    f"Every request with this key fails: {_describe(failure)}\n\n"
                    "Check the key (revoked? rotated?) at https://platform.stability.ai/account/keys",
                )
            )
        elif failure is not None:
            after = self.conditions.unreachable_after
            findings.append(
                Finding(
                    "unreachable",
                    None,
                    f"Stability's API unreadable for {_span(after)}",
                    f"The balance could not be read for {_span(after)} or longer: "
                    f"{_describe(failure)}",
                    delay=after,
                )
            )
        figures = self._figures(readings, now)
        for reading in readings:
            known.add(reading.organization)
            findings.extend(self._conditions(reading, figures.get(reading.organization, {})))
        return findings, known

    def _figures(self, readings: list[_Reading], now: float) -> dict[str | None, dict[str, float]]:
        """Each organization's runway and spend in the window, from the history."""
        conditions = self.conditions
        if conditions.runway_below is None and conditions.spend_above is None:
            return {}
        from ..history import recent_readings, runs_out_at
        from ..history._math import spent_between
        from ..history._store import open_store

        figures: dict[str | None, dict[str, float]] = {}
        with open_store(self.state_dir, self.warn) as store:
            for reading in readings:
                known: dict[str, float] = {}
                lasts = runs_out_at(store, self.host, self.account, reading.organization, now)
                if lasts is not None:
                    known["runway_days"] = max(0.0, (lasts - now) / 86400)
                if conditions.within is not None:
                    window = recent_readings(
                        store,
                        self.host,
                        account=self.account,
                        organization=reading.organization,
                        since=now - conditions.within,
                        now=now,
                    )
                    known["spent"] = spent_between(window)
                figures[reading.organization] = known
        return figures

    def _conditions(self, reading: _Reading, figures: dict[str, float]) -> list[Finding]:
        from ._rules import Finding

        conditions = self.conditions
        who = _who(reading)
        lines = [f"Organization: {who}", f"Credits: {credits_text(reading.credits)}"]
        if "runway_days" in figures:
            lines.append(f"Runway: about {figures['runway_days']:.1f} days at the burn rate")
        if "spent" in figures and conditions.within is not None:
            lines.append(
                f"Spent in the last {_span(conditions.within)}: {credits_text(figures['spent'])}"
            )
        lines.append(f"Top up: {TOP_UP_URL}")
        body = "\n".join(lines)
        org = reading.organization
        found = [
            Finding(
                f"below:{threshold:g}:{org or ''}",
                org,
                f"Stability credits below {credits_text(threshold)}: {who} has "
                f"{credits_text(reading.credits)}",
                f"Condition: the balance is under {credits_text(threshold)}\n{body}",
            )
            for threshold in sorted(set(conditions.below), reverse=True)
            if reading.credits < threshold
        ]
        limit = conditions.runway_below
        if limit is not None and figures.get("runway_days", float("inf")) < limit:
            found.append(
                Finding(
                    f"runway:{limit:g}:{org or ''}",
                    org,
                    f"Stability credits run out in about {figures['runway_days']:.1f} days: {who}",
                    f"Condition: the runway is under {limit:g} days\n{body}",
                )
            )
        above, within = conditions.spend_above, conditions.within
        if above is not None and within is not None and figures.get("spent", 0.0) > above:
            found.append(
                Finding(
                    f"spend:{above:g}:{within:g}:{org or ''}",
                    org,
                    f"{credits_text(figures['spent'])} Stability credits spent in "
                    f"{_span(within)}: {who}",
                    f"Condition: more than {credits_text(above)} spent within "
                    f"{_span(within)} (a runaway job?)\n{body}",
                )
            )
        return found

    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """Whether this watcher may notify now: not while another of this key does (a lock in
        the state folder, held for the notifying only)."""
        import fcntl

        path = os.path.join(self.state_dir, f"watch-{self.account[:16]}.lock")
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(descriptor)

    def _notify(
        self,
        findings: list[Finding],
        known: set[str | None],
        now: float,
        *,
        send: bool,
    ) -> list[dict[str, object]]:
        from ..history._store import open_store
        from ._rules import due, settle

        done: list[dict[str, object]] = []
        with open_store(self.state_dir, self.warn) as store:
            targets: list[Target | None] = [*self.targets] or [None]
            for target in targets:
                name = "dry-run" if target is None else target.id
                alerts = store.alerts(self.host, self.account, name)
                after, notices = due(
                    alerts, findings, known=known, now=now, repeat=self.conditions.repeat
                )
                for notice in notices:
                    if not send or target is None:
                        done.append(self._would(notice, target))
                        continue
                    delivery = target.send(notice.title, notice.body, _kind(notice))
                    done.append(
                        {"kind": notice.kind, "title": notice.title, **delivery_dict(delivery)}
                    )
                    if delivery.ok:
                        after = settle(after, notice, now)
                        if self.say is not None:
                            self.say(f"sent {notice.kind}: {notice.title} -> {target.shown}")
                    else:
                        self.warn(
                            f"could not notify {target.shown}: {delivery.error}; "
                            "it is sent again next cycle"
                        )
                if send and target is not None:
                    store.save_alerts(self.host, self.account, target.id, after)
        return done

    def _would(self, notice: Notice, target: Target | None) -> dict[str, object]:
        shown = "(no target)" if target is None else target.shown
        if self.say is not None:
            self.say(f"would send {notice.kind} to {shown}: {notice.title}")
            for line in notice.body.splitlines():
                self.say(f"  {line}")
        return {
            "kind": notice.kind,
            "title": notice.title,
            "target": shown,
            "ok": None,
            "error": None,
        }


def _kind(notice: Notice) -> str:
    from ._rules import KEY_ALERTS, KIND_RESOLVED

    if notice.kind == KIND_RESOLVED:
        return "success"
    return "failure" if notice.alert.key in KEY_ALERTS else "warning"


def _who(reading: _Reading) -> str:
    if reading.organization is None:
        return "the default organization"
    return f"{reading.name} ({reading.organization})" if reading.name else reading.organization


def _span(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _describe(error: StabilityError) -> str:
    from .._exceptions import describe_error

    return describe_error(error)
