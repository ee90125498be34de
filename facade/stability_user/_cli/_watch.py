"""``stability-user watch``: tell me before I run out, through Apprise (Slack, e-mail, ntfy...).

Every ``--every`` it reads the balance (the default organization, ``--org`` or ``--all``),
records it in the history, and notifies when a condition starts, reminds while it holds and
says when it ends: a balance under ``--below``, a runway under ``--runway-below``, more than
``--spend-above`` spent ``--within`` a window, a key the API refuses, an API unreadable for
longer than ``--unreachable-after``. The watcher itself is ``.._alerts._watch``; this module
parses its options, prints what each cycle reports and gives the exit status.
"""

from __future__ import annotations

import os

from .._constants import WATCH_MARGIN, WATCH_NOTIFY_TIMEOUT
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
from ._output import EXIT_API_ERROR, EXIT_BELOW_MIN, EXIT_OK, EXIT_UNSAVED, PROG, Output
from ._recording import history_argument

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from .._alerts._notify import Delivery
    from .._alerts._watch import Conditions, Cycle, Watcher

__all__ = ["add_parser", "run", "seconds_duration"]

_EVERY = 300.0
_REPEAT = 86400.0
_UNREACHABLE_AFTER = 3600.0
# Exit statuses of --once (and of --test: 1 when a target failed).
_EXIT_HOLDS = EXIT_BELOW_MIN

_EPILOG = """\
Notification URLs (Apprise's: https://github.com/caronc/apprise/wiki) come from --notify,
--notify-config FILE (Apprise's TEXT or YAML form; --tag picks the file's entries by tag) and
STABILITY_NOTIFY_URLS (space- or comma-separated), each always used. A command line is visible
in `ps`: keep URLs with secrets in the file or the environment. A URL is only ever shown as its
scheme, its host and a short digest of the rest: json://hooks.example.com (3fa9c2d1).

An alert is resolved only once its condition is past its threshold by --margin (5% of it by
default: --below 50 resolves at 52.50), so a balance hovering at a threshold notifies once.

exit status with --once (and --dry-run):
  0  all is well
  1  a balance could not be read (the API, the network, a refused key, an organization the
     key cannot read)
  2  usage or configuration error, before anything is read or sent
  3  a condition holds
  4  the alerts' state could not be read or saved (a full disk, a folder that cannot be
     written): the notices are sent, but the next run may send them again; outranks 1 and 3
--test exits 1 when a target did not take the test message. The loop exits 0 on SIGTERM or
Ctrl-C, after a notice in flight, and goes on through a state or a history that cannot be
used (said once). Durations: 90s, 30m, 6h, 1d, 2w, or seconds.
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
        help="how often to read the balance (default: 5m; from 1s to 1d)",
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
        "--within",
        type=duration,
        metavar="DURATION",
        help="--spend-above's window (at least --every); a fall across its start counts for "
        "its share of the time in it",
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
        "--margin",
        type=as_type(_types.percent),
        default=WATCH_MARGIN,
        metavar="PERCENT",
        help="resolve an alert only once its condition is past its threshold by this share of "
        f"it (default: {WATCH_MARGIN * 100:g}%%)",
    )
    parser.add_argument(
        "--notify", action="append", default=[], metavar="URL", help="an Apprise URL (repeatable)"
    )
    parser.add_argument("--notify-config", metavar="FILE", help="an Apprise configuration file")
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        help="only the configuration file's entries with TAG (--notify and "
        "STABILITY_NOTIFY_URLS are always used)",
    )
    parser.add_argument(
        "--notify-timeout",
        type=duration,
        default=WATCH_NOTIFY_TIMEOUT,
        metavar="DURATION",
        help=f"the longest one delivery may take, all of it (default: {WATCH_NOTIFY_TIMEOUT:g}s)",
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


def run(args: argparse.Namespace, out: Output, err: Output) -> int:
    from .._alerts._notify import load_targets
    from .._alerts._watch import Watcher, send_test
    from .._exceptions import ConfigurationError
    from ..history._store import default_state_dir, history_enabled

    def warn(text: str) -> None:
        _warn(err, text)

    conditions = _conditions(args)
    recording = not args.no_history and history_enabled(os.environ, warn)
    if (args.runway_below is not None or args.spend_above is not None) and not recording:
        raise ConfigurationError(
            "--runway-below and --spend-above read the history: leave it on",
            cli_message="--runway-below and --spend-above read the history, which "
            "--no-history or STABILITY_HISTORY=off turns off",
        )
    state_dir = default_state_dir(os.environ)  # a relative one: the client's recorder warns
    targets = load_targets(args.notify, args.notify_config, os.environ, args.tag, state_dir)
    if not targets and not args.dry_run:
        message = "no notification URL: --notify URL, --notify-config FILE or STABILITY_NOTIFY_URLS"
        raise ConfigurationError(message, cli_message=message)
    if args.test:
        deliveries = send_test(targets, conditions.notify_timeout)
        _show_deliveries(out, deliveries, args.json)
        return EXIT_OK if all(delivery.ok for delivery in deliveries) else EXIT_API_ERROR
    _check_state(state_dir, conditions, warn)
    from .._client import StabilityUser

    options = client_options(args, err)
    options["history"] = recording
    options["rate_limit"] = True  # Stability's 150 a 10 s on any host: --all's many requests
    with StabilityUser(**options) as client:
        watcher = Watcher(
            client,
            targets,
            conditions,
            state_dir=state_dir,
            say=None if args.json else out.print,
            warn=warn,
        )
        if args.once or args.dry_run:
            return _finish(watcher.cycle(send=not args.dry_run), out, args.json)
        return _loop(watcher, args, out)


def _check_state(state_dir: str, conditions: Conditions, warn: Callable[[str], None]) -> None:
    """Refuse a state folder that cannot be trusted, and a history a newer release wrote when
    a condition reads it; a store that cannot be used now (locked, a full disk) is for the
    watcher's cycles to say, once, and they go on."""
    import sqlite3

    from .._cache._store import private_directory
    from .._exceptions import ConfigurationError
    from ..history._store import HistoryError, open_store

    try:
        private_directory(state_dir, "state directory")
    except OSError as error:
        message = f"watch keeps its alerts in the state folder, which cannot be used: {error}"
        raise ConfigurationError(message, cli_message=message) from error
    if conditions.runway_below is None and conditions.spend_above is None:
        return
    try:
        open_store(state_dir, warn).close()
    except HistoryError as error:
        message = f"--runway-below and --spend-above read the history: {error}"
        raise ConfigurationError(message, cli_message=message) from error
    except (OSError, sqlite3.Error):
        pass


def _conditions(args: argparse.Namespace) -> Conditions:
    from .._alerts._watch import Conditions
    from .._exceptions import ConfigurationError

    if (args.spend_above is None) != (args.within is None):
        message = "--spend-above and --within go together"
        raise ConfigurationError(message, cli_message=message)
    looping = not (args.once or args.dry_run or args.test)
    if looping and args.within is not None and args.within < args.every:
        message = (
            f"--within ({args.within:g}s) is shorter than --every ({args.every:g}s): a window "
            "shorter than the time between two readings holds at most one of them"
        )
        raise ConfigurationError(message, cli_message=message)
    return Conditions(
        organization=args.org,
        every_organization=args.all,
        below=tuple(args.below),
        runway_below=args.runway_below,
        spend_above=args.spend_above,
        within=args.within,
        unreachable_after=args.unreachable_after,
        repeat=args.repeat,
        margin=args.margin,
        notify_timeout=args.notify_timeout,
    )


def _finish(cycle: Cycle, out: Output, as_json: bool) -> int:
    """Print a cycle's report when asked; its exit status as ``--once`` gives it."""
    if as_json:
        import json

        out.print(json.dumps(cycle.report))
    if cycle.unsaved:
        return EXIT_UNSAVED
    if cycle.unreadable:
        return EXIT_API_ERROR
    return _EXIT_HOLDS if cycle.holding else EXIT_OK


def _loop(watcher: Watcher, args: argparse.Namespace, out: Output) -> int:
    """Watch until SIGTERM or Ctrl-C, which end it after the cycle under way."""
    import signal
    import threading

    from .._alerts._watch import watch

    stop = threading.Event()

    def asked_to_stop(signum: int, frame: object) -> None:
        stop.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(number) is not signal.SIG_IGN:  # nohup's, a background job's
            signal.signal(number, asked_to_stop)
    watch(watcher, args.every, stop, lambda cycle: _finish(cycle, out, args.json))
    return EXIT_OK


def _warn(err: Output, text: str) -> None:
    from ._output import say

    say(err, f"{PROG}: warning: {text}")


def _show_deliveries(out: Output, deliveries: list[Delivery], as_json: bool) -> None:
    if as_json:
        import json

        from .._alerts._watch import delivery_dict

        out.print(json.dumps([delivery_dict(d) for d in deliveries]))
        return
    from .._text import printable

    for delivery in deliveries:
        outcome = "sent" if delivery.ok else f"failed: {printable(delivery.error or '')}"
        out.print(f"{delivery.target}: {outcome}")
