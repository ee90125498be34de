"""``stability-user watch``: tell me before I run out, through Apprise (Slack, e-mail, ntfy...).

Every ``--every`` it reads the balance (the default organization, ``--org`` or ``--all``),
records it in the history, and notifies when a condition starts, reminds while it holds and
says when it ends (``.._alerts``): a balance under ``--below``, a runway under
``--runway-below``, more than ``--spend-above`` spent ``--within`` a window, a key the API
refuses, an API unreadable for longer than ``--unreachable-after``. The alerts' state lives with
the history, per target, so ``--once`` under cron or a restarted watcher repeats nothing; a lock
keeps two watchers of one key from both sending; a notice that fails is retried next cycle.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

from .._constants import TOP_UP_URL
from . import _types
from ._arguments import (
    as_type,
    client_options,
    credits,
    days,
    duration,
    endpoint_arguments,
    timeout_arguments,
)
from ._output import EXIT_API_ERROR, EXIT_BELOW_MIN, EXIT_OK, PROG, Output, credits_text
from ._recording import history_argument

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from .._alerts import Finding, Notice
    from .._client import StabilityUser
    from .._exceptions import StabilityError
    from .._notify import Delivery, Target

__all__ = ["add_parser", "run", "seconds_duration"]

_EVERY = 300.0
_REPEAT = 86400.0
_UNREACHABLE_AFTER = 3600.0
# Exit statuses of --once (and of --test: 1 when a target failed).
_EXIT_HOLDS = EXIT_BELOW_MIN

_EPILOG = """\
Notification URLs (Apprise's: https://github.com/caronc/apprise/wiki) come from --notify,
--notify-config FILE (Apprise's TEXT or YAML form; --tag picks entries by tag) and
STABILITY_NOTIFY_URLS (space- or comma-separated). A command line is visible in `ps`: keep URLs
with secrets in the file or the environment. URLs are shown only in Apprise's privacy form.

exit status with --once (and --dry-run):
  0  all is well
  1  the balance could not be read (the API, the network, a refused key)
  2  usage or configuration error, before anything is read or sent
  3  a condition holds
--test exits 1 when a target did not take the test message. The loop exits 0 on SIGTERM or
Ctrl-C, after a notice in flight. Durations: 90s, 30m, 6h, 1d, 2w, or seconds.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    import argparse

    parser = commands.add_parser(
        "watch",
        help="notify (Slack, e-mail, ntfy and 100 more) before the credits run out",
        description=(
            "Read the balance every --every, record it in the history, and notify when a "
            "condition starts, every --repeat while it holds, and when it ends. Always: a key "
            "the API refuses, and an API unreadable for longer than --unreachable-after."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--org", metavar="ORG", help="organization id (default: the default one)")
    scope.add_argument("--all", action="store_true", help="every organization of the account")
    parser.add_argument(
        "--every",
        type=seconds_duration,
        default=_EVERY,
        metavar="DURATION",
        help="how often to read the balance (default: 5m; at most 1d)",
    )
    parser.add_argument(
        "--below",
        type=credits,
        action="append",
        default=[],
        metavar="CREDITS",
        help="notify when the balance is under CREDITS (repeatable: each its own alert)",
    )
    parser.add_argument(
        "--runway-below",
        type=days,
        metavar="DAYS",
        help="notify when the history's runway is shorter than DAYS",
    )
    parser.add_argument(
        "--spend-above",
        type=credits,
        metavar="CREDITS",
        help="notify when more than CREDITS were spent --within a window (a runaway loop)",
    )
    parser.add_argument(
        "--within", type=duration, metavar="DURATION", help="--spend-above's window"
    )
    parser.add_argument(
        "--unreachable-after",
        type=duration,
        default=_UNREACHABLE_AFTER,
        metavar="DURATION",
        help="notify once the API has been unreadable this long (default: 1h)",
    )
    parser.add_argument(
        "--repeat",
        type=duration,
        default=_REPEAT,
        metavar="DURATION",
        help="remind this often while a condition holds (default: 1d)",
    )
    parser.add_argument(
        "--notify", action="append", default=[], metavar="URL", help="an Apprise URL (repeatable)"
    )
    parser.add_argument("--notify-config", metavar="FILE", help="an Apprise configuration file")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="only the entries with TAG"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one cycle, then exit (for cron)")
    mode.add_argument("--test", action="store_true", help="send a test message to every URL")
    mode.add_argument(
        "--dry-run", action="store_true", help="one cycle, printing what would be sent"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per cycle")
    endpoint_arguments(parser)
    timeout_arguments(parser)
    history_argument(parser)


seconds_duration = as_type(_types.interval_duration)


@dataclass(frozen=True, slots=True)
class _Reading:
    """One organization read this cycle (``organization`` ``None``: the key's default)."""

    organization: str | None
    name: str | None
    credits: float


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from .._exceptions import ConfigurationError
    from .._history_store import default_state_dir, history_enabled, open_store
    from .._notify import load_targets

    _check(args)
    recording = not args.no_history and history_enabled(os.environ)
    if (args.runway_below is not None or args.spend_above is not None) and not recording:
        raise ConfigurationError(
            "--runway-below and --spend-above read the history: leave it on",
            cli_message="--runway-below and --spend-above read the history, which "
            "--no-history or STABILITY_HISTORY=off turns off",
        )
    targets = load_targets(args.notify, args.notify_config, os.environ, args.tag)
    if not targets and not args.dry_run:
        message = "no notification URL: --notify URL, --notify-config FILE or STABILITY_NOTIFY_URLS"
        raise ConfigurationError(message, cli_message=message)
    if args.test:
        return _test(targets, out, args.json)
    state_dir = default_state_dir(os.environ)  # a relative one: the client's recorder warns
    try:
        store = open_store(state_dir, lambda text: _warn(err, text))
    except OSError as error:
        message = f"watch keeps its alerts in the state folder, which cannot be used: {error}"
        raise ConfigurationError(message, cli_message=message) from error
    store.close()
    from .._client import StabilityUser

    options = client_options(args, err)
    options["history"] = recording
    with StabilityUser(**options) as client:
        watcher = _Watcher(client, targets, args, out, err, state_dir=state_dir)
        if args.once or args.dry_run:
            return watcher.cycle(send=not args.dry_run)
        return _loop(watcher, args.every)


def _check(args: argparse.Namespace) -> None:
    from .._exceptions import ConfigurationError

    if (args.spend_above is None) != (args.within is None):
        message = "--spend-above and --within go together"
        raise ConfigurationError(message, cli_message=message)


def _warn(err: Output, text: str) -> None:
    from ._output import say

    say(err, f"{PROG}: warning: {text}")


def _test(targets: list[Target], out: Output, as_json: bool) -> int:
    deliveries = [
        target.send(
            "stability-user watch: a test message",
            f"This is a test from stability-user watch. Alerts about your credits will come "
            f"here.\n\nTop up: {TOP_UP_URL}",
            "info",
        )
        for target in targets
    ]
    _show_deliveries(out, deliveries, as_json)
    return EXIT_OK if all(delivery.ok for delivery in deliveries) else EXIT_API_ERROR


def _show_deliveries(out: Output, deliveries: list[Delivery], as_json: bool) -> None:
    if as_json:
        import json

        out.print(json.dumps([_delivery_dict(d) for d in deliveries]))
        return
    for delivery in deliveries:
        outcome = "sent" if delivery.ok else f"failed: {delivery.error}"
        out.print(f"{delivery.target}: {outcome}")


def _delivery_dict(delivery: Delivery) -> dict[str, object]:
    return {"target": delivery.target, "ok": delivery.ok, "error": delivery.error}


def _loop(watcher: _Watcher, every: float) -> int:
    """Cycle every ``every`` seconds until SIGTERM or Ctrl-C, which end it after the cycle
    under way (a notice in flight is sent, and its state written)."""
    import signal
    import threading

    stop = threading.Event()

    def asked_to_stop(signum: int, frame: object) -> None:
        stop.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(number) is not signal.SIG_IGN:  # nohup's, a background job's
            signal.signal(number, asked_to_stop)
    while not stop.is_set():
        watcher.cycle(send=True)
        stop.wait(every)
    return EXIT_OK


class _Watcher:
    """One key's conditions and targets; ``cycle()`` reads, judges and notifies once."""

    def __init__(
        self,
        client: StabilityUser,
        targets: list[Target],
        args: argparse.Namespace,
        out: Output,
        err: Output,
        *,
        state_dir: str,
    ) -> None:
        from .._history_store import account_of

        self.client = client
        self.targets = targets
        self.args = args
        self.out = out
        self.err = err
        self.state_dir = state_dir  # where the alerts' state and the readings are
        self.host = client.base_url
        self.account = account_of(self.host, client._settings.api_key)

    def cycle(self, *, send: bool) -> int:
        """One cycle; its exit status as ``--once`` gives it."""
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
        if failure is not None and not self.args.json:
            _warn(self.err, f"the balance could not be read: {_describe(failure)}")
        with self._exclusive() as held:
            if held:
                report["notices"] = self._notify(findings, known, now, send=send)
        if self.args.json:
            import json

            self.out.print(json.dumps(report))
        if failure is not None:
            return EXIT_API_ERROR
        return _EXIT_HOLDS if findings else EXIT_OK

    def _read(self) -> tuple[list[_Reading], StabilityError | None]:
        from .._exceptions import StabilityError

        try:
            if self.args.all:
                results = self.client.get_balances()
                return [
                    _Reading(r.organization.id, r.organization.name, r.balance.credits)
                    for r in results
                    if r.balance is not None
                ], None
            balance = self.client.get_balance(self.args.org)
        except StabilityError as error:
            return [], error
        return [_Reading(self.args.org or self.client.organization, None, balance.credits)], None

    def _findings(
        self, readings: list[_Reading], failure: StabilityError | None, now: float
    ) -> tuple[list[Finding], set[str | None]]:
        from .._alerts import Finding
        from .._cache_policy import failure_kind

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
            after = self.args.unreachable_after
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
        if self.args.runway_below is None and self.args.spend_above is None:
            return {}
        from .._history_math import spent_between
        from .._history_store import open_store
        from ..history import recent_readings, runs_out_at

        figures: dict[str | None, dict[str, float]] = {}
        with open_store(self.state_dir, lambda text: _warn(self.err, text)) as store:
            for reading in readings:
                known: dict[str, float] = {}
                lasts = runs_out_at(store, self.host, self.account, reading.organization, now)
                if lasts is not None:
                    known["runway_days"] = max(0.0, (lasts - now) / 86400)
                if self.args.within is not None:
                    window = recent_readings(
                        store,
                        self.host,
                        account=self.account,
                        organization=reading.organization,
                        since=now - self.args.within,
                        now=now,
                    )
                    known["spent"] = spent_between(window)
                figures[reading.organization] = known
        return figures

    def _conditions(self, reading: _Reading, figures: dict[str, float]) -> list[Finding]:
        from .._alerts import Finding

        who = _who(reading)
        lines = [f"Organization: {who}", f"Credits: {credits_text(reading.credits)}"]
        if "runway_days" in figures:
            lines.append(f"Runway: about {figures['runway_days']:.1f} days at the burn rate")
        if "spent" in figures:
            lines.append(
                f"Spent in the last {_span(self.args.within)}: {credits_text(figures['spent'])}"
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
            for threshold in sorted(set(self.args.below), reverse=True)
            if reading.credits < threshold
        ]
        limit = self.args.runway_below
        if limit is not None and figures.get("runway_days", float("inf")) < limit:
            found.append(
                Finding(
                    f"runway:{limit:g}:{org or ''}",
                    org,
                    f"Stability credits run out in about {figures['runway_days']:.1f} days: {who}",
                    f"Condition: the runway is under {limit:g} days\n{body}",
                )
            )
        above = self.args.spend_above
        if above is not None and figures.get("spent", 0.0) > above:
            found.append(
                Finding(
                    f"spend:{above:g}:{self.args.within:g}:{org or ''}",
                    org,
                    f"{credits_text(figures['spent'])} Stability credits spent in "
                    f"{_span(self.args.within)}: {who}",
                    f"Condition: more than {credits_text(above)} spent within "
                    f"{_span(self.args.within)} (a runaway job?)\n{body}",
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
        from .._alerts import due, settle
        from .._history_store import open_store

        done: list[dict[str, object]] = []
        with open_store(self.state_dir, lambda text: _warn(self.err, text)) as store:
            targets: list[Target | None] = [*self.targets] or [None]
            for target in targets:
                name = "dry-run" if target is None else target.id
                alerts = store.alerts(self.host, self.account, name)
                after, notices = due(
                    alerts, findings, known=known, now=now, repeat=self.args.repeat
                )
                for notice in notices:
                    if not send or target is None:
                        done.append(self._would(notice, target))
                        continue
                    delivery = target.send(notice.title, notice.body, _kind(notice))
                    done.append(
                        {"kind": notice.kind, "title": notice.title, **_delivery_dict(delivery)}
                    )
                    if delivery.ok:
                        after = settle(after, notice, now)
                        if not self.args.json:
                            self.out.print(f"sent {notice.kind}: {notice.title} -> {target.shown}")
                    else:
                        _warn(
                            self.err,
                            f"could not notify {target.shown}: {delivery.error}; "
                            "it is sent again next cycle",
                        )
                if send and target is not None:
                    store.save_alerts(self.host, self.account, target.id, after)
        return done

    def _would(self, notice: Notice, target: Target | None) -> dict[str, object]:
        shown = "(no target)" if target is None else target.shown
        if not self.args.json:
            self.out.print(f"would send {notice.kind} to {shown}: {notice.title}")
            for line in notice.body.splitlines():
                self.out.print(f"  {line}")
        return {
            "kind": notice.kind,
            "title": notice.title,
            "target": shown,
            "ok": None,
            "error": None,
        }


def _kind(notice: Notice) -> str:
    from .._alerts import KEY_ALERTS, KIND_RESOLVED

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
    from ._output import describe_error

    return describe_error(error)
