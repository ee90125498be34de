"""``stability-user exporter --config FILE``: many keys, one exporter, Prometheus' multi-target
pattern (as blackbox_exporter and snmp_exporter do it).

- ``GET /probe?target=NAME``: that target's credits, in a registry made for the request, plus
  ``stability_probe_success`` and ``stability_probe_duration_seconds``. A probe serves what the
  target's last background refresh found; it waits only for a target's first refresh, and no
  longer than ``X-Prometheus-Scrape-Timeout-Seconds`` minus ``timeout_offset``.
- ``GET /metrics``: the exporter's own metrics (targets, reloads, refreshes by outcome, process).
- ``POST /-/reload`` and SIGHUP: read and check the file, then swap; a bad file keeps the
  running configuration and the reload answers the error.
- ``GET /config``: the configuration as loaded, every key as ``<secret>``.
- ``GET /healthz``: JSON, 200 once every target has finished a refresh.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import TextIO

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from .._constants import MAX_SECONDS
from .._text import printable
from ._collector import metrics
from ._exporter_config import (
    ExporterConfig,
    ExporterConfigError,
    load_config,
    render_config,
    shard_of,
)
from ._fleet import Fleet, Probe
from ._http import (
    DROP_REASONS,
    Answer,
    Request,
    Server,
    handling_signals,
    interrupt,
    listening,
    next_signal,
)
from ._loop import LoopThread

__all__ = ["ProbeExporter", "run_probe_exporter"]

TIMEOUT_HEADER = "x-prometheus-scrape-timeout-seconds"
_PATHS = "/probe?target=NAME, /metrics, /config, /healthz, POST /-/reload"


def probe_metrics(probe: Probe) -> list[Metric]:
    """A probe's families: the target's credits (as ``CreditsCollector`` has them) and two more."""
    run = probe.target
    families = metrics(run.cache.snapshot(), api_version=run.client.api_version)
    success = GaugeMetricFamily(
        "stability_probe_success",
        "1 if the target's last background refresh fetched every organization's credits, else "
        "0. A probe never calls the API: it serves the last refresh's values.",
    )
    success.add_metric([], 1.0 if probe.success else 0.0)
    duration = GaugeMetricFamily(
        "stability_probe_duration_seconds",
        "How long the probe took (waiting only for the target's first refresh).",
    )
    duration.add_metric([], probe.duration)
    return [*families, success, duration]


class _Families:
    """A collector yielding families made once (the per-request registry of a probe)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


class _Server(Server):
    def __init__(self, address: tuple[str, int], *, exporter: ProbeExporter) -> None:
        self.exporter = exporter
        super().__init__(address)

    def answer(self, request: Request) -> Answer:
        route = {
            "/probe": ("GET", self.exporter.probe),
            "/metrics": ("GET", self.exporter.own_metrics),
            "/config": ("GET", self.exporter.shown_config),
            "/healthz": ("GET", self.exporter.health),
            "/-/reload": ("POST", self.exporter.reload_answer),
        }.get(request.path)
        if route is None:
            return Answer.text(404, f"Not found: this exporter serves {_PATHS}")
        method, handle = route
        if request.method not in (method, "HEAD" if method == "GET" else method):
            return Answer.text(405, f"{request.path} takes {method}", Allow=method)
        return handle(request)


class ProbeExporter:
    """An exporter of many targets, from a configuration file; ``close()`` to stop it.

    Args:
        config: The checked configuration (``load_config``); reloads read its file again.
        address: Where to listen.
        port: Port; 0 for any free one.
        http_backend: The targets' clients' backend (``httpx2`` or ``aiohttp``).
        history: Whether the targets' clients record in the local history.
        log: Where lines for the operator go (reloads, targets failing and back).

    Raises:
        OSError: The port cannot be listened on.
        ExporterConfigError: A target's client cannot be made.
    """

    def __init__(
        self,
        config: ExporterConfig,
        *,
        address: str,
        port: int,
        http_backend: str | None = None,
        history: bool = False,
        shard: tuple[int, int] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        # What a target's API or the file said goes in escaped: a line break in an id or a
        # message can neither break a line of the log nor forge one.
        self._log: Callable[[str], None] = lambda line: log(printable(line))
        self.shard = shard
        self.file_config = config
        self._server = listening(partial(_Server, exporter=self), address, port)
        self.url = self._server.url
        self._loop = LoopThread()
        self.fleet = Fleet(self._loop, http_backend=http_backend, history=history, log=self._log)
        self.reloads: Counter[str] = Counter()
        self.last_reload: tuple[bool, float] = (True, time.time())
        self._reloading = threading.Lock()
        try:
            self.fleet.apply(self._mine(config))
        except BaseException:
            self._loop.close()
            self._server.close()
            raise
        self._server.serve_in_thread()

    def _mine(self, config: ExporterConfig) -> ExporterConfig:
        """``config`` with only this exporter's shard of the targets."""
        if self.shard is None:
            return config
        index, count = self.shard
        mine = {n: t for n, t in config.targets.items() if shard_of(n, count) == index}
        return dataclasses.replace(config, targets=mine)

    @property
    def config(self) -> ExporterConfig:
        assert self.fleet.config is not None  # applied in __init__
        return self.fleet.config

    # -- reload --------------------------------------------------------------------------

    def reload(self) -> str:
        """Read the file again and swap it in; returns what changed.

        Raises:
            ExporterConfigError: The file cannot be used; the running configuration stays.
        """
        with self._reloading:
            try:
                config = load_config(self.config.path)
                added, removed, changed = self.fleet.apply(self._mine(config))
            except ExporterConfigError as error:
                self.reloads["failure"] += 1
                self.last_reload = (False, self.last_reload[1])
                self._log(f"reload failed, the running configuration stays: {error}")
                raise
            self.file_config = config
            self.reloads["success"] += 1
            self.last_reload = (True, time.time())
            summary = (
                f"reloaded {config.path}: {len(self.config.targets)} targets "
                f"({added} added, {removed} removed, {changed} changed)"
            )
            self._log(summary)
            return summary

    def reload_answer(self, request: Request) -> Answer:
        try:
            return Answer.text(200, self.reload())
        except ExporterConfigError as error:
            return Answer.text(400, f"reload failed, the running configuration stays: {error}")

    # -- routes --------------------------------------------------------------------------

    def probe(self, request: Request) -> Answer:
        names = request.query.get("target", [])
        if len(names) != 1 or not names[0]:
            return Answer.text(400, "give exactly one target: /probe?target=NAME")
        name = names[0]
        run = self.fleet.target(name)
        if run is None and name in self.file_config.targets and self.shard is not None:
            return Answer.text(
                404,
                f"target {name!r} is shard {shard_of(name, self.shard[1])}'s, not this "
                f"exporter's ({self.shard[0]}/{self.shard[1]})",
            )
        if run is None:
            return Answer.text(404, f"unknown target {name!r}: not in {self.config.path}")
        budget = self.config.probe_timeout
        header = request.headers.get(TIMEOUT_HEADER)
        if header is not None:
            try:
                scrape_timeout = float(header)
            except ValueError:
                scrape_timeout = float("nan")
            if not 0 < scrape_timeout < float("inf"):
                return Answer.text(400, f"{TIMEOUT_HEADER} must be a positive number of seconds")
            # Capped at a day: a wait past what the platform's clock holds would raise.
            budget = min(scrape_timeout, MAX_SECONDS) - self.config.timeout_offset
        found = self.fleet.probe(name, budget)
        if found is None:  # removed by a reload meanwhile
            return Answer.text(404, f"unknown target {name!r}: not in {self.config.path}")
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(probe_metrics(found)))
        return Answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)

    def own_metrics(self, request: Request) -> Answer:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(self._own_families()))
        ProcessCollector(registry=registry)
        return Answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)

    def _own_families(self) -> list[Metric]:
        targets = GaugeMetricFamily(
            "stability_exporter_targets", "Targets in the running configuration."
        )
        targets.add_metric([], len(self.fleet.targets()))
        reloads = CounterMetricFamily(
            "stability_exporter_config_reloads",
            "Configuration reloads (SIGHUP or POST /-/reload), by outcome.",
            labels=["outcome"],
        )
        for outcome in ("success", "failure"):
            reloads.add_metric([outcome], self.reloads[outcome])
        ok, when = self.last_reload
        last = GaugeMetricFamily(
            "stability_exporter_config_last_reload_successful",
            "1 if the last reload (or the start) loaded the file, else 0.",
        )
        last.add_metric([], 1.0 if ok else 0.0)
        last_time = GaugeMetricFamily(
            "stability_exporter_config_last_reload_success_timestamp_seconds",
            "When the running configuration was loaded (Unix time).",
        )
        last_time.add_metric([], when)
        refreshes = CounterMetricFamily(
            "stability_exporter_target_refreshes",
            "Background refreshes of each target, by outcome: ok or the error's class.",
            labels=["target", "outcome"],
        )
        for (name, outcome), count in sorted(self.fleet.refreshes().items()):
            refreshes.add_metric([name, outcome], count)
        return [targets, reloads, last, last_time, refreshes, *self._http_families()]

    def _http_families(self) -> list[Metric]:
        server = self._server
        connections = GaugeMetricFamily(
            "stability_exporter_http_connections",
            "Connections open to this exporter: requests arriving and being answered.",
        )
        connections.add_metric([], server.connections)
        limit = GaugeMetricFamily(
            "stability_exporter_http_connections_limit",
            "The most connections it keeps open: half the descriptors its limit leaves after "
            "a reserve for refreshes and the history.",
        )
        limit.add_metric([], server.limits.connections)
        dropped = CounterMetricFamily(
            "stability_exporter_http_connections_dropped",
            "Connections closed without an answer, by reason: timeout (the request did not "
            "arrive in time), evicted (its place went to a newer connection at the limit), "
            "too_large (a request head past 64 KiB).",
            labels=["reason"],
        )
        for reason in DROP_REASONS:
            dropped.add_metric([reason], server.dropped[reason])
        return [connections, limit, dropped]

    def shown_config(self, request: Request) -> Answer:
        effective = {
            name: (run.client.base_url, run.client.api_version)
            for name, run in self.fleet.targets().items()
        }
        text = render_config(self.file_config, effective, self.shard)
        return Answer(200, text.encode())

    def health(self, request: Request) -> Answer:
        runs = self.fleet.targets().values()
        refreshed = sum(run.refreshed_once.is_set() for run in runs)
        healthy = sum(run.healthy() for run in runs)
        ready = refreshed == len(runs)
        body = {
            "status": "ok" if ready else "starting",
            "targets": len(runs),
            "refreshed": refreshed,
            "healthy": healthy,
        }
        return Answer(200 if ready else 503, json.dumps(body).encode(), "application/json")

    def close(self) -> None:
        """Stop serving, stop every target, close their clients and the loop."""
        self._server.close()
        self.fleet.close()
        self._loop.close()


def run_probe_exporter(
    config: ExporterConfig,
    *,
    address: str,
    port: int,
    http_backend: str | None,
    history: bool,
    shard: tuple[int, int] | None,
    out: TextIO,
    log: Callable[[str], None],
) -> int:
    """Serve until SIGTERM or Ctrl-C, reloading on SIGHUP; returns the exit status (0)."""
    hangups: queue.SimpleQueue[int] = queue.SimpleQueue()  # put() is safe in a signal handler
    signals = {signal.SIGTERM: interrupt, signal.SIGHUP: lambda signum, _: hangups.put(signum)}
    with handling_signals(signals):
        exporter = ProbeExporter(
            config,
            address=address,
            port=port,
            http_backend=http_backend,
            history=history,
            shard=shard,
            log=log,
        )
        served = len(exporter.config.targets)
        part = "" if shard is None else f" (shard {shard[0]}/{shard[1]}: {served} of them)"
        print(
            f"Serving {len(config.targets)} targets{part} from {config.path} at "
            f"{exporter.url}/probe?target=NAME (refreshing each every {config.interval:g} s; "
            f"own metrics at {exporter.url}/metrics; reload with SIGHUP or POST /-/reload)",
            file=out,
            flush=True,
        )
        try:
            while True:
                next_signal(hangups)
                with contextlib.suppress(ExporterConfigError):  # reload() logged it
                    exporter.reload()
        except KeyboardInterrupt:
            print("stopped", file=out, flush=True)
        finally:
            exporter.close()
    return 0
