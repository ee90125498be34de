"""deploy/prometheus: the alert rules and their `promtool test rules` unit tests, the scrape
configuration, what every alert says (severity, summary, description, a runbook that exists),
and the PrometheusRule made from the same file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from markdown.extensions.toc import slugify

from support.prometheus import tool

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
SITE = "https://stability-user.github.io/stability-user/"
ALERTS = {
    "StabilityCreditsLow",
    "StabilityCreditsRunningOut",
    "StabilityCreditsRunawaySpend",
    "StabilityCreditsRefreshFailing",
    "StabilityKeyRefused",
    "StabilityProbeFailing",
    "StabilityExporterReloadFailed",
}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.mark.parametrize(
    "command",
    [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
        ["check", "config", "prometheus.yml"],
    ],
    ids=" ".join,
)
def test_promtool_checks_the_rules_and_runs_their_unit_tests(command: list[str]) -> None:
    result = subprocess.run(
        [tool("promtool"), *command],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    assert {rule["alert"] for rule in rules()} == ALERTS
    for alert in ALERTS:
        outcomes = [bool(case["exp_alerts"]) for case in cases if case["alertname"] == alert]
        assert True in outcomes, f"{alert} is never shown firing"
        assert False in outcomes, f"{alert} is never shown quiet"


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_alert_says_how_bad_what_where_and_what_to_do(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"warning", "critical"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    text = annotations["summary"] + annotations["description"]
    assert "$value" in annotations["description"]
    assert "$labels.target" in text or rule["alert"] == "StabilityExporterReloadFailed"
    assert "$labels.instance" in text
    if "stability_credits" in rule["expr"]:  # an organization's: it is named
        assert re.search(r"organization_(name|id)", text)
    assert runbook_problem(annotations["runbook_url"]) is None
    assert annotations["runbook_url"].endswith("#" + rule["alert"].lower())


def runbook_problem(url: str) -> str | None:
    """Why ``url`` is not a section of this site's pages, or ``None`` when it is."""
    if not url.startswith(SITE):
        return f"{url} is not on {SITE}"
    parts = urlsplit(url.removeprefix(SITE))
    page = ROOT / "docs" / (parts.path.strip("/") + ".md")
    if not page.is_file():
        return f"{url}: no page docs/{page.name}"
    if parts.fragment not in headings(page):
        return f"{url}: docs/{page.name} has no heading #{parts.fragment}"
    return None


def headings(page: Path) -> set[str]:
    """The anchors of ``page``'s headings, as the site's table of contents makes them."""
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6} (.+)", line)):
            found.add(slugify(heading[1].strip(), "-"))
    return found


def test_a_runbook_that_points_nowhere_is_caught() -> None:
    assert runbook_problem(f"{SITE}deploy/#stabilitycreditslow") is None
    assert runbook_problem(f"{SITE}deploy/#stabilitycreditsgone") == (
        f"{SITE}deploy/#stabilitycreditsgone: docs/deploy.md has no heading #stabilitycreditsgone"
    )
    assert runbook_problem(f"{SITE}nowhere/#x") == f"{SITE}nowhere/#x: no page docs/nowhere.md"
    assert runbook_problem("https://example.com/deploy/") is not None


def test_the_prometheus_rule_holds_the_same_rules() -> None:
    resource = yaml.safe_load((ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml").read_text())
    assert resource["kind"] == "PrometheusRule"
    assert (
        resource["spec"]["groups"]
        == yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    )


def test_the_generated_files_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy_manifests.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
