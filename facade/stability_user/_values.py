"""Validate single values a client is given: header values, timeouts, transports.

Pure and cheap to import: ``_core`` checks an organization or a per-call timeout on every call
with these, while the settings as a whole are resolved by ``_config`` when a client is made.
"""

from __future__ import annotations

from typing import Literal

import httpx2

from ._constants import (
    CLIENT_ID_ENV,
    CLIENT_VERSION_ENV,
    DEFAULT_CONNECT_TIMEOUT,
    MAX_SECONDS,
    MIN_REFRESH_INTERVAL,
)
from ._exceptions import ConfigurationError

__all__ = [
    "INTERVAL_RULE",
    "Period",
    "TimeoutTypes",
    "check_header_value",
    "check_interval",
    "check_organization",
    "check_seconds",
    "check_transport",
    "is_header_safe",
    "to_httpx2_timeout",
]

TimeoutTypes = float | int | httpx2.Timeout
# A budget's period (``track_spend(per=...)``): a calendar day, week or month, local time.
Period = Literal["day", "week", "month"]


def is_header_safe(value: str) -> bool:
    # Printable ASCII only: no CR/LF (header injection), no other control characters, and
    # nothing httpx2 would fail to encode later, after we had promised the value was fine.
    return value.isascii() and value.isprintable()


# How the command line names each header setting.
_CLI_NAMES = {
    "organization": "--org (or STABILITY_ORGANIZATION)",
    "client_id": CLIENT_ID_ENV,
    "client_version": CLIENT_VERSION_ENV,
}


def check_header_value(value: object, what: str) -> str:
    """Validate ``value`` for a request header named by the argument ``what`` and return it.

    Surrounding whitespace is refused rather than trimmed: servers trim it (RFC 9110 5.5) while
    an in-process transport may not, so the same value could name two different things.
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a str, not {type(value).__name__}.")
    cli = _CLI_NAMES[what]
    if not value.strip():
        raise ConfigurationError(
            f"{what} is empty; pass None to send none.", cli_message=f"{cli} is empty."
        )
    if value != value.strip():
        problem = f"{value!r} has leading or trailing whitespace."
        raise ConfigurationError(f"{what} {problem}", cli_message=f"{cli} {problem}")
    if not is_header_safe(value):
        problem = f"{value!r} holds control or non-ASCII characters."
        raise ConfigurationError(f"{what} {problem}", cli_message=f"{cli} {problem}")
    return value


def check_organization(organization: object) -> str:
    """Validate an organization id for the ``Organization`` header and return it."""
    if isinstance(organization, str) and not organization.strip():
        raise ConfigurationError(
            "organization is empty; pass None for the default organization.",
            cli_message=f"{_CLI_NAMES['organization']} is empty.",
        )
    return check_header_value(organization, "organization")


def _is_seconds(value: object) -> bool:
    """A positive number of seconds, at most ``MAX_SECONDS``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond any float
        return False
    return 0 < seconds <= MAX_SECONDS


def check_seconds(value: object, what: str, *, cli_name: str) -> float:
    """``value`` as seconds: a positive number up to ``MAX_SECONDS`` (a day), else an error
    that names ``what`` (``cli_name`` on the command line)."""
    if not _is_seconds(value):
        rule = f"a positive number of seconds up to {MAX_SECONDS:g} (a day)"
        raise ConfigurationError(
            f"{what} must be {rule}, not {_shown(value)}.",
            cli_message=f"{cli_name} must be {rule}, not {_shown(value)}.",
        )
    return float(value)  # type: ignore[arg-type]  # checked by _is_seconds


# What a refresh interval must be beyond check_seconds' rule: the exporter's --interval and
# its file's interval, CreditsCollector's and CreditsMeter's.
INTERVAL_RULE = (
    f"at least {MIN_REFRESH_INTERVAL:g} s between refreshes (each one spends API requests, of "
    "Stability's 150 per 10 s)"
)


def check_interval(value: object, what: str, *, cli_name: str) -> float:
    """``value`` as seconds between refreshes: ``check_seconds``' rule, and at least
    ``MIN_REFRESH_INTERVAL``."""
    seconds = check_seconds(value, what, cli_name=cli_name)
    if seconds < MIN_REFRESH_INTERVAL:
        raise ConfigurationError(
            f"{what} must be {INTERVAL_RULE}, not {_shown(value)}.",
            cli_message=f"{cli_name} must be {INTERVAL_RULE}, not {_shown(value)}.",
        )
    return seconds


def _shown(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 128 else ""
    return text or "an integer too large for a float"


def to_httpx2_timeout(timeout: object) -> httpx2.Timeout:
    """Seconds (a positive number) or an ``httpx2.Timeout`` as an ``httpx2.Timeout``."""
    if isinstance(timeout, httpx2.Timeout):
        for name in ("connect", "read", "write", "pool"):
            part = getattr(timeout, name)
            if part is not None and not _is_seconds(part):
                raise ConfigurationError(
                    f"timeout's {name} must be None or a positive number of seconds up to "
                    f"{MAX_SECONDS:g} (a day), not {_shown(part)}."
                )
        return timeout
    package = _legacy_package(timeout)
    if package is not None:
        raise _legacy_error("timeout", timeout, package, "an httpx2.Timeout, or seconds")
    if not _is_seconds(timeout):
        rule = f"a positive number of seconds up to {MAX_SECONDS:g} (a day)"
        raise ConfigurationError(
            f"timeout must be {rule} or an httpx2.Timeout, not {_shown(timeout)}.",
            cli_message=f"--timeout must be {rule}, not {_shown(timeout)}.",
        )
    seconds = float(timeout)  # type: ignore[arg-type]  # checked by _is_seconds
    return httpx2.Timeout(seconds, connect=min(seconds, DEFAULT_CONNECT_TIMEOUT))


# The packages httpx2 continues; their objects do not work with httpx2's clients.
_LEGACY_PACKAGES = frozenset({"httpx", "httpcore"})


def _legacy_package(value: object) -> str | None:
    """``"httpx"`` (or ``"httpcore"``) when ``value`` comes from the legacy package."""
    for cls in type(value).__mro__:
        package = cls.__module__.partition(".")[0]
        if package in _LEGACY_PACKAGES:
            return package
    return None


def _legacy_error(what: str, value: object, package: str, instead: str) -> ConfigurationError:
    name = f"{type(value).__module__.partition('.')[0]}.{type(value).__qualname__}"
    return ConfigurationError(
        f"{what} is an {name} from the legacy {package} package; stability-user runs on httpx2 "
        f"(the maintained continuation of httpx, same API) since 0.3.0: pass {instead}."
    )


def check_transport(transport: object, expected: type[object]) -> None:
    """Refuse a ``transport`` that is not an instance of httpx2's ``expected`` base class."""
    if transport is None or isinstance(transport, expected):
        return
    wanted = f"an httpx2.{expected.__name__}"
    package = _legacy_package(transport)
    if package is not None:
        raise _legacy_error("transport", transport, package, f"{wanted} (import httpx2)")
    raise ConfigurationError(f"transport must be {wanted}, not {type(transport).__name__}.")
