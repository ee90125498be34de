"""What the sync and async clients share: settings, request building, result pairing.

Everything but I/O lives here and in the ``_flow`` it builds: the request's shape comes from
the generated client, retries, error mapping and parsing from the flow. The concrete clients
(``_client.StabilityUser``, ``_async_client.AsyncStabilityUser``) only send, sleep and close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from ._config import TimeoutTypes, check_organization, resolve_settings, to_httpx_timeout
from ._constants import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT
from ._exceptions import StabilityError
from ._flow import Flow, call
from ._logging import configure_from_env
from ._models import Account, Balance, Organization, OrganizationBalance
from ._parsing import parse_account, parse_balance
from ._version import __version__

__all__ = ["DEFAULT_HTTPX_TIMEOUT", "ClientCore", "settled"]

_Result = TypeVar("_Result")

DEFAULT_HTTPX_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
_USER_AGENT = f"stability-user/{__version__}"


class ClientCore:
    """Configuration and request building shared by both clients; performs no I/O."""

    _http: httpx.Client | httpx.AsyncClient

    def __init__(
        self,
        api_key: str | None,
        *,
        organization: str | None,
        base_url: str | None,
        timeout: TimeoutTypes,
        max_retries: int,
        allow_insecure_http: bool,
        api_version: str | None,
        client_id: str | None,
        client_version: str | None,
    ) -> None:
        configure_from_env()
        self._settings = resolve_settings(
            api_key=api_key,
            organization=organization,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            allow_insecure_http=allow_insecure_http,
            api_version=api_version,
            client_id=client_id,
            client_version=client_version,
        )

    def _http_options(self) -> dict[str, Any]:
        settings = self._settings
        headers = {
            "Authorization": settings.authorization,
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        # The v1 document names these on balance; sent on every request, as it recommends
        # them "for organizational clarity", and only when the caller set them.
        if settings.client_id is not None:
            headers["Stability-Client-ID"] = settings.client_id
        if settings.client_version is not None:
            headers["Stability-Client-Version"] = settings.client_version
        return {"base_url": settings.base_url, "headers": headers, "timeout": settings.timeout}

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._settings.base_url

    @property
    def organization(self) -> str | None:
        """The organization ``get_balance()`` uses when given none (``None``: the default)."""
        return self._settings.organization

    @property
    def api_version(self) -> str:
        """``"v1"`` (the default) or ``"v1alpha"``."""
        return self._settings.api_version.name

    @property
    def max_retries(self) -> int:
        """How many times a failed attempt is retried."""
        return self._settings.max_retries

    @property
    def timeout(self) -> httpx.Timeout:
        """The client's default timeout."""
        return self._settings.timeout

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"api_version={self.api_version!r}, organization={self.organization!r}, "
            f"max_retries={self.max_retries})"
        )

    def _call(
        self,
        kwargs: dict[str, Any],
        parse: Callable[[httpx.Response], _Result],
        timeout: TimeoutTypes | None,
    ) -> Flow[_Result]:
        request = self._http.build_request(
            **kwargs,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else to_httpx_timeout(timeout),
        )
        settings = self._settings
        return call(
            request,
            parse,
            max_retries=settings.max_retries,
            secret=settings.api_key,
            notice=settings.api_version.retired_notice,
        )

    def _account_flow(self, timeout: TimeoutTypes | None) -> Flow[Account]:
        return self._call(self._settings.api_version.account_request(), parse_account, timeout)

    def _balance_flow(
        self, organization: str | None, timeout: TimeoutTypes | None
    ) -> Flow[Balance]:
        org = (
            self._settings.organization
            if organization is None
            else check_organization(organization)
        )
        return self._call(self._settings.api_version.balance_request(org), parse_balance, timeout)


def settled(organization: Organization, balance: Balance | StabilityError) -> OrganizationBalance:
    if isinstance(balance, Balance):
        return OrganizationBalance(organization, balance)
    return OrganizationBalance(organization, None, balance)
