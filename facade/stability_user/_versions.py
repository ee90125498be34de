"""What differs between API versions, in one table consulted in one place (``ClientCore``).

Stability serves the account and credits operations under ``/v1/user/`` today; the
developer-preview ``/v1alpha/user/`` paths were announced as retired on May 1st, 2023. The two
differ in path (the generated operation modules), in how the key is written in
``Authorization``, and in what a failure on them probably means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stability_user_client.api.v1alphauser import get_account_v1_alpha as _v1alpha_account
from stability_user_client.api.v1alphauser import get_balance_v1_alpha as _v1alpha_balance
from stability_user_client.api.v1user import get_account as _v1_account
from stability_user_client.api.v1user import get_balance as _v1_balance

from ._exceptions import ConfigurationError

__all__ = ["API_VERSIONS", "DEFAULT_API_VERSION", "APIVersion", "check_api_version"]


@dataclass(frozen=True, slots=True)
class APIVersion:
    """One generation of the user API.

    Attributes:
        name: ``"v1"`` or ``"v1alpha"``, as ``api_version=`` takes it.
        account_request: The generated account operation's request arguments.
        balance_request: The generated balance operation's, given an organization (or none).
        authorization_prefix: Written before the key in ``Authorization``: ``"Bearer "`` on
            v1 (its samples' form), nothing on v1alpha (the key verbatim, its samples' form).
        retired_notice: Appended to a 404, or a 401 about a missing header, on these paths;
            ``None`` for a version in service.
    """

    name: str
    account_request: Callable[[], dict[str, Any]]
    balance_request: Callable[[str | None], dict[str, Any]]
    authorization_prefix: str
    retired_notice: str | None


def _v1_balance_request(organization: str | None) -> dict[str, Any]:
    if organization is None:
        return _v1_balance._get_kwargs()
    return _v1_balance._get_kwargs(organization=organization)


def _v1alpha_balance_request(organization: str | None) -> dict[str, Any]:
    if organization is None:
        return _v1alpha_balance._get_kwargs()
    return _v1alpha_balance._get_kwargs(organization=organization)


DEFAULT_API_VERSION = "v1"

API_VERSIONS: dict[str, APIVersion] = {
    "v1": APIVersion(
        name="v1",
        account_request=_v1_account._get_kwargs,
        balance_request=_v1_balance_request,
        authorization_prefix="Bearer ",
        retired_notice=None,
    ),
    "v1alpha": APIVersion(
        name="v1alpha",
        account_request=_v1alpha_account._get_kwargs,
        balance_request=_v1alpha_balance_request,
        authorization_prefix="",
        retired_notice=(
            "Stability retired the v1alpha endpoints on May 1st, 2023; "
            'api_version="v1" (the default) calls the endpoints served today.'
        ),
    ),
}


def check_api_version(value: object) -> APIVersion:
    """The table entry for ``value``; a ``ConfigurationError`` naming the accepted ones else."""
    version = API_VERSIONS.get(value.strip().lower()) if isinstance(value, str) else None
    if version is None:
        accepted = ", ".join(repr(name) for name in API_VERSIONS)
        raise ConfigurationError(f"api_version must be one of {accepted}, not {value!r}.")
    return version
