"""deploy/grafana: the dashboard is what Grafana's own schema library makes, and every query of
every panel returns data from a real Prometheus scraping a real exporter.

The exporter runs with ``--config`` and three targets on the stand-in, one of them with a
revoked key; Prometheus scrapes it with deploy/prometheus/prometheus.yml (every second, and the
target names and address replaced), the stand-in's credits are spent and topped up, the
exporter reloads once, then each panel's query is evaluated through Prometheus' HTTP API with
the variables set to All, as Grafana would send it.
"""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from stability_user.testing import SAMPLE_API_KEY, StandInAPI, StandInServer
from support.many_keys import exporter_process, sample_and_globex
from support.prometheus import Prometheus, eventually, get, running_prometheus

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "stability-credits.json"
PROMETHEUS = ROOT / "deploy" / "prometheus"
GLOBEX_KEY = "sk-GLOBEX-grafana-test-0123456789"
# What Grafana puts in for its own variables on a short time range (its minimum
# $__rate_interval is four scrape intervals of its data source's default, 15 s).
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1s"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_dashboard_is_what_grafanas_schema_reads_back() -> None:
    # Every field is one Grafana's schema knows, of the type it expects: a field it does not
    # know is dropped on the way through, and the text would differ.
    text = DASHBOARD.read_text()
    read = Dashboard.from_json(json.loads(text))
    assert json.dumps(read, cls=JSONEncoder, indent=2, sort_keys=True) + "\n" == text
    broken = json.loads(text)
    broken["panels"][1]["colour"] = "red"
    again = Dashboard.from_json(broken)
    assert "colour" not in json.dumps(again, cls=JSONEncoder)


def test_the_dashboard_has_the_variables_and_panels_it_promises() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "target", "organization"]
    assert variables["datasource"]["type"] == "datasource"
    for name in ("job", "target", "organization"):
        assert variables[name]["includeAll"]
        assert variables[name]["multi"]
        assert variables[name]["allValue"] == ".*"
    titles = [p["title"] for p in board["panels"] if p["type"] != "row"]
    assert titles == [
        "Credits now",
        "Credits over time",
        "Spend per day",
        "Days left at the last day's spend",
        "Probe success",
        "Key refused",
        "Probe duration",
        "Refresh outcomes",
        "Configuration reloads",
    ]
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids)


def grafana_sends(expr: str) -> str:
    """``expr`` as Grafana sends it with every variable at All."""
    for name in ("job", "target", "organization"):
        expr = expr.replace(f"${name}", ".*")
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable the test does not know: {expr}"
    return expr


@pytest.fixture
def standin() -> StandInAPI:
    return sample_and_globex(GLOBEX_KEY)


@pytest.fixture
def scraped(standin_server: StandInServer, tmp_path: Path) -> Iterator[tuple[Prometheus, str]]:
    """A real exporter of three targets (one revoked), and a real Prometheus scraping it."""
    (tmp_path / "globex.key").write_text(GLOBEX_KEY)
    (tmp_path / "globex.key").chmod(0o600)
    config = tmp_path / "exporter.toml"
    config.write_text(
        "[exporter]\ninterval = 1\n"
        f'[targets.acme]\nkey_env = "ACME_KEY"\nbase_url = "{standin_server.url}"\n'
        f'[targets.globex]\nkey_file = "globex.key"\nbase_url = "{standin_server.url}"\n'
        f'[targets.revoked]\nkey_env = "REVOKED_KEY"\nbase_url = "{standin_server.url}"\n'
    )
    env = {
        "ACME_KEY": SAMPLE_API_KEY,
        "REVOKED_KEY": "sk-revoked-grafana-0123456789",
        "STABILITY_HISTORY": "off",
    }
    process, url = exporter_process(config, env)
    try:
        address = url.removeprefix("http://")
        scrape = (PROMETHEUS / "prometheus.yml").read_text()
        scrape = scrape.replace("scrape_interval: 60s", "scrape_interval: 1s")
        scrape = scrape.replace("evaluation_interval: 60s", "evaluation_interval: 1s")
        scrape = scrape.replace("targets: [acme, globex]", "targets: [acme, globex, revoked]")
        scrape = scrape.replace("replacement: 127.0.0.1:9464", f"replacement: {address}")
        scrape = scrape.replace('targets: ["127.0.0.1:9464"]', f'targets: ["{address}"]')
        assert scrape.count(address) == 2
        folder = tmp_path / "prometheus"
        folder.mkdir()
        (folder / "alerts.yml").write_text((PROMETHEUS / "alerts.yml").read_text())
        with running_prometheus(folder, scrape) as server:
            yield server, url
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


# Five waits in a row, each bounded by eventually()'s 30 s, on a machine that also runs
# Prometheus, the exporter and the stand-in: past pytest-timeout's 60 s only when loaded.
@pytest.mark.timeout(180)
def test_every_panel_query_returns_data_from_a_real_prometheus(
    scraped: tuple[Prometheus, str], standin: StandInAPI
) -> None:
    server, exporter = scraped
    started = time.time()
    eventually(lambda: len(server.query("stability_probe_success", by="target")) == 3)
    # Spend, a top-up, more spend: the counter adds up the falls only (25 + 2), after the
    # refreshes and scrapes that see each step.
    for organization, credits in (
        ("org-standin-personal", 100.5),
        ("org-standin-personal", 500.0),
        ("org-standin-personal", 498.0),
    ):
        standin.set_credits(organization, credits)
        eventually(
            lambda credits=credits: (
                server.query(
                    'stability_credits{target="acme", organization_id="org-standin-personal"}'
                )
                == {"org-standin-personal": credits}
            )
        )
    spent = server.query(
        'stability_credits_spent_total{target="acme", organization_id="org-standin-personal"}'
    )
    assert spent == {"org-standin-personal": 27.0}
    assert get(f"{exporter}/-/reload", method="POST")[0] == 200
    eventually(
        lambda: (
            server.query('stability_exporter_config_reloads_total{outcome="success"}', by="")
            == {"": 1.0}
        )
    )

    board = dashboard()
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]).groups()  # type: ignore[union-attr]
            values = label_values(server, grafana_sends(metric), label)
            assert values, f"variable {variable['name']} has no values"
    assert label_values(server, "stability_probe_success", "target") == [
        "acme",
        "globex",
        "revoked",
    ]

    empty = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = grafana_sends(target["expr"])
            found = evaluate(server, expr, instant=target.get("instant", False), since=started)
            if not found:
                empty.append(f"{panel['title']}: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def label_values(server: Prometheus, selector: str, label: str) -> list[str]:
    query = urllib.parse.urlencode({"match[]": selector})
    status, body = get(f"{server.url}/api/v1/label/{label}/values?{query}")
    assert status == 200, body
    values: list[str] = json.loads(body)["data"]
    return values


def evaluate(server: Prometheus, expr: str, *, instant: bool, since: float) -> list[Any]:
    """``expr``'s result: at this instant, or over the test's time range a second apart."""
    if instant:
        parameters = {"query": expr}
        path = "query"
    else:
        parameters = {"query": expr, "start": str(since - 60), "end": str(time.time()), "step": "1"}
        path = "query_range"
    status, body = get(f"{server.url}/api/v1/{path}?" + urllib.parse.urlencode(parameters))
    assert status == 200, (expr, body)
    result: list[Any] = json.loads(body)["data"]["result"]
    return result
