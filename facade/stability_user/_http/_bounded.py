"""httpx2's connection pools with every wait cut to the attempt's deadline (``_attempt``).

Loaded with a client's first pool, not with the client: httpx2 loads httpcore2 only then, and
a program that makes no request pays for neither.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
import httpx2

from ._attempt import expired, left

__all__ = ["bound"]


def _cut(timeout: float | None, error: type[Exception]) -> float | None:
    """``left(timeout)``, its expiry raised as ``error``."""
    try:
        return left(timeout)
    except TimeoutError as late:
        raise error(str(late)) from None


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
