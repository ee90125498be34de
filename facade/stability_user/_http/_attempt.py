"""Each attempt's total deadline: the connect and read timeouts together, however the answer's
bytes trickle in.

httpx2's timeouts (and the aiohttp backend's, which keep httpx2's meaning) bound each wait for
bytes; an answer dripped a byte a second within them never ends. So every attempt also has a
deadline: ``begin()`` sets it in a context variable for the attempt (both clients' drivers call
it around sending and reading), and every wait on the wire is cut to what it leaves. That is
one rule for all four ways a request goes out:

- httpx2, sync and async: the connection pool's network backend is wrapped (``bound()``), so
  that each connect, TLS handshake, read and write waits at most what the attempt has left;
- aiohttp: the transport (``_aiohttp``) cuts its waits the same way with ``left()``.

Past the deadline a wait raises the transport's timeout (a ``ReadTimeout`` for httpx2), which
the retry policy treats as any timeout. A request without a read timeout has no deadline.
"""

from __future__ import annotations

import contextvars
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2

__all__ = ["Deadline", "begin", "bound", "current", "end", "expired", "left"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """When the current attempt must be over (``time.monotonic()``), and its length."""

    at: float
    seconds: float

    @property
    def message(self) -> str:
        return (
            f"the answer had not come whole within {self.seconds:g} s (the connect and read "
            "timeouts together)"
        )


_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "stability_user_attempt_deadline", default=None
)


def begin(request: httpx2.Request) -> contextvars.Token[Deadline | None] | None:
    """Start ``request``'s attempt clock; ``end()`` the token when the answer is read."""
    timeouts = request.extensions.get("timeout") or {}
    read = timeouts.get("read")
    if read is None:
        return None
    seconds = read + (timeouts.get("connect") or 0.0)
    return _CURRENT.set(Deadline(time.monotonic() + seconds, seconds))


def end(token: contextvars.Token[Deadline | None] | None) -> None:
    if token is not None:
        _CURRENT.reset(token)


def current() -> Deadline | None:
    """The deadline of the attempt under way in this thread or task, if any."""
    return _CURRENT.get()


def left(timeout: float | None) -> float | None:
    """``timeout`` cut to what the current attempt has left.

    Raises:
        TimeoutError: The attempt's deadline has passed (its message says so).
    """
    deadline = _CURRENT.get()
    if deadline is None:
        return timeout
    remaining = deadline.at - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(deadline.message)
    return remaining if timeout is None or remaining < timeout else timeout


def _cut(timeout: float | None, error: type[Exception]) -> float | None:
    try:
        return left(timeout)
    except TimeoutError as expired:
        raise error(str(expired)) from None


def expired(error: type[Exception]) -> Exception | None:
    """``error`` saying the deadline passed, for a wait that timed out at it; else ``None``."""
    deadline = _CURRENT.get()
    if deadline is not None and time.monotonic() >= deadline.at:
        return error(deadline.message)
    return None


class _Stream(httpcore2.NetworkStream):
    """A connection whose every wait is cut to the attempt's deadline."""

    def __init__(self, stream: httpcore2.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._stream.read(max_bytes, _cut(timeout, httpcore2.ReadTimeout))
        except httpcore2.ReadTimeout:
            late = expired(httpcore2.ReadTimeout)
            if late is None:
                raise
            raise late from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _cut(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        cut = _cut(timeout, httpcore2.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, cut))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncStream(httpcore2.AsyncNetworkStream):
    """The async twin of ``_Stream``."""

    def __init__(self, stream: httpcore2.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return await self._stream.read(max_bytes, _cut(timeout, httpcore2.ReadTimeout))
        except httpcore2.ReadTimeout:
            late = expired(httpcore2.ReadTimeout)
            if late is None:
                raise
            raise late from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _cut(timeout, httpcore2.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        cut = _cut(timeout, httpcore2.ConnectTimeout)
        return _AsyncStream(await self._stream.start_tls(ssl_context, server_hostname, cut))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore2.NetworkBackend):
    """A backend whose connections cut their waits (the SDK's pools dial TCP only: a unix
    socket is httpx2's ``uds=``, which they never set)."""

    def __init__(self, backend: httpcore2.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        cut = _cut(timeout, httpcore2.ConnectTimeout)
        return _Stream(self._backend.connect_tcp(host, port, cut, local_address, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncBackend(httpcore2.AsyncNetworkBackend):
    """The async twin of ``_Backend``."""

    def __init__(self, backend: httpcore2.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        cut = _cut(timeout, httpcore2.ConnectTimeout)
        stream = await self._backend.connect_tcp(host, port, cut, local_address, socket_options)
        return _AsyncStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def bound(http: httpx2.Client | httpx2.AsyncClient, *, own_transport: bool) -> None:
    """Cut every wait of ``http``'s connection pools to the attempt's deadline: its own
    transport's (unless the caller gave one: ``own_transport``) and its proxies'.

    httpx2 takes no network backend, so the wrapper goes where its transports keep theirs:
    ``_transport`` and ``_mounts`` (the proxies from the environment) of the client, ``_pool``
    of each ``HTTPTransport``, ``_network_backend`` of each httpcore2 pool. Private names of
    the pinned httpx2 and httpcore2, which ``test_faults`` (an answer dripped a byte at a
    time, on every path) would fail on were they to move; a transport of another kind (the
    aiohttp backend's, the stand-in's) is left alone.
    """
    transports = [*([http._transport] if own_transport else []), *http._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore2.NetworkBackend) and not isinstance(backend, _Backend):
            pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
        elif isinstance(backend, httpcore2.AsyncNetworkBackend) and not isinstance(
            backend, _AsyncBackend
        ):
            pool._network_backend = _AsyncBackend(backend)  # type: ignore[union-attr]
