"""The official TypeScript SDK cannot tell the emulator from the API either (second proof).

Runs `tests/emulator/ts/contract.js` with node against the emulator and asserts on the JSON
it prints. Needs node and `npm install --no-package-lock --prefix tests/emulator/ts` (as
.ci/run does); without them the test skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cleaner.emulator import Emulator, Population
from tests.emulator.conftest import KEY

TS_DIR = Path(__file__).resolve().parent / "ts"
SDK_DIR = TS_DIR / "node_modules" / "@anthropic-ai" / "sdk"
NODE_TIMEOUT_S = 45
DAY_S = 86400
EXPECTED_ERRORS = {
    "400": ("BadRequestError", "invalid_request_error"),
    "401": ("AuthenticationError", "authentication_error"),
    "403": ("PermissionDeniedError", "permission_error"),
    "404": ("NotFoundError", "not_found_error"),
    "429": ("RateLimitError", "rate_limit_error"),
    "500": ("InternalServerError", "api_error"),
    "529": ("OverloadedError", "overloaded_error"),
}


def _node() -> str:
    """The node binary, or skip (fail under CI=true) when node or the SDK is missing."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not on PATH"
    elif not (SDK_DIR / "package.json").is_file():
        problem = (
            f"@anthropic-ai/sdk is not installed: npm install --no-package-lock --prefix {TS_DIR}"
        )
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    assert node is not None
    return node


def _installed_version() -> str:
    version = json.loads((SDK_DIR / "package.json").read_text())["version"]
    assert isinstance(version, str)
    return version


def _run(node: str, base_url: str, ids: dict[str, str]) -> dict[str, object]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": KEY,
        "CONTRACT_IDS": json.dumps(ids),
        "CONTRACT_LIMIT": "7",
    }
    done = subprocess.run(
        [node, "contract.js"],
        cwd=TS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    assert KEY not in done.stdout + done.stderr
    assert done.returncode == 0, done.stderr
    out: dict[str, object] = json.loads(done.stdout)
    return out


def test_the_pinned_sdk_version_is_the_one_installed() -> None:
    """package.json pins @anthropic-ai/sdk exactly, and that is what node will load."""
    _node()
    pinned = json.loads((TS_DIR / "package.json").read_text())["dependencies"]["@anthropic-ai/sdk"]
    assert pinned == _installed_version()
    assert not (TS_DIR / "package-lock.json").exists()


def test_the_typescript_sdk_lists_retrieves_cancels_deletes_reads_results_and_maps_errors(
    emulator: Emulator, base_url: str
) -> None:
    """Auto-pagination sees every batch once newest first; each status has its SDK class."""
    node = _node()
    ended = emulator.seed(Population(count=30, status="ended", age_s=2 * DAY_S, spread_s=DAY_S))
    (with_results,) = emulator.seed(
        Population(count=1, status="ended", age_s=DAY_S, request_count=5, errored_fraction=0.4)
    )
    to_cancel, running = (emulator.add_batch()["id"], emulator.add_batch()["id"])
    expected = [b["id"] for b in emulator.batches()]
    ids = {
        "retrieve": ended[0],
        "cancel": str(to_cancel),
        "delete": ended[1],
        "results": with_results,
        "running": str(running),
    }
    out = _run(node, base_url, ids)

    listed = out["listed"]
    assert isinstance(listed, list)
    assert [b["id"] for b in listed] == expected  # 33 batches over 5 pages of 7
    created = [b["created_at"] for b in listed]
    assert created == sorted(created, reverse=True)
    assert out["retrieved"] == {
        "id": ended[0],
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {
            "processing": 0,
            "succeeded": 1,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "workspace_header": "wrkspc_default",
        "request_id": out["retrieved"]["request_id"],  # type: ignore[index]
    }
    assert out["canceled"] == {"id": to_cancel, "processing_status": "canceling"}
    assert out["deleted"] == {"id": ended[1], "type": "message_batch_deleted"}
    assert emulator.get(ended[1]) is None
    results = out["results"]
    assert isinstance(results, list)
    assert sorted(r["type"] for r in results) == ["errored"] * 2 + ["succeeded"] * 3

    errors = out["errors"]
    assert isinstance(errors, dict)
    for status, (error_class, error_type) in EXPECTED_ERRORS.items():
        seen = errors[status]
        assert seen["raised"] is True, status
        assert (seen["class"], seen["instanceof"], seen["api_error"]) == (error_class, True, True)
        assert (seen["status"], seen["type"]) == (int(status), error_type), status
    assert errors["429"]["has_retry_after"] is True
    assert emulator.get(str(running))["processing_status"] == "in_progress"  # type: ignore[index]
