"""Resolve a client's settings: explicit argument, then environment, then default.

Everything here is pure and runs before any request is built, so bad input is refused with a
``ConfigurationError`` and nothing is sent.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec

import httpx2

from ._cache._canonical import bare_key
from ._constants import (
    API_KEY_ENV,
    API_VERSION_ENV,
    BASE_URL_ENV,
    BASE_URL_FALLBACK_ENV,
    CLIENT_ID_ENV,
    CLIENT_VERSION_ENV,
    DEFAULT_BASE_URL,
    ORGANIZATION_ENV,
)
from ._exceptions import ConfigurationError, MissingAPIKeyError
from ._http._ratelimit import RateLimit, resolve_rate_limit
from ._http._tls import trust_from_env
from ._http._versions import DEFAULT_API_VERSION, APIVersion, check_api_version
from ._loopback import is_loopback
from ._values import (
    TimeoutTypes,
    check_header_value,
    check_organization,
    is_header_safe,
    to_httpx2_timeout,
)

__all__ = ["Settings", "resolve_settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """A client's resolved, validated configuration."""

    api_key: str = field(repr=False)
    base_url: str
    organization: str | None
    timeout: httpx2.Timeout
    max_retries: int
    api_version: APIVersion
    client_id: str | None = None
    client_version: str | None = None
    rate_limit: RateLimit | None = None
    proxy: str | None = field(default=None, repr=False)
    # Environment proxies (HTTP_PROXY, ALL_PROXY...) are honoured, except for a loopback base
    # URL: the key must not travel to a proxy to reach this very machine.
    trust_env: bool = True
    # SSL_CERT_FILE / SSL_CERT_DIR, read for every host (``_tls``); None: the system's store.
    verify: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header's value, in the form the API version expects."""
        return self.api_version.authorization_prefix + self.api_key


def resolve_settings(
    *,
    api_key: str | None,
    organization: str | None,
    base_url: str | None,
    timeout: TimeoutTypes,
    max_retries: int,
    allow_insecure_http: bool,
    api_version: str | None = None,
    client_id: str | None = None,
    client_version: str | None = None,
    rate_limit: object = None,
    proxy: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Combine arguments with the environment and validate the result.

    Raises:
        MissingAPIKeyError: No key as an argument nor in ``STABILITY_API_KEY``.
        ConfigurationError: Any value is unusable.
    """
    env = os.environ if environ is None else environ
    key = _check_api_key(api_key if api_key is not None else env.get(API_KEY_ENV))
    url = _check_base_url(
        base_url
        if base_url is not None
        else env.get(BASE_URL_ENV) or env.get(BASE_URL_FALLBACK_ENV) or DEFAULT_BASE_URL,
        allow_insecure_http=allow_insecure_http,
    )
    host = httpx2.URL(url).host
    org = organization if organization is not None else env.get(ORGANIZATION_ENV) or None
    ident = client_id if client_id is not None else env.get(CLIENT_ID_ENV) or None
    ident_version = (
        client_version if client_version is not None else env.get(CLIENT_VERSION_ENV) or None
    )
    return Settings(
        api_key=key,
        base_url=url,
        organization=check_organization(org) if org is not None else None,
        timeout=to_httpx2_timeout(timeout),
        max_retries=_check_max_retries(max_retries),
        api_version=check_api_version(
            api_version
            if api_version is not None
            else env.get(API_VERSION_ENV) or DEFAULT_API_VERSION
        ),
        client_id=check_header_value(ident, "client_id") if ident is not None else None,
        client_version=(
            check_header_value(ident_version, "client_version")
            if ident_version is not None
            else None
        ),
        rate_limit=resolve_rate_limit(rate_limit, host),
        proxy=_check_proxy(proxy) if proxy is not None else None,
        trust_env=not is_loopback(host),
        verify=trust_from_env(env),
    )


def _check_proxy(proxy: object) -> str:
    if not isinstance(proxy, str):
        raise ConfigurationError(f"proxy must be a URL string, not {type(proxy).__name__}.")
    try:
        url = httpx2.URL(proxy.strip())
    except httpx2.InvalidURL as err:
        raise ConfigurationError(f"proxy is not a valid URL: {err}") from err
    if url.scheme not in ("http", "https", "socks5", "socks5h") or not url.host:
        raise ConfigurationError(
            "proxy must be an absolute http://, https:// or socks5:// URL, "
            "such as 'http://proxy.example:3128'."
        )
    if url.scheme.startswith("socks") and find_spec("socksio") is None:
        # httpx2 would raise a bare ImportError when the client is built.
        raise ConfigurationError(
            "A socks5:// proxy needs the socksio package: pip install 'httpx2[socks]'."
        )
    return str(url)


def _check_api_key(key: object) -> str:
    if key is None:
        raise MissingAPIKeyError(
            f"No API key: pass api_key=... or set the {API_KEY_ENV} environment variable.",
            cli_message=f"{API_KEY_ENV} is not set: set it to your Stability API key.",
        )
    if not isinstance(key, str):
        raise ConfigurationError(f"api_key must be a str, not {type(key).__name__}.")
    key = bare_key(key)
    if not key:
        raise ConfigurationError(
            f"The API key is empty: pass api_key=... or set {API_KEY_ENV} to your key.",
            cli_message=f"{API_KEY_ENV} is empty: set it to your Stability API key.",
        )
    if not is_header_safe(key) or " " in key:
        # Never echo the key back: the message only says what is wrong with it.
        raise ConfigurationError(
            "The API key holds whitespace, control or non-ASCII characters; check how it was "
            "copied.",
            cli_message=f"{API_KEY_ENV} holds whitespace, control or non-ASCII characters; "
            "check how the key was copied.",
        )
    return key


def _check_base_url(raw: object, *, allow_insecure_http: bool) -> str:
    if not isinstance(raw, str):
        raise ConfigurationError(f"base_url must be a str, not {type(raw).__name__}.")
    cli = f"--base-url (or {BASE_URL_ENV}) {raw!r}"
    example = f"such as --base-url {DEFAULT_BASE_URL}"
    try:
        url = httpx2.URL(raw.strip())
    except httpx2.InvalidURL as err:
        raise ConfigurationError(
            f"base_url {raw!r} is not a valid URL: {err}",
            cli_message=f"{cli} is not a valid URL: {err}",
        ) from err
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"base_url {raw!r} must be an absolute http:// or https:// URL, "
            f"such as {DEFAULT_BASE_URL!r}.",
            cli_message=f"{cli} must be an absolute https:// URL, {example}.",
        )
    if url.userinfo or url.query or url.fragment:
        # Said without them: a password or token there would reach the terminal and the logs.
        shown = repr(_without_secrets(url))
        raise ConfigurationError(
            f"base_url {shown} must not hold credentials, a query or a fragment.",
            cli_message=f"--base-url (or {BASE_URL_ENV}) {shown} must not hold credentials, "
            "a query or a fragment.",
        )
    if url.scheme == "http" and not allow_insecure_http and not is_loopback(url.host):
        raise ConfigurationError(
            f"Refusing to send the API key over plain http:// to {url.host!r}; use https://, "
            "or pass allow_insecure_http=True if you really mean it.",
            cli_message=f"Refusing to send the API key over plain http:// to {url.host!r}: "
            f"use an https:// URL, {example}.",
        )
    return str(url).rstrip("/")


def _without_secrets(url: httpx2.URL) -> str:
    """``url`` with its credentials, query and fragment shown as placeholders."""
    credentials = "<credentials>@" if url.userinfo else ""
    query = "?<query>" if url.query else ""
    fragment = "#<fragment>" if url.fragment else ""
    return f"{url.scheme}://{credentials}{url.netloc.decode('ascii')}{url.path}{query}{fragment}"


def _check_max_retries(max_retries: object) -> int:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigurationError(
            f"max_retries must be a whole number >= 0 (0 turns retries off), not {max_retries!r}."
        )
    return max_retries
