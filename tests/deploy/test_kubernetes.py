"""deploy/kubernetes: what ``kubectl kustomize`` renders from it validates, the core kinds with
kubernetes-validate (strict: an unknown field fails), the Prometheus Operator's with its own
schemas (npm's @kubernetes-models/prometheus-operator, in tools/prometheus-operator); the pod is
hardened, and its configuration loads with the Secret's keys beside it."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stability_user import __version__
from stability_user.monitoring._exporter_config import load_config
from support.tools import machine_tool

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
VALIDATOR = ROOT / "tools" / "prometheus-operator" / "validate.mjs"
OPERATOR_KINDS = {"ServiceMonitor", "Probe", "PrometheusRule", "ScrapeConfig"}


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    result = subprocess.run(
        [machine_tool("kubectl", "kubernetes-client"), "kustomize", str(KUBERNETES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["kind"] == kind]
    return found


def operator_problems(resources: list[dict[str, Any]]) -> list[str]:
    """What the Prometheus Operator's schemas say of ``resources``: one line each."""
    node = machine_tool("node", "nodejs")
    if not (VALIDATOR.parent / "node_modules").is_dir():
        pytest.fail("tools/prometheus-operator is not installed: make deploy-check installs it")
    result = subprocess.run(
        [node, str(VALIDATOR)],
        input=json.dumps(resources),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    *problems, summary = result.stdout.splitlines()
    assert summary.startswith(f"{len(resources)} resource(s), {len(problems)} problem(s)")
    return problems


def core_problem(resource: dict[str, Any]) -> str | None:
    try:
        kubernetes_validate.validate(resource, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as error:
        return f"{resource['kind']}: {error.message}"
    return None


def test_every_file_is_in_the_kustomization_and_rendered(rendered: list[dict[str, Any]]) -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert len(rendered) == len(files)
    assert {r["metadata"].get("namespace") for r in rendered if r["kind"] != "Namespace"} == {
        "stability-user"
    }


def test_the_core_kinds_validate(rendered: list[dict[str, Any]]) -> None:
    core = [r for r in rendered if r["kind"] not in OPERATOR_KINDS]
    assert {r["kind"] for r in core} == {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
    }
    assert [problem for r in core if (problem := core_problem(r))] == []


def test_the_prometheus_operator_kinds_validate(rendered: list[dict[str, Any]]) -> None:
    operator = [r for r in rendered if r["kind"] in OPERATOR_KINDS]
    assert {r["kind"] for r in operator} == {"ServiceMonitor", "Probe", "PrometheusRule"}
    assert operator_problems(operator) == []


def test_a_wrong_manifest_fails_its_validation(rendered: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(by_kind(rendered, "Deployment"))
    deployment["spec"]["replica"] = 1  # a typo
    assert "'replica' was unexpected" in (core_problem(deployment) or "")
    probe = copy.deepcopy(by_kind(rendered, "Probe"))
    probe["spec"]["interval"] = 60  # not a duration
    rule = copy.deepcopy(by_kind(rendered, "PrometheusRule"))
    del rule["spec"]["groups"][0]["name"]
    problems = operator_problems([probe, rule])
    assert len(problems) == 2
    assert problems[0].startswith("Probe/stability-credits: data/spec/interval must be string")
    assert problems[1] == (
        "PrometheusRule/stability-credits: data/spec/groups/0 must have required property name"
    )


def test_the_pod_is_hardened(rendered: list[dict[str, Any]]) -> None:
    pod = by_kind(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]) == {"requests", "limits"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["image"] == f"ghcr.io/stability-user/stability-user:{__version__}"
    (config,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert config == {"name": "config", "mountPath": "/config", "readOnly": True}
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    assert volume["projected"]["defaultMode"] == 0o440  # the exporter refuses keys others read
    sources = {next(iter(source)) for source in volume["projected"]["sources"]}
    assert sources == {"configMap", "secret"}


def test_the_configuration_loads_with_the_secrets_keys_beside_it(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    # The pod's /config, as the projected volume lays it out.
    for name, text in by_kind(rendered, "ConfigMap")["data"].items():
        (tmp_path / name).write_text(text)
    for name, text in by_kind(rendered, "Secret")["stringData"].items():
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o440)
    config = load_config(str(tmp_path / "exporter.toml"))
    probed = by_kind(rendered, "Probe")["spec"]["targets"]["staticConfig"]["static"]
    assert list(config.targets) == probed  # the Probe scrapes every target, and only those
    assert by_kind(rendered, "Probe")["spec"]["prober"] == {
        "url": "stability-user-exporter.stability-user.svc:9464",
        "path": "/probe",
    }
