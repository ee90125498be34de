"""``CreditsMeter``: the credits as an OpenTelemetry gauge, read through the SDK's in-memory
reader and exported over OTLP/HTTP to a receiver on loopback that decodes the protobuf."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from stability_user import AsyncStabilityUser, StabilityUser
from stability_user.monitoring import CreditsMeter
from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInOrganization, StandInServer

EXPECTED = {
    ("org-standin-personal", "Ada's studio", True): 125.5,
    ("org-standin-lumen", "Lumen Games", False): 42.0,
    ("org-standin-lab", "Research Lab", False): 3.25,
}


def eventually(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)


def points(reader: InMemoryMetricReader) -> tuple[str, dict[tuple[Any, ...], float]]:
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [
        metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    ]
    found = {}
    for point in metric.data.data_points:
        assert isinstance(point, NumberDataPoint)
        attributes = dict(point.attributes or {})
        key = (
            attributes["stability.organization.id"],
            attributes["stability.organization.name"],
            attributes["stability.organization.default"],
        )
        found[key] = float(point.value)
    return f"{metric.name} {metric.unit}", found


def all_points(reader: InMemoryMetricReader) -> dict[tuple[Any, ...], float]:
    """Every point of every metric the reader has now ({} for none at all)."""
    data = reader.get_metrics_data()
    if data is None:
        return {}
    found = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint)
                    attributes = dict(point.attributes or {})
                    found[tuple(attributes.values())] = float(point.value)
    return found


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c CODE`` in a fresh interpreter, with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def provider() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def test_the_gauge_through_the_in_memory_reader(
    standin: StandInAPI, provider: tuple[MeterProvider, InMemoryMetricReader]
) -> None:
    meter_provider, reader = provider
    with (
        StabilityUser(SAMPLE_API_KEY, transport=standin.transport) as client,
        CreditsMeter(client, meter_provider=meter_provider) as meter,
    ):
        eventually(lambda: meter.cache.snapshot().refreshes >= 1)
        assert points(reader) == ("stability.credit.balance {credit}", EXPECTED)
        # Reading never asks the API: the callback reads what the refresher keeps.
        asked = len(standin.requests)
        for _ in range(5):
            points(reader)
        assert len(standin.requests) == asked


def test_before_the_first_refresh_there_is_no_point(
    standin: StandInAPI, provider: tuple[MeterProvider, InMemoryMetricReader]
) -> None:
    meter_provider, reader = provider
    with StabilityUser(SAMPLE_API_KEY, transport=standin.transport) as client:
        CreditsMeter(client, meter_provider=meter_provider, start=False)
        data = reader.get_metrics_data()
        assert data is None or not [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            for point in metric.data.data_points
        ]
    assert standin.requests == []


def test_the_async_client(
    standin_server: StandInServer, provider: tuple[MeterProvider, InMemoryMetricReader]
) -> None:
    meter_provider, reader = provider

    async def main() -> dict[tuple[Any, ...], float]:
        async with (
            AsyncStabilityUser(SAMPLE_API_KEY, base_url=standin_server.url) as client,
            CreditsMeter(client, meter_provider=meter_provider, interval=60) as meter,
        ):
            while meter.cache.snapshot().refreshes < 1:
                await asyncio.sleep(0.02)
            return points(reader)[1]

    assert asyncio.run(main()) == EXPECTED


def test_without_a_provider_it_uses_the_global_one(standin_server: StandInServer) -> None:
    code = """
import json, time
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from stability_user import StabilityUser
from stability_user.monitoring import CreditsMeter

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
with StabilityUser() as client, CreditsMeter(client) as meter:
    while meter.cache.snapshot().refreshes < 1:
        time.sleep(0.02)
    data = reader.get_metrics_data()
    print(json.dumps(sorted(
        [p.attributes["stability.organization.id"], p.value]
        for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics
        for p in m.data.data_points)))
"""
    done = run_python(code, STABILITY_API_KEY=SAMPLE_API_KEY, STABILITY_BASE_URL=standin_server.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        ["org-standin-lab", 3.25],
        ["org-standin-lumen", 42.0],
        ["org-standin-personal", 125.5],
    ]


OTHER_KEY = "sk-OTHER-test-key-0123456789abcdef"
OTHER = {("org-other", "Other", True): 7.0}


@pytest.fixture
def two_keys(standin: StandInAPI) -> StandInAPI:
    standin.add_account(
        OTHER_KEY,
        email="other@example.com",
        organizations=[StandInOrganization("org-other", "Other", "OWNER", True, 7.0)],
    )
    return standin


def test_two_meters_on_one_provider_both_export(
    two_keys: StandInAPI, provider: tuple[MeterProvider, InMemoryMetricReader]
) -> None:
    meter_provider, reader = provider
    with (
        StabilityUser(SAMPLE_API_KEY, transport=two_keys.transport) as first_client,
        StabilityUser(OTHER_KEY, transport=two_keys.transport) as second_client,
        CreditsMeter(first_client, meter_provider=meter_provider) as first,
        CreditsMeter(second_client, meter_provider=meter_provider) as second,
    ):
        eventually(lambda: first.cache.snapshot().refreshes >= 1)
        eventually(lambda: second.cache.snapshot().refreshes >= 1)
        assert points(reader) == ("stability.credit.balance {credit}", {**EXPECTED, **OTHER})


def test_a_rotated_key_exports_the_new_meters_values_only(
    two_keys: StandInAPI, provider: tuple[MeterProvider, InMemoryMetricReader]
) -> None:
    # Rotation: the old key's meter closed, a new one made on the same provider.
    meter_provider, reader = provider
    with StabilityUser(SAMPLE_API_KEY, transport=two_keys.transport) as old_client:
        old = CreditsMeter(old_client, meter_provider=meter_provider)
        eventually(lambda: old.cache.snapshot().refreshes >= 1)
        assert points(reader)[1] == EXPECTED
        old.close()
    assert all_points(reader) == {}  # closed: nothing more is said of it
    with (
        StabilityUser(OTHER_KEY, transport=two_keys.transport) as new_client,
        CreditsMeter(new_client, meter_provider=meter_provider) as new,
    ):
        eventually(lambda: new.cache.snapshot().refreshes >= 1)
        assert points(reader)[1] == OTHER


def test_what_the_last_refresh_could_not_read_is_not_reported(
    waits: list[float], standin: StandInAPI, provider: tuple[MeterProvider, InMemoryMetricReader]
) -> None:
    meter_provider, reader = provider
    with (
        StabilityUser(SAMPLE_API_KEY, transport=standin.transport) as client,
        CreditsMeter(client, meter_provider=meter_provider, interval=1) as meter,
    ):
        eventually(lambda: meter.cache.snapshot().refreshes >= 1)
        assert points(reader)[1] == EXPECTED

        # One organization's balance fails: its last value is no longer reported as current.
        standin.inject_error(500, organization="org-standin-lumen", times=None)
        done = meter.cache.snapshot().refreshes
        eventually(lambda: meter.cache.snapshot().refreshes >= done + 1)
        assert points(reader)[1] == {
            key: value for key, value in EXPECTED.items() if key[0] != "org-standin-lumen"
        }

        # The key is refused: every refresh fails, and nothing is reported.
        standin.inject_error(401, endpoint="account", times=None)
        done = meter.cache.snapshot().refreshes
        eventually(lambda: meter.cache.snapshot().refreshes >= done + 1)
        assert all_points(reader) == {}


def test_a_forked_childs_meter_refreshes(standin_server: StandInServer) -> None:
    code = """
import json, os, time
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from stability_user import StabilityUser
from stability_user.monitoring import CreditsMeter

reader = InMemoryMetricReader()
provider = MeterProvider(metric_readers=[reader])
meter = CreditsMeter(StabilityUser(), meter_provider=provider, interval=1)
while meter.cache.snapshot().refreshes < 1:
    time.sleep(0.02)
pid = os.fork()
if pid == 0:
    seen = meter.cache.snapshot().refreshes
    deadline = time.monotonic() + 20
    while meter.cache.snapshot().refreshes < seen + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    data = reader.get_metrics_data()
    print(json.dumps({
        "refreshes": meter.cache.snapshot().refreshes - seen,
        "points": len([p for r in data.resource_metrics for s in r.scope_metrics
                       for m in s.metrics for p in m.data.data_points]),
    }), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
meter.close()
"""
    done = run_python(code, STABILITY_API_KEY=SAMPLE_API_KEY, STABILITY_BASE_URL=standin_server.url)
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout)
    assert child["refreshes"] >= 2  # on a thread of its own: the parent's did not come along
    assert child["points"] == 3


def test_with_an_async_client_the_blocks_end_stops_the_task(
    standin_server: StandInServer, provider: tuple[MeterProvider, InMemoryMetricReader]
) -> None:
    meter_provider, reader = provider

    async def main() -> bool:
        async with AsyncStabilityUser(SAMPLE_API_KEY, base_url=standin_server.url) as client:
            with CreditsMeter(client, meter_provider=meter_provider) as meter:
                while meter.cache.snapshot().refreshes < 1:
                    await asyncio.sleep(0.02)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if not [t for t in asyncio.all_tasks() if t.get_name() == "stability-user-credits"]:
                    return True
                await asyncio.sleep(0.02)
            return False

    assert asyncio.run(main()), "the refresher's task still ran after the block"
    assert all_points(reader) == {}


class OTLPReceiver:
    """An OTLP/HTTP metrics endpoint on loopback: each export decoded from protobuf."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        self.exports: list[Any] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                receiver.exports.append((self.path, self.headers.get("Content-Type"), request))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_exported_over_otlp_http_to_a_receiver(standin: StandInAPI) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    receiver = OTLPReceiver()
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=receiver.url), export_interval_millis=3_600_000
    )
    meter_provider = MeterProvider(metric_readers=[reader])
    try:
        with (
            StabilityUser(SAMPLE_API_KEY, transport=standin.transport) as client,
            CreditsMeter(client, meter_provider=meter_provider) as meter,
        ):
            eventually(lambda: meter.cache.snapshot().refreshes >= 1)
            assert meter_provider.force_flush(timeout_millis=30_000)
    finally:
        meter_provider.shutdown()
        receiver.close()
    path, content_type, request = receiver.exports[0]
    assert (path, content_type) == ("/v1/metrics", "application/x-protobuf")
    (metric,) = [
        metric
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "stability.credit.balance"
    ]
    assert metric.unit == "{credit}"
    found = {}
    for point in metric.gauge.data_points:
        attributes = {a.key: a.value for a in point.attributes}
        key = (
            attributes["stability.organization.id"].string_value,
            attributes["stability.organization.name"].string_value,
            attributes["stability.organization.default"].bool_value,
        )
        found[key] = point.as_double
    assert found == EXPECTED


def test_without_opentelemetry_it_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from stability_user import StabilityUser\n"
        "from stability_user.monitoring import CreditsMeter\n"
        "try:\n"
        "    CreditsMeter(StabilityUser('k'), start=False)\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    done = run_python(code)
    assert (
        done.stdout == "CreditsMeter needs opentelemetry-api: pip install 'stability-user[otel]'\n"
    )


def test_each_name_loads_only_its_own_library() -> None:
    code = (
        "import sys\n"
        "from stability_user.monitoring import CreditsMeter\n"
        "print('prometheus_client' in sys.modules, 'opentelemetry.metrics' in sys.modules)\n"
        "from stability_user.monitoring import CreditsCollector\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False False", "True"]


@pytest.mark.parametrize("interval", [0, -1, float("nan"), 86401, 0.5, 1e-9])
def test_a_bad_interval_raises_before_anything_is_registered(
    standin: StandInAPI, provider: tuple[MeterProvider, InMemoryMetricReader], interval: float
) -> None:
    from stability_user import ConfigurationError

    meter_provider, reader = provider
    with (
        StabilityUser(SAMPLE_API_KEY, transport=standin.transport) as client,
        pytest.raises(ConfigurationError, match="interval"),
    ):
        CreditsMeter(client, meter_provider=meter_provider, interval=interval)
    data = reader.get_metrics_data()
    assert data is None or not data.resource_metrics
    assert standin.requests == []
