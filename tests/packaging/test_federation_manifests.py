"""The federation component: rendered in both variants, validated strictly, and keyless."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from cleaner.credentials import CredentialKind, credential_kind
from tests.packaging._tools import ROOT, run, tool

KUSTOMIZE = ROOT / "deploy/kubernetes"
VARIANTS = {
    "deployment": ["common", "federation"],
    "cronjob": ["cronjob", "common", "federation"],
}
SHIPPED = KUSTOMIZE / "overlays/federation"


def _overlay(where: Path, components: list[str], extra: str = "") -> Path:
    """An operator's overlay in ``where``, using the shipped resources and components."""
    where.mkdir(parents=True, exist_ok=True)
    base = Path(os.path.relpath(KUSTOMIZE, where))  # kustomize refuses absolute paths
    lines = [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "resources:",
        f"  - {base / 'resources'}",
        "components:",
        *(f"  - {base / 'components' / name}" for name in components),
    ]
    (where / "kustomization.yaml").write_text("\n".join(lines) + "\n" + extra)
    return where


def _render(overlay: Path, *, out: Path | None = None) -> tuple[Path, list[dict[str, Any]]]:
    result = run(tool("kubectl"), "kustomize", str(overlay))
    assert result.returncode == 0, result.stderr
    output = out or overlay / "rendered.yaml"
    output.write_text(result.stdout)
    return output, [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (workload,) = [d for d in docs if d["kind"] in ("Deployment", "CronJob")]
    spec = workload["spec"]
    template = (
        spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
    )
    pod: dict[str, Any] = template["spec"]
    return pod


def _environment(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The variables the container gets from its ConfigMaps and env."""
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        env.update(maps[source["configMapRef"]["name"]])
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    return env


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_federation_rendering_validates_strictly(variant: str, tmp_path: Path) -> None:
    """kubectl kustomize with the component passes kubernetes-validate --strict."""
    output, _ = _render(_overlay(tmp_path / variant, VARIANTS[variant]))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", str(output))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shipped_federation_overlay_validates_and_keeps_the_safety_rules(
    tmp_path: Path,
) -> None:
    """overlays/federation: strict schema, dry run on, the pod as locked down as the base."""
    output, docs = _render(SHIPPED, out=tmp_path / "rendered.yaml")
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert configmap["data"]["CLEANER_DRY_RUN"] == "true"
    pod = _pod(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_pod_reads_a_projected_token_and_mounts_no_secret(variant: str, tmp_path: Path) -> None:
    """The token volume replaces the key's Secret; the API server token stays unmounted."""
    _, docs = _render(_overlay(tmp_path / variant, VARIANTS[variant]))
    assert all(doc["kind"] != "Secret" for doc in docs)
    pod = _pod(docs)
    assert pod["automountServiceAccountToken"] is False
    (volume,) = pod["volumes"]
    assert "secret" not in volume
    (source,) = volume["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] == "https://api.anthropic.com"
    assert 600 <= token["expirationSeconds"] <= 86400
    (container,) = pod["containers"]
    (mount,) = container["volumeMounts"]
    assert (mount["name"], mount["readOnly"]) == (volume["name"], True)
    env = _environment(docs, container)
    assert env["ANTHROPIC_IDENTITY_TOKEN_FILE"] == f"{mount['mountPath']}/{token['path']}"
    assert env["CLEANER_SECRETS_DIR"] == mount["mountPath"]  # still a directory at start


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_rendered_environment_selects_federation_and_nothing_else(
    variant: str, tmp_path: Path
) -> None:
    """cleaner's own credential selection, fed the pod's variables, picks federation."""
    _, docs = _render(_overlay(tmp_path / variant, VARIANTS[variant]))
    (container,) = _pod(docs)["containers"]
    assert credential_kind(_environment(docs, container)) is CredentialKind.FEDERATION


def test_an_overlay_on_the_shipped_one_sets_the_rule_the_organisation_and_the_audience(
    tmp_path: Path,
) -> None:
    """The merge and the one-op patch documented in the component are all an operator needs."""
    shipped = Path(os.path.relpath(SHIPPED, tmp_path))
    (tmp_path / "kustomization.yaml").write_text(
        f"""resources: [{shipped}]
configMapGenerator:
  - name: cleaner
    behavior: merge
    literals: [ANTHROPIC_FEDERATION_RULE_ID=fdrl_prod, ANTHROPIC_ORGANIZATION_ID=org-uuid]
patches:
  - target: {{kind: Deployment, name: cleaner}}
    patch: |-
      - op: replace
        path: /spec/template/spec/volumes/0/projected/sources/0/serviceAccountToken/audience
        value: https://federation.example
"""
    )
    _, docs = _render(tmp_path)
    pod = _pod(docs)
    (container,) = pod["containers"]
    env = _environment(docs, container)
    assert (env["ANTHROPIC_FEDERATION_RULE_ID"], env["ANTHROPIC_ORGANIZATION_ID"]) == (
        "fdrl_prod",
        "org-uuid",
    )
    token = pod["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "https://federation.example"
