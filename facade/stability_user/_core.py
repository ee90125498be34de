"""What the sync and async clients share: settings, pools, request building, result pairing.

Everything but I/O lives here and in the ``_flow`` it builds: the request's shape comes from
the generated client (through the API-version table), retries, error mapping and parsing from
the flow, the pools per process and event loop from ``_pool``, the rate limiter from
``_ratelimit``. The concrete clients (``_client.StabilityUser``,
``_async_client.AsyncStabilityUser``) only send, read, sleep and close.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import httpx2

from ._constants import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT
from ._exceptions import ClientClosedError, ConfigurationError, StabilityError
from ._http._backends import check_backend_proxy, pool_options, resolve_http_backend
from ._http._error_mapping import MAX_BODY_BYTES, body_too_large_error
from ._http._flow import Flow, call
from ._http._parsing import parse_account, parse_balance
from ._logging import configure_from_env
from ._values import TimeoutTypes, check_organization, check_transport, to_httpx2_timeout
from ._version import __version__

if TYPE_CHECKING:
    from ._http._pool import PoolKeeper
    from ._http._ratelimit import RateLimit, RateLimiter
    from ._job import JobPlan
    from ._models import Account, Balance, Organization, OrganizationBalance
    from .history._recorder import HistoryRecorder, JobRecorder

__all__ = [
    "DEFAULT_HTTPX2_TIMEOUT",
    "FAN_OUT_MIN_LATENCY",
    "MAX_CONCURRENT_BALANCES",
    "BodyReader",
    "ClientCore",
    "body_fits",
    "fan_out",
    "settled",
]

_Result = TypeVar("_Result")
_Pool = TypeVar("_Pool")

DEFAULT_HTTPX2_TIMEOUT = httpx2.Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
_USER_AGENT = f"stability-user/{__version__}"

# get_balances(): enough requests in flight to overlap round trips, few enough to stay polite
# to the API (and within one pool's keep-alive connections). The same for both clients.
MAX_CONCURRENT_BALANCES = 8
# Distinct requests (one per organization asked for) a client keeps built for reuse.
_MAX_CACHED_REQUESTS = 256
# Below this round trip (seconds, measured on the account call that get_balances() makes
# anyway) there is no latency to hide, and handing work to threads costs more than it saves.
FAN_OUT_MIN_LATENCY = 0.002


class ClientCore:
    """Configuration, pools and request building shared by both clients; performs no I/O."""

    # The httpx2 base class a ``transport`` must be an instance of (set by each client).
    _TRANSPORT_TYPE: ClassVar[type[object]]

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
        rate_limit: object,
        proxy: str | None,
        transport: object,
        http_backend: str | None,
        history: bool = False,
    ) -> None:
        # Loaded by the first client, not by `from stability_user import StabilityUser`: the
        # settings' dataclasses and tables cost milliseconds of every program's start-up.
        from ._config import resolve_settings
        from ._http._ratelimit import RateLimiter

        configure_from_env()
        self._http_backend = resolve_http_backend(
            http_backend, transport=transport, environ=os.environ
        )
        check_backend_proxy(self._http_backend, proxy)
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
            rate_limit=rate_limit,
            proxy=proxy,
        )
        check_transport(transport, self._TRANSPORT_TYPE)
        self._transport = transport

        limit = self._settings.rate_limit
        self._limiter = RateLimiter(limit) if limit is not None else None
        self._requests: dict[tuple[str, str | None], httpx2.Request] = {}
        self._closed = False
        if not isinstance(history, bool):
            raise ConfigurationError(f"history must be True or False, not {history!r}.")
        # Loaded only when asked for: sqlite3 and the store cost every other program nothing.
        self._history: HistoryRecorder | None = None
        if history:
            from .history._recorder import recorder_for

            self._history = recorder_for(self.base_url, self._settings.api_key)

    def _share_rate_limiter(self, limiter: RateLimiter | None) -> None:
        """Send under ``limiter``, which other clients share (the exporter's targets on one
        API host: whether Stability limits per key or per address is not documented, and its
        60 s lockout would blind every target), or under none."""
        self._limiter = limiter

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
        return {
            "base_url": settings.base_url,
            "headers": headers,
            "timeout": settings.timeout,
            **pool_options(self._http_backend, settings, self._transport),
        }

    def _checked_pool(self, keeper: PoolKeeper[_Pool], loop: object | None = None) -> _Pool:
        """The pool a call may use now; ``ClientClosedError`` once the client is closed."""
        if self._closed:
            raise ClientClosedError(f"{type(self).__name__} is closed; nothing was sent.")
        return keeper.get(loop)

    def _closed_error(self, cause: BaseException) -> ClientClosedError:
        return ClientClosedError(
            f"{type(self).__name__} was closed while the call was in progress ({cause})."
        )

    @property
    def is_closed(self) -> bool:
        """Whether ``close()`` (or ``aclose()``) was called."""
        return self._closed

    @property
    def http_backend(self) -> str:
        """``"httpx2"`` (the default, and always for the sync client) or ``"aiohttp"``."""
        return self._http_backend

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._settings.base_url

    @property
    def api_version(self) -> str:
        """``"v1"`` (the default) or ``"v1alpha"``."""
        return self._settings.api_version.name

    @property
    def organization(self) -> str | None:
        """The organization ``get_balance()`` uses when given none (``None``: the default)."""
        return self._settings.organization

    @property
    def max_retries(self) -> int:
        """How many times a failed attempt is retried."""
        return self._settings.max_retries

    @property
    def timeout(self) -> httpx2.Timeout:
        """The client's default timeout."""
        return self._settings.timeout

    @property
    def rate_limit(self) -> RateLimit | None:
        """The client-side ``RateLimit`` in force, or ``None`` when requests are not limited."""
        return self._settings.rate_limit

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"api_version={self.api_version!r}, organization={self.organization!r}, "
            f"max_retries={self.max_retries})"
        )

    def _call(
        self,
        http: httpx2.Client | httpx2.AsyncClient,
        key: tuple[str, str | None],
        kwargs: Callable[[], dict[str, Any]],
        parse: Callable[[httpx2.Response], _Result],
        timeout: TimeoutTypes | None,
    ) -> Flow[_Result]:
        if timeout is None:
            request = self._default_request(http, key, kwargs)
        else:
            request = http.build_request(**kwargs(), timeout=to_httpx2_timeout(timeout))
        settings = self._settings
        return call(
            request,
            parse,
            max_retries=settings.max_retries,
            secret=settings.api_key,
            notice=settings.api_version.retired_notice,
            limiter=self._limiter,
        )

    def _default_request(
        self,
        http: httpx2.Client | httpx2.AsyncClient,
        key: tuple[str, str | None],
        kwargs: Callable[[], dict[str, Any]],
    ) -> httpx2.Request:
        """The request for ``key`` (operation, organization), with the client's timeout,
        built from ``kwargs()`` once and reused.

        A GET without a body reads the same every time; building it (the operation's arguments,
        URL merging, headers) costs more than the rest of a call's own work. Every pool of a
        client builds the same request, so one cache serves them all; its size is bounded by the
        organizations asked for, and it starts over past ``_MAX_CACHED_REQUESTS``.
        """
        request = self._requests.get(key)
        if request is None:
            request = http.build_request(**kwargs())
            if len(self._requests) >= _MAX_CACHED_REQUESTS:
                self._requests.clear()
            self._requests[key] = request
        return request

    def _scope(self, organization: str | None) -> str | None:
        """The organization a balance call is for: the one given, else the client's default."""
        return self._settings.organization if organization is None else organization

    def _spend_scope(self, organization: str | None, all_organizations: bool) -> str | None:
        """``track_spend()``'s organization, checked before anything is read."""
        from ._job import check_scope

        check_scope(organization, all_organizations)
        return None if all_organizations else self._scope(organization)

    def _job(self, plan: JobPlan, *, record: bool) -> JobRecorder | None:
        """The ledger's recorder of a job planned so (``record``: whether it is to be
        recorded, unless ``STABILITY_HISTORY`` turns the history off), writing through this
        client's history recorder when it has one; ``None`` when it is not recorded."""
        from .history._recorder import job_recorder

        return job_recorder(
            self.base_url, self._settings.api_key, plan, self._history, record=record
        )

    def _account_flow(
        self, http: httpx2.Client | httpx2.AsyncClient, timeout: TimeoutTypes | None
    ) -> Flow[Account]:
        version = self._settings.api_version
        return self._call(http, ("account", None), version.account_request, parse_account, timeout)

    def _balance_flow(
        self,
        http: httpx2.Client | httpx2.AsyncClient,
        organization: str | None,
        timeout: TimeoutTypes | None,
    ) -> Flow[Balance]:
        org = (
            self._settings.organization
            if organization is None
            else check_organization(organization)
        )
        version = self._settings.api_version
        return self._call(
            http, ("balance", org), partial(version.balance_request, org), parse_balance, timeout
        )


def fan_out(organizations: Sequence[Organization], account_seconds: float) -> bool:
    """Whether ``get_balances()`` should fetch these balances concurrently.

    Only when there is more than one and the account's round trip shows latency worth hiding.
    """
    return len(organizations) > 1 and account_seconds >= FAN_OUT_MIN_LATENCY


def settled(organization: Organization, balance: Balance | StabilityError) -> OrganizationBalance:
    """``organization`` paired with its balance, or with the error that kept it from us."""
    from ._models import Balance, OrganizationBalance  # loaded by the answers: see _parsing

    if isinstance(balance, Balance):
        return OrganizationBalance(organization, balance)
    return OrganizationBalance(organization, None, balance)


def already_read(response: httpx2.Response) -> bool:
    """Whether the transport handed the body up read and closed, within the cap.

    The aiohttp backend does so for the API's small answers; nothing is left to read or close.
    """
    if not response.is_closed:
        return False
    try:
        return len(response.content) <= MAX_BODY_BYTES
    except httpx2.ResponseNotRead:
        return False


def body_fits(response: httpx2.Response) -> bool:
    """Whether the body can be read whole: a declared, unencoded length within the cap.

    Anything else (no length, a compressed body that may inflate) is read in chunks through a
    ``BodyReader``. A declared length past the cap raises at once, reading nothing.
    """
    length = response.headers.get("content-length")
    if length is None or "content-encoding" in response.headers or not length.isdigit():
        return False
    if int(length) > MAX_BODY_BYTES:
        raise body_too_large_error(_buffered(response, b""), 0)
    return True


def _buffered(source: httpx2.Response, content: bytes) -> httpx2.Response:
    """A copy of ``source`` holding ``content`` (decoded) as its body, fully read."""
    skip = {b"content-encoding", b"content-length", b"transfer-encoding"}
    return httpx2.Response(
        source.status_code,
        headers=[(k, v) for k, v in source.headers.raw if k.lower() not in skip],
        content=content,
        request=source.request,
        extensions=source.extensions,
    )


class BodyReader:
    """Collects a body chunk by chunk, stopping with ``InvalidResponseError`` past the cap."""

    __slots__ = ("_chunks", "_response", "_size")

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        """Add a decoded chunk."""
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size > MAX_BODY_BYTES:
            # The error keeps what was read, up to the cap, so it can be inspected and pickled.
            kept = b"".join(self._chunks)[:MAX_BODY_BYTES]
            raise body_too_large_error(_buffered(self._response, kept), self._size)

    def response(self) -> httpx2.Response:
        """The response with its whole (decoded) body, as if it had been read normally."""
        return _buffered(self._response, b"".join(self._chunks))
