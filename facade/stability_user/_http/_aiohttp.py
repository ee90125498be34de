"""An ``httpx2.AsyncBaseTransport`` over an ``aiohttp.ClientSession``: the ``aiohttp`` backend.

``AsyncStabilityUser(http_backend="aiohttp")`` sends through this; everything above the
transport (the request's shape, retries, rate limit, bounded fan-out, body cap, error mapping)
is the same code as on httpx2. What a transport owes httpx2 is kept here:

- timeouts: httpx2's ``pool`` bounds the wait for one of ``max_connections`` places, ``connect``
  the TCP and TLS set-up (aiohttp's ``sock_connect``), ``read`` the wait for the answer's
  headers from the moment the connection is there, and then each wait for body bytes; a GET
  writes no body, so ``write`` has nothing to bound. Each of these waits is also cut to what
  the attempt's deadline leaves (``_attempt``: the connect and read timeouts together), so an
  answer dripped a byte at a time ends as it does on httpx2. The read bound is the SDK's own
  (``_deadlines``), not aiohttp's ``sock_read``: that one sets and cancels two loop timers per
  request (measured at about 6% of a warm call on loopback) and stops after an interim (1xx)
  answer, where this one holds until the final answer. The headers' wait is bounded as a
  whole rather than per packet (an answer's headers come in one);
- the body goes up undecoded (``auto_decompress=False``): httpx2 decodes it by its
  ``Content-Encoding`` as it does its own transports' bodies, so ``Accept-Encoding``,
  decompression and the body cap behave alike;
- redirects are not followed, cookies are not kept, nothing is resent behind the SDK's back;
- proxies: the one given, or from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``,
  ``ALL_PROXY``, ``NO_PROXY``, upper or lower case) when ``trust_env``; SOCKS is httpx2's only;
- every aiohttp failure becomes the httpx2 exception its httpx2 twin would raise, with the
  aiohttp one as ``__cause__``.

The session is made on first use, inside the event loop that uses it: the clients keep one
transport per process and loop (``_pool``), so one session per process and loop follows.
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import urllib.request
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx2
from aiohttp import hdrs
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from multidict import CIMultiDict
from yarl import URL

from ._attempt import current, expired, left
from ._deadlines import HeadersWait, ReadDeadlines

__all__ = ["AiohttpTransport", "map_aiohttp_error"]

# A body of declared length up to this is read at once; a longer one, or one of unknown length
# or encoded, is streamed to httpx2 (which decodes it and keeps the SDK's cap).
_SMALL_BODY_BYTES = 64 * 1024
_HTTP_VERSIONS: dict[aiohttp.HttpVersion | None, bytes] = {
    aiohttp.HttpVersion11: b"HTTP/1.1",
    aiohttp.HttpVersion10: b"HTTP/1.0",
}
# Seconds an idle keep-alive connection is kept, as httpx2's pool does.
_KEEPALIVE_EXPIRY = 5.0

# aiohttp's exceptions, most specific first, and the httpx2 exception each one means.
_ERROR_MAP: tuple[tuple[type[BaseException], type[httpx2.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx2.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx2.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx2.ReadTimeout),
    (aiohttp.ClientProxyConnectionError, httpx2.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx2.ProxyError),
    (aiohttp.ClientConnectorError, httpx2.ConnectError),  # refused, DNS, TLS, certificate
    (aiohttp.ServerFingerprintMismatch, httpx2.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx2.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx2.RemoteProtocolError),  # a truncated or garbled body
    (aiohttp.ClientResponseError, httpx2.RemoteProtocolError),  # an unparsable answer
    (aiohttp.InvalidURL, httpx2.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx2.UnsupportedProtocol),
    (aiohttp.ClientConnectionResetError, httpx2.ReadError),
    (aiohttp.ClientOSError, httpx2.ReadError),
    (aiohttp.ClientConnectionError, httpx2.NetworkError),
    (aiohttp.ClientError, httpx2.NetworkError),
    (asyncio.TimeoutError, httpx2.ReadTimeout),
    (OSError, httpx2.NetworkError),
)
_LOWER_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def map_aiohttp_error(error: BaseException, request: httpx2.Request) -> httpx2.TransportError:
    """The httpx2 exception for an aiohttp (or socket) ``error`` raised while sending."""
    for lower, mapped in _ERROR_MAP:
        if isinstance(error, lower):
            return mapped(str(error) or type(error).__name__, request=request)
    raise TypeError(f"not an aiohttp failure: {error!r}")  # a bug: only _LOWER_ERRORS reach here


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One request in aiohttp's terms."""

    url: URL
    headers: CIMultiDict[str]
    proxy: str | None
    pool: float | None
    timeout: aiohttp.ClientTimeout
    read: float | None


# The headers' wait of the request the current task is sending, for the connector to arm.
_SENDING: contextvars.ContextVar[HeadersWait | None] = contextvars.ContextVar(
    "stability_user_aiohttp_sending", default=None
)


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, starting a request's read clock once it has its connection."""

    def __init__(self, *, deadlines: ReadDeadlines, **options: Any) -> None:
        super().__init__(**options)
        self._deadlines = deadlines

    async def connect(
        self, req: aiohttp.ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        wait = _SENDING.get()
        if wait is not None:
            wait.cut_to(current())
            self._deadlines.arm(wait)
        return connection


async def _body_chunks(content: aiohttp.StreamReader, read: float | None) -> AsyncIterator[bytes]:
    """A body's bytes as they come, each wait for more bounded by ``read`` (httpx2's read
    timeout) and the attempt's deadline; what has come already is taken without waiting, and
    without a timer."""
    while True:
        chunk = content.read_nowait()
        if not chunk:
            if content.at_eof():
                return
            try:
                async with asyncio.timeout(left(read)):
                    chunk = await content.readany()
            except TimeoutError:
                late = expired(TimeoutError)
                if late is None:
                    raise
                raise late from None
            if not chunk:
                return
        yield chunk


class _Body(httpx2.AsyncByteStream):
    """An aiohttp response's body as httpx2 reads one; closing it frees the pool place."""

    __slots__ = ("_read", "_release", "_request", "_response")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        request: httpx2.Request,
        release: asyncio.Semaphore,
        read: float | None,
    ) -> None:
        self._response: aiohttp.ClientResponse | None = response
        self._request = request
        self._release = release
        self._read = read

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert self._response is not None, "the body was closed"
        try:
            async for chunk in _body_chunks(self._response.content, self._read):
                yield chunk
        except _LOWER_ERRORS as error:
            raise map_aiohttp_error(error, self._request) from error

    async def aclose(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.release()
            self._release.release()


def _read_response(
    request: httpx2.Request,
    status: int,
    headers: tuple[tuple[bytes, bytes], ...],
    content: bytes,
    extensions: dict[str, bytes],
) -> httpx2.Response:
    """An httpx2 response whose unencoded body has been read, as ``Response.read()`` leaves it.

    ``Response(content=...)`` would run the bytes through httpx2's decoder and chunker
    pipeline to the same end, at about four times the cost of this. ``_content`` is where every
    httpx2 release keeps a read body (``content``, ``aread()`` and ``json()`` return it);
    ``test_aiohttp_backend`` checks the result against ``Response(content=...)``.
    """
    response = httpx2.Response(
        status,
        headers=headers,
        stream=httpx2.ByteStream(content),
        request=request,
        extensions=extensions,
    )
    response._content = content
    response.is_stream_consumed = True
    response.is_closed = True
    return response


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Sends httpx2 requests with aiohttp; one instance per process and event loop."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext,
        proxy: str | None,
        trust_env: bool,
        max_connections: int,
    ) -> None:
        self._verify = verify
        self._proxy = proxy
        # Read once, as httpx2 reads the environment's proxies when a client is made.
        self._env_proxies = urllib.request.getproxies_environment() if trust_env else {}
        self._proxy_by_url: dict[tuple[str, str], str | None] = {}
        self._max_connections = max_connections
        self._places = asyncio.Semaphore(max_connections)
        self._session: aiohttp.ClientSession | None = None
        self._deadlines: ReadDeadlines | None = None
        self._closed = False
        # What aiohttp needs of a request, made once per request object: the clients reuse
        # their requests (``ClientCore._default_request``) and retries resend them.
        self._prepared: weakref.WeakKeyDictionary[httpx2.Request, _Prepared] = (
            weakref.WeakKeyDictionary()
        )

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the transport is closed")  # as httpx2's pool says it
        session = self._session
        if session is None:
            self._deadlines = ReadDeadlines(asyncio.get_running_loop())
            connector = _Connector(
                deadlines=self._deadlines,
                limit=self._max_connections,
                limit_per_host=0,
                ssl=self._verify,
                keepalive_timeout=_KEEPALIVE_EXPIRY,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # proxies are chosen here, with httpx2's rules
                timeout=aiohttp.ClientTimeout(total=None),
            )
            # aiohttp resends an idempotent request once when a kept-alive connection breaks;
            # httpx2 does not, and retries are the SDK's to decide and count (the rate limit).
            # A private switch (aiohttp 3.11 and later; its own test_utils turns it off too).
            session._retry_connection = False
        return session

    def _proxy_for(self, url: httpx2.URL) -> str | None:
        if self._proxy is not None or not self._env_proxies:
            return self._proxy
        key = (url.scheme, url.host)
        if key not in self._proxy_by_url:
            proxies = self._env_proxies
            bypass = urllib.request.proxy_bypass_environment(url.host, proxies)  # type: ignore[attr-defined]
            chosen = None if bypass else proxies.get(url.scheme) or proxies.get("all")
            self._proxy_by_url[key] = chosen
        return self._proxy_by_url[key]

    def _prepare(self, request: httpx2.Request) -> _Prepared:
        prepared = self._prepared.get(request)
        if prepared is None:
            timeouts = request.extensions.get("timeout", {})
            prepared = self._prepared[request] = _Prepared(
                url=URL(str(request.url), encoded=True),
                # As written (httpx2 sends names in the case they were given).
                headers=CIMultiDict(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                ),
                proxy=self._proxy_for(request.url),
                pool=timeouts.get("pool"),
                # No sock_read: the read timeout is kept here (ReadDeadlines, _body_chunks).
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeouts.get("connect")),
                read=timeouts.get("read"),
            )
        return prepared

    async def _wait_for_place(self, pool: float | None, request: httpx2.Request) -> None:
        # All places taken: wait at most the pool timeout.
        try:
            async with asyncio.timeout(pool):
                await self._places.acquire()
        except TimeoutError as error:
            message = "no connection was free in time"
            raise httpx2.PoolTimeout(message, request=request) from error

    @staticmethod
    def _connect_within(
        timeout: aiohttp.ClientTimeout, request: httpx2.Request
    ) -> aiohttp.ClientTimeout:
        """``timeout``, its connect bound cut to what the attempt has left (a new one only
        when it is cut: the request's own is made once and reused)."""
        try:
            connect = left(timeout.sock_connect)
        except TimeoutError as late:
            raise httpx2.ConnectTimeout(str(late), request=request) from None
        if connect == timeout.sock_connect:
            return timeout
        return aiohttp.ClientTimeout(total=None, sock_connect=connect)

    async def _answer(self, request: httpx2.Request, prepared: _Prepared) -> aiohttp.ClientResponse:
        """Send ``request`` (its place taken) and wait for the answer's headers, at most the
        read timeout from when the connection is there; a failure is raised as httpx2's."""
        try:
            data = request.content  # the SDK's requests come built; a GET has none
        except httpx2.RequestNotRead:
            data = await request.aread()
        session = self._open()
        wait = None
        if prepared.read is not None:
            task = asyncio.current_task()
            assert task is not None  # handle_async_request runs in a task
            wait = HeadersWait(task, prepared.read)
        sending = _SENDING.set(wait)
        try:
            return await session.request(
                request.method,
                prepared.url,
                headers=prepared.headers,
                data=data or None,
                allow_redirects=False,
                proxy=prepared.proxy,
                timeout=self._connect_within(prepared.timeout, request),
            )
        except asyncio.CancelledError as error:
            expiry = None if wait is None else wait.end(error)
            if expiry is None:
                raise
            raise map_aiohttp_error(expiry, request) from expiry
        except _LOWER_ERRORS as error:
            raise map_aiohttp_error(error, request) from error
        finally:
            _SENDING.reset(sending)
            if wait is not None and not wait.done:
                wait.end()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send ``request``; the response is bound to it, as a client's ``send`` binds it.

        A small unencoded body comes read and closed; any other is still to be read.
        """
        prepared = self._prepare(request)
        if self._places.locked():
            try:
                pool = left(prepared.pool)
            except TimeoutError as late:
                raise httpx2.PoolTimeout(str(late), request=request) from None
            await self._wait_for_place(pool, request)
        else:
            await self._places.acquire()  # free: returns at once
        try:
            response = await self._answer(request, prepared)
        except BaseException:
            self._places.release()
            raise
        extensions = {
            "http_version": _HTTP_VERSIONS.get(response.version, b"HTTP/1.1"),
            "reason_phrase": (response.reason or "").encode("ascii", "replace"),
        }
        length = response.content_length
        if (
            length is None
            or length > _SMALL_BODY_BYTES
            or hdrs.CONTENT_ENCODING in response.headers
        ):
            return httpx2.Response(
                response.status,
                headers=response.raw_headers,
                stream=_Body(response, request, self._places, prepared.read),
                request=request,
                extensions=extensions,
            )
        # A small unencoded body of declared length, as the API's answers are: read at once
        # and handed up as read, which spares httpx2's streaming and decoding machinery (most
        # of what a call costs above aiohttp). It has mostly come with the headers.
        content = response.content
        try:
            body = content.read_nowait()
            if not content.at_eof():  # still on its way (an async generator costs ~1 us)
                rest = [chunk async for chunk in _body_chunks(content, prepared.read)]
                body = b"".join([body, *rest])
        except _LOWER_ERRORS as error:
            raise map_aiohttp_error(error, request) from error
        finally:
            response.release()
            self._places.release()
        return _read_response(request, response.status, response.raw_headers, body, extensions)

    async def aclose(self) -> None:
        """Close the session and its connections; the transport sends nothing more."""
        self._closed = True
        if self._deadlines is not None:
            self._deadlines.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
