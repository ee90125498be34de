"""Credits monitoring: the collector, the exporter, and a real Prometheus scraping it.

Prometheus is Debian's package (``apt-get install prometheus``), started here on loopback with
a generated configuration; ``.ci/run`` installs it. Locally the tests that need it skip, saying
how to install it; on CI (``CI`` set) they never skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from stability_user import (
    AsyncStabilityUser,
    InternalServerError,
    OrganizationBalance,
    StabilityUser,
)
from stability_user.monitoring import CreditsCache, CreditsCollector
from stability_user.monitoring._exporter import ExporterServer
from stability_user.testing import (
    SAMPLE_API_KEY,
    StandInAPI,
    StandInOrganization,
    StandInServer,
)
from support.prometheus import Prometheus, eventually, get, running_prometheus, tool
from support.threads import signal_other_thread
from support.tools import without

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"


def scrape(url: str) -> str:
    status, body = get(f"{url}/metrics")
    assert status == 200
    return body.decode()


# The collector and its cache


def test_the_cache_keeps_the_last_good_credits_of_a_failed_organization() -> None:
    from stability_user import Balance, Organization

    clock = iter([100.0, 200.0, 300.0]).__next__
    cache = CreditsCache(clock=clock)
    a = Organization("org-a", "A", "OWNER", True)
    b = Organization("org-b", "B", "MEMBER", False)
    error = InternalServerError.__new__(InternalServerError)
    cache.record([OrganizationBalance(a, Balance(10.0)), OrganizationBalance(b, Balance(5.0))])
    cache.record([OrganizationBalance(a, Balance(9.0)), OrganizationBalance(b, None, error)])
    first = cache.snapshot()
    assert [
        (s.organization.id, s.credits, s.refreshed, s.last_success) for s in first.organizations
    ] == [
        ("org-a", 9.0, True, 200.0),
        ("org-b", 5.0, False, 100.0),
    ]
    cache.record_failure(error)
    after = cache.snapshot()
    assert [(s.credits, s.refreshed) for s in after.organizations] == [(9.0, False), (5.0, False)]
    assert dict(after.requests) == {
        ("account", "ok"): 2,
        ("account", "InternalServerError"): 1,
        ("balance", "ok"): 3,
        ("balance", "InternalServerError"): 1,
    }
    assert (after.refreshes, after.last_refresh, after.last_success) == (3, 300.0, 200.0)


def test_a_failed_refresh_is_logged_on_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from stability_user import StabilityError

    CreditsCache().settle(StabilityError("down\r\n[stability_user ERROR] forged"))
    (record,) = caplog.records
    assert record.getMessage() == (
        "credits refresh failed: StabilityError: down\\r\\n[stability_user ERROR] forged"
    )


def _balances(*credits: float | Exception) -> list[OrganizationBalance]:
    """One refresh's results: ``org-a``, ``org-b``... with these credits (or this error)."""
    from stability_user import Balance, Organization

    results = []
    for n, value in enumerate(credits):
        org = Organization(f"org-{'abc'[n]}", "ABC"[n], "OWNER", n == 0)
        if isinstance(value, Exception):
            results.append(OrganizationBalance(org, None, value))  # type: ignore[arg-type]
        else:
            results.append(OrganizationBalance(org, Balance(value)))
    return results


def _error(kind: type[Exception]) -> Exception:
    return kind.__new__(kind)


def test_spend_adds_up_the_falls_and_a_top_up_is_never_spend() -> None:
    cache = CreditsCache()
    for credits in (100.0, 90.0, 120.0, 119.9, _error(InternalServerError), 100.5, 100.5):
        cache.record(_balances(credits, 7.0))
        if credits == 119.9:
            cache.record_failure(_error(InternalServerError))  # nothing is read: nothing spent
    spent = {s.organization.id: s.spent for s in cache.snapshot().organizations}
    # 10 spent, a top-up of 30 (no spend), 0.1 spent, a failure, 19.4 spent, nothing.
    assert spent == {"org-a": 29.5, "org-b": 0.0}
    text = generate_latest(_registry_of(cache)).decode()
    assert (
        'stability_credits_spent_total{default="true",organization_id="org-a",'
        'organization_name="A"} 29.5' in text
    )


def test_a_refused_key_shows_until_a_refresh_is_not_refused() -> None:
    from stability_user import AuthenticationError, PermissionDeniedError

    cache = CreditsCache()
    states = []
    for outcome in (
        _error(AuthenticationError),  # the account call: 401
        _balances(5.0, _error(PermissionDeniedError)),  # one organization's balance: 403
        _balances(5.0, _error(InternalServerError)),  # failing, but not refused
        _error(AuthenticationError),
        _error(InternalServerError),
    ):
        if isinstance(outcome, Exception):
            cache.record_failure(outcome)  # type: ignore[arg-type]
        else:
            cache.record(outcome)
        states.append(cache.snapshot().refused)
    assert states == [True, True, False, True, False]
    cache.record_failure(_error(AuthenticationError))
    assert "stability_api_key_refused 1.0" in generate_latest(_registry_of(cache)).decode()


def _registry_of(cache: CreditsCache) -> CollectorRegistry:
    from stability_user.monitoring._collector import metrics

    class Cached:
        def collect(self) -> Any:
            return metrics(cache.snapshot(), api_version="v1")

    registry = CollectorRegistry()
    registry.register(Cached())  # type: ignore[arg-type]
    return registry


def test_the_collector_in_an_apps_registry(
    standin: StandInAPI, standin_server: StandInServer
) -> None:
    with StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url) as client:
        collector = CreditsCollector(client, interval=3600)
        registry = CollectorRegistry()
        registry.register(collector)
        eventually(lambda: collector.cache.snapshot().refreshes)
        text = generate_latest(registry).decode()
        collector.close()
    assert (
        'stability_credits{default="true",organization_id="org-standin-personal",'
        'organization_name="Ada\'s studio"} 125.5' in text
    )
    assert 'stability_credits_refresh_success{organization_id="org-standin-lab"} 1.0' in text
    assert 'stability_api_requests_total{endpoint="balance",outcome="ok"} 3.0' in text
    assert 'stability_exporter_info{api_version="v1",version="' in text


def test_the_collector_refreshes_an_async_client_in_a_task(
    standin_server: StandInServer, http_backend: str
) -> None:
    async def main() -> str:
        async with AsyncStabilityUser(SAMPLE_API_KEY, base_url=standin_server.url) as client:
            collector = CreditsCollector(client, interval=1)
            registry = CollectorRegistry()
            registry.register(collector)
            while collector.cache.snapshot().refreshes < 3:
                await asyncio.sleep(0.01)
            await collector.aclose()
            return generate_latest(registry).decode()

    text = asyncio.run(main())
    assert 'organization_id="org-standin-lumen",organization_name="Lumen Games"} 42.0' in text


def test_a_bad_interval_is_refused(standin_server: StandInServer) -> None:
    from stability_user import ConfigurationError

    client = StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url)
    for interval in (0, -1, float("nan"), float("inf"), 86400.5):
        with pytest.raises(ConfigurationError, match="interval"):
            CreditsCollector(client, interval=interval)
    # Below a second: 1e-9 sent thousands of requests a second.
    for interval in (0.5, 1e-9):
        with pytest.raises(ConfigurationError, match="interval must be at least 1 s between"):
            CreditsCollector(client, interval=interval)
    client.close()


def test_importing_stability_user_never_imports_prometheus_client() -> None:
    code = (
        "import sys, stability_user; from stability_user import StabilityUser, get_balance; "
        "import stability_user._cli; print('prometheus_client' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout == "False\n"


# The exporter


@pytest.fixture
def exporter(standin: StandInAPI, standin_server: StandInServer) -> Iterator[ExporterServer]:
    client = StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url)
    server = ExporterServer(client, address="127.0.0.1", port=0, interval=3600)
    yield server
    server.close()
    client.close()


def test_scrapes_never_touch_the_api(standin: StandInAPI, exporter: ExporterServer) -> None:
    eventually(lambda: exporter.collector.cache.snapshot().refreshes)
    before = len(standin.requests)
    assert before == 4  # the first refresh: the account and three balances
    for _ in range(25):
        assert "stability_credits{" in scrape(exporter.url)
        assert get(f"{exporter.url}/healthz")[0] == 200
    assert len(standin.requests) == before


def test_healthz_and_unknown_paths(exporter: ExporterServer) -> None:
    eventually(lambda: exporter.collector.cache.snapshot().refreshes)
    status, body = get(f"{exporter.url}/healthz")
    health = json.loads(body)
    assert (status, health["status"], health["organizations"]) == (200, "ok", 3)
    assert get(f"{exporter.url}/nope")[0] == 404


def test_healthz_fails_while_the_account_cannot_be_fetched(
    standin: StandInAPI, standin_server: StandInServer
) -> None:
    standin.inject_error(401, endpoint="account", times=None)
    client = StabilityUser(SAMPLE_API_KEY, base_url=standin_server.url)
    server = ExporterServer(client, address="127.0.0.1", port=0, interval=3600)
    try:
        eventually(lambda: server.collector.cache.snapshot().refreshes)
        status, body = get(f"{server.url}/healthz")
        assert (status, json.loads(body)["status"]) == (503, "failing")
        assert (
            'stability_api_requests_total{endpoint="account",outcome="AuthenticationError"} 1.0'
            in scrape(server.url)
        )
    finally:
        server.close()
        client.close()


def test_names_that_cannot_be_encoded_are_replaced_and_metrics_still_answer() -> None:
    # The API's JSON may escape a lone surrogate ("\\ud800"), which no UTF-8 text can hold:
    # every scrape failed on it. It is replaced by U+FFFD when the answer is read.
    api = StandInAPI()
    api.add_account(
        SAMPLE_API_KEY,
        email="odd@example.com",
        organizations=[
            StandInOrganization("org-odd", "Lab \ud800", "OWNER", True, 5.0),
            StandInOrganization("org-\udfff", "Odd id", "MEMBER", False, 1.0),
        ],
    )
    with api.serve() as served, StabilityUser(SAMPLE_API_KEY, base_url=served.url) as client:
        server = ExporterServer(client, address="127.0.0.1", port=0, interval=3600)
        try:
            eventually(lambda: server.collector.cache.snapshot().refreshes)
            text = scrape(server.url)
        finally:
            server.close()
    assert 'organization_id="org-odd",organization_name="Lab \ufffd"} 5.0' in text
    assert 'stability_credits_refresh_success{organization_id="org-\ufffd"} 0.0' in text


def test_promtool_accepts_the_metrics(exporter: ExporterServer) -> None:
    promtool = tool("promtool")
    eventually(lambda: exporter.collector.cache.snapshot().refreshes)
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=scrape(exporter.url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""  # no naming-lint complaint at all


def exporter_process(url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "STABILITY_API_KEY": SAMPLE_API_KEY, "STABILITY_BASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "stability_user", "exporter", "--port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def exporter_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("Serving Stability credits metrics at http://127.0.0.1:"), line
    return line.split(" at ", 1)[1].split("/metrics", 1)[0]


@pytest.mark.parametrize(
    ("stop", "to"),
    [
        (signal.SIGTERM, "the process"),
        (signal.SIGINT, "the process"),
        # Linux may hand the process's signal to any thread (under load it does).
        (signal.SIGTERM, "another thread"),
    ],
)
def test_the_exporter_command_stops_cleanly(
    standin_server: StandInServer, stop: signal.Signals, to: str, http_backend: str
) -> None:
    process = exporter_process(standin_server.url, "--interval", "1")
    try:
        url = exporter_url(process)
        eventually(lambda: "stability_credits{" in scrape(url))
    finally:
        if to == "the process":
            process.send_signal(stop)
        else:
            signal_other_thread(process.pid, stop)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out == "stopped\n"
    assert "Traceback" not in err


def test_without_prometheus_client_the_exporter_says_what_to_install() -> None:
    result = without("prometheus_client", ["exporter"])
    assert result.returncode == 2
    assert result.stderr == (
        "stability-user: error: the exporter needs prometheus-client: "
        "pip install 'stability-user[exporter]'\n"
    )


# A real Prometheus


@pytest.fixture
def prometheus(
    tmp_path: Path, standin_server: StandInServer, http_backend: str
) -> Iterator[tuple[Prometheus, str]]:
    exporter = exporter_process(standin_server.url, "--interval", "1")
    try:
        target = exporter_url(exporter).removeprefix("http://")
        shutil.copy(RULES, tmp_path / "alerts.yml")
        configuration = (
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files: [alerts.yml]\n"
            "scrape_configs:\n  - job_name: stability-credits\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        with running_prometheus(tmp_path, configuration) as server:
            yield server, target
    finally:
        exporter.send_signal(signal.SIGTERM)
        exporter.communicate(timeout=30)


def test_a_real_prometheus_scrapes_the_exporter(
    prometheus: tuple[Prometheus, str], standin: StandInAPI
) -> None:
    server, target = prometheus
    # Each organization's credits, as Prometheus stored them from the exporter.
    credits = eventually(
        lambda: (
            server.query("stability_credits")
            if len(server.query("stability_credits")) == 3
            else None
        )
    )
    assert credits == {
        "org-standin-personal": 125.5,
        "org-standin-lumen": 42.0,
        "org-standin-lab": 3.25,
    }
    (up,) = server.api("targets")["activeTargets"]
    assert (up["health"], up["scrapeUrl"]) == ("up", f"http://{target}/metrics")
    info = server.api("query?query=stability_exporter_info")["result"][0]["metric"]
    assert info["api_version"] == "v1"

    # A changed balance shows after the next refresh.
    standin.set_credits("org-standin-lab", 99.0)
    eventually(
        lambda: (
            server.query('stability_credits{organization_id="org-standin-lab"}')
            == {"org-standin-lab": 99.0}
        )
    )

    # A failing organization: refresh_success 0, its last good credits kept.
    standin.inject_error(500, organization="org-standin-lumen", times=None)
    eventually(
        lambda: (
            server.query('stability_credits_refresh_success{organization_id="org-standin-lumen"}')
            == {"org-standin-lumen": 0.0}
        )
    )
    assert server.query('stability_credits{organization_id="org-standin-lumen"}') == {
        "org-standin-lumen": 42.0
    }
    assert server.query("stability_credits_refresh_success == 1").keys() == {
        "org-standin-personal",
        "org-standin-lab",
    }
    failures = server.query('stability_api_requests_total{outcome="InternalServerError"}')
    assert failures
    assert max(failures.values()) >= 1

    # deploy/'s alert rules are loaded. StabilityCreditsLow (below 100 for 10 minutes) is
    # pending for lumen (42) and lab (99), not for the personal organization (125.5).
    groups = server.api("rules")["groups"]
    written = yaml.safe_load(RULES.read_text())["groups"]
    assert {rule["name"] for group in groups for rule in group["rules"]} == {
        rule["alert"] for group in written for rule in group["rules"]
    }

    def alerts() -> set[tuple[str, str, str]]:
        return {
            (a["labels"]["alertname"], a["labels"].get("organization_id", ""), a["state"])
            for a in server.api("alerts")["alerts"]
        }

    expected = {
        ("StabilityCreditsLow", "org-standin-lumen", "pending"),
        ("StabilityCreditsLow", "org-standin-lab", "pending"),
        ("StabilityCreditsRefreshFailing", "org-standin-lumen", "pending"),
    }
    eventually(lambda: expected <= alerts())
    assert not any(org == "org-standin-personal" for _, org, _ in alerts())
