"""``StabilityUser``: the blocking client. Only I/O is here; the rest is in ``_core``."""

from __future__ import annotations

import time
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

__all__ = ["StabilityUser"]

_Result = TypeVar("_Result")

# get_balances(): enough threads to overlap round trips, few enough to stay polite to the API.
_MAX_BALANCE_THREADS = 8


class StabilityUser(ClientCore):
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
        api_version: ``"v1"`` (the endpoints served today, the key sent as ``Bearer <key>``)
            or ``"v1alpha"`` (the developer preview, retired by Stability in May 2023, the key
            sent verbatim); defaults to ``STABILITY_API_VERSION``, else ``"v1"``.
        client_id: Sent as ``Stability-Client-ID`` on every request; defaults to
            ``STABILITY_CLIENT_ID``, else not sent.
        client_version: Sent as ``Stability-Client-Version``; defaults to
            ``STABILITY_CLIENT_VERSION``, else not sent.
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
        timeout: TimeoutTypes = DEFAULT_HTTPX_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        allow_insecure_http: bool = False,
        api_version: str | None = None,
        client_id: str | None = None,
        client_version: str | None = None,
        transport: httpx.BaseTransport | None = None,
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
        self._http = httpx.Client(transport=transport, **self._http_options())

    def _run(self, flow: Flow[_Result]) -> _Result:
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
                result: _Result = done.value  # the flow's return value
                return result

    def get_account(self, *, timeout: TimeoutTypes | None = None) -> Account:
        """The account behind the API key.

        Args:
            timeout: Overrides the client's timeout for this call.
        """
        return self._run(self._account_flow(timeout))

    def get_balance(
        self, organization: str | None = None, *, timeout: TimeoutTypes | None = None
    ) -> Balance:
        """The credit balance of ``organization``, or of the client's default organization.

        Args:
            organization: An organization id such as ``org-123456``.
            timeout: Overrides the client's timeout for this call.
        """
        return self._run(self._balance_flow(organization, timeout))

    def _balance_or_error(
        self, organization: Organization, timeout: TimeoutTypes | None
    ) -> OrganizationBalance:
        try:
            return settled(organization, self.get_balance(organization.id, timeout=timeout))
        except StabilityError as err:
            return settled(organization, err)

    def get_balances(self, *, timeout: TimeoutTypes | None = None) -> list[OrganizationBalance]:
        """Every organization of the account with its balance, fetched concurrently.

        A failed organization carries its error in ``.error``; the others are unaffected.
        Raises only if the account itself cannot be fetched.
        """
        organizations = self.get_account(timeout=timeout).organizations
        if not organizations:
            return []
        # Imported here: only get_balances() needs threads, and importing them costs a few
        # milliseconds of every program's start-up otherwise.
        from concurrent.futures import ThreadPoolExecutor

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
