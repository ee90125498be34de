"""The options commands share, and the argparse types of the values they take.

Each command module adds its own sub-parser with these; ``_parser`` puts the command line
together from the commands and imports them, and nothing here imports back.
"""

from __future__ import annotations

import argparse
import os

from .._constants import (
    API_VERSION_ENV,
    BASE_URL_ENV,
    BASE_URL_FALLBACK_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
)
from . import _types
from ._output import EXIT_BELOW_MIN, Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, TypeVar

    _Value = TypeVar("_Value")

__all__ = [
    "add_command",
    "as_type",
    "client_options",
    "credits",
    "days",
    "duration",
    "effective",
    "endpoint_arguments",
    "minimum_arguments",
    "non_negative_seconds",
    "output_arguments",
    "port",
    "refresh_interval",
    "seconds",
    "service",
    "shard",
    "template",
    "timeout_arguments",
]


def effective(names: Sequence[str], fallback: str) -> str:
    """``--help``'s default: the first environment variable set, named, else ``fallback``.

    An empty variable counts as unset, as the client reads it.
    """
    for name in names:
        value = os.environ.get(name)
        if value:
            return f"{value}, from {name}"
    return fallback


def as_type(convert: Callable[[str], _Value]) -> Callable[[str], _Value]:
    """``convert`` (from ``_types``) as an argparse type: its ``ValueError`` is the message."""

    def checked(text: str) -> _Value:
        try:
            return convert(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    checked.__name__ = convert.__name__
    return checked


credits = as_type(_types.credits)
port = as_type(_types.port)
seconds = as_type(_types.seconds)
refresh_interval = as_type(_types.refresh_interval)
shard = as_type(_types.shard)
non_negative_seconds = as_type(_types.non_negative_seconds)
template = as_type(_types.template)
duration = as_type(_types.duration)
days = as_type(_types.days)
service = as_type(_types.service)


def endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """``--base-url`` and ``--api-version``: which API every command talks to."""
    base_url = effective((BASE_URL_ENV, BASE_URL_FALLBACK_ENV), DEFAULT_BASE_URL)
    parser.add_argument("--base-url", metavar="URL", help=f"API base URL (default: {base_url})")
    version = effective((API_VERSION_ENV,), "v1, the endpoints served today")
    parser.add_argument(
        "--api-version",
        metavar="VERSION",
        help=f"v1 or v1alpha (retired by Stability in May 2023) (default: {version})",
    )


def timeout_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=seconds,
        metavar="SECONDS",
        help=f"timeout per request (default: {DEFAULT_TIMEOUT:g})",
    )


def output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def minimum_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--min-credits",
        type=credits,
        metavar="N",
        help=f"exit with status {EXIT_BELOW_MIN} when a balance is below N",
    )


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    help: str,
    description: str,
    min_credits: bool = False,
) -> argparse.ArgumentParser:
    """A command that asks the API and prints: endpoint, ``--timeout``, ``--json``,
    ``--no-history`` (and ``--min-credits``)."""
    from ._recording import history_argument

    parser = commands.add_parser(name, help=help, description=description)
    endpoint_arguments(parser)
    timeout_arguments(parser)
    output_arguments(parser)
    if min_credits:
        minimum_arguments(parser)
    history_argument(parser)
    return parser


def client_options(args: argparse.Namespace, err: Output | None = None) -> dict[str, Any]:
    """What the connection arguments given ask of a client (the rest from the environment);
    with ``err``, a client that records in the history (unless ``--no-history``), saying
    there when it could not."""
    options: dict[str, Any] = {"base_url": args.base_url, "api_version": args.api_version}
    if err is not None:
        from ._recording import recording, show_warnings

        options["history"] = recording(args)
        show_warnings(err)
    if getattr(args, "timeout", None) is not None:
        options["timeout"] = args.timeout
    return options
