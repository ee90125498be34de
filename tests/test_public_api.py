"""The public surface: a curated, sorted ``__all__``, lazy imports, parity of sync and async."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import stability_user
import stability_user.testing
from stability_user import AsyncStabilityUser, StabilityUser

CONTRACT = {
    "cached_balance",
    "CachedBalance",
    "require_credits",
    "track_spend",
    "Spend",
    "OrganizationSpend",
    "InsufficientCreditsError",
    "BudgetExceededError",
    "get_account",
    "get_balance",
    "get_balances",
    "StabilityUser",
    "AsyncStabilityUser",
    "Account",
    "Organization",
    "Balance",
    "OrganizationBalance",
    "StabilityError",
    "ConfigurationError",
    "MissingAPIKeyError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "InternalServerError",
    "InvalidResponseError",
    "ClientClosedError",
    "RateLimit",
    "__version__",
}


def test_all_is_the_contract_sorted() -> None:
    assert set(stability_user.__all__) == CONTRACT
    assert stability_user.__all__ == sorted(stability_user.__all__)
    assert stability_user.testing.__all__ == sorted(stability_user.testing.__all__)


def test_every_exported_name_resolves() -> None:
    for name in stability_user.__all__:
        assert getattr(stability_user, name) is not None
    assert set(stability_user.__all__) <= set(dir(stability_user))


def test_unknown_attributes_raise_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = stability_user.nope


def test_every_private_module_declares_all() -> None:
    package = Path(stability_user.__file__).parent
    for path in sorted(package.rglob("_*.py")):
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        module_name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        module = importlib.import_module(module_name)
        assert isinstance(getattr(module, "__all__", None), list), module_name
        assert module.__doc__, module_name


def test_ships_py_typed() -> None:
    assert (Path(stability_user.__file__).parent / "py.typed").exists()


def test_importing_the_package_is_lazy() -> None:
    code = (
        "import sys, stability_user;"
        "print('httpx2' in sys.modules, 'stability_user._client' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_importing_the_clients_loads_no_http_core() -> None:
    # httpx2 loads httpcore2 when it needs it; the attempt deadline's backends wait for that
    # too, so that a program importing the SDK pays for neither.
    code = (
        "import sys; from stability_user import StabilityUser, AsyncStabilityUser;"
        "print(sorted(m for m in ('httpcore2', 'stability_user._http._bounded')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout == "[]\n"


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_sync_and_async_clients_have_the_same_surface() -> None:
    sync_methods = public_methods(StabilityUser)
    async_methods = public_methods(AsyncStabilityUser)
    assert sync_methods.pop("close") == async_methods.pop("aclose")
    assert (
        sync_methods.keys()
        == async_methods.keys()
        == {
            "get_account",
            "get_balance",
            "get_balances",
            "require_credits",
            "track_spend",
        }
    )
    for name, signature in sync_methods.items():
        assert signature.parameters == async_methods[name].parameters, name
        if name != "track_spend":  # an async context manager: `async with`, not `await`
            assert inspect.iscoroutinefunction(getattr(AsyncStabilityUser, name))
    sync_init = inspect.signature(StabilityUser.__init__).parameters
    async_init = inspect.signature(AsyncStabilityUser.__init__).parameters
    # The async client alone chooses an HTTP backend (aiohttp is async only).
    assert [*sync_init, "http_backend"] == list(async_init)
    assert list(sync_init) == [
        "self",
        "api_key",
        "organization",
        "base_url",
        "timeout",
        "max_retries",
        "allow_insecure_http",
        "api_version",
        "client_id",
        "client_version",
        "rate_limit",
        "proxy",
        "transport",
        "history",
    ]


def test_module_functions_mirror_the_client() -> None:
    for name in ("get_account", "get_balance", "get_balances", "require_credits", "track_spend"):
        function = inspect.signature(getattr(stability_user, name)).parameters
        method = dict(inspect.signature(getattr(StabilityUser, name)).parameters)
        method.pop("self")
        assert list(function) == list(method), name


def test_one_version_everywhere() -> None:
    from importlib.metadata import version

    import httpx2

    installed = version("stability-user")
    assert installed == stability_user.__version__
    seen: list[httpx2.Request] = []

    def capture(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"credits": 1})

    StabilityUser("k", transport=httpx2.MockTransport(capture)).get_balance()
    assert seen[0].headers["User-Agent"] == f"stability-user/{installed}"
    result = subprocess.run(
        [sys.executable, "-m", "stability_user", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout == f"stability-user {installed}\n"
