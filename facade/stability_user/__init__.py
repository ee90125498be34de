"""stability-user: who a Stability AI API key belongs to, and how many credits are left.

>>> from stability_user import get_account, get_balance
>>> get_account().email
>>> get_balance().credits

Names are imported on first use (PEP 562), so ``stability-user --help`` and
``import stability_user`` stay cheap; ``from stability_user import X`` works as usual.
"""

from __future__ import annotations

from ._version import __version__

TYPE_CHECKING = False  # not typing's: ``stability-user status`` starts on every prompt
if TYPE_CHECKING:
    from typing import Any

    from ._async_client import AsyncStabilityUser
    from ._budget import OrganizationSpend, Spend
    from ._cache._store import CachedBalance
    from ._client import StabilityUser
    from ._default import (
        cached_balance,
        get_account,
        get_balance,
        get_balances,
        require_credits,
        track_spend,
    )
    from ._exceptions import (
        APIConnectionError,
        APIError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BudgetExceededError,
        ClientClosedError,
        ConfigurationError,
        InsufficientCreditsError,
        InternalServerError,
        InvalidResponseError,
        MissingAPIKeyError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        StabilityError,
    )
    from ._http._ratelimit import RateLimit
    from ._models import Account, Balance, Organization, OrganizationBalance

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "Account",
    "AsyncStabilityUser",
    "AuthenticationError",
    "BadRequestError",
    "Balance",
    "BudgetExceededError",
    "CachedBalance",
    "ClientClosedError",
    "ConfigurationError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidResponseError",
    "MissingAPIKeyError",
    "NotFoundError",
    "Organization",
    "OrganizationBalance",
    "OrganizationSpend",
    "PermissionDeniedError",
    "RateLimit",
    "RateLimitError",
    "Spend",
    "StabilityError",
    "StabilityUser",
    "__version__",
    "cached_balance",
    "get_account",
    "get_balance",
    "get_balances",
    "require_credits",
    "track_spend",
]

# Which private module defines each public name.
_HOMES = {
    "AsyncStabilityUser": "_async_client",
    "CachedBalance": "_cache._store",
    "OrganizationSpend": "_budget",
    "Spend": "_budget",
    "StabilityUser": "_client",
    "cached_balance": "_default",
    "require_credits": "_default",
    "track_spend": "_default",
    "get_account": "_default",
    "get_balance": "_default",
    "get_balances": "_default",
    "Account": "_models",
    "Balance": "_models",
    "Organization": "_models",
    "OrganizationBalance": "_models",
    "RateLimit": "_http._ratelimit",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'stability_user' has no attribute {name!r}")
    from importlib import import_module

    module = import_module(f".{_HOMES.get(name, '_exceptions')}", __name__)
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
