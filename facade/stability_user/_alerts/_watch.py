"""The watcher behind ``stability-user watch``: read, judge and notify, once a cycle.

Every cycle it reads the balance (the default organization, one, or every one), which the
client records in the history, and notifies when a condition starts, reminds while it holds
and says when it ends (``_rules``): a balance under a threshold, a runway under some days, more
than some credits spent within a window, a key the API refuses, an organization the key cannot
read, an API unreadable for longer than a delay. The alerts' state lives in the state folder,
per target (``_state``), so a cycle under cron or a restarted watcher repeats nothing; a lock
keeps two watchers of one key from sending at once, and each watcher keeps to its own alerts;
a notice that fails is retried next cycle. A history or a state that cannot be used is said
once a kind, never ends the loop, and what was delivered is remembered while the loop runs.

The command line (``_cli._watch``) parses the arguments into ``Conditions``, prints what a
cycle reports and turns it into an exit status; this module prints nothing itself (``say``
and ``warn`` are the caller's).
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from .._constants import TOP_UP_URL, WATCH_MARGIN, WATCH_NOTIFY_TIMEOUT
from .._credits import credits_text, runway_text
from .._text import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator, Sequence

    from .._client import StabilityUser
    from .._exceptions import StabilityError
    from .._models import Account
    from ._notify import Delivery, Target
    from ._rules import Alert, Finding, Notice

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
        margin: The share of its threshold a condition must be past before its alert is
            resolved.
        notify_timeout: The longest one delivery may take, in seconds.
    """

    organization: str | None
    every_organization: bool
    below: tuple[float, ...]
    runway_below: float | None
    spend_above: float | None
    within: float | None
    unreachable_after: float
    repeat: float
    margin: float = WATCH_MARGIN
    notify_timeout: float = WATCH_NOTIFY_TIMEOUT


@dataclass(frozen=True, slots=True)
class Cycle:
    """What one cycle found: the report ``--json`` prints, whether a balance could not be
    read (``failure``: the key's reading; ``unreadable``: that or an organization's), whether a
    condition holds, and whether the alerts' state could not be read or saved."""

    report: dict[str, object]
    failure: StabilityError | None
    holding: bool
    unreadable: bool = False
    unsaved: bool = False


@dataclass(frozen=True, slots=True)
class _Reading:
    """One organization read this cycle: its id (``None`` when even the account did not say
    which is the default), its name when known, and whether it is the key's default read as
    such (its alerts are the key's default's, ``''``)."""

    organization: str | None
    name: str | None
    credits: float
    default: bool = False

    @property
    def alert_organization(self) -> str:
        return "" if self.default else self.organization or ""


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """An organization whose balance could not be read while the key works."""

    organization: str
    error: StabilityError
    readable: tuple[tuple[str, str], ...] = ()  # the account's organizations: (id, name)


@dataclass(slots=True)
class _Read:
    readings: list[_Reading] = field(default_factory=list)
    failure: StabilityError | None = None  # the key's: nothing could be read
    unreadable: list[_Unreadable] = field(default_factory=list)
    proven: bool = False  # an answer came: the key works and the API answers


def send_test(targets: list[Target], deadline: float = WATCH_NOTIFY_TIMEOUT) -> list[Delivery]:
    """Send a test message to every target."""
    return [
        target.send(
            "stability-user watch: a test message",
            f"This is a test from stability-user watch. Alerts about your credits will come "
            f"here.\n\nTop up: {TOP_UP_URL}",
            "info",
            deadline,
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
    ``warn`` takes the warnings, which go out either way; a trouble that lasts (a history or
    a state that cannot be used) is warned of once, not every cycle.
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
        from ._rules import number_key
        from ._state import AlertState

        self.client = client
        self.targets = targets
        self.conditions = conditions
        self.say = say
        self.warn = warn
        self.state_dir = state_dir  # where the alerts' state and the readings are
        self.host = client.base_url
        self.account = account_of(self.host, client._settings.api_key)
        self.state = AlertState(state_dir, self.account, legacy=self._legacy, warn=warn)
        self._said: set[str] = set()
        # The alerts this watcher's conditions make (kind, figures), for ``owns``.
        c = conditions
        self._mine = {("below", number_key(t)) for t in c.below} | {("forbidden", "")}
        if c.runway_below is not None:
            self._mine.add(("runway", number_key(c.runway_below)))
        if c.spend_above is not None and c.within is not None:
            self._mine.add(("spend", f"{number_key(c.spend_above)}:{number_key(c.within)}"))

    def owns(self, key: str) -> bool:
        """Whether the alert ``key`` is this watcher's to start and resolve: one of its
        conditions' for an organization it reads, or the key's own."""
        from ._rules import KEY_ALERTS

        if key in KEY_ALERTS:
            return True
        kind, _, rest = key.partition(":")
        figures, _, organization = rest.rpartition(":")
        c = self.conditions
        if c.every_organization:
            mine = organization != ""
        else:
            mine = organization == (c.organization or self.client.organization or "")
        return mine and (kind, figures) in self._mine

    def cycle(self, *, send: bool) -> Cycle:
        """One cycle: read, judge, notify (or with ``send`` false, say what would be sent)."""
        read = self._read()
        now = time.time()  # after the reading, which the history holds by now
        findings, known = self._findings(read, now)
        failure = read.failure
        report: dict[str, object] = {
            "at": now,
            "balances": [
                {"organization": r.organization, "name": r.name, "credits": r.credits}
                for r in read.readings
            ],
            "error": None if failure is None else _describe(failure),
            "unreadable": [
                {"organization": u.organization, "error": _describe(u.error)}
                for u in read.unreadable
            ],
            "holding": [finding.key for finding in findings if finding.holds],
            "notices": [],
            "skipped": None,
            "state_error": None,
        }
        if failure is not None and self.say is not None:  # --json: the report says it
            self.warn(f"the balance could not be read: {_describe(failure)}")
        for unreadable in read.unreadable if self.say is not None else ():
            self.warn(
                f"the balance of {printable(unreadable.organization)} could not be read: "
                f"{_describe(unreadable.error)}"
            )
        problems: list[str] = []
        with self._exclusive() as held:
            if held:
                report["notices"] = self._notify(findings, known, now, send, problems)
            else:
                report["skipped"] = (
                    "another watcher of this key was sending notices: this cycle's are left "
                    "for the next"
                )
                self.warn(str(report["skipped"]))
        if problems:
            report["state_error"] = "; ".join(problems)
        return Cycle(
            report,
            failure,
            any(finding.holds for finding in findings),
            unreadable=failure is not None or bool(read.unreadable),
            unsaved=bool(problems),
        )

    # Reading

    def _read(self) -> _Read:
        from .._exceptions import StabilityError

        conditions = self.conditions
        read = _Read()
        organization = conditions.organization or self.client.organization
        try:
            if conditions.every_organization:
                results = self.client.get_balances()
                read.proven = True
                for result in results:
                    org = result.organization
                    if result.balance is not None:
                        read.readings.append(_Reading(org.id, org.name, result.balance.credits))
                    elif result.error is not None:
                        read.unreadable.append(_Unreadable(org.id, result.error))
                return read
            if organization is None:
                account = self.client.get_account()
                read.proven = True
                default = next((o for o in account.organizations if o.is_default), None)
                balance = self.client.get_balance(None if default is None else default.id)
                name = None if default is None else default.name
                org_id = None if default is None else default.id
                read.readings.append(_Reading(org_id, name, balance.credits, default=True))
                return read
            balance = self.client.get_balance(organization)
        except StabilityError as error:
            if organization is not None and not conditions.every_organization:
                return self._refused_or_not(read, organization, error)
            read.failure = error
            return read
        read.proven = True
        read.readings.append(_Reading(organization, None, balance.credits))
        return read

    def _refused_or_not(self, read: _Read, organization: str, error: StabilityError) -> _Read:
        """``organization``'s balance failed: a key refused (401, or 403 for the account too)
        or an API unreadable, else an organization this key cannot read."""
        from .._cache._policy import failure_kind
        from .._exceptions import StabilityError

        if failure_kind(error) != "refused":
            read.failure = error
            return read
        try:
            account: Account = self.client.get_account()
        except StabilityError as second:  # refused: the key; else the API's trouble
            read.failure = second
            return read
        read.proven = True
        readable = tuple((o.id, o.name) for o in account.organizations)
        read.unreadable.append(_Unreadable(organization, error, readable))
        return read

    # Judging

    def _findings(self, read: _Read, now: float) -> tuple[list[Finding], set[str]]:
        from .._cache._policy import failure_kind
        from ._rules import Finding, alert_key

        failure = read.failure
        findings: list[Finding] = []
        known: set[str] = {"key"} if read.proven else set()
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
            findings.append(
                Finding(
                    "unreachable",
                    None,
                    "Stability's API unreadable",
                    f"The balance could not be read: {_describe(failure)}",
                    delay=self.conditions.unreachable_after,
                    timed=True,
                )
            )
        for unreadable in read.unreadable:
            if failure_kind(unreadable.error) != "refused":
                continue  # the API's trouble with one organization: its alerts wait
            org = printable(unreadable.organization)
            lines = [
                f"The key works (its account was read), but the API refuses it the balance of "
                f"organization {org}: {_describe(unreadable.error)}"
            ]
            if unreadable.readable:
                lines.append("\nThe organizations this key can read:")
                lines.extend(f"  {printable(i)} ({printable(n)})" for i, n in unreadable.readable)
            lines.append("\nCheck --org (or STABILITY_ORGANIZATION), or the key's access to it.")
            findings.append(
                Finding(
                    alert_key("forbidden", organization=unreadable.organization),
                    unreadable.organization,
                    f"This Stability API key cannot read organization {org}",
                    "\n".join(lines),
                )
            )
            known.add(f"access:{unreadable.organization}")
        figures = self._figures(read.readings, now)
        for reading in read.readings:
            where = reading.alert_organization
            known.update((f"organization:{where}", f"access:{where}"))
            if reading.organization in figures or not self._needs_history():
                known.add(f"history:{where}")
            findings.extend(self._conditions(reading, figures.get(reading.organization, {})))
        return findings, known

    def _needs_history(self) -> bool:
        return self.conditions.runway_below is not None or self.conditions.spend_above is not None

    def _figures(
        self, readings: Sequence[_Reading], now: float
    ) -> dict[str | None, dict[str, float]]:
        """Each organization's runway and spend in the window, from the history; none for the
        organizations it could not tell (the history cannot be read: said once)."""
        if not self._needs_history() or not readings:
            return {}
        import sqlite3

        from ..history import readings_since, runs_out_at
        from ..history._math import spent_since
        from ..history._store import HistoryError, open_store

        within = self.conditions.within
        figures: dict[str | None, dict[str, float]] = {}
        try:
            with open_store(self.state_dir, self.warn) as store:
                for reading in readings:
                    known: dict[str, float] = {}
                    org = reading.organization
                    lasts = runs_out_at(store, self.host, self.account, org, now)
                    if lasts is not None:
                        known["runway_days"] = max(0.0, (lasts - now) / 86400)
                    if within is not None:
                        since = now - within
                        before, window = readings_since(
                            store,
                            self.host,
                            account=self.account,
                            organization=org,
                            since=since,
                            now=now,
                        )
                        known["spent"] = spent_since(window, since, before)
                    figures[org] = known
        except (OSError, sqlite3.Error, HistoryError) as error:
            self._once(
                f"the history cannot be read ({_reason(error)}): --runway-below and "
                "--spend-above are judged again once it can"
            )
            return {}
        return figures

    def _conditions(self, reading: _Reading, figures: dict[str, float]) -> list[Finding]:
        from ._rules import Finding, alert_key

        conditions = self.conditions
        margin = conditions.margin
        who = _who(reading)
        lines = [
            f"Organization: {who}" + (", the key's default" if reading.default else ""),
            f"Credits: {credits_text(reading.credits)}",
        ]
        if "runway_days" in figures:
            lines.append(f"Runway: {runway_text(figures['runway_days'] * 86400)} at the burn rate")
        if "spent" in figures and conditions.within is not None:
            lines.append(
                f"Spent in the last {_span(conditions.within)}: {credits_text(figures['spent'])}"
            )
        lines.append(f"Top up: {TOP_UP_URL}")
        body = "\n".join(lines)
        org = reading.alert_organization
        credits = reading.credits
        found = [
            Finding(
                alert_key("below", threshold, organization=org),
                org or None,
                f"Stability credits below {credits_text(threshold)}: {who} has "
                f"{credits_text(credits)}",
                f"Condition: the balance is under {credits_text(threshold)}\n{body}",
                holds=credits < threshold,
            )
            for threshold in sorted(set(conditions.below), reverse=True)
            if credits < threshold * (1 + margin)
        ]
        limit = conditions.runway_below
        days = figures.get("runway_days")
        if limit is not None and days is not None and days < limit * (1 + margin):
            found.append(
                Finding(
                    alert_key("runway", limit, organization=org),
                    org or None,
                    f"Stability credits run out in {runway_text(days * 86400)}: {who}",
                    f"Condition: the runway is under {limit:g} days\n{body}",
                    holds=days < limit,
                )
            )
        above, within = conditions.spend_above, conditions.within
        spent = figures.get("spent", 0.0)
        if above is not None and within is not None and spent > above * (1 - margin):
            found.append(
                Finding(
                    alert_key("spend", above, within, organization=org),
                    org or None,
                    f"{credits_text(spent)} Stability credits spent in {_span(within)}: {who}",
                    f"Condition: more than {credits_text(above)} spent within "
                    f"{_span(within)} (a runaway job?)\n{body}",
                    holds=spent > above,
                )
            )
        return found

    # Notifying

    @contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """Whether this watcher may notify now: not while another of this key does (a lock in
        the state folder, held for the notifying only). A lock that cannot be made (a folder
        that cannot be written) is said once, and the watcher notifies without it."""
        import fcntl

        path = os.path.join(self.state_dir, f"watch-{self.account[:16]}.lock")
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            self._once(
                f"the notify lock {path} cannot be used ({_reason(error)}): notifying without it"
            )
            yield True
            return
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
        known: set[str],
        now: float,
        send: bool,
        problems: list[str],
    ) -> list[dict[str, object]]:
        from ._rules import due, settle

        stored, problem = self.state.load(self.owns)
        if problem is not None:
            problems.append(problem)
            self._once(
                f"the alerts' state cannot be read ({problem}): this watcher goes by what it "
                "remembers, and a notice may be sent again"
            )
        done: list[dict[str, object]] = []
        results: dict[str, dict[str, Alert]] = {}
        targets: list[Target | None] = [*self.targets] or [None]
        for target in targets:
            alerts = {} if target is None else stored.get(target.id, {})
            after, notices = due(
                alerts,
                findings,
                known=known,
                owns=self.owns,
                now=now,
                repeat=self.conditions.repeat,
            )
            for notice in notices:
                if not send or target is None:
                    done.append(self._would(notice, target))
                    continue
                delivery = target.send(
                    notice.title, notice.body, _kind(notice), self.conditions.notify_timeout
                )
                done.append({"kind": notice.kind, "title": notice.title, **delivery_dict(delivery)})
                if delivery.ok:
                    after = settle(after, notice, now)
                    if self.say is not None:
                        self.say(f"sent {notice.kind}: {notice.title} -> {target.shown}")
                else:
                    self.warn(
                        f"could not notify {target.shown}: {printable(delivery.error or '')}; "
                        "it is sent again next cycle"
                    )
            if target is not None:
                results[target.id] = after
        changed = any(after != stored.get(target, {}) for target, after in results.items())
        if send and self.targets and (changed or problem is not None or self.state.unsaved):
            unsaved = self.state.save(results, self.owns)
            if unsaved is not None:
                problems.append(unsaved)
                self._once(
                    f"the alerts' state could not be saved ({unsaved}): this watcher remembers "
                    "it while it runs, so it sends nothing twice; a run after it may send "
                    "again what this one sent"
                )
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

    # The rest

    def _legacy(self) -> list[tuple[object, ...]]:
        """The alerts an earlier release kept in the history store, to carry over."""
        import sqlite3

        from ..history._store import STORE_NAME, HistoryError, HistoryStore

        path = os.path.join(self.state_dir, STORE_NAME)
        if not os.path.exists(path):
            return []
        try:
            with HistoryStore(path, read_only=True) as store:
                return store.legacy_alerts(self.host, self.account)
        except (OSError, sqlite3.Error, HistoryError) as error:
            self._once(
                f"the alerts an earlier stability-user kept in {path} cannot be read "
                f"({_reason(error)}): conditions that hold are notified again"
            )
            return []

    def _once(self, text: str) -> None:
        """Warn of a trouble once while the watcher runs, not every cycle."""
        if text not in self._said:
            self._said.add(text)
            self.warn(text)


def _kind(notice: Notice) -> str:
    from ._rules import KEY_ALERTS, KIND_RESOLVED

    if notice.kind == KIND_RESOLVED:
        return "success"
    forbidden = notice.alert.key.startswith("forbidden:")
    return "failure" if notice.alert.key in KEY_ALERTS or forbidden else "warning"


def _who(reading: _Reading) -> str:
    if reading.organization is None:
        return "the default organization"
    organization = printable(reading.organization)
    return f"{printable(reading.name)} ({organization})" if reading.name else organization


def _span(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _describe(error: StabilityError) -> str:
    from .._exceptions import describe_error

    return describe_error(error)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
