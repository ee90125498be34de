"""The exporter's configuration file (``stability-user exporter --config FILE``), read and
checked whole before anything uses it.

TOML, read with the standard library. Keys never sit in the file: each target names an
environment variable (``key_env``) or a file only its owner can read (``key_file``), and the
key read from there lives in a ``Secret`` that shows itself as ``<secret>``. Every mistake is
one ``ExporterConfigError`` naming the file and the setting; unknown settings are mistakes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._constants import DEFAULT_TIMEOUT, EXPORTER_INTERVAL
from .._exceptions import ConfigurationError
from .._files import regular_file
from .._http._ratelimit import RateLimit
from .._values import check_interval, check_seconds

__all__ = [
    "RATE_LIMIT_SCOPES",
    "ExporterConfig",
    "ExporterConfigError",
    "RateLimitConfig",
    "Secret",
    "TargetConfig",
    "load_config",
    "render_config",
    "shard_of",
]

# The [exporter] table's defaults (docs/monitoring.md, "Many keys").
DEFAULT_CONCURRENCY = 16
DEFAULT_PROBE_TIMEOUT = 10.0  # Prometheus' own default scrape timeout
DEFAULT_TIMEOUT_OFFSET = 0.5  # what blackbox_exporter leaves for the answer to travel back
MAX_CONCURRENCY = 1024

RATE_LIMIT_SCOPES = ("host", "target", "off")
_TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_EXPORTER_KEYS = frozenset(
    {"interval", "timeout", "concurrency", "probe_timeout", "timeout_offset", "rate_limit"}
)
_RATE_LIMIT_KEYS = frozenset({"scope", "requests", "per_seconds"})
_TARGET_KEYS = frozenset({"key_env", "key_file", "base_url", "api_version", "organizations"})


class ExporterConfigError(Exception):
    """The configuration file cannot be used; the message names the file and the setting."""


@dataclass(frozen=True, slots=True)
class Secret:
    """An API key read from where the configuration names; shown as ``<secret>``."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """One ``[targets.NAME]`` table.

    Attributes:
        name: The name ``/probe?target=`` takes.
        key: The key, read at load time from ``key_env`` or ``key_file``.
        key_env: The environment variable it came from, or ``None``.
        key_file: The file it came from (a relative ``key_file`` is the configuration file's
            folder's), or ``None``.
        base_url: The API's base URL, or ``None`` for the client's default.
        api_version: ``v1`` or ``v1alpha``, or ``None`` for the client's default.
        organizations: The organization ids to export, or ``None`` for all of the account's.
    """

    name: str
    key: Secret
    key_env: str | None
    key_file: str | None
    base_url: str | None
    api_version: str | None
    organizations: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """``[exporter.rate_limit]``.

    Attributes:
        scope: ``host``: one limiter for all targets on an API host; ``target``: one each;
            ``off``: none.
        limit: The limit, or ``None`` for the host's default (Stability's 150 requests per
            10 s on api.stability.ai, none elsewhere).
    """

    scope: str = "host"
    limit: RateLimit | None = None


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    """A configuration file, checked.

    Attributes:
        path: The file it was read from.
        interval: Seconds between a target's refreshes (at least 1).
        timeout: Seconds for each request to the API.
        concurrency: How many targets refresh at once.
        probe_timeout: A probe's budget when the scrape sends no timeout header.
        timeout_offset: Seconds taken off the scrape's timeout header.
        rate_limit: The client-side rate limit and who shares it.
        targets: The targets by name, in the file's order.
    """

    path: str
    interval: float = EXPORTER_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT
    timeout_offset: float = DEFAULT_TIMEOUT_OFFSET
    rate_limit: RateLimitConfig = RateLimitConfig()
    targets: Mapping[str, TargetConfig] = field(default_factory=dict)


def load_config(path: str, environ: Mapping[str, str] | None = None) -> ExporterConfig:
    """Read and check ``path``, keys included (from ``environ``, else ``os.environ``).

    Raises:
        ExporterConfigError: Anything the file, a key variable or a key file gets wrong.
    """
    env = os.environ if environ is None else environ
    path = os.path.abspath(path)  # a reload reads the same file wherever the process is
    try:
        file = regular_file(path)
        if file is None:
            raise ExporterConfigError(f"{path} is not a regular file")
        with file:
            document = tomllib.load(file)
    except OSError as error:
        raise ExporterConfigError(f"cannot read {path}: {error.strerror or error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ExporterConfigError(f"{path} is not valid TOML: {error}") from error
    except UnicodeDecodeError as error:
        raise ExporterConfigError(f"{path} is not UTF-8 text: {error.reason}") from error
    try:
        return _config(path, document, env)
    except _Invalid as problem:
        raise ExporterConfigError(f"{path}: {problem}") from None


class _Invalid(Exception):
    """A problem with one setting; ``load_config`` adds the file's name."""


def _config(path: str, document: dict[str, Any], env: Mapping[str, str]) -> ExporterConfig:
    _only(document, {"exporter", "targets"}, "")
    exporter = _table(document.get("exporter", {}), "exporter")
    _only(exporter, _EXPORTER_KEYS, "exporter.")
    targets = _table(document.get("targets"), "targets")
    if not targets:
        raise _Invalid("no targets: add at least one [targets.NAME] table")
    return ExporterConfig(
        path=path,
        interval=_interval(exporter.get("interval", EXPORTER_INTERVAL)),
        timeout=_seconds(exporter, "timeout", DEFAULT_TIMEOUT, "exporter."),
        concurrency=_concurrency(exporter.get("concurrency", DEFAULT_CONCURRENCY)),
        probe_timeout=_seconds(exporter, "probe_timeout", DEFAULT_PROBE_TIMEOUT, "exporter."),
        timeout_offset=_offset(exporter.get("timeout_offset", DEFAULT_TIMEOUT_OFFSET)),
        rate_limit=_rate_limit(exporter.get("rate_limit", {})),
        targets={
            name: _target(name, table, env, os.path.dirname(path))
            for name, table in targets.items()
        },
    )


def _only(table: Mapping[str, Any], allowed: frozenset[str] | set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise _Invalid(f"unknown setting {where}{key} (known here: {known})")


def _table(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(f"{where} must be a table ([{where}]), not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _seconds(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    try:
        return check_seconds(table.get(key, default), f"{where}{key}", cli_name=f"{where}{key}")
    except ConfigurationError as error:
        raise _Invalid(str(error).removesuffix(".")) from None


def _interval(value: object) -> float:
    try:
        return check_interval(value, "exporter.interval", cli_name="exporter.interval")
    except ConfigurationError as error:
        raise _Invalid(str(error).removesuffix(".")) from None


def _offset(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 60:
        raise _Invalid(
            f"exporter.timeout_offset must be a number of seconds from 0 to below 60, not {value!r}"
        )
    return float(value)


def _concurrency(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise _Invalid(
            f"exporter.concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, "
            f"not {value!r}"
        )
    return value


def _rate_limit(value: object) -> RateLimitConfig:
    table = _table(value, "exporter.rate_limit")
    _only(table, _RATE_LIMIT_KEYS, "exporter.rate_limit.")
    scope = table.get("scope", "host")
    if scope not in RATE_LIMIT_SCOPES:
        choices = ", ".join(f'"{s}"' for s in RATE_LIMIT_SCOPES)
        raise _Invalid(f"exporter.rate_limit.scope must be one of {choices}, not {scope!r}")
    if scope == "off" and ("requests" in table or "per_seconds" in table):
        raise _Invalid('exporter.rate_limit: scope "off" takes no requests or per_seconds')
    if ("requests" in table) != ("per_seconds" in table):
        raise _Invalid("exporter.rate_limit: give requests and per_seconds together, or neither")
    if "requests" not in table:
        return RateLimitConfig(scope, None)
    requests = table["requests"]
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise _Invalid(
            f"exporter.rate_limit.requests must be a whole number >= 1, not {requests!r}"
        )
    per_seconds = _seconds(table, "per_seconds", 0, "exporter.rate_limit.")
    return RateLimitConfig(scope, RateLimit(requests=requests, per_seconds=per_seconds))


def _target(name: str, value: object, env: Mapping[str, str], folder: str) -> TargetConfig:
    where = f"targets.{name}"
    if not _TARGET_NAME.match(name):
        raise _Invalid(
            f"target name {name!r}: use 1 to 64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    table = _table(value, where)
    if "key" in table:
        raise _Invalid(
            f"{where}.key: a key is never written in this file; name where it is with key_env "
            "(an environment variable) or key_file (a file only you can read)"
        )
    _only(table, _TARGET_KEYS, f"{where}.")
    key_env = _optional_text(table, "key_env", where)
    key_file = _optional_text(table, "key_file", where)
    if key_file is not None:
        # Beside the file that names it, wherever the exporter runs: a container's mounted
        # folder, systemd's $CREDENTIALS_DIRECTORY, a Kubernetes volume.
        key_file = os.path.join(folder, key_file)
    if (key_env is None) == (key_file is None):
        raise _Invalid(f"{where}: give exactly one of key_env and key_file")
    key = _key_from_env(key_env, env, where) if key_env else _key_from_file(key_file or "", where)
    organizations = table.get("organizations")
    if organizations is not None:
        if (
            not isinstance(organizations, list)
            or not organizations
            or not all(isinstance(o, str) and o.strip() for o in organizations)
        ):
            raise _Invalid(f"{where}.organizations must be a non-empty array of organization ids")
        if len(set(organizations)) != len(organizations):
            raise _Invalid(f"{where}.organizations names an organization twice")
        organizations = tuple(o.strip() for o in organizations)
    return TargetConfig(
        name=name,
        key=key,
        key_env=key_env,
        key_file=key_file,
        base_url=_optional_text(table, "base_url", where),
        api_version=_optional_text(table, "api_version", where),
        organizations=organizations,
    )


def _optional_text(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"{where}.{key} must be a non-empty string, not {_kind(value)}")
    return value.strip()


def _key_from_env(name: str, env: Mapping[str, str], where: str) -> Secret:
    if not _ENV_NAME.match(name):
        raise _Invalid(f"{where}.key_env {name!r} is not an environment variable's name")
    value = env.get(name, "").strip()
    if not value:
        raise _Invalid(f"{where}.key_env: {name} is not set (or empty)")
    return Secret(value)


def _key_from_file(path: str, where: str) -> Secret:
    try:
        file = regular_file(path)
        if file is None:
            raise _Invalid(f"{where}.key_file {path} is not a regular file")
        with file:
            info = os.fstat(file.fileno())
            if info.st_mode & stat.S_IROTH:
                raise _Invalid(
                    f"{where}.key_file {path} can be read by other users "
                    f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod o-rwx it (0600 or 0640)"
                )
            raw = file.read(4097)
    except OSError as error:
        raise _Invalid(f"{where}.key_file: cannot read {path}: {error.strerror}") from None
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _Invalid(f"{where}.key_file {path} is not UTF-8 text") from None
    if len(raw) > 4096 or not value or any(c.isspace() for c in value):
        raise _Invalid(f"{where}.key_file {path} must hold one key on one line")
    return Secret(value)


def shard_of(name: str, shards: int) -> int:
    """Which of ``shards`` exporters serves target ``name``: Prometheus' ``hashmod`` of it
    (the last 8 bytes of its MD5, big-endian, modulo ``shards``), so that a scrape
    configuration and the exporters agree."""
    digest = hashlib.md5(name.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % shards


def render_config(
    config: ExporterConfig,
    effective: Mapping[str, tuple[str, str]],
    shard: tuple[int, int] | None = None,
) -> str:
    """``config`` as TOML, for ``GET /config``: every key as ``<secret>``, defaults filled in.

    ``effective`` maps each target to the base URL and API version its client resolved; with
    ``shard``, only that shard's targets are shown.
    """
    limit = config.rate_limit
    targets = [
        target
        for target in config.targets.values()
        if shard is None or shard_of(target.name, shard[1]) == shard[0]
    ]
    lines = [f"# {config.path}, as loaded; keys are shown as <secret>."]
    if shard is not None:
        lines.append(
            f"# Shard {shard[0]}/{shard[1]}: {len(targets)} of the file's "
            f"{len(config.targets)} targets."
        )
    lines += [
        "[exporter]",
        f"interval = {config.interval!r}",
        f"timeout = {config.timeout!r}",
        f"concurrency = {config.concurrency}",
        f"probe_timeout = {config.probe_timeout!r}",
        f"timeout_offset = {config.timeout_offset!r}",
        "",
        "[exporter.rate_limit]",
        f"scope = {_string(limit.scope)}",
    ]
    if limit.limit is None:
        lines.append("# requests, per_seconds: the host's default (150 per 10 s on Stability's)")
    else:
        lines.append(f"requests = {limit.limit.requests}")
        lines.append(f"per_seconds = {limit.limit.per_seconds!r}")
    for target in targets:
        base_url, api_version = effective.get(target.name, (target.base_url, target.api_version))
        lines += ["", f"[targets.{_key(target.name)}]"]
        if target.key_env is not None:
            lines.append(f"key_env = {_string(target.key_env)}")
        if target.key_file is not None:
            lines.append(f"key_file = {_string(target.key_file)}")
        lines.append('key = "<secret>"')
        if base_url is not None:
            lines.append(f"base_url = {_string(base_url)}")
        if api_version is not None:
            lines.append(f"api_version = {_string(api_version)}")
        if target.organizations is not None:
            lines.append(f"organizations = [{', '.join(map(_string, target.organizations))}]")
    return "\n".join(lines) + "\n"


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


def _key(name: str) -> str:
    """``name`` as a TOML key: bare if it can be, quoted otherwise (``a.b`` bare is a path)."""
    return name if _BARE_KEY.match(name) else _string(name)


def _string(text: str) -> str:
    # A TOML basic string: JSON's escapes are TOML's for everything a name or path holds.
    return json.dumps(text, ensure_ascii=False)
