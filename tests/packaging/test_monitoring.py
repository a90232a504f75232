"""deploy/monitoring: the alert rules and the dashboard, checked by promtool.

promtool is not a Python package: ``.ci/run`` copies it out of Debian's ``prometheus``
package into the venv. Without it these tests skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from cleaner.metrics import Metrics
from tests.packaging._tools import ROOT, load_yaml, rendered, run, tool

MONITORING = ROOT / "deploy/monitoring"
RULES = MONITORING / "rules.yaml"
RULE_TESTS = MONITORING / "rules.test.yaml"
DASHBOARD = MONITORING / "dashboard.json"

#: Metrics the rules use that cleaner/metrics.py does not declare yet (the lead adds them).
ANNOUNCED = frozenset(
    {
        "cleaner_overdue_batches",
        "cleaner_oldest_overdue_seconds",
        "cleaner_deletion_lag_seconds_bucket",
        "cleaner_audit_unavailable_total",
        "cleaner_blast_radius_exceeded",
        "cleaner_blast_radius_stops_total",
        "cleaner_batches_held",
        "cleaner_batches_unknown_status",
        "cleaner_schedule_interval_seconds",
    }
)

#: What Grafana puts in place of its variables, for a query promtool can parse.
GRAFANA_VARIABLES = {
    "workspace": ".*",
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1d",
    "datasource": "prometheus",
}


def find_promtool(candidates: Iterable[Path], *, path: str | None) -> str | None:
    """The first executable promtool among ``candidates``, else the one on ``path``."""
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("promtool", path=path)


def require_promtool(found: str | None, *, env: Mapping[str, str]) -> str:
    """``found``, or skip (locally) or fail (when ``CI`` is ``true``) without it."""
    if found is not None:
        return found
    hint = "promtool not found in the venv or on PATH; .ci/run installs it (deploy/README.md)"
    if env.get("CI") == "true":
        pytest.fail(hint)
    pytest.skip(hint)


@pytest.fixture(scope="module")
def promtool() -> str:
    """The promtool these tests run."""
    venvs = (Path(sys.executable).parent, ROOT / ".venv/bin")
    found = find_promtool((venv / "promtool" for venv in venvs), path=os.environ.get("PATH"))
    return require_promtool(found, env=os.environ)


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule in rules.yaml."""
    groups = load_yaml(RULES)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' collapsed panels included."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def promql(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced, as Grafana would send it."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in GRAFANA_VARIABLES, f"unknown dashboard variable ${name} in {expr}"
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title and refId, expr) of every panel target."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (f"{panel['title']} {target['refId']}", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def check_as_recording_rules(promtool: str, exprs: list[str], tmp_path: Path) -> tuple[int, str]:
    """``promtool check rules`` on ``exprs`` written as recording rules: exit code and output."""
    rules = [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(promtool, "check", "rules", str(path))
    return result.returncode, result.stdout + result.stderr


def exported_names() -> set[str]:
    """The sample names a fresh Metrics registry exposes (children not yet created included)."""
    registry = CollectorRegistry()
    Metrics(registry)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    suffixes |= {"info": ("_info",), "gauge": ("",)}
    return {
        family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]
    }


def test_a_missing_promtool_fails_under_ci_and_skips_elsewhere(tmp_path: Path) -> None:
    """No promtool: pytest.fail when CI=true, a skip otherwise, the path when present."""
    assert find_promtool([tmp_path / "promtool"], path=str(tmp_path)) is None
    with pytest.raises(pytest.fail.Exception):
        require_promtool(None, env={"CI": "true"})
    with pytest.raises(pytest.skip.Exception):
        require_promtool(None, env={})
    fake = tmp_path / "promtool"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_promtool([tmp_path / "missing", fake], path="") == str(fake)


def test_promtool_accepts_the_rule_file(promtool: str) -> None:
    """promtool check rules passes rules.yaml (syntax, PromQL, templates)."""
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_promtool_unit_tests_pass(promtool: str) -> None:
    """promtool test rules passes rules.test.yaml: each alert fires and stays quiet as written."""
    result = run(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_quiet_with_and_without_a_workspace() -> None:
    """Each alert has a test where it fires, one where it does not, and both label shapes."""
    cases: dict[str, list[list[dict[str, Any]]]] = {}
    for test in load_yaml(RULE_TESTS)["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    for rule in alert_rules():
        name = rule["alert"]
        expected = cases.get(name, [])
        assert [] in expected, f"{name}: no case where it stays quiet"
        fired = [alert["exp_labels"] for alerts in expected for alert in alerts]
        assert fired, f"{name}: no case where it fires"
        if name != "CleanerMetricsAbsent":  # absent() has no series to take a workspace from
            assert any(labels.get("workspace") == "prod" for labels in fired), name
            assert any("workspace" not in labels for labels in fired), name


def test_every_alert_has_a_severity_annotations_and_a_runbook_in_the_readme() -> None:
    """severity critical|warning, summary and description, a runbook anchor the README has."""
    readme = (ROOT / "deploy/README.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", readme, flags=re.MULTILINE)
    }
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), rule["alert"]
        path, _, anchor = annotations["runbook"].partition("#")
        assert path == "deploy/README.md", rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no such heading in deploy/README.md"


def test_the_prometheusrule_holds_exactly_the_rule_file_groups() -> None:
    """prometheusrule.yaml's spec.groups equal rules.yaml's groups (no drift)."""
    resource = load_yaml(MONITORING / "prometheusrule.yaml")
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"]["groups"] == load_yaml(RULES)["groups"], (
        "prometheusrule.yaml differs from rules.yaml: copy rules.yaml's groups under spec:"
    )


def test_the_kustomization_renders_the_rules_a_service_monitor_and_the_dashboard() -> None:
    """kubectl kustomize deploy/monitoring: rules, a scrape of the metrics Service, dashboard."""
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered("deploy/monitoring"))}
    assert set(docs) == {"PrometheusRule", "ServiceMonitor", "ConfigMap"}
    assert {doc["metadata"]["namespace"] for doc in docs.values()} == {"cleaner"}
    assert docs["PrometheusRule"]["spec"] == {"groups": load_yaml(RULES)["groups"]}
    dashboard = docs["ConfigMap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["dashboard.json"]) == json.loads(DASHBOARD.read_text())
    (service,) = [
        doc for doc in yaml.safe_load_all(rendered("deploy/kubernetes")) if doc["kind"] == "Service"
    ]
    monitor = docs["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_the_dashboard_takes_datasource_and_workspace_from_template_variables() -> None:
    """schemaVersion 39, $datasource on every panel and target, a multi-value $workspace."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] == 39
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    workspace = variables["workspace"]
    assert workspace["includeAll"]
    assert workspace["multi"]
    assert workspace["allValue"] == ".*"  # also matches series without the label
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Every panel target, its variables substituted, passes promtool check rules."""
    exprs = [promql(expr) for _, expr in dashboard_queries()]
    assert len(exprs) >= 20
    code, output = check_as_recording_rules(promtool, exprs, tmp_path)
    assert code == 0, output


def test_the_dashboard_check_rejects_a_broken_query(promtool: str, tmp_path: Path) -> None:
    """The same check fails on a query Prometheus would reject, so it can catch one."""
    broken = promql('sum by (workspace (rate(cleaner_cycles_total{workspace=~"$workspace"}[5m]))')
    code, output = check_as_recording_rules(promtool, [broken], tmp_path)
    assert code != 0, output


def test_every_dashboard_query_filters_by_the_workspace_variable() -> None:
    """Each target selects workspace=~"$workspace" on every metric it reads."""
    for where, expr in dashboard_queries():
        selectors = re.findall(r"\bcleaner_\w+(\{[^}]*\})?", expr)
        assert selectors, where
        assert all('workspace=~"$workspace"' in s for s in selectors), f"{where}: {expr}"


def test_grafana_variables_are_substituted_and_unknown_ones_refused() -> None:
    """$workspace and $__rate_interval become PromQL; a variable we do not know is an error."""
    expr = 'rate(cleaner_cycles_total{workspace=~"$workspace"}[$__rate_interval])'
    assert promql(expr) == 'rate(cleaner_cycles_total{workspace=~".*"}[5m])'
    with pytest.raises(AssertionError, match="unknown dashboard variable"):
        promql("cleaner_dry_run{instance=~'$instance'}")


def test_rules_tests_and_dashboard_use_only_metrics_cleaner_exports_or_will() -> None:
    """No typo in a metric name: each is exported by cleaner.metrics or announced by the lead."""
    texts = [RULES.read_text(), RULE_TESTS.read_text(), *(e for _, e in dashboard_queries())]
    used = {name for text in texts for name in re.findall(r"\bcleaner_[a-z_]+\b", text)}
    assert used - exported_names() - ANNOUNCED == set()
    assert ANNOUNCED & used == ANNOUNCED  # the list stays honest: every name in it is used


def test_yamllint_passes_on_the_monitoring_files() -> None:
    """yamllint --strict with the repo's .yamllint passes deploy/monitoring."""
    result = run(tool("yamllint"), "--strict", "deploy/monitoring")
    assert result.returncode == 0, result.stdout + result.stderr
