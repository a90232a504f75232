"""Shared helpers: the repository root, the dev tools in the venv, rendered manifests."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIRS = ("deploy/kubernetes", "deploy/kubernetes/overlays/cronjob")


def tool(name: str) -> str:
    """The path of a dev tool in this venv; fails (never skips) when it is missing."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {path.parent}: pip install -e '.[dev]'")
    return str(path)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a tool from the repository root and capture its output."""
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=60)


@cache
def rendered(directory: str) -> str:
    """``kubectl kustomize`` output for a kustomization directory."""
    result = run(tool("kubectl"), "kustomize", directory)
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(directory: str) -> list[dict[str, Any]]:
    """The rendered resources as dicts."""
    return [doc for doc in yaml.safe_load_all(rendered(directory)) if doc]


def resource(directory: str, kind: str) -> dict[str, Any]:
    """The one rendered resource of ``kind``."""
    matches = [doc for doc in documents(directory) if doc["kind"] == kind]
    assert len(matches) == 1, f"{directory}: {len(matches)} {kind}"
    return matches[0]


def load_yaml(path: Path) -> Any:
    """A YAML file as Python data."""
    return yaml.safe_load(path.read_text())
