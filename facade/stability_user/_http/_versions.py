"""What differs between API versions, in one table consulted in one place (``ClientCore``).

Stability serves the account and credits operations under ``/v1/user/`` today; the
developer-preview ``/v1alpha/user/`` paths were announced as retired on May 1st, 2023. The two
differ in path (the generated operation modules), in how the key is written in
``Authorization``, and in what a failure on them probably means.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from types import ModuleType
from typing import Any

from .._cache._canonical import api_version_name
from .._exceptions import ConfigurationError

__all__ = ["API_VERSIONS", "DEFAULT_API_VERSION", "APIVersion", "check_api_version"]


@dataclass(frozen=True, slots=True)
class APIVersion:
    """One generation of the user API.

    The generated operation modules are named, not imported: they bring in attrs and the
    generated models, which ``from stability_user import StabilityUser`` need not pay for; the
    first request imports them.

    Attributes:
        name: ``"v1"`` or ``"v1alpha"``, as ``api_version=`` takes it.
        account_operation: The generated account operation's module, under
            ``stability_user_client.api``.
        balance_operation: The generated balance operation's module.
        authorization_prefix: Written before the key in ``Authorization``: ``"Bearer "`` on
            v1 (its samples' form), nothing on v1alpha (the key verbatim, its samples' form).
        retired_notice: Appended to a 404, or a 401 about a missing header, on these paths;
            ``None`` for a version in service.
    """

    name: str
    account_operation: str
    balance_operation: str
    authorization_prefix: str
    retired_notice: str | None

    def account_request(self) -> dict[str, Any]:
        """The account request's arguments, as the generated operation builds them."""
        kwargs: dict[str, Any] = _operation(self.account_operation)._get_kwargs()
        return kwargs

    def balance_request(self, organization: str | None) -> dict[str, Any]:
        """The balance request's arguments for ``organization`` (``None``: the default)."""
        build = _operation(self.balance_operation)._get_kwargs
        kwargs: dict[str, Any] = (
            build() if organization is None else build(organization=organization)
        )
        return kwargs


@cache
def _operation(name: str) -> ModuleType:
    return import_module(f"stability_user_client.api.{name}")


DEFAULT_API_VERSION = "v1"

API_VERSIONS: dict[str, APIVersion] = {
    "v1": APIVersion(
        name="v1",
        account_operation="v1user.get_account",
        balance_operation="v1user.get_balance",
        authorization_prefix="Bearer ",
        retired_notice=None,
    ),
    "v1alpha": APIVersion(
        name="v1alpha",
        account_operation="v1alphauser.get_account_v1_alpha",
        balance_operation="v1alphauser.get_balance_v1_alpha",
        authorization_prefix="",
        retired_notice=(
            "Stability retired the v1alpha endpoints on May 1st, 2023; "
            'api_version="v1" (the default) calls the endpoints served today.'
        ),
    ),
}


def check_api_version(value: object) -> APIVersion:
    """The table entry for ``value``; a ``ConfigurationError`` naming the accepted ones else."""
    version = API_VERSIONS.get(api_version_name(value)) if isinstance(value, str) else None
    if version is None:
        accepted = ", ".join(repr(name) for name in API_VERSIONS)
        raise ConfigurationError(
            f"api_version must be one of {accepted}, not {value!r}.",
            cli_message=f"--api-version (or STABILITY_API_VERSION) must be one of {accepted}, "
            f"not {value!r}.",
        )
    return version
