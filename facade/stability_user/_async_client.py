"""``AsyncStabilityUser``: the awaitable client. Only I/O is here; the rest is in ``_core``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import httpx2

from ._constants import DEFAULT_MAX_RETRIES
from ._core import (
    DEFAULT_HTTPX2_TIMEOUT,
    MAX_CONCURRENT_BALANCES,
    BodyReader,
    ClientCore,
    already_read,
    body_fits,
    fan_out,
    settled,
)
from ._exceptions import ClientClosedError, StabilityError
from ._http._attempt import begin, end
from ._http._backends import Send, sender
from ._http._flow import Flow, Wait
from ._http._pool import PoolKeeper
from ._http._retry import effective_wait
from ._values import Period, TimeoutTypes

if TYPE_CHECKING:
    from ._budget import Spend
    from ._http._ratelimit import RateLimit
    from ._models import Account, Balance, Organization, OrganizationBalance
    from .prices import Estimate

__all__ = ["AsyncStabilityUser"]

_Result = TypeVar("_Result")


class _LoopPool:
    """One event loop's ``httpx2.AsyncClient`` and how to send on it, closed when that loop
    shuts down.

    ``asyncio.run()`` (and any runner calling ``loop.shutdown_asyncgens()``) closes every async
    generator the loop has started before closing the loop: ``closer`` is one, started on first
    use, whose ``finally`` closes the pool while the loop can still run it.
    """

    __slots__ = ("armed", "balance_slots", "closer", "http", "send")

    def __init__(self, http: httpx2.AsyncClient, send: Send) -> None:
        self.http = http
        self.send = send
        self.closer = _close_at_loop_shutdown(http)
        self.armed = False
        # get_balances()'s bound, shared by every call on this client in this loop, as the
        # sync client's worker threads are.
        self.balance_slots = asyncio.Semaphore(MAX_CONCURRENT_BALANCES)

    async def arm(self) -> None:
        self.armed = True
        await anext(self.closer)

    async def aclose(self) -> None:
        if self.armed:
            await self.closer.aclose()
        await self.http.aclose()


async def _close_at_loop_shutdown(http: httpx2.AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await http.aclose()


class AsyncStabilityUser(ClientCore):
    """The awaitable twin of ``StabilityUser``: same arguments, same behaviour.

    ``transport`` takes an ``httpx2.AsyncBaseTransport``. One client works across successive
    event loops (each ``asyncio.run()`` gets its own connections) and across ``os.fork()``.
    The arguments not listed below are ``StabilityUser``'s.

    Args:
        http_backend: ``"httpx2"`` (the default) or ``"aiohttp"``, which sends through an
            aiohttp session for throughput (``pip install 'stability-user[aiohttp]'``);
            defaults to ``STABILITY_HTTP_BACKEND``, else ``"httpx2"``. Errors, retries,
            timeouts, proxies and limits behave the same on both. Not with ``transport``.
    """

    _TRANSPORT_TYPE = httpx2.AsyncBaseTransport

    def __init__(
        self,
        api_key: str | None = None,
        *,
        organization: str | None = None,
        base_url: str | None = None,
        timeout: TimeoutTypes = DEFAULT_HTTPX2_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        allow_insecure_http: bool = False,
        api_version: str | None = None,
        client_id: str | None = None,
        client_version: str | None = None,
        rate_limit: RateLimit | bool | None = None,
        proxy: str | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        history: bool = False,
        http_backend: str | None = None,
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
            rate_limit=rate_limit,
            proxy=proxy,
            transport=transport,
            http_backend=http_backend,
            history=history,
        )
        self._pools: PoolKeeper[_LoopPool] = PoolKeeper(self._new_pool)

    def _new_pool(self) -> _LoopPool:
        # Options per pool: the aiohttp backend's transport (and session) is one per pool.
        options = self._http_options()
        http = httpx2.AsyncClient(**options)
        from ._http._bounded import bound  # with the first pool, as httpx2 loads httpcore2

        bound(http, own_transport=self._transport is None)
        return _LoopPool(http, sender(self._http_backend, http, options))

    async def _pool(self) -> _LoopPool:
        pool = self._checked_pool(self._pools, asyncio.get_running_loop())
        if not pool.armed:
            await pool.arm()
        return pool

    async def _run(self, pool: _LoopPool, flow: Flow[_Result]) -> _Result:
        # The only awaiting I/O: send what the flow (built on `http`) asks for, read, sleep
        # when it says so.
        step = next(flow)
        while True:
            try:
                if isinstance(step, Wait):
                    await asyncio.sleep(effective_wait(step.seconds))
                    step = flow.send(None)
                    continue
                try:
                    response = await self._exchange(pool, step)
                except httpx2.HTTPError as exc:
                    step = flow.throw(exc)
                except RuntimeError as exc:  # httpx2: the pool was closed under this call
                    if not self._closed:
                        raise
                    raise self._closed_error(exc) from exc
                else:
                    step = flow.send(response)
            except StopIteration as done:
                result: _Result = done.value  # the flow's return value
                return result

    async def _exchange(self, pool: _LoopPool, request: httpx2.Request) -> httpx2.Response:
        """One attempt: ``request`` sent and its answer read, within the attempt's deadline."""
        attempt = begin(request)
        try:
            return await self._read(await pool.send(request))
        finally:
            end(attempt)

    @staticmethod
    async def _read(response: httpx2.Response) -> httpx2.Response:
        if already_read(response):
            return response
        try:
            if body_fits(response):
                await response.aread()
                return response
            reader = BodyReader(response)
            async for chunk in response.aiter_bytes():
                reader.feed(chunk)
            return reader.response()
        finally:
            await response.aclose()

    async def get_account(self, *, timeout: TimeoutTypes | None = None) -> Account:
        """The account behind the API key. See ``StabilityUser.get_account``."""
        account = await self._fetch_account(timeout)
        if self._history is not None:
            await asyncio.to_thread(self._history.learn_account, account)
        return account

    async def _fetch_account(self, timeout: TimeoutTypes | None) -> Account:
        pool = await self._pool()
        return await self._run(pool, self._account_flow(pool.http, timeout))

    async def get_balance(
        self, organization: str | None = None, *, timeout: TimeoutTypes | None = None
    ) -> Balance:
        """A credit balance. See ``StabilityUser.get_balance``."""
        balance = await self._fetch_balance(organization, timeout)
        if self._history is not None:
            await asyncio.to_thread(
                self._history.balance, self._scope(organization), balance.credits
            )
        return balance

    async def _fetch_balance(
        self, organization: str | None, timeout: TimeoutTypes | None
    ) -> Balance:
        pool = await self._pool()
        return await self._run(pool, self._balance_flow(pool.http, organization, timeout))

    async def require_credits(
        self,
        minimum: float | Estimate,
        organization: str | None = None,
        *,
        timeout: TimeoutTypes | None = None,
    ) -> Balance:
        """The balance, if it holds ``minimum`` credits. See ``StabilityUser.require_credits``."""
        # Loaded by the first guard, not by `from stability_user import ...`.
        from ._budget import enough_credits, requirement

        required, estimate = requirement(minimum)
        balance = await self.get_balance(organization, timeout=timeout)
        return enough_credits(balance, required, self._scope(organization), estimate)

    @asynccontextmanager
    async def track_spend(
        self,
        organization: str | None = None,
        *,
        all_organizations: bool = False,
        label: str | None = None,
        budget: float | None = None,
        per: Period = "month",
        note: str | None = None,
        expected: float | None = None,
    ) -> AsyncIterator[Spend]:
        """``async with client.track_spend() as spend:``. See ``StabilityUser.track_spend``."""
        from ._budget import begin_spend, end_spend
        from ._job import plan_job

        plan = plan_job(label=label, budget=budget, per=per, note=note, expected=expected)
        job = self._job(plan, record=plan.asks_for_the_ledger or self._history is not None)
        scope = self._spend_scope(organization, all_organizations)

        async def read() -> Balance | list[OrganizationBalance]:
            if all_organizations:
                return await self.get_balances()
            return await self.get_balance(organization)

        if job is not None:  # SQLite blocks: on a worker thread, as the history's recording
            await asyncio.to_thread(job.begin, scope)
        spend = begin_spend(scope, await read())
        raised = False
        try:
            yield spend
        except BaseException:
            raised = True
            raise
        finally:
            try:
                after = await read()
            except StabilityError as error:
                end_spend(spend, error)
            else:
                end_spend(spend, after)
            if job is not None:
                await asyncio.to_thread(job.record, spend, raised=raised)

    async def _balance_or_error(
        self, organization: Organization, timeout: TimeoutTypes | None, slots: asyncio.Semaphore
    ) -> OrganizationBalance:
        try:
            async with slots:
                balance = await self._fetch_balance(organization.id, timeout)
        except StabilityError as err:
            return settled(organization, err)
        return settled(organization, balance)

    async def get_balances(
        self, *, timeout: TimeoutTypes | None = None
    ) -> list[OrganizationBalance]:
        """Every organization's balance, at most 8 at a time. See ``StabilityUser.get_balances``."""
        results = await self._fetch_balances(timeout)
        if self._history is not None:
            await asyncio.to_thread(self._history.balances, results)
        return results

    async def _fetch_balances(self, timeout: TimeoutTypes | None) -> list[OrganizationBalance]:
        started = time.perf_counter()
        organizations = (await self._fetch_account(timeout)).organizations
        slots = self._checked_pool(self._pools, asyncio.get_running_loop()).balance_slots
        if not fan_out(organizations, time.perf_counter() - started):
            return [await self._balance_or_error(org, timeout, slots) for org in organizations]
        return list(
            await asyncio.gather(
                *(self._balance_or_error(org, timeout, slots) for org in organizations)
            )
        )

    async def aclose(self) -> None:
        """Close the connection pools; calling it again is harmless.

        The pool of the running event loop is closed; those of loops already gone are
        dropped (their connections died with them). Calls made after it raise
        ``ClientClosedError`` without sending anything.
        """
        self._closed = True
        current = self._pools.current(asyncio.get_running_loop())
        self._pools.take_all()
        if current is not None:
            await current.aclose()

    async def __aenter__(self) -> Self:
        if self._closed:
            raise ClientClosedError(f"{type(self).__name__} is closed.")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
