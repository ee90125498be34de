"""What ``stability-user status`` was asked, shared by the command and its background refresh.

Its arguments, read without argparse for the usual invocations; the cache entry they name, as
the client would resolve the settings, without loading it; and the balance fetched through the
client within ``--timeout``, however the API behaves.
"""

from __future__ import annotations

import os
import time

from .._cache._canonical import bare_key
from .._cache._store import entry_for
from .._constants import (
    API_KEY_ENV,
    API_VERSION_ENV,
    BASE_URL_ENV,
    BASE_URL_FALLBACK_ENV,
    DEFAULT_BASE_URL,
    ORGANIZATION_ENV,
    STATUS_MAX_AGE,
    STATUS_TIMEOUT,
)
from ._types import non_negative_seconds, seconds, template

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

    from .._exceptions import StabilityError

__all__ = ["StatusArguments", "client_for", "entry_of", "fetch_credits", "read_arguments"]


class StatusArguments:
    """The arguments ``read_arguments`` read: the attributes argparse's namespace would have."""

    def __init__(self) -> None:
        self.org: str | None = None
        self.max_age = STATUS_MAX_AGE
        self.timeout = STATUS_TIMEOUT
        self.format: str | None = None
        self.json = False
        self.refresh = False
        self.base_url: str | None = None
        self.api_version: str | None = None
        self.no_history = False


# Options that take a value: (attribute, converter).
_VALUED: dict[str, tuple[str, Callable[[str], object]]] = {
    "--org": ("org", str),
    "--max-age": ("max_age", non_negative_seconds),
    "--timeout": ("timeout", seconds),
    "--format": ("format", template),
    "--base-url": ("base_url", str),
    "--api-version": ("api_version", str),
}
_FLAGS = {"--json": "json", "--refresh": "refresh", "--no-history": "no_history"}


def read_arguments(argv: Sequence[str]) -> StatusArguments | None:
    """The arguments of the usual invocations, read without argparse; ``None`` for the rest.

    A prompt runs ``status`` with a few whole-word options, and argparse (with the gettext,
    locale and shutil it loads) costs more than everything else on a cache hit. Anything this
    does not read exactly as argparse would (``--help``, abbreviations, a value that looks like
    an option, a repeated option, any error) is left to argparse, which then reads it all: the
    tests hold the two readings equal wherever this one answers.
    """
    arguments = StatusArguments()
    seen: set[str] = set()
    index = 0
    while index < len(argv):
        word = argv[index]
        name, equals, value = word.partition("=")
        if name in seen:
            return None
        seen.add(name)
        if name in _FLAGS and not equals:
            setattr(arguments, _FLAGS[name], True)
        elif name in _VALUED:
            if not equals:
                index += 1
                if index == len(argv) or argv[index].startswith("-"):
                    return None
                value = argv[index]
            attribute, convert = _VALUED[name]
            try:
                setattr(arguments, attribute, convert(value))
            except ValueError:
                return None
        else:
            return None
        index += 1
    if arguments.json and arguments.format is not None:
        return None  # argparse says they exclude each other
    return arguments


def entry_of(args: argparse.Namespace | StatusArguments) -> tuple[str | None, str]:
    """The organization asked for and the name of its entry, from the options and the
    environment (as the client would resolve them, without loading it)."""
    environ = os.environ
    organization = args.org or environ.get(ORGANIZATION_ENV) or None
    key = bare_key(environ.get(API_KEY_ENV) or "")
    if not key:
        client_for(args)  # raises the missing or empty key's ConfigurationError
    name = entry_for(
        args.base_url
        or environ.get(BASE_URL_ENV)
        or environ.get(BASE_URL_FALLBACK_ENV)
        or DEFAULT_BASE_URL,
        args.api_version or environ.get(API_VERSION_ENV) or "v1",
        key,
        organization,
    )
    return organization, name


def client_for(args: argparse.Namespace | StatusArguments) -> Any:
    from .._client import StabilityUser

    # Not --timeout: it bounds the whole command, and each request gets what is left of it.
    return StabilityUser(
        base_url=args.base_url, api_version=args.api_version, history=not args.no_history
    )


def fetch_credits(
    args: argparse.Namespace | StatusArguments, organization: str | None, deadline: float
) -> tuple[float, float | None]:
    """The credits from the API through the SDK's client, by ``deadline`` whatever happens,
    recorded in the history (unless ``--no-history``), with when they run out at its burn rate
    (``None`` when it cannot tell).

    The call runs on a daemon thread so that the wait is bounded as a whole, retries and their
    backoff included; one still under way at the deadline is left to end with the process.
    """
    import threading

    from .._exceptions import APITimeoutError

    client = client_for(args)  # a configuration error raises here, before anything is sent
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        client.close()
        raise APITimeoutError(f"No time left within --timeout {args.timeout:g} s to ask the API.")
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["credits"] = client.get_balance(organization, timeout=remaining).credits
            history = client._history  # the client's own recorder: the same store, the same key
            if history is not None:
                outcome["runs_out_at"] = history.runs_out_at(organization, time.time())
        except Exception as error:  # handed to the waiting thread, raised there
            outcome["error"] = error

    worker = threading.Thread(target=call, name="stability-user-status", daemon=True)
    worker.start()
    worker.join(max(0.0, remaining))
    if worker.is_alive():
        raise APITimeoutError(f"No answer from the API within --timeout {args.timeout:g} s.")
    client.close()
    error: StabilityError | Exception | None = outcome.get("error")
    if error is not None:
        raise error
    credits: float = outcome["credits"]
    return credits, outcome.get("runs_out_at")
