"""The HTTP backends a client sends through, and the one place where they differ.

httpx2 is the default, and the sync client's only backend. ``aiohttp`` (the extra of that
name) is async only: an httpx2 transport of this project's own over an aiohttp session
(``_aiohttp``), for throughput. Everything above the transport (requests, retries,
rate limit, bounded fan-out, body cap, errors) is the same code on both. ``ClientCore`` asks
this module how to build each pool and how to send on it; nothing else looks at the name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

import httpx2

from .._constants import AIOHTTP_INSTALL, HTTP_BACKEND_ENV, HTTP_BACKENDS
from .._exceptions import ConfigurationError
from ._tls import default_trust

if TYPE_CHECKING:
    from .._config import Settings

__all__ = [
    "AIOHTTP",
    "AIOHTTP_INSTALL",
    "HTTPX2",
    "HTTP_BACKENDS",
    "MAX_CONNECTIONS",
    "check_backend_proxy",
    "pool_options",
    "resolve_http_backend",
    "sender",
]

HTTPX2, AIOHTTP = HTTP_BACKENDS
# Connections per pool (per process and event loop), on either backend.
MAX_CONNECTIONS = 100
# Idle keep-alive connections httpx2 keeps: enough for get_balances()'s 8 twice over.
_MAX_KEEPALIVE = 16


def _check_http_backend(value: object, source: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in HTTP_BACKENDS:
        raise ConfigurationError(
            f"{source} must be 'httpx2' or 'aiohttp', not {value!r}.",
            cli_message=f"--http-backend (or {HTTP_BACKEND_ENV}) must be 'httpx2' or "
            f"'aiohttp', not {value!r}.",
        )
    backend = value.strip().lower()
    if backend == AIOHTTP and find_spec("aiohttp") is None:
        raise ConfigurationError(
            f"The aiohttp backend needs aiohttp: {AIOHTTP_INSTALL}",
            cli_message=f"--http-backend aiohttp needs aiohttp: {AIOHTTP_INSTALL}",
        )
    return backend


def resolve_http_backend(
    argument: str | None, *, transport: object, environ: Mapping[str, str]
) -> str:
    """The backend an async client uses: the argument, else the environment, else httpx2.

    A ``transport`` given explicitly is an httpx2 transport, so it decides for httpx2 over the
    environment; with ``http_backend="aiohttp"`` as well it is a ``ConfigurationError``.
    """
    if argument is not None:
        backend = _check_http_backend(argument, "http_backend")
        if backend == AIOHTTP and transport is not None:
            raise ConfigurationError(
                "transport= and http_backend='aiohttp' exclude each other: the aiohttp backend "
                "is a transport itself."
            )
        return backend
    value = environ.get(HTTP_BACKEND_ENV)
    if transport is not None or not value:
        return HTTPX2
    return _check_http_backend(value, HTTP_BACKEND_ENV)


def check_backend_proxy(backend: str, proxy: object) -> None:
    """Refuse a ``proxy`` the backend cannot speak to, before the settings are resolved."""
    if backend == AIOHTTP and isinstance(proxy, str) and proxy.strip().lower().startswith("socks"):
        scheme = proxy.strip().split(":", 1)[0]
        raise ConfigurationError(
            f"The aiohttp backend does not speak to {scheme}:// proxies; use "
            "http_backend='httpx2' (with pip install 'httpx2[socks]') or an http:// proxy."
        )


def pool_options(backend: str, settings: Settings, transport: object) -> dict[str, Any]:
    """The ``httpx2`` client arguments that differ by backend, for one new pool."""
    if backend == AIOHTTP:
        from ._aiohttp import AiohttpTransport

        return {
            "transport": AiohttpTransport(
                verify=settings.verify or default_trust(),
                proxy=settings.proxy,
                trust_env=settings.trust_env,
                max_connections=MAX_CONNECTIONS,
            )
        }
    options: dict[str, Any] = {
        "transport": transport,
        "trust_env": settings.trust_env,
        "limits": httpx2.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=_MAX_KEEPALIVE
        ),
    }
    if settings.proxy is not None:
        options["proxy"] = settings.proxy
    if transport is None:
        options["verify"] = settings.verify or default_trust()
    return options


Send = Callable[[httpx2.Request], Awaitable[httpx2.Response]]


def sender(backend: str, http: httpx2.AsyncClient, options: dict[str, Any]) -> Send:
    """How an async pool sends a request, returning the response with its body unread.

    On aiohttp the request goes to the transport directly: it carries everything the client's
    ``send`` would add (headers, timeouts), and redirects, cookies and auth are not in play.
    """
    if backend == AIOHTTP:
        return options["transport"].handle_async_request  # type: ignore[no-any-return]

    async def send(request: httpx2.Request) -> httpx2.Response:
        return await http.send(request, stream=True)

    return send
