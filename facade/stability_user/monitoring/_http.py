"""What both exporters share: a threaded server that hands each request to one ``answer()``,
and the signals their processes handle.

Both exporters (one key: ``/metrics``; many: ``/probe``, ``/-/reload``, ``/config``) are a
``Server`` subclass deciding what each path answers; the reading, writing, the error for a
port that is taken, and SIGTERM stopping the process as Ctrl-C does are here, once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

__all__ = ["TEXT", "Answer", "Request", "Server", "handling_signals", "interrupt", "listening"]

_S = TypeVar("_S", bound="Server")

TEXT = "text/plain; charset=utf-8"


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


class _Handler(BaseHTTPRequestHandler):
    server: Server

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        request = Request(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {name.lower(): value for name, value in self.headers.items()},
        )
        answer = self.server.answer(request)
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


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)

    def answer(self, request: Request) -> Answer:  # pragma: no cover - every exporter has one
        raise NotImplementedError

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A scraper that gave up (its scrape timeout) and closed the connection before the
        # answer was written: nobody is left to answer, and it is no fault of the exporter's.
        # Anything else is printed, as socketserver does.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def serve_in_thread(self) -> threading.Thread:
        """Serve on a daemon thread of its own until ``shutdown()``; returns the thread."""
        thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="stability-user-exporter",
            daemon=True,
        )
        thread.start()
        return thread

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"


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
