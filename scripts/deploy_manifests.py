"""``make deploy-manifests``: write deploy/'s generated files; ``--check`` says which are stale.

- ``deploy/grafana/stability-credits.json``: the Grafana dashboard, built with Grafana's own
  typed schema (grafana-foundation-sdk), so a panel or field Grafana does not know cannot be
  written (`make typecheck` runs mypy --strict on this file too).
- ``deploy/kubernetes/prometheusrule.yaml``: deploy/prometheus/alerts.yml as a Prometheus
  Operator ``PrometheusRule``, the same groups and rules.

The dashboard's variables are multi-valued with "All" as ``.*``, so every query also matches the
single-key exporter's series, which have no ``target`` label.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "stability-credits.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_RULE = ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml"

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# A credits series of the chosen jobs, targets and organizations.
CREDITS = 'job=~"$job", target=~"$target", organization_name=~"$organization"'
# A target's own series (a probe's, the exporter's for a target).
TARGET = 'job=~"$job", target=~"$target"'
ORG_LEGEND = "{{organization_name}} {{target}}"


def query(expr: str, legend: str, *, instant: bool = False) -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)
    return built.instant() if instant else built.range()


def variable(name: str, label: str, definition: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(definition)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def ok_or_not(zero: str, one: str) -> list[ValueMapping]:
    return [
        ValueMap(
            options={
                "0": ValueMappingResult(text=zero, color="red"),
                "1": ValueMappingResult(text=one, color="green"),
            }
        )
    ]


def build_dashboard() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard("Stability credits")
        .uid("stability-credits")
        .description(
            "Stability AI credits from stability-user exporter, one key or many: credits, spend, "
            "days left, probes, refreshes and reloads (deploy/grafana in stability-user)."
        )
        .tags(["stability", "credits"])
        .timezone("browser")
        .refresh("1m")
        .time("now-7d", "now")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(variable("job", "Job", "label_values(stability_credits, job)"))
        .with_variable(
            variable(
                "target", "Target", 'label_values(stability_probe_success{job=~"$job"}, target)'
            )
        )
        .with_variable(
            variable(
                "organization",
                "Organization",
                f"label_values(stability_credits{{{TARGET}}}, organization_name)",
            )
        )
        .with_row(dashboard.Row("Credits"))
        .with_panel(
            stat.Panel()
            .title("Credits now")
            .description("Each organization's credits, as of its last successful refresh.")
            .with_target(query(f"stability_credits{{{CREDITS}}}", ORG_LEGEND, instant=True))
            .unit("none")
            .decimals(2)
            .graph_mode(BigValueGraphMode.NONE)
            .color_mode(BigValueColorMode.VALUE)
            .span(8)
            .height(8)
        )
        .with_panel(
            timeseries.Panel()
            .title("Credits over time")
            .with_target(query(f"stability_credits{{{CREDITS}}}", ORG_LEGEND))
            .unit("none")
            .decimals(2)
            .min(0)
            .line_width(2)
            .legend(common_legend())
            .span(16)
            .height(8)
        )
        .with_panel(
            timeseries.Panel()
            .title("Spend per day")
            .description("Credits spent each day; a top-up is never spend.")
            .interval("1d")
            .with_target(
                query(f"increase(stability_credits_spent_total{{{CREDITS}}}[1d])", ORG_LEGEND)
            )
            .draw_style(GraphDrawStyle.BARS)
            .fill_opacity(80)
            .stacking(common_stacking())
            .unit("none")
            .decimals(2)
            .min(0)
            .legend(common_legend())
            .span(16)
            .height(8)
        )
        .with_panel(
            stat.Panel()
            .title("Days left at the last day's spend")
            .description(
                "The credits left over the last day's spend; organizations that spent "
                "nothing are not shown."
            )
            .with_target(
                query(
                    f"stability_credits{{{CREDITS}}} / "
                    f"(rate(stability_credits_spent_total{{{CREDITS}}}[1d]) * 86400 > 0)",
                    ORG_LEGEND,
                    instant=True,
                )
            )
            .unit("d")
            .decimals(1)
            .graph_mode(BigValueGraphMode.NONE)
            .span(8)
            .height(8)
        )
        .with_row(dashboard.Row("Targets"))
        .with_panel(
            stat.Panel()
            .title("Probe success")
            .description("1 if the target's last refresh fetched every organization's credits.")
            .with_target(query(f"stability_probe_success{{{TARGET}}}", "{{target}}", instant=True))
            .mappings(ok_or_not("failing", "ok"))
            .color_mode(BigValueColorMode.BACKGROUND)
            .graph_mode(BigValueGraphMode.NONE)
            .span(8)
            .height(8)
        )
        .with_panel(
            stat.Panel()
            .title("Key refused")
            .description("1 while the API refuses the target's key (401 or 403).")
            .with_target(
                query(f"stability_api_key_refused{{{TARGET}}}", "{{target}}", instant=True)
            )
            .mappings(ok_or_not("accepted", "refused"))
            .color_mode(BigValueColorMode.BACKGROUND)
            .graph_mode(BigValueGraphMode.NONE)
            .span(8)
            .height(8)
        )
        .with_panel(
            timeseries.Panel()
            .title("Probe duration")
            .with_target(query(f"stability_probe_duration_seconds{{{TARGET}}}", "{{target}}"))
            .unit("s")
            .min(0)
            .legend(common_legend())
            .span(8)
            .height(8)
        )
        .with_row(dashboard.Row("Exporter"))
        .with_panel(
            timeseries.Panel()
            .title("Refresh outcomes")
            .description("Background refreshes per target: ok, or the error's class.")
            .with_target(
                query(
                    "sum by (target, outcome) (increase(stability_exporter_target_refreshes_total"
                    '{target=~"$target"}[$__rate_interval]))',
                    "{{target}} {{outcome}}",
                )
            )
            .draw_style(GraphDrawStyle.BARS)
            .stacking(common_stacking())
            .min(0)
            .legend(common_legend())
            .span(12)
            .height(8)
        )
        .with_panel(
            timeseries.Panel()
            .title("Configuration reloads")
            .description(
                "Reloads (SIGHUP or POST /-/reload) by outcome, and whether the last "
                "one loaded the file."
            )
            .with_target(
                query(
                    "sum by (instance, outcome) "
                    "(increase(stability_exporter_config_reloads_total[$__rate_interval]))",
                    "{{instance}} {{outcome}}",
                )
            )
            .with_target(
                query(
                    "stability_exporter_config_last_reload_successful",
                    "{{instance}} last reload successful",
                ).ref_id("B")
            )
            .min(0)
            .legend(common_legend())
            .span(12)
            .height(8)
        )
    )


def common_legend() -> common.VizLegendOptions:
    return (
        common.VizLegendOptions()
        .display_mode(LegendDisplayMode.LIST)
        .placement(LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def common_stacking() -> common.StackingConfig:
    return common.StackingConfig().mode(StackingMode.NORMAL)


def dashboard_json() -> str:
    built = build_dashboard().build()
    for number, panel in enumerate(built.panels or [], 1):  # Grafana wants them unique
        panel.id_val = number
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def prometheus_rule_yaml() -> str:
    rules = yaml.safe_load(RULES.read_text())
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "stability-credits",
            "labels": {"app.kubernetes.io/name": "stability-user-exporter"},
        },
        "spec": {"groups": rules["groups"]},
    }
    header = (
        "# Made from deploy/prometheus/alerts.yml by `make deploy-manifests`: edit that file,\n"
        "# then run it (a test keeps the two equal).\n"
    )
    body: str = yaml.safe_dump(resource, sort_keys=False, width=1000, allow_unicode=True)
    return header + body


def main() -> int:
    parser = argparse.ArgumentParser(description="Write deploy/'s generated files.")
    parser.add_argument("--check", action="store_true", help="write nothing; fail if stale")
    args = parser.parse_args()
    stale = []
    for path, text in ((DASHBOARD, dashboard_json()), (PROMETHEUS_RULE, prometheus_rule_yaml())):
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        names = ", ".join(map(str, stale))
        print(f"{names}: stale; run `make deploy-manifests` and commit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
