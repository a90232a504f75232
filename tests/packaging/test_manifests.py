"""Kubernetes manifests: lint, render offline, validate strictly, and hold the safety rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cleaner.daemon import GRACE_S
from tests.packaging._tools import KUSTOMIZE_DIRS, ROOT, documents, rendered, resource, run, tool


def _pod(directory: str) -> dict[str, Any]:
    if directory.endswith("cronjob"):
        pod: dict[str, Any] = resource(directory, "CronJob")["spec"]["jobTemplate"]["spec"][
            "template"
        ]["spec"]
    else:
        pod = resource(directory, "Deployment")["spec"]["template"]["spec"]
    return pod


def test_yamllint_passes_on_every_yaml_file() -> None:
    """yamllint (with .yamllint) passes deploy/ in strict mode."""
    result = run(tool("yamllint"), "--strict", "deploy", ".yamllint")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS)
def test_the_rendered_manifests_validate_strictly(directory: str, tmp_path: Path) -> None:
    """kubectl kustomize output passes kubernetes-validate --strict (no unknown fields)."""
    output = tmp_path / "rendered.yaml"
    output.write_text(rendered(directory))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", str(output))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_secret_validates_and_holds_no_real_key() -> None:
    """The Secret is an example, outside the kustomization, with a placeholder key."""
    path = ROOT / "deploy/kubernetes/secret.example.yaml"
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "EXAMPLE-NOT-A-REAL-KEY" in path.read_text()
    for directory in KUSTOMIZE_DIRS:
        assert all(doc["kind"] != "Secret" for doc in documents(directory))


@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS)
def test_the_pod_runs_locked_down(directory: str) -> None:
    """Non-root, read-only root, no capabilities, RuntimeDefault seccomp, no SA token."""
    pod = _pod(directory)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert pod["terminationGracePeriodSeconds"] == 30 > GRACE_S + 2


def test_the_deployment_is_one_recreated_replica_probed_on_the_health_port() -> None:
    """One replica, Recreate, probes on /livez and /readyz of the named health port."""
    deployment = resource("deploy/kubernetes", "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = resource("deploy/kubernetes", "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS)
def test_dry_run_is_on_in_the_shipped_configuration(directory: str) -> None:
    """Nothing is deleted until the operator turns dry run off on purpose."""
    assert resource(directory, "ConfigMap")["data"]["CLEANER_DRY_RUN"] == "true"


def test_the_cronjob_runs_once_and_never_overlaps() -> None:
    """The overlay swaps the Deployment and Service for a Forbid CronJob of run --once."""
    kinds = {doc["kind"] for doc in documents("deploy/kubernetes/overlays/cronjob")}
    assert "Deployment" not in kinds
    assert "Service" not in kinds
    cronjob = resource("deploy/kubernetes/overlays/cronjob", "CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = _pod("deploy/kubernetes/overlays/cronjob")["containers"]
    assert container["args"] == ["run", "--once"]
    configmap = resource("deploy/kubernetes/overlays/cronjob", "ConfigMap")
    assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]


def test_the_network_policy_allows_only_dns_and_https_out() -> None:
    """Egress: port 53 (UDP and TCP) and 443 (TCP), nothing else."""
    policy = resource("deploy/kubernetes", "NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    allowed = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert allowed == {("UDP", 53), ("TCP", 53), ("TCP", 443)}
    assert all(rule.get("ports") for rule in policy["egress"])


REVIEW = "deploy/kubernetes/overlays/review"


def _review_cronjobs() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents(REVIEW) if d["kind"] == "CronJob"}


def test_the_review_overlay_validates_strictly(tmp_path: Path) -> None:
    """Plan on a schedule, apply after review: the rendered overlay passes --strict."""
    output = tmp_path / "rendered.yaml"
    output.write_text(rendered(REVIEW))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", str(output))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_review_overlay_plans_nightly_and_applies_only_when_started_by_hand() -> None:
    """A plan CronJob writing to the volume; a suspended apply of approved.json, read-only."""
    kinds = {doc["kind"] for doc in documents(REVIEW)}
    assert {"Deployment", "Service"} & kinds == set()
    assert "PersistentVolumeClaim" in kinds
    jobs = _review_cronjobs()
    assert set(jobs) == {"cleaner-plan", "cleaner-apply"}
    plan, apply = jobs["cleaner-plan"]["spec"], jobs["cleaner-apply"]["spec"]
    assert plan.get("suspend", False) is False
    assert apply["suspend"] is True
    (planner,) = plan["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    (applier,) = apply["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert planner["args"][0] == "plan"
    assert "--out" in planner["args"]
    assert applier["args"] == ["apply", "/plans/approved.json"]
    plans_mount = {m["name"]: m for m in applier["volumeMounts"]}["plans"]
    assert plans_mount["readOnly"] is True
    assert {"name": "CLEANER_DRY_RUN", "value": "false"} in applier["env"]
    assert all(e["name"] != "CLEANER_DRY_RUN" for e in planner.get("env", []))
    assert resource(REVIEW, "ConfigMap")["data"]["CLEANER_DRY_RUN"] == "true"


def test_the_review_pods_run_locked_down() -> None:
    """Both CronJobs: non-root, read-only root, no capabilities, no service-account token."""
    for job in _review_cronjobs().values():
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert job["metadata"]["namespace"] == "cleaner"
