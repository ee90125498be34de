"""The module-level ``get_account()``, ``get_balance()`` and ``get_balances()``.

They share one ``StabilityUser``, created on first use from the environment and kept for the
life of the process, so connections are reused across calls and threads (``httpx.Client`` is
thread-safe). A missing key raises on every call until one is set; nothing is cached then.
"""

from __future__ import annotations

import threading

from ._client import StabilityUser
from ._config import TimeoutTypes
from ._models import Account, Balance, OrganizationBalance

__all__ = ["get_account", "get_balance", "get_balances"]

_lock = threading.Lock()
_client: StabilityUser | None = None


def _default_client() -> StabilityUser:
    global _client
    client = _client
    if client is None:
        with _lock:
            client = _client
            if client is None:
                client = _client = StabilityUser()
    return client


def _reset_default_client() -> None:
    """Close and forget the shared client, so the next call reads the environment again."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.close()


def get_account(*, timeout: TimeoutTypes | None = None) -> Account:
    """The account behind ``STABILITY_API_KEY``. See ``StabilityUser.get_account``."""
    return _default_client().get_account(timeout=timeout)


def get_balance(organization: str | None = None, *, timeout: TimeoutTypes | None = None) -> Balance:
    """The credits of ``organization``, or of the default one. See ``StabilityUser.get_balance``."""
    return _default_client().get_balance(organization, timeout=timeout)


def get_balances(*, timeout: TimeoutTypes | None = None) -> list[OrganizationBalance]:
    """Every organization's balance. See ``StabilityUser.get_balances``."""
    return _default_client().get_balances(timeout=timeout)
