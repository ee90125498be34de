"""Run one SDK operation through any of its doors: sync client, async client on each HTTP
backend (httpx2, aiohttp), module-level functions."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import stability_user
from stability_user import AsyncStabilityUser, StabilityUser
from stability_user._default import _reset_default_client

PATHS = ("sync", "async", "aiohttp", "module")
# The async client's doors, and the HTTP backend each one uses.
ASYNC_BACKENDS = {"async": "httpx2", "aiohttp": "aiohttp"}
# The doors that take client options (the module-level functions take none).
CLIENT_PATHS = ("sync", *ASYNC_BACKENDS)


def call_via(
    path: str,
    operation: str,
    *args: Any,
    api_key: str,
    base_url: str | None = None,
    timeout: float | None = None,
    api_version: str | None = None,
    **client_options: Any,
) -> Any:
    """``operation`` (``get_account``, ``get_balance``, ``get_balances``) through ``path``.

    ``timeout`` goes to the call; ``client_options`` to the client (not on the module path).
    The module path configures the shared default client from the environment, as a user
    would, and restores the environment afterwards. ``api_version`` goes to the client, or to
    ``STABILITY_API_VERSION`` on the module path.
    """
    if api_version is not None and path != "module":
        client_options["api_version"] = api_version
    if path == "sync":
        with StabilityUser(api_key, base_url=base_url, **client_options) as client:
            return getattr(client, operation)(*args, timeout=timeout)
    if path in ASYNC_BACKENDS:
        client_options["http_backend"] = ASYNC_BACKENDS[path]

        async def run() -> Any:
            async with AsyncStabilityUser(api_key, base_url=base_url, **client_options) as client:
                return await getattr(client, operation)(*args, timeout=timeout)

        return asyncio.run(run())
    if path == "module":
        assert not client_options, "the module-level functions take no client options"
        names = ("STABILITY_API_KEY", "STABILITY_BASE_URL", "STABILITY_API_VERSION")
        saved = {name: os.environ.get(name) for name in names}
        os.environ["STABILITY_API_KEY"] = api_key
        if base_url is not None:
            os.environ["STABILITY_BASE_URL"] = base_url
        if api_version is not None:
            os.environ["STABILITY_API_VERSION"] = api_version
        _reset_default_client()
        try:
            return getattr(stability_user, operation)(*args, timeout=timeout)
        finally:
            _reset_default_client()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    raise ValueError(f"unknown path {path!r}")
