"""Every variable the deployment files set is one cleaner reads, and none is forgotten."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cleaner.settings import Settings, known_variables
from tests.packaging._tools import KUSTOMIZE_DIRS, ROOT, documents, load_yaml

_ASSIGNMENT = re.compile(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


def _env_file(path: Path, *, commented: bool) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        match = _ASSIGNMENT.match(line)
        if match and (commented or not line.lstrip().startswith("#")):
            values[match.group(1)] = match.group(2)
    return values


def _manifest_names(directory: str) -> set[str]:
    names: set[str] = set()
    for doc in documents(directory):
        if doc["kind"] == "ConfigMap":
            names |= set(doc["data"])
        pods = [
            doc.get("spec", {}).get("template", {}).get("spec"),
            doc.get("spec", {})
            .get("jobTemplate", {})
            .get("spec", {})
            .get("template", {})
            .get("spec"),
        ]
        for pod in filter(None, pods):
            secret_files = {
                item["path"]
                for volume in pod.get("volumes", [])
                for item in volume.get("secret", {}).get("items", [])
            }
            names |= secret_files  # read from CLEANER_SECRETS_DIR under its variable's name
            for container in pod["containers"]:
                names |= {env["name"] for env in container.get("env", [])}
    return names


@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS)
def test_the_manifests_set_exactly_the_variables_cleaner_knows(directory: str) -> None:
    """ConfigMap keys, env names and secret file names equal known_variables()."""
    assert _manifest_names(directory) == known_variables()


def test_the_production_template_lists_every_variable() -> None:
    """config/cleaner.env.example names each variable exactly once (some commented out)."""
    path = ROOT / "config/cleaner.env.example"
    names = [m.group(1) for line in path.read_text().splitlines() if (m := _ASSIGNMENT.match(line))]
    assert sorted(names) == sorted(known_variables())


def test_the_production_template_documents_every_variable_in_a_comment() -> None:
    """Each assignment in the template follows a comment line."""
    lines = (ROOT / "config/cleaner.env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if _ASSIGNMENT.match(line) and not line.startswith("#"):
            assert lines[index - 1].startswith("#"), f"no comment above {line!r}"


def _valid(values: dict[str, Any]) -> Settings:
    return Settings.model_validate({k: v for k, v in values.items() if v != ""})


def test_the_production_template_is_valid_once_a_key_is_given() -> None:
    """The template's values pass validation, dry run on."""
    values = _env_file(ROOT / "config/cleaner.env.example", commented=False)
    settings = _valid({**values, "ANTHROPIC_API_KEY": "k"})
    assert settings.dry_run is True


def test_the_demo_configuration_is_valid_and_points_at_the_local_emulator() -> None:
    """config/demo.env loads as it is and targets 127.0.0.1."""
    values = _env_file(ROOT / "config/demo.env", commented=False)
    assert set(values) <= known_variables()
    settings = _valid(values)
    assert settings.base_url.startswith("http://127.0.0.1:")


def test_the_shipped_configmap_is_valid_with_a_key() -> None:
    """The kustomize ConfigMap values pass the same validation the daemon runs."""
    values = _env_file(ROOT / "deploy/kubernetes/components/common/cleaner.env", commented=False)
    _valid({**values, "ANTHROPIC_API_KEY": "k", "CLEANER_SECRETS_DIR": None})


def test_compose_sets_only_known_variables() -> None:
    """deploy/compose.yaml's environment overrides are variables cleaner reads."""
    compose = load_yaml(ROOT / "deploy/compose.yaml")
    service = compose["services"]["cleaner"]
    assert set(service["environment"]) <= known_variables()
    assert (ROOT / "deploy" / service["env_file"]).resolve() == ROOT / "config/demo.env"
