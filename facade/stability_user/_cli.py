"""The ``stability-user`` command (also ``python -m stability_user``).

Only argparse is imported up front: ``--help`` and ``--version`` never import httpx2 or the
client. Exit statuses: 0 success, 1 API or network failure (or output that cannot be written),
2 usage or configuration error, 3 a balance below ``--min-credits``, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from ._constants import (
    AIOHTTP_INSTALL,
    API_KEY_ENV,
    API_VERSION_ENV,
    BASE_URL_ENV,
    BASE_URL_FALLBACK_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    EXPORTER_ADDRESS,
    EXPORTER_INTERVAL,
    EXPORTER_PORT,
    HTTP_BACKEND_ENV,
    HTTP_BACKENDS,
    ORGANIZATION_ENV,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._async_client import AsyncStabilityUser
    from ._client import StabilityUser
    from ._exceptions import StabilityError
    from ._models import Account, Balance, OrganizationBalance

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_BELOW_MIN",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "main",
    "run",
]

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_BELOW_MIN = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

_PROG = "stability-user"
_EXPORTER_INSTALL = "stability-user[exporter]"
_EPILOG = f"""\
The API key is read from {API_KEY_ENV} only: a key on the command line would leak into
shell history and process lists. STABILITY_BASE_URL (or API_HOST), STABILITY_API_VERSION,
STABILITY_ORGANIZATION, STABILITY_CLIENT_ID and STABILITY_CLIENT_VERSION are read too.

examples:
  {_PROG} account
  {_PROG} balance --org org-123456
  {_PROG} balances --json
  {_PROG} balances --min-credits 50 || echo "top up before the batch runs"
  {_PROG} exporter --port 9464 --interval 60   # Prometheus metrics

exit status:
  0  success
  1  API or network failure (one line on stderr)
  2  usage or configuration error, including a missing {API_KEY_ENV}
  3  a balance is below --min-credits
  130  interrupted (Ctrl-C)
"""


def _effective(names: Sequence[str], fallback: str) -> str:
    """``--help``'s default: the first environment variable set, named, else ``fallback``.

    An empty variable counts as unset, as the client reads it.
    """
    for name in names:
        value = os.environ.get(name)
        if value:
            return f"{value}, from {name}"
    return fallback


def _seconds(text: str) -> float:
    """``--timeout``'s type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Check a Stability AI account and its credits from a shell.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    connection = argparse.ArgumentParser(add_help=False)
    base_url = _effective((BASE_URL_ENV, BASE_URL_FALLBACK_ENV), DEFAULT_BASE_URL)
    connection.add_argument("--base-url", metavar="URL", help=f"API base URL (default: {base_url})")
    version = _effective((API_VERSION_ENV,), "v1, the endpoints served today")
    connection.add_argument(
        "--api-version",
        metavar="VERSION",
        help=f"v1 or v1alpha (retired by Stability in May 2023) (default: {version})",
    )
    connection.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help=f"timeout per request (default: {DEFAULT_TIMEOUT:g})",
    )
    # argparse copies a parent's arguments when the child is made: after connection's.
    common = argparse.ArgumentParser(add_help=False, parents=[connection])
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    minimum = argparse.ArgumentParser(add_help=False)
    minimum.add_argument(
        "--min-credits",
        type=float,
        metavar="N",
        help=f"exit with status {EXIT_BELOW_MIN} when a balance is below N",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "account",
        parents=[common],
        help="the account behind the key, with its organizations",
        description="Show the account behind the key, with its organizations.",
    )
    balance = commands.add_parser(
        "balance",
        parents=[common, minimum],
        help="credits of the default or a named organization",
        description="Show the credits of the default organization, or of --org.",
    )
    organization = _effective((ORGANIZATION_ENV,), "the account's default organization")
    balance.add_argument("--org", metavar="ORG", help=f"organization id (default: {organization})")
    commands.add_parser(
        "balances",
        parents=[common, minimum],
        help="every organization's credits, fetched concurrently",
        description="Show every organization of the account with its credits.",
    )
    exporter = commands.add_parser(
        "exporter",
        parents=[connection],
        help="serve every organization's credits as Prometheus metrics",
        description=(
            "Serve /metrics (Prometheus exposition format) and /healthz. Balances are refreshed "
            "in the background every --interval seconds, never per scrape. Needs "
            f"{_EXPORTER_INSTALL!r}."
        ),
    )
    exporter.add_argument(
        "--address", default=EXPORTER_ADDRESS, help="address to listen on (default: %(default)s)"
    )
    exporter.add_argument(
        "--port",
        type=int,
        default=EXPORTER_PORT,
        help="port; 0 for any free one (default: %(default)s)",
    )
    exporter.add_argument(
        "--interval",
        type=_seconds,
        default=EXPORTER_INTERVAL,
        metavar="SECONDS",
        help="seconds between refreshes (default: %(default)g)",
    )
    exporter.add_argument(
        "--http-backend",
        choices=HTTP_BACKENDS,
        default=None,
        help=f"refresh with the async client on this HTTP backend (default: {HTTP_BACKEND_ENV}, "
        f"else httpx2 on the sync client); aiohttp needs {AIOHTTP_INSTALL!r}",
    )
    return parser


class _Output:
    """Where and how to print: colour only on a terminal, and never with NO_COLOR."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.colour = stream.isatty() and not os.environ.get("NO_COLOR")

    def bold(self, text: str) -> str:
        return f"\033[1m{text}\033[0m" if self.colour else text

    def print(self, text: str = "") -> None:
        print(text, file=self.stream)


def _credits(value: float) -> str:
    return f"{value:,.2f}"


def _table(out: _Output, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    out.print(out.bold(line(header).rstrip()))
    for row in rows:
        out.print(line(row).rstrip())


def _describe_error(error: StabilityError) -> str:
    from ._exceptions import APIStatusError

    if isinstance(error, APIStatusError):
        return f"{type(error).__name__} (HTTP {error.status_code}): {error.message}"
    return f"{type(error).__name__}: {error}"


def _show_account(out: _Output, account: Account, as_json: bool) -> None:
    if as_json:
        out.print(json.dumps(account.to_dict(), indent=2))
        return
    out.print(f"{out.bold('Account')}  {account.id}")
    out.print(f"{out.bold('Email')}    {account.email}")
    if account.profile_picture:
        out.print(f"{out.bold('Picture')}  {account.profile_picture}")
    out.print()
    rows = [
        [org.id, org.name, org.role, "yes" if org.is_default else ""]
        for org in account.organizations
    ]
    _table(out, ["ORGANIZATION", "NAME", "ROLE", "DEFAULT"], rows)


def _show_balance(out: _Output, balance: Balance, org: str | None, as_json: bool) -> None:
    if as_json:
        # Which organization the credits are of; null for the account's default.
        out.print(json.dumps({"organization": org, **balance.to_dict()}))
        return
    scope = f"organization {org}" if org else "default organization"
    out.print(f"{_credits(balance.credits)} credits ({scope})")


def _show_balances(out: _Output, results: Sequence[OrganizationBalance], as_json: bool) -> None:
    if as_json:
        out.print(json.dumps([result.to_dict() for result in results], indent=2))
        return
    rows = [
        [
            result.organization.id + (" *" if result.organization.is_default else ""),
            result.organization.name,
            result.organization.role,
            "error" if result.balance is None else _credits(result.balance.credits),
        ]
        for result in results
    ]
    _table(out, ["ORGANIZATION", "NAME", "ROLE", "CREDITS"], rows)
    out.print("* default organization")


def _below(minimum: float | None, credits: float) -> bool:
    return minimum is not None and credits < minimum


def _run(args: argparse.Namespace, out: _Output, err: _Output) -> int:
    if args.command == "exporter":
        try:
            import prometheus_client  # noqa: F401 (only: is it installed?)
        except ImportError:
            err.print(
                f"{_PROG}: error: the exporter needs prometheus-client: "
                f"pip install {_EXPORTER_INSTALL!r}"
            )
            return EXIT_USAGE
    from ._client import StabilityUser

    options: dict[str, Any] = {"base_url": args.base_url, "api_version": args.api_version}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.command == "exporter" and _exporter_backend(args) == "aiohttp":
        from ._async_client import AsyncStabilityUser

        # Checked here, so that a missing aiohttp is a usage error before anything starts.
        async_client = AsyncStabilityUser(**options, http_backend="aiohttp")
        return _exporter(async_client, args, out, err)
    with StabilityUser(**options) as client:
        return _COMMANDS[args.command](client, args, out, err)


def _exporter_backend(args: argparse.Namespace) -> str | None:
    backend: str | None = args.http_backend or os.environ.get(HTTP_BACKEND_ENV) or None
    return backend.strip().lower() if backend else None


def _account(client: StabilityUser, args: argparse.Namespace, out: _Output, err: _Output) -> int:
    _show_account(out, client.get_account(), args.json)
    return EXIT_OK


def _balance(client: StabilityUser, args: argparse.Namespace, out: _Output, err: _Output) -> int:
    org = args.org or client.organization
    balance = client.get_balance(args.org)
    _show_balance(out, balance, org, args.json)
    if _below(args.min_credits, balance.credits):
        err.print(
            f"{_PROG}: {_credits(balance.credits)} credits is below --min-credits "
            f"{_credits(args.min_credits)}"
        )
        return EXIT_BELOW_MIN
    return EXIT_OK


def _exporter(
    client: StabilityUser | AsyncStabilityUser,
    args: argparse.Namespace,
    out: _Output,
    err: _Output,
) -> int:
    from .monitoring._exporter import run_exporter

    return run_exporter(
        client, address=args.address, port=args.port, interval=args.interval, out=out.stream
    )


def _balances(client: StabilityUser, args: argparse.Namespace, out: _Output, err: _Output) -> int:
    results = client.get_balances()
    _show_balances(out, results, args.json)
    failed = [(result.organization.id, result.error) for result in results if result.error]
    for org, error in failed:
        err.print(f"{_PROG}: {org}: {_describe_error(error)}")
    if failed:  # a failure outranks a low balance: the failed organization's credits are unknown
        return EXIT_API_ERROR
    low = [
        (result.organization.id, result.balance.credits)
        for result in results
        if result.balance is not None and _below(args.min_credits, result.balance.credits)
    ]
    if low:
        names = ", ".join(f"{org} ({_credits(credits)})" for org, credits in low)
        err.print(f"{_PROG}: below --min-credits {_credits(args.min_credits)}: {names}")
        return EXIT_BELOW_MIN
    return EXIT_OK


_COMMANDS = {
    "account": _account,
    "balance": _balance,
    "balances": _balances,
    "exporter": _exporter,
}


def run() -> NoReturn:
    """The program (``stability-user``, ``python -m stability_user``): ``main()``, then exit.

    After Ctrl-C it exits at once, skipping the interpreter's shutdown: that would wait for
    ``get_balances()``'s worker threads to finish their requests, and a KeyboardInterrupt that
    lands while the executor holds one of its locks makes that wait hang, or end by SIGINT
    instead of status 130.
    """
    status = main()
    if status == EXIT_INTERRUPTED:
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stream
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    out, err = _Output(sys.stdout), _Output(sys.stderr)
    try:
        code = _main(args, out, err)
        sys.stdout.flush()  # a closed pipe or a full disk shows here, not at exit
    except KeyboardInterrupt:
        _say(err, f"{_PROG}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head -1`): Python's documented recipe, so that the flush
        # at exit does not fail again with a traceback.
        _silence_stdout()
        return EXIT_API_ERROR
    except OSError as error:  # e.g. `> /dev/full`
        _silence_stdout()
        _say(err, f"{_PROG}: error: cannot write the output: {error}")
        return EXIT_API_ERROR
    return code


def _main(args: argparse.Namespace, out: _Output, err: _Output) -> int:
    from ._exceptions import ConfigurationError, StabilityError

    try:
        return _run(args, out, err)
    except ConfigurationError as error:
        err.print(f"{_PROG}: error: {error.cli_message or error}")
        return EXIT_USAGE
    except StabilityError as error:
        err.print(f"{_PROG}: error: {_describe_error(error)}")
        return EXIT_API_ERROR


def _say(err: _Output, text: str) -> None:
    with contextlib.suppress(OSError):  # stderr is gone too: nothing more can be said
        err.print(text)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured, replaced)
        pass
