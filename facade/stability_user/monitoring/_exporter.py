"""``stability-user exporter``: the credits metrics on ``/metrics``, and ``/healthz``.

A small HTTP server on its own threads; the refresher runs on another, every ``interval``
seconds: a thread for a ``StabilityUser``, a task on an event loop of the exporter's own
thread for an ``AsyncStabilityUser`` (``--http-backend aiohttp``). A scrape renders the last
refresh and never calls the API, so scrapes cannot spend the API's rate limit. SIGTERM or
Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .._constants import EXPORTER_ADDRESS, EXPORTER_PORT
from ._collector import CreditsCollector

if TYPE_CHECKING:
    from .._async_client import AsyncStabilityUser
    from .._client import StabilityUser

_T = TypeVar("_T")

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_PORT", "ExporterServer", "run_exporter"]

DEFAULT_ADDRESS = EXPORTER_ADDRESS
DEFAULT_PORT = EXPORTER_PORT
# /healthz fails when no refresh has fetched the account for this many intervals.
_STALE_INTERVALS = 3


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(self.server.registry))
        elif path == "/healthz":
            status, body = self.server.health()
            self._send(status, "application/json", json.dumps(body).encode())
        else:
            self._send(404, "text/plain; charset=utf-8", b"Not found: try /metrics or /healthz\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: Prometheus scrapes every few seconds."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    collector: CreditsCollector

    def __init__(self, address: tuple[str, int], interval: float) -> None:
        self.interval = interval
        self.registry = CollectorRegistry(auto_describe=True)
        super().__init__(address, _Handler)  # bound here; nothing is served before attach()

    def attach(self, collector: CreditsCollector) -> None:
        """What ``/metrics`` and ``/healthz`` read; before ``serve_forever()``."""
        self.collector = collector
        self.registry.register(collector)

    def health(self) -> tuple[int, dict[str, object]]:
        snapshot = self.collector.cache.snapshot()
        body: dict[str, object] = {
            "refreshes": snapshot.refreshes,
            "last_refresh": snapshot.last_refresh,
            "last_success": snapshot.last_success,
            "organizations": len(snapshot.organizations),
        }
        if snapshot.last_success is None:
            body["status"] = "starting" if snapshot.refreshes == 0 else "failing"
            return 503, body
        if time.time() - snapshot.last_success > _STALE_INTERVALS * self.interval:
            body["status"] = "stale"
            return 503, body
        body["status"] = "ok"
        return 200, body


class _LoopThread:
    """An event loop running on a daemon thread, for an async client's refresher."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="stability-user-loop", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        """Stop the loop, finish its async generators (the pools' closers), close it."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


async def _collector_in_loop(client: AsyncStabilityUser, interval: float) -> CreditsCollector:
    return CreditsCollector(client, interval=interval)  # its refresher task needs the loop


class ExporterServer:
    """The exporter: a collector refreshing ``client`` and an HTTP server rendering it.

    An ``AsyncStabilityUser`` is refreshed on an event loop of the exporter's own, and closed
    with it (its pools belong to that loop); a ``StabilityUser`` stays the caller's to close.

    Attributes:
        url: The base URL it serves, e.g. ``http://127.0.0.1:9464``.
    """

    url: str

    def __init__(
        self,
        client: StabilityUser | AsyncStabilityUser,
        *,
        address: str,
        port: int,
        interval: float,
    ) -> None:
        from .._async_client import AsyncStabilityUser

        # Listening first: a port that is taken stops everything before a request is sent.
        try:
            self._server = _Server((address, port), interval)
        except OSError as error:  # the port is taken, the address not this machine's...
            raise OSError(
                error.errno, f"cannot listen on {address}:{port}: {error.strerror or error}"
            ) from error
        self._async_client: AsyncStabilityUser | None = None
        self._loop: _LoopThread | None = None
        if isinstance(client, AsyncStabilityUser):
            self._async_client, self._loop = client, _LoopThread()
            self.collector = self._loop.run(_collector_in_loop(client, interval))
        else:
            self.collector = CreditsCollector(client, interval=interval)
        host, bound_port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        self.url = f"http://{host}:{bound_port}"
        self._server.attach(self.collector)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="stability-user-exporter",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and refreshing."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        if self._loop is None:
            self.collector.close()
            return
        self._loop.run(self.collector.aclose())
        if self._async_client is not None:
            self._loop.run(self._async_client.aclose())
        self._loop.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_exporter(
    client: StabilityUser | AsyncStabilityUser,
    *,
    address: str,
    port: int,
    interval: float,
    out: TextIO,
) -> int:
    """Serve until SIGTERM or Ctrl-C; returns the exit status (0)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    exporter = ExporterServer(client, address=address, port=port, interval=interval)
    print(
        f"Serving Stability credits metrics at {exporter.url}/metrics "
        f"(refreshing every {interval:g} s; health at {exporter.url}/healthz)",
        file=out,
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopped", file=out, flush=True)
    finally:
        exporter.close()
        signal.signal(signal.SIGTERM, previous)
    return 0
