"""What both exporters share: an HTTP server that hands each request to one ``answer()``, and
the signals their processes handle.

Both exporters (one key: ``/metrics``; many: ``/probe``, ``/-/reload``, ``/config``) are a
``Server`` subclass deciding what each path answers; the reading, writing, the limits, the
error for a port that is taken, and SIGTERM stopping the process as Ctrl-C does are here, once.

A scraper is not the only client that can reach an exporter, so the server holds its own:

- One thread (``serve_forever``) accepts connections and reads their requests without
  blocking; a request that has not arrived whole within ``Limits.request_seconds`` of its
  connection is answered 408 and closed, however its bytes trickle in. Only a request that
  has arrived gets a thread, to be answered (and written within ``Limits.answer_seconds``).
  Idle and half-sent connections cost a descriptor each, never a thread.
- Open connections are capped (``connection_limit()``: half the descriptors left after a
  reserve for the refreshes and the history). At the cap, a new connection takes the place of
  the oldest one still sending its request: a flood of idle connections cannot keep a scraper
  out. When every place is answering, or the process is out of descriptors, accepting pauses
  instead of spinning.
- Listening on loopback, it answers only a ``Host`` that names it by a loopback name (a web
  page whose name was rebound to 127.0.0.1 gets 421), as the MCP server does; on any address,
  a cross-site ``POST`` (``Sec-Fetch-Site``, ``Origin``) gets 403.

HTTP/1.0, one request per connection, as before.
"""

from __future__ import annotations

import contextlib
import errno
import io
import queue
import re
import resource
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import FrameType
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

from .._constants import (
    EXPORTER_ANSWER_TIMEOUT,
    EXPORTER_DESCRIPTOR_RESERVE,
    EXPORTER_MAX_CONNECTIONS,
    EXPORTER_REQUEST_TIMEOUT,
    SIGNAL_WAKE,
)
from .._loopback import is_loopback, loopback_authorities

__all__ = [
    "DROP_REASONS",
    "TEXT",
    "Answer",
    "Limits",
    "Request",
    "Server",
    "connection_limit",
    "handling_signals",
    "interrupt",
    "listening",
    "next_signal",
]

_S = TypeVar("_S", bound="Server")

TEXT = "text/plain; charset=utf-8"
# Why a connection was closed without an answer of its route: its request did not arrive in
# time, it gave its place to a newer connection at the cap, or its head was too large.
DROP_REASONS = ("timeout", "evicted", "too_large")
# The fewest connections the cap allows, whatever the descriptor limit.
_MIN_CONNECTIONS = 4
# A request's head, and the body the server waits for (no route reads one; a small body is
# still taken in, so that closing the connection does not reset it under the answer).
_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024
_BACKLOG = 128
# How long accepting pauses when the process is out of descriptors (EMFILE and the like).
_ACCEPT_PAUSE = 0.1
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d{1,18})[ \t]*\r?$", re.I | re.M)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def connection_limit(descriptors: int | None = None) -> int:
    """The connections a server keeps open at once under a limit of ``descriptors`` (the
    process's RLIMIT_NOFILE if ``None``): half of what ``EXPORTER_DESCRIPTOR_RESERVE`` leaves,
    from 4 to ``EXPORTER_MAX_CONNECTIONS``."""
    if descriptors is None:
        descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if descriptors == resource.RLIM_INFINITY:
        return EXPORTER_MAX_CONNECTIONS
    half = (descriptors - EXPORTER_DESCRIPTOR_RESERVE) // 2
    return max(_MIN_CONNECTIONS, min(EXPORTER_MAX_CONNECTIONS, half))


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a server gives its clients.

    Attributes:
        connections: Connections open at once (arriving and being answered).
        request_seconds: For a request to arrive whole, from its connection.
        answer_seconds: For an answer to be written.
    """

    connections: int = field(default_factory=connection_limit)
    request_seconds: float = EXPORTER_REQUEST_TIMEOUT
    answer_seconds: float = EXPORTER_ANSWER_TIMEOUT


@dataclass(frozen=True, slots=True)
class Request:
    """What a route looks at."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, line: str, **headers: str) -> Answer:
        return cls(status, (line + "\n").encode(), TEXT, headers)


def _cross_site(request: Request) -> bool:
    """Whether a browser sent this state-changing request from another site: what
    ``Sec-Fetch-Site`` says, else whether ``Origin`` names another host (a request with
    neither, from curl or a script, is not a browser's)."""
    if request.method in _SAFE_METHODS:
        return False
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc.lower() != host.lower()


class _Writer(io.BufferedIOBase):
    """The connection as ``BaseHTTPRequestHandler`` writes to it: each write sent whole."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._sock.sendall(data)
        return len(data)


class _Handler(BaseHTTPRequestHandler):
    """The standard library's request parsing (and its 400s), over a request already read."""

    server: Server  # type: ignore[assignment]

    def __init__(self, sock: socket.socket, address: object, server: Server, data: bytes) -> None:
        self._data = data
        super().__init__(sock, address, server)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = io.BytesIO(self._data)
        self.wfile = _Writer(self.request)

    def finish(self) -> None:
        """Nothing buffered: every write went out as it was made."""

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        request = Request(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {name.lower(): value for name, value in self.headers.items()},
        )
        answer = self.server.refusal(request) or self.server.answer(request)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: Prometheus scrapes every few seconds."""


@dataclass(slots=True)
class _Arriving:
    """A connection whose request is on its way."""

    sock: socket.socket
    address: object
    deadline: float
    data: bytearray = field(default_factory=bytearray)


def _head_end(data: bytearray) -> int:
    """Where a request's head ends in ``data`` (its blank line included), or -1."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return end + 4
    end = data.find(b"\n\n")  # bare line feeds, which http.client reads as well
    return end + 2 if end >= 0 else -1


def _arrived(data: bytearray) -> bool | None:
    """Whether ``data`` holds a whole request: ``None`` when its head is too large."""
    end = _head_end(data)
    if end < 0:
        return None if len(data) > _MAX_HEAD else False
    if end > _MAX_HEAD:
        return None
    length = _CONTENT_LENGTH.search(data, 0, end)
    if length is None or int(length[1]) > _MAX_BODY:
        return True  # no body, or one too large to wait for: answered, then closed
    return len(data) >= end + int(length[1])


def _canned(status: int, reason: str, line: str) -> bytes:
    body = (line + "\n").encode()
    return (
        f"HTTP/1.0 {status} {reason}\r\nContent-Type: {TEXT}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


_TOO_SLOW = _canned(408, "Request Timeout", "the request did not arrive in time")
_TOO_LARGE = _canned(431, "Request Header Fields Too Large", "the request's head is too large")


class Server:
    """An HTTP server within ``limits``; a subclass answers each request in ``answer()``.

    Bound and listening when made; ``serve_in_thread()`` starts serving, ``close()`` stops.

    Attributes:
        limits: What it gives its clients.
        dropped: Connections closed without an answer of ``answer()``'s, by reason
            (``DROP_REASONS``).
    """

    def __init__(self, address: tuple[str, int], *, limits: Limits | None = None) -> None:
        self.limits = Limits() if limits is None else limits
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(_BACKLOG)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.server_address: tuple[str, int] = listener.getsockname()[:2]
        host, port = self.server_address
        # Listening on loopback: the names a request may give in its Host header.
        self._hosts = loopback_authorities(host, port) if is_loopback(host) else None
        self._selector = selectors.DefaultSelector()
        self._wake, self._waker = socket.socketpair()
        self._wake.setblocking(False)
        self._waker.setblocking(False)
        self._arriving: dict[socket.socket, _Arriving] = {}  # in the order they connected
        self._answering = 0
        self._lock = threading.Lock()
        self.dropped: Counter[str] = Counter()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- what a subclass decides ---------------------------------------------------------

    def answer(self, request: Request) -> Answer:  # pragma: no cover - every exporter has one
        raise NotImplementedError

    def refusal(self, request: Request) -> Answer | None:
        """The answer to a request no route may see, or ``None``."""
        host = request.headers.get("host")
        if self._hosts is not None and host is not None and host.lower() not in self._hosts:
            return Answer.text(
                421,
                f"Host {host!r} is not this exporter's: it listens on loopback and answers "
                + " or ".join(self._hosts),
            )
        if _cross_site(request):
            return Answer.text(403, "cross-site request refused: reload from the exporter's host")
        return None

    # -- what it reports -----------------------------------------------------------------

    @property
    def connections(self) -> int:
        """Connections open now: arriving and being answered."""
        with self._lock:
            return len(self._arriving) + self._answering

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}"

    # -- serving -------------------------------------------------------------------------

    def serve_in_thread(self) -> threading.Thread:
        """Serve on a daemon thread of its own until ``close()``; returns the thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="stability-user-exporter", daemon=True
        )
        self._thread.start()
        return self._thread

    def serve_forever(self) -> None:
        """Accept, read and dispatch until ``close()``."""
        selector = self._selector
        selector.register(self._wake, selectors.EVENT_READ)
        accepting = True
        selector.register(self._listener, selectors.EVENT_READ)
        paused_until: float | None = None
        try:
            while not self._stopping:
                timeout = self._next_timeout(paused_until)
                for key, _ in selector.select(timeout):
                    if key.fileobj is self._listener:
                        paused_until = self._accept()
                    elif key.fileobj is self._wake:
                        with contextlib.suppress(OSError):
                            self._wake.recv(4096)
                    else:
                        self._receive(key.data)
                now = time.monotonic()
                self._expire(now)
                if paused_until is not None and now >= paused_until:
                    paused_until = None
                wanted = paused_until is None and (
                    self.connections < self.limits.connections or bool(self._arriving)
                )
                if wanted != accepting:
                    if wanted:
                        selector.register(self._listener, selectors.EVENT_READ)
                    else:
                        selector.unregister(self._listener)
                    accepting = wanted
        finally:
            for arriving in list(self._arriving.values()):
                self._close(arriving)
            selector.close()

    def _next_timeout(self, paused_until: float | None) -> float | None:
        # Deadlines come in the order connections did (one duration for all): the oldest's.
        times = [paused_until] if paused_until is not None else []
        first = next(iter(self._arriving.values()), None)
        if first is not None:
            times.append(first.deadline)
        if not times:
            return None
        return max(0.0, min(times) - time.monotonic())

    def _accept(self) -> float | None:
        """Take the connections waiting; a time to resume at if the process is out of
        descriptors, else ``None``."""
        for _ in range(_BACKLOG):  # then let the loop serve what it has
            if self.connections >= self.limits.connections:
                if not self._arriving:
                    return None  # every place is answering: accepting pauses until one ends
                oldest = next(iter(self._arriving.values()))
                self._close(oldest)
                self.dropped["evicted"] += 1
            try:
                sock, address = self._listener.accept()
            except BlockingIOError:
                return None
            except OSError as error:
                if error.errno in _OUT_OF_DESCRIPTORS:
                    return time.monotonic() + _ACCEPT_PAUSE
                if error.errno == errno.ECONNABORTED:
                    continue
                raise
            sock.setblocking(False)
            arriving = _Arriving(sock, address, time.monotonic() + self.limits.request_seconds)
            with self._lock:
                self._arriving[sock] = arriving
            self._selector.register(sock, selectors.EVENT_READ, arriving)
            self._receive(arriving)  # a scraper's request has usually come with it
        return None

    def _receive(self, arriving: _Arriving) -> None:
        try:
            chunk = arriving.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client gave up
            self._close(arriving)
            return
        arriving.data += chunk
        whole = _arrived(arriving.data)
        if whole is None:
            self._close(arriving, _TOO_LARGE)
            self.dropped["too_large"] += 1
        elif whole:
            self._selector.unregister(arriving.sock)
            with self._lock:
                del self._arriving[arriving.sock]
                self._answering += 1
            threading.Thread(
                target=self._answer_in_thread,
                args=(arriving,),
                name="stability-user-exporter-answer",
                daemon=True,
            ).start()

    def _expire(self, now: float) -> None:
        while self._arriving:
            oldest = next(iter(self._arriving.values()))
            if oldest.deadline > now:
                return
            self._close(oldest, _TOO_SLOW)
            self.dropped["timeout"] += 1

    def _close(self, arriving: _Arriving, last_words: bytes = b"") -> None:
        with self._lock:
            self._arriving.pop(arriving.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(arriving.sock)
        if last_words:
            with contextlib.suppress(OSError):  # best effort: never wait on this client
                arriving.sock.send(last_words)
        arriving.sock.close()

    def _answer_in_thread(self, arriving: _Arriving) -> None:
        sock = arriving.sock
        try:
            sock.setblocking(True)
            sock.settimeout(self.limits.answer_seconds)  # sendall's bound, as a whole
            _Handler(sock, arriving.address, self, bytes(arriving.data))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        except (ConnectionError, TimeoutError):
            pass  # the client left (a scraper past its timeout) or stopped reading
        except Exception:
            # Anything else is a bug worth seeing, printed as socketserver prints it.
            print(f"Exception while answering {arriving.address}:", file=sys.stderr)
            traceback.print_exc()
        finally:
            sock.close()
            with self._lock:
                self._answering -= 1
            with contextlib.suppress(OSError):
                self._waker.send(b"\0")  # the loop may be waiting for a free place

    def close(self) -> None:
        """Stop serving and close every connection still arriving; answers under way finish
        on their own threads."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._waker.send(b"\0")
        if self._thread is not None:
            self._thread.join()
        else:
            self._selector.close()
        self._listener.close()
        self._wake.close()
        self._waker.close()


def listening(make: Callable[[tuple[str, int]], _S], address: str, port: int) -> _S:
    """``make((address, port))``; a port that is taken, or an address not this machine's, is an
    ``OSError`` naming both."""
    try:
        return make((address, port))
    except OSError as error:
        raise OSError(
            error.errno, f"cannot listen on {address}:{port}: {error.strerror or error}"
        ) from error


def interrupt(signum: int, frame: FrameType | None) -> None:
    """A signal handler that stops the process as Ctrl-C does (for SIGTERM)."""
    raise KeyboardInterrupt


def next_signal(received: queue.SimpleQueue[int]) -> int:
    """The next signal number a handler put in ``received``, however long it takes."""
    while True:
        try:
            return received.get(timeout=SIGNAL_WAKE)
        except queue.Empty:
            continue


@contextlib.contextmanager
def handling_signals(
    handlers: Mapping[signal.Signals, Callable[[int, FrameType | None], object]],
) -> Iterator[None]:
    """``handlers`` installed for the block; the previous ones back after it, however it ends."""
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
