"""The stand-in as a real HTTP/1.1 server on loopback, with keep-alive."""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from ._api import StandInAPI

__all__ = ["StandInServer"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body would
    # wait for the client's delayed ACK (about 40 ms) on every request.
    disable_nagle_algorithm = True
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        with server.counter_lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            if server.latency:
                time.sleep(server.latency)
            # A body only when there is one: a wrapper of the API written for requests
            # without one (respond(method, path, headers)) keeps working.
            answer = (
                server.api.respond(self.command, self.path, self.headers, body)
                if body
                else server.api.respond(self.command, self.path, self.headers)
            )
        finally:
            with server.counter_lock:
                server.in_flight -= 1
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if "Content-Length" not in answer.headers:  # a HEAD answer carries GET's length
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.body:
            self.wfile.write(answer.body)

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler dispatches to do_<METHOD> and answers an HTML 501 when there
        # is none; the API answers every method, most of them with a JSON 405.
        if name.startswith("do_"):
            return self._answer
        raise AttributeError(name)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and the demo print what matters themselves."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when a client opens many at once.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], api: StandInAPI, latency: float) -> None:
        self.api = api
        self.latency = latency
        self.counter_lock = threading.Lock()
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.counter_lock:
            self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (closed, reset, interrupted) is what clients do, not the
        # stand-in's error: socketserver's traceback for it was noise in every test log.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StandInServer:
    """A ``StandInAPI`` served on loopback; starts on creation, stops on ``close()``.

    Attributes:
        url: The base URL to give a client, e.g. ``http://127.0.0.1:53211``.
        latency: Seconds every answer waits, as across a real network (0: none).
    """

    url: str

    def __init__(
        self, api: StandInAPI, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0
    ) -> None:
        self.latency = latency
        self._server = _Server((host, port), api, latency)
        bound_host, bound_port = self._server.server_address[:2]
        if isinstance(bound_host, bytes):
            bound_host = bound_host.decode()
        self.url = f"http://{bound_host}:{bound_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # Short, so that close() returns promptly; idle polling costs next to nothing.
            kwargs={"poll_interval": 0.05},
            name="stability-user-standin",
            daemon=True,
        )
        self._thread.start()

    @property
    def connections(self) -> int:
        """How many TCP connections the server has accepted (keep-alive shows as few)."""
        return self._server.connections

    @property
    def max_in_flight(self) -> int:
        """The most requests the server was answering at once."""
        return self._server.max_in_flight

    def close(self) -> None:
        """Stop serving and release the port; calling it again is harmless."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
