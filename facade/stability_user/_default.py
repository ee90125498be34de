"""The module-level ``get_account()``, ``get_balance()``, ``get_balances()`` and
``cached_balance()``.

They share one ``StabilityUser``, created on first use from the environment, so connections are
reused across calls and threads (``httpx2.Client`` is thread-safe). Each call compares the
environment variables the client was built from (a few dictionary look-ups) and builds a new
client when one changed; the old one is closed once no call is using it. A missing key raises
on every call until one is set; nothing is cached then. A forked child drops the parent's
client without closing it (the parent still uses its sockets), and the shared client is closed
at interpreter exit.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from ._cache._policy import lookup
from ._cache._store import CachedBalance, default_cache_dir, entry_for, open_cache
from ._client import StabilityUser
from ._constants import (
    API_KEY_ENV,
    API_VERSION_ENV,
    BASE_URL_ENV,
    BASE_URL_FALLBACK_ENV,
    CLIENT_ID_ENV,
    CLIENT_VERSION_ENV,
    DEFAULT_TIMEOUT,
    ORGANIZATION_ENV,
    SSL_CERT_DIR_ENV,
    SSL_CERT_FILE_ENV,
    STATUS_MAX_AGE,
)
from ._exceptions import ConfigurationError
from ._logging import logger
from ._models import Account, Balance, OrganizationBalance
from ._values import Period, TimeoutTypes, check_organization, to_httpx2_timeout

if TYPE_CHECKING:
    from ._budget import Spend
    from .prices import Estimate

__all__ = [
    "cached_balance",
    "get_account",
    "get_balance",
    "get_balances",
    "require_credits",
    "track_spend",
]

_Result = TypeVar("_Result")

# What the shared client is built from; a change to any of them means a new client.
_WATCHED = (
    API_KEY_ENV,
    BASE_URL_ENV,
    BASE_URL_FALLBACK_ENV,
    API_VERSION_ENV,
    ORGANIZATION_ENV,
    CLIENT_ID_ENV,
    CLIENT_VERSION_ENV,
    SSL_CERT_FILE_ENV,
    SSL_CERT_DIR_ENV,
)


class _Shared:
    """The shared client, the environment it was built from, and who is using it."""

    __slots__ = ("client", "environment", "retired", "users")

    def __init__(self, client: StabilityUser, environment: tuple[str | None, ...]) -> None:
        self.client = client
        self.environment = environment
        self.users = 0
        self.retired = False


_lock = threading.Lock()
_shared: _Shared | None = None


def _environment() -> tuple[str | None, ...]:
    get = os.environ.get
    return tuple(get(name) for name in _WATCHED)


def _acquire() -> _Shared:
    """The shared client for the current environment, counted as in use."""
    global _shared
    environment = _environment()
    with _lock:
        shared = _shared
        if shared is None or shared.environment != environment:
            if shared is not None:
                _retire(shared)
                _shared = None
            # Built under the lock: threads racing on first use share one client. A missing
            # key raises here and leaves nothing cached.
            shared = _shared = _Shared(StabilityUser(), environment)
        shared.users += 1
        return shared


def _retire(shared: _Shared) -> None:
    # Under _lock. The last call still using it closes it (see _release).
    shared.retired = True
    if shared.users == 0:
        shared.client.close()


def _release(shared: _Shared) -> None:
    with _lock:
        shared.users -= 1
        last = shared.retired and shared.users == 0
    if last:
        shared.client.close()


def _with_client(use: Callable[[StabilityUser], _Result]) -> _Result:
    shared = _acquire()
    try:
        return use(shared.client)
    finally:
        _release(shared)


def _default_client() -> StabilityUser:
    """The shared client for the current environment (for tests and diagnostics)."""
    shared = _acquire()
    _release(shared)
    return shared.client


def _reset_default_client() -> None:
    """Close and forget the shared client, so the next call reads the environment again."""
    global _shared
    with _lock:
        shared, _shared = _shared, None
        if shared is not None:
            _retire(shared)


def _forget_after_fork() -> None:
    # In a child: the parent's client holds the parent's sockets; drop it unclosed.
    global _lock, _shared
    _lock = threading.Lock()
    _shared = None


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(_reset_default_client)


def get_account(*, timeout: TimeoutTypes | None = None) -> Account:
    """The account behind ``STABILITY_API_KEY``. See ``StabilityUser.get_account``."""
    return _with_client(lambda client: client.get_account(timeout=timeout))


def get_balance(organization: str | None = None, *, timeout: TimeoutTypes | None = None) -> Balance:
    """The credits of ``organization``, or of the default one. See ``StabilityUser.get_balance``."""
    return _with_client(lambda client: client.get_balance(organization, timeout=timeout))


def get_balances(*, timeout: TimeoutTypes | None = None) -> list[OrganizationBalance]:
    """Every organization's balance. See ``StabilityUser.get_balances``."""
    return _with_client(lambda client: client.get_balances(timeout=timeout))


def require_credits(
    minimum: float | Estimate,
    organization: str | None = None,
    *,
    timeout: TimeoutTypes | None = None,
) -> Balance:
    """The balance, if it holds ``minimum`` credits. See ``StabilityUser.require_credits``."""
    return _with_client(
        lambda client: client.require_credits(minimum, organization, timeout=timeout)
    )


@contextmanager
def track_spend(
    organization: str | None = None,
    *,
    all_organizations: bool = False,
    label: str | None = None,
    budget: float | None = None,
    per: Period = "month",
    note: str | None = None,
    expected: float | None = None,
) -> Iterator[Spend]:
    """``with track_spend() as spend:``. See ``StabilityUser.track_spend``."""
    shared = _acquire()
    try:
        with shared.client.track_spend(
            organization,
            all_organizations=all_organizations,
            label=label,
            budget=budget,
            per=per,
            note=note,
            expected=expected,
        ) as spend:
            yield spend
    finally:
        _release(shared)


def cached_balance(
    organization: str | None = None,
    *,
    max_age: float = STATUS_MAX_AGE,
    refresh: bool = False,
    timeout: TimeoutTypes | None = None,
    history: bool = False,
) -> CachedBalance:
    """The balance from the on-disk cache that ``stability-user status`` keeps, when young enough.

    A value younger than ``max_age`` seconds is returned without calling the API. An older one
    is refreshed with ``get_balance()`` in the foreground, by one process at a time: another
    process finding it being refreshed gets the older value at once (or waits, when there is
    none). When the refresh fails, the older value is returned marked ``stale`` with the error
    in ``.error``; with none, the error is raised. Unlike ``status``, which answers a prompt at
    once and refreshes behind it, this waits for the API (a program asked for a value) and
    ignores the back-off after a failure; the failure is remembered all the same, so prompts
    back off. The cache is the command line's, so a program and a prompt share one API call a
    minute. It is in ``STABILITY_CACHE_DIR``, else ``$XDG_CACHE_HOME/stability-user``, else the
    platform's cache folder; one that is not the user's own or that others can write is not
    used (a warning is logged).

    Args:
        organization: An organization id; defaults to ``STABILITY_ORGANIZATION``, else the
            account's default organization.
        max_age: Seconds a cached value stays fresh; 0 refreshes every time.
        refresh: Refresh now however young the value, waiting for another process's refresh
            rather than returning an older value.
        timeout: For the API call, as ``get_balance()``'s; also bounds the wait for another
            process's refresh (default: the client's read timeout).
        history: Record a refreshed balance in the local history (``stability_user.history``),
            and keep with it when the credits run out at the history's burn rate
            (``runs_out_at``); ``STABILITY_HISTORY=off`` turns it off.

    Raises:
        ConfigurationError: ``max_age`` is negative or not a number; nothing is sent.
        StabilityError: The refresh failed and nothing was cached.
    """
    if (
        isinstance(max_age, bool)
        or not isinstance(max_age, int | float)
        or not (0 <= max_age < math.inf)
    ):
        raise ConfigurationError(f"max_age must be a number of seconds >= 0, not {max_age!r}.")
    if organization is not None:
        check_organization(organization)
    if not isinstance(history, bool):
        raise ConfigurationError(f"history must be True or False, not {history!r}.")

    def use(client: StabilityUser) -> CachedBalance:
        settings = client._settings
        org = settings.organization if organization is None else organization
        name = entry_for(settings.base_url, settings.api_version.name, settings.api_key, org)
        wait = (client.timeout if timeout is None else to_httpx2_timeout(timeout)).read
        try:
            cache = open_cache(default_cache_dir(os.environ, logger.warning))
        except OSError as err:
            logger.warning("%s", err)
            cache = None
        return lookup(
            cache,
            name,
            org,
            max_age=float(max_age),
            refresh=refresh,
            fetch=lambda _deadline: _fetch(client, org, timeout, history),
            deadline=time.monotonic() + (DEFAULT_TIMEOUT if wait is None else wait),
            warn=logger.warning,
        )

    return _with_client(use)


def _fetch(
    client: StabilityUser, organization: str | None, timeout: TimeoutTypes | None, history: bool
) -> tuple[float, float | None]:
    """``cached_balance()``'s refresh: the credits, recorded and with their runway when asked."""
    credits = client.get_balance(organization, timeout=timeout).credits
    if not history:
        return credits, None
    from .history._recorder import recorder_for

    settings = client._settings
    recorder = recorder_for(settings.base_url, settings.api_key)
    if recorder is None:  # STABILITY_HISTORY=off
        return credits, None
    recorder.balance(organization, credits)
    return credits, recorder.runs_out_at(organization, time.time())
