"""``stability-user exporter``: the credits metrics on ``/metrics``, and ``/healthz``.

A small HTTP server on its own threads; the refresher runs on another, every ``interval``
seconds: a thread for a ``StabilityUser``, a task on an event loop of the exporter's own
thread for an ``AsyncStabilityUser`` (``--http-backend aiohttp``). A scrape renders the last
refresh and never calls the API, so scrapes cannot spend the API's rate limit. SIGTERM or
Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import json
import queue
import signal
import time
from functools import partial
from typing import TYPE_CHECKING, TextIO

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .._constants import EXPORTER_ADDRESS, EXPORTER_PORT
from ._collector import CreditsCollector
from ._http import (
    Answer,
    Request,
    Server,
    handling_signals,
    interrupt,
    listening,
    next_signal,
)
from ._loop import LoopThread

if TYPE_CHECKING:
    from .._async_client import AsyncStabilityUser
    from .._client import StabilityUser

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_PORT", "ExporterServer", "run_exporter"]

DEFAULT_ADDRESS = EXPORTER_ADDRESS
DEFAULT_PORT = EXPORTER_PORT
# /healthz fails when no refresh has fetched the account for this many intervals.
_STALE_INTERVALS = 3


class _Server(Server):
    collector: CreditsCollector

    def __init__(self, address: tuple[str, int], interval: float) -> None:
        self.interval = interval
        self.registry = CollectorRegistry(auto_describe=True)
        super().__init__(address)  # bound here; nothing is served before attach()

    def attach(self, collector: CreditsCollector) -> None:
        """What ``/metrics`` and ``/healthz`` read; before ``serve_forever()``."""
        self.collector = collector
        self.registry.register(collector)

    def answer(self, request: Request) -> Answer:
        if request.path == "/metrics":
            return Answer(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if request.path == "/healthz":
            status, body = self.health()
            return Answer(status, json.dumps(body).encode(), "application/json")
        return Answer.text(404, "Not found: try /metrics or /healthz")

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
        self._server = listening(partial(_Server, interval=interval), address, port)
        self._async_client: AsyncStabilityUser | None = None
        self._loop: LoopThread | None = None
        if isinstance(client, AsyncStabilityUser):
            self._async_client, self._loop = client, LoopThread()
            self.collector = self._loop.run(_collector_in_loop(client, interval))
        else:
            self.collector = CreditsCollector(client, interval=interval)
        self.url = self._server.url
        self._server.attach(self.collector)
        self._server.serve_in_thread()

    def close(self) -> None:
        """Stop serving and refreshing."""
        self._server.close()
        if self._loop is None:
            self.collector.close()
            return
        self._loop.run(self.collector.aclose())
        if self._async_client is not None:
            self._loop.run(self._async_client.aclose())
        self._loop.close()


def run_exporter(
    client: StabilityUser | AsyncStabilityUser,
    *,
    address: str,
    port: int,
    interval: float,
    out: TextIO,
) -> int:
    """Serve until SIGTERM or Ctrl-C; returns the exit status (0)."""
    with handling_signals({signal.SIGTERM: interrupt}):
        exporter = ExporterServer(client, address=address, port=port, interval=interval)
        print(
            f"Serving Stability credits metrics at {exporter.url}/metrics "
            f"(refreshing every {interval:g} s; health at {exporter.url}/healthz)",
            file=out,
            flush=True,
        )
        try:
            next_signal(queue.SimpleQueue())  # until SIGTERM's or Ctrl-C's KeyboardInterrupt
        except KeyboardInterrupt:
            print("stopped", file=out, flush=True)
        finally:
            exporter.close()
    return 0
