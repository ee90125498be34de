"""``StabilityUser``: the blocking client. Only I/O is here; the rest is in ``_core``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import httpx2

from ._constants import DEFAULT_MAX_RETRIES, SIGNAL_WAKE
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
from ._http._flow import Flow, Wait
from ._http._pool import PoolKeeper
from ._http._retry import effective_wait
from ._values import Period, TimeoutTypes

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from ._budget import Spend
    from ._http._ratelimit import RateLimit
    from ._models import Account, Balance, Organization, OrganizationBalance
    from .history._recorder import JobRecorder
    from .prices import Estimate

__all__ = ["StabilityUser"]

_Result = TypeVar("_Result")


class _Cancelled(StabilityError):
    """A get_balances() worker's call, stopped because its caller was interrupted."""


class StabilityUser(ClientCore):
    """A blocking client for Stability AI's account and credits API.

    Safe to share between threads, and across ``os.fork()`` (a child process gets its own
    connections).

    Args:
        api_key: The API key; defaults to ``STABILITY_API_KEY``.
        organization: Default organization for ``get_balance()``; defaults to
            ``STABILITY_ORGANIZATION``, else the account's default organization.
        base_url: Defaults to ``STABILITY_BASE_URL``, then ``API_HOST``, then
            ``https://api.stability.ai``.
        timeout: Seconds, or an ``httpx2.Timeout``; a number bounds connecting by 5 seconds
            at most and each read or write by the number.
        max_retries: Retries after a retryable failure; 0 turns retries off.
        allow_insecure_http: Allow sending the key over plain ``http://`` to a host that is
            not loopback.
        api_version: ``"v1"`` (the endpoints served today, the key sent as ``Bearer <key>``)
            or ``"v1alpha"`` (the developer preview, retired by Stability in May 2023, the key
            sent verbatim); defaults to ``STABILITY_API_VERSION``, else ``"v1"``.
        client_id: Sent as ``Stability-Client-ID`` on every request; defaults to
            ``STABILITY_CLIENT_ID``, else not sent.
        client_version: Sent as ``Stability-Client-Version``; defaults to
            ``STABILITY_CLIENT_VERSION``, else not sent.
        rate_limit: The client-side limit on requests started, shared by all of this client's
            threads: ``None`` (default) applies Stability's 150 per 10 seconds to
            ``https://api.stability.ai`` and none elsewhere; ``True`` applies it anywhere;
            ``False`` turns it off; or a ``RateLimit(requests, per_seconds)``.
        proxy: A proxy URL for every request. Without one, ``HTTP_PROXY``/``HTTPS_PROXY``/
            ``ALL_PROXY`` (and ``NO_PROXY``) are honoured, except for a loopback base URL.
            Certificates are verified against the operating system's trust store, or against
            what ``SSL_CERT_FILE`` (a PEM bundle) or ``SSL_CERT_DIR`` names, for every host.
        transport: An ``httpx2.BaseTransport``, e.g.
            ``stability_user.testing.StandInAPI().transport``.
        history: Record every balance read in the local history (``stability_user.history``):
            off by default, for a library never writes to a user's home unasked;
            ``STABILITY_HISTORY=off`` turns it off whatever this says. A recording that fails
            is skipped with a warning on the ``stability_user.history`` logger.

    Raises:
        MissingAPIKeyError: No key anywhere.
        ConfigurationError: An argument or environment value is unusable.
    """

    _TRANSPORT_TYPE = httpx2.BaseTransport

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
        transport: httpx2.BaseTransport | None = None,
        history: bool = False,
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
            http_backend="httpx2",  # aiohttp is async only
            history=history,
        )
        options = self._http_options()  # here: a bad setting raises before anything is sent
        self._pools: PoolKeeper[httpx2.Client] = PoolKeeper(lambda: self._new_pool(options))
        self._executors: PoolKeeper[ThreadPoolExecutor] = PoolKeeper(self._new_executor)

    def _new_pool(self, options: dict[str, Any]) -> httpx2.Client:
        http = httpx2.Client(**options)
        from ._http._bounded import bound  # with the first pool, as httpx2 loads httpcore2

        bound(http, own_transport=self._transport is None)
        return http

    @staticmethod
    def _new_executor() -> ThreadPoolExecutor:
        # Imported here: only get_balances() needs threads, and importing them costs a few
        # milliseconds of every program's start-up otherwise.
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(MAX_CONCURRENT_BALANCES, thread_name_prefix="stability-user")

    def _run(
        self, http: httpx2.Client, flow: Flow[_Result], cancel: threading.Event | None = None
    ) -> _Result:
        # The only blocking I/O: send what the flow (built on `http`) asks for, read, sleep
        # when it says so.
        step = next(flow)
        while True:
            try:
                if isinstance(step, Wait):
                    seconds = effective_wait(step.seconds)
                    if cancel is None:
                        time.sleep(seconds)
                    elif cancel.wait(seconds):
                        raise _Cancelled("the caller was interrupted")
                    step = flow.send(None)
                    continue
                if cancel is not None and cancel.is_set():
                    raise _Cancelled("the caller was interrupted")
                try:
                    response = self._exchange(http, step)
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

    def _exchange(self, http: httpx2.Client, request: httpx2.Request) -> httpx2.Response:
        """One attempt: ``request`` sent and its answer read, within the attempt's deadline."""
        attempt = begin(request)
        try:
            return self._read(http.send(request, stream=True))
        finally:
            end(attempt)

    @staticmethod
    def _read(response: httpx2.Response) -> httpx2.Response:
        if already_read(response):
            return response
        try:
            if body_fits(response):
                response.read()
                return response
            reader = BodyReader(response)
            for chunk in response.iter_bytes():
                reader.feed(chunk)
            return reader.response()
        finally:
            response.close()

    def get_account(self, *, timeout: TimeoutTypes | None = None) -> Account:
        """The account behind the API key.

        Args:
            timeout: Overrides the client's timeout for this call.
        """
        account = self._fetch_account(timeout)
        if self._history is not None:
            self._history.learn_account(account)
        return account

    def _fetch_account(self, timeout: TimeoutTypes | None) -> Account:
        http = self._checked_pool(self._pools)
        return self._run(http, self._account_flow(http, timeout))

    def get_balance(
        self, organization: str | None = None, *, timeout: TimeoutTypes | None = None
    ) -> Balance:
        """The credit balance of ``organization``, or of the client's default organization.

        Args:
            organization: An organization id such as ``org-123456``.
            timeout: Overrides the client's timeout for this call.
        """
        http = self._checked_pool(self._pools)
        balance = self._run(http, self._balance_flow(http, organization, timeout))
        if self._history is not None:
            self._history.balance(self._scope(organization), balance.credits)
        return balance

    def require_credits(
        self,
        minimum: float | Estimate,
        organization: str | None = None,
        *,
        timeout: TimeoutTypes | None = None,
    ) -> Balance:
        """The balance of ``organization`` (or the default one), if it holds ``minimum`` credits.

        A guard to call before work that spends credits.

        Args:
            minimum: The credits the work needs: a finite number, 0 or more; or what a plan of
                calls costs, ``stability_user.prices.estimate({"ultra": 100})``.
            organization: An organization id; the client's default organization if omitted.
            timeout: Overrides the client's timeout for this call.

        Raises:
            InsufficientCreditsError: The balance is below ``minimum`` (the estimate's plan
                named, when one was given).
            ConfigurationError: ``minimum`` is negative or not finite; nothing is sent.
        """
        # Loaded by the first guard, not by `from stability_user import ...`.
        from ._budget import enough_credits, requirement

        required, estimate = requirement(minimum)
        balance = self.get_balance(organization, timeout=timeout)
        return enough_credits(balance, required, self._scope(organization), estimate)

    @contextmanager
    def track_spend(
        self,
        organization: str | None = None,
        *,
        all_organizations: bool = False,
        label: str | None = None,
        budget: float | None = None,
        per: Period = "month",
        note: str | None = None,
        expected: float | None = None,
    ) -> Iterator[Spend]:
        """Measure what a block spends: ``with client.track_spend() as spend: ...``.

        The balance is read on entry (a failure raises: nothing has run yet) and again on exit,
        also when the block raises. A failed read on exit never raises nor hides the block's
        own exception: ``spend.error`` holds it, a warning is logged, ``spend.credits`` stays
        ``None``. The spend is the organization's change over the block, other jobs on it
        included (see ``Spend``).

        The block is recorded as a job in the history's ledger (``stability_user.history.
        read_jobs``) when given a label, note, expected cost or budget, or when the client
        records (``history=True``); ``STABILITY_HISTORY=off`` turns that off. A recording that
        fails is a warning, never an error.

        Args:
            organization: An organization id; the client's default organization if omitted.
            all_organizations: Measure every organization (with ``get_balances()``), each in
                ``spend.organizations`` and in total.
            label: The job's label: 1 to 64 of ``A-Z a-z 0-9 _ . : / -``, e.g. ``client/acme``.
            budget: The label's budget in credits per ``per``: when what its jobs spent in the
                period so far, with ``expected``, would pass it, ``BudgetExceededError`` is
                raised and the block does not run (nothing is read). Needs ``label``.
            per: The budget's period: ``"day"``, ``"week"`` (from Monday) or ``"month"``,
                calendar, in local time.
            note: Text recorded with the job (at most 1,000 characters).
            expected: The block's expected cost in credits, when known: added to the spend so
                far by a budget, and what splits the spend of overlapping jobs.

        Raises:
            BudgetExceededError: The label's budget would be passed.
            ConfigurationError: An argument breaks its rule, or a budget with the history off;
                nothing is read.
            HistoryError: The budget cannot be checked: the store cannot be used.
        """
        from ._job import plan_job

        plan = plan_job(label=label, budget=budget, per=per, note=note, expected=expected)
        job = self._job(plan, record=plan.asks_for_the_ledger or self._history is not None)
        with self._tracking(organization, all_organizations, job) as spend:
            yield spend

    @contextmanager
    def _tracking(
        self, organization: str | None, all_organizations: bool, job: JobRecorder | None
    ) -> Iterator[Spend]:
        """``track_spend()``'s measure, with its job (``measure``'s, or none)."""
        from ._budget import begin_spend, end_spend

        scope = self._spend_scope(organization, all_organizations)

        def read() -> Balance | list[OrganizationBalance]:
            return self.get_balances() if all_organizations else self.get_balance(organization)

        if job is not None:
            job.begin(scope)
        spend = begin_spend(scope, read())
        raised = False
        try:
            yield spend
        except BaseException:
            raised = True
            raise
        finally:
            try:
                after = read()
            except StabilityError as error:
                end_spend(spend, error)
            else:
                end_spend(spend, after)
            if job is not None:
                job.record(spend, raised=raised)

    def _balance_or_error(
        self,
        organization: Organization,
        timeout: TimeoutTypes | None,
        cancel: threading.Event | None = None,
    ) -> OrganizationBalance:
        try:
            http = self._checked_pool(self._pools)
            flow = self._balance_flow(http, organization.id, timeout)
            return settled(organization, self._run(http, flow, cancel))
        except StabilityError as err:
            return settled(organization, err)

    def get_balances(self, *, timeout: TimeoutTypes | None = None) -> list[OrganizationBalance]:
        """Every organization of the account with its balance.

        Fetched concurrently (at most 8 at a time, on threads shared by all callers of this
        client) when the account's round trip shows latency to hide, else one after another.
        A failed organization carries its error in ``.error``; the others are unaffected.
        Raises only if the account itself cannot be fetched. Interrupted (Ctrl-C), it raises
        at once and no further request starts.
        """
        results = self._fetch_balances(timeout)
        if self._history is not None:
            self._history.balances(results)
        return results

    def _fetch_balances(self, timeout: TimeoutTypes | None) -> list[OrganizationBalance]:
        started = time.perf_counter()
        organizations = self._fetch_account(timeout).organizations
        if not fan_out(organizations, time.perf_counter() - started):
            return [self._balance_or_error(org, timeout) for org in organizations]
        cancel = threading.Event()
        futures: list[Future[OrganizationBalance]] = []
        try:
            executor = self._checked_pool(self._executors)
            for org in organizations:
                futures.append(executor.submit(self._balance_or_error, org, timeout, cancel))
        except RuntimeError:
            # No thread can start: close() shut the executor down meanwhile, or the interpreter
            # is exiting (a call from an atexit handler, or from a daemon thread such as a
            # collector's refresher at the end of a program): closed, or one after another.
            cancel.set()
            for future in futures:
                future.cancel()
            if self._closed:
                raise ClientClosedError(f"{type(self).__name__} is closed.") from None
            return [self._balance_or_error(org, timeout) for org in organizations]
        try:
            from concurrent.futures import wait

            # In steps, so that a Ctrl-C a worker thread took runs its handler here at once.
            pending: set[Future[OrganizationBalance]] = set(futures)
            while pending:
                pending = wait(pending, timeout=SIGNAL_WAKE).not_done
            return [future.result() for future in futures]
        except BaseException:
            # KeyboardInterrupt or the like: let it through now, and stop the workers from
            # starting anything more (a request in flight ends by itself).
            cancel.set()
            for future in futures:
                future.cancel()
            raise

    def close(self) -> None:
        """Close the connection pool; calling it again is harmless.

        Calls made after it raise ``ClientClosedError`` without sending anything.
        """
        self._closed = True
        for executor in self._executors.take_all():
            executor.shutdown(wait=False, cancel_futures=True)
        for http in self._pools.take_all():
            http.close()

    def __enter__(self) -> Self:
        if self._closed:
            raise ClientClosedError(f"{type(self).__name__} is closed.")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
