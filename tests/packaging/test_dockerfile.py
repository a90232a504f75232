"""The Dockerfile: hadolint-clean and shaped the way the deployment relies on."""

from __future__ import annotations

import json
import re

from tests.packaging._tools import ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())  # join continued lines
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_hadolint_finds_nothing() -> None:
    """hadolint passes the Dockerfile with no warning at all."""
    result = run(tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_image_is_a_build_argument_defaulting_to_python_slim() -> None:
    """Both stages start from ARG BASE_IMAGE, python:3.11-slim unless told otherwise."""
    instructions = _instructions()
    assert ("ARG", "BASE_IMAGE=python:3.11-slim") in instructions
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"]


def test_the_final_stage_runs_cleaner_as_a_numeric_non_root_user() -> None:
    """Exec-form entrypoint and command, numeric non-root USER, SIGTERM to stop."""
    final = dict(_final_stage())
    user = final["USER"].split(":")
    assert all(part.isdigit() and int(part) > 0 for part in user), final["USER"]
    assert json.loads(final["ENTRYPOINT"]) == ["cleaner"]
    assert json.loads(final["CMD"]) == ["run"]
    assert final["STOPSIGNAL"] == "SIGTERM"


def test_the_final_stage_has_no_build_step_and_a_curl_free_healthcheck() -> None:
    """Only the built venv is copied in; the health check uses the stdlib module."""
    final = _final_stage()
    keywords = [keyword for keyword, _ in final]
    assert "RUN" not in keywords
    assert ("COPY", "--from=build /opt/cleaner /opt/cleaner") in final
    healthcheck = dict(final)["HEALTHCHECK"]
    assert healthcheck.endswith('CMD ["python", "-m", "cleaner.healthcheck"]')
    assert "curl" not in healthcheck


def test_oci_labels_are_set() -> None:
    """The image says what it is, which version and which commit."""
    labels = " ".join(rest for keyword, rest in _final_stage() if keyword == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_the_build_context_is_an_allow_list() -> None:
    """.dockerignore excludes everything but the package, its metadata and local wheels."""
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert set(lines) >= {"!pyproject.toml", "!README.md", "!cleaner/", "!build/wheels/"}
