"""``StabilityUser`` and ``AsyncStabilityUser``: the same client, blocking and awaitable.

Everything but I/O lives in ``_ClientCore`` and the ``_flow`` it builds: settings, request
building (the request's shape comes from the generated client), retries, error mapping and
parsing. Each concrete client only sends requests, sleeps, and closes.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self

import httpx

from stability_user_client.api.user import get_account as _account_op
from stability_user_client.api.user import get_balance as _balance_op

from ._config import TimeoutTypes, check_organization, resolve_settings, to_httpx_timeout
from ._constants import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)
from ._exceptions import StabilityError
from ._flow import Flow, Wait, call
from ._logging import configure_from_env
from ._models import Account, Balance, Organization, OrganizationBalance
from ._parsing import parse_account, parse_balance
from ._retry import effective_wait
from ._version import __version__

__all__ = ["AsyncStabilityUser", "StabilityUser"]

_DEFAULT_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
# get_balances() in the sync client: enough threads to overlap round trips, few enough to
# stay polite to the API.
_MAX_BALANCE_THREADS = 8
_USER_AGENT = f"stability-user/{__version__}"


class _ClientCore:
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
    ) -> None:
        configure_from_env()
        self._settings = resolve_settings(
            api_key=api_key,
            organization=organization,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            allow_insecure_http=allow_insecure_http,
        )

    def _http_options(self) -> dict[str, Any]:
        settings = self._settings
        return {
            "base_url": settings.base_url,
            "headers": {
                "Authorization": settings.api_key,
                "Accept": "application/json",
                "User-Agent": _USER_AGENT,
            },
            "timeout": settings.timeout,
        }

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._settings.base_url

    @property
    def organization(self) -> str | None:
        """The organization ``get_balance()`` uses when given none (``None``: the default)."""
        return self._settings.organization

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
            f"organization={self.organization!r}, max_retries={self.max_retries})"
        )

    def _call(self, kwargs: dict[str, Any], parse: Any, timeout: TimeoutTypes | None) -> Flow[Any]:
        request = self._http.build_request(
            **kwargs,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else to_httpx_timeout(timeout),
        )
        return call(
            request, parse, max_retries=self._settings.max_retries, secret=self._settings.api_key
        )

    def _account_flow(self, timeout: TimeoutTypes | None) -> Flow[Account]:
        return self._call(_account_op._get_kwargs(), parse_account, timeout)

    def _balance_flow(
        self, organization: str | None, timeout: TimeoutTypes | None
    ) -> Flow[Balance]:
        org = (
            self._settings.organization
            if organization is None
            else check_organization(organization)
        )
        kwargs = (
            _balance_op._get_kwargs() if org is None else _balance_op._get_kwargs(organization=org)
        )
        return self._call(kwargs, parse_balance, timeout)


def _settled(organization: Organization, balance: Balance | StabilityError) -> OrganizationBalance:
    if isinstance(balance, Balance):
        return OrganizationBalance(organization, balance)
    return OrganizationBalance(organization, None, balance)


class StabilityUser(_ClientCore):
    """A blocking client for Stability AI's account and credits API.

    Args:
        api_key: The API key; defaults to ``STABILITY_API_KEY``.
        organization: Default organization for ``get_balance()``; defaults to
            ``STABILITY_ORGANIZATION``, else the account's default organization.
        base_url: Defaults to ``STABILITY_BASE_URL``, then ``API_HOST``, then
            ``https://api.stability.ai``.
        timeout: Seconds, or an ``httpx.Timeout``; a number bounds connecting by 5 seconds
            at most and each read or write by the number.
        max_retries: Retries after a retryable failure; 0 turns retries off.
        allow_insecure_http: Allow sending the key over plain ``http://`` to a host that is
            not loopback.
        transport: An ``httpx`` transport, e.g. ``stability_user.testing.StandInAPI().transport``.

    Raises:
        MissingAPIKeyError: No key anywhere.
        ConfigurationError: An argument or environment value is unusable.
    """

    _http: httpx.Client

    def __init__(
        self,
        api_key: str | None = None,
        *,
        organization: str | None = None,
        base_url: str | None = None,
        timeout: TimeoutTypes = _DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        allow_insecure_http: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key,
            organization=organization,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            allow_insecure_http=allow_insecure_http,
        )
        self._http = httpx.Client(transport=transport, **self._http_options())

    def _run(self, flow: Flow[Any]) -> Any:
        # The only blocking I/O: send what the flow asks for, sleep when it says so.
        step = next(flow)
        while True:
            try:
                if isinstance(step, Wait):
                    time.sleep(effective_wait(step.seconds))
                    step = flow.send(None)
                    continue
                try:
                    response = self._http.send(step)
                except httpx.HTTPError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(response)
            except StopIteration as done:
                return done.value

    def get_account(self, *, timeout: TimeoutTypes | None = None) -> Account:
        """The account behind the API key.

        Args:
            timeout: Overrides the client's timeout for this call.
        """
        account: Account = self._run(self._account_flow(timeout))
        return account

    def get_balance(
        self, organization: str | None = None, *, timeout: TimeoutTypes | None = None
    ) -> Balance:
        """The credit balance of ``organization``, or of the client's default organization.

        Args:
            organization: An organization id such as ``org-123456``.
            timeout: Overrides the client's timeout for this call.
        """
        balance: Balance = self._run(self._balance_flow(organization, timeout))
        return balance

    def _balance_or_error(
        self, organization: Organization, timeout: TimeoutTypes | None
    ) -> OrganizationBalance:
        try:
            return _settled(organization, self.get_balance(organization.id, timeout=timeout))
        except StabilityError as err:
            return _settled(organization, err)

    def get_balances(self, *, timeout: TimeoutTypes | None = None) -> list[OrganizationBalance]:
        """Every organization of the account with its balance, fetched concurrently.

        A failed organization carries its error in ``.error``; the others are unaffected.
        Raises only if the account itself cannot be fetched.
        """
        organizations = self.get_account(timeout=timeout).organizations
        if not organizations:
            return []
        workers = min(len(organizations), _MAX_BALANCE_THREADS)
        with ThreadPoolExecutor(workers, thread_name_prefix="stability-user") as pool:
            return list(pool.map(lambda org: self._balance_or_error(org, timeout), organizations))

    def close(self) -> None:
        """Close the connection pool; calling it again is harmless."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncStabilityUser(_ClientCore):
    """The awaitable twin of ``StabilityUser``: same arguments, same behaviour.

    ``transport`` takes an ``httpx.AsyncBaseTransport``.
    """

    _http: httpx.AsyncClient

    def __init__(
        self,
        api_key: str | None = None,
        *,
        organization: str | None = None,
        base_url: str | None = None,
        timeout: TimeoutTypes = _DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        allow_insecure_http: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key,
            organization=organization,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            allow_insecure_http=allow_insecure_http,
        )
        self._http = httpx.AsyncClient(transport=transport, **self._http_options())

    async def _run(self, flow: Flow[Any]) -> Any:
        # The only awaiting I/O: send what the flow asks for, sleep when it says so.
        step = next(flow)
        while True:
            try:
                if isinstance(step, Wait):
                    await asyncio.sleep(effective_wait(step.seconds))
                    step = flow.send(None)
                    continue
                try:
                    response = await self._http.send(step)
                except httpx.HTTPError as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(response)
            except StopIteration as done:
                return done.value

    async def get_account(self, *, timeout: TimeoutTypes | None = None) -> Account:
        """The account behind the API key. See ``StabilityUser.get_account``."""
        account: Account = await self._run(self._account_flow(timeout))
        return account

    async def get_balance(
        self, organization: str | None = None, *, timeout: TimeoutTypes | None = None
    ) -> Balance:
        """A credit balance. See ``StabilityUser.get_balance``."""
        balance: Balance = await self._run(self._balance_flow(organization, timeout))
        return balance

    async def _balance_or_error(
        self, organization: Organization, timeout: TimeoutTypes | None
    ) -> OrganizationBalance:
        try:
            return _settled(organization, await self.get_balance(organization.id, timeout=timeout))
        except StabilityError as err:
            return _settled(organization, err)

    async def get_balances(
        self, *, timeout: TimeoutTypes | None = None
    ) -> list[OrganizationBalance]:
        """Every organization's balance, concurrently. See ``StabilityUser.get_balances``."""
        organizations = (await self.get_account(timeout=timeout)).organizations
        return list(
            await asyncio.gather(*(self._balance_or_error(org, timeout) for org in organizations))
        )

    async def aclose(self) -> None:
        """Close the connection pool; calling it again is harmless."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
