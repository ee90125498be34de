"""``AsyncStabilityUser``: the awaitable client. Only I/O is here; the rest is in ``_core``."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self, TypeVar

import httpx

from ._config import TimeoutTypes
from ._constants import DEFAULT_MAX_RETRIES
from ._core import DEFAULT_HTTPX_TIMEOUT, ClientCore, settled
from ._exceptions import StabilityError
from ._flow import Flow, Wait
from ._models import Account, Balance, Organization, OrganizationBalance
from ._retry import effective_wait

__all__ = ["AsyncStabilityUser"]

_Result = TypeVar("_Result")


class AsyncStabilityUser(ClientCore):
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
        timeout: TimeoutTypes = DEFAULT_HTTPX_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        allow_insecure_http: bool = False,
        api_version: str | None = None,
        client_id: str | None = None,
        client_version: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key,
            organization=organization,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            allow_insecure_http=allow_insecure_http,
            api_version=api_version,
            client_id=client_id,
            client_version=client_version,
        )
        self._http = httpx.AsyncClient(transport=transport, **self._http_options())

    async def _run(self, flow: Flow[_Result]) -> _Result:
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
                result: _Result = done.value  # the flow's return value
                return result

    async def get_account(self, *, timeout: TimeoutTypes | None = None) -> Account:
        """The account behind the API key. See ``StabilityUser.get_account``."""
        return await self._run(self._account_flow(timeout))

    async def get_balance(
        self, organization: str | None = None, *, timeout: TimeoutTypes | None = None
    ) -> Balance:
        """A credit balance. See ``StabilityUser.get_balance``."""
        return await self._run(self._balance_flow(organization, timeout))

    async def _balance_or_error(
        self, organization: Organization, timeout: TimeoutTypes | None
    ) -> OrganizationBalance:
        try:
            return settled(organization, await self.get_balance(organization.id, timeout=timeout))
        except StabilityError as err:
            return settled(organization, err)

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
