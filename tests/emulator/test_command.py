"""`python -m cleaner.emulator`: one ready line, a working server, a clean stop on signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import httpx
import pytest

from cleaner.emulator.command import main, parse_fault
from cleaner.emulator.faults import FaultRule

READY_TIMEOUT_S = 20
PROD_KEY = "sk-cli-prod-key-1"
OPS_KEY = "sk-cli-ops-key-22"
DEFAULT_KEY = "sk-cli-default-key"
REPO = Path(__file__).resolve().parents[2]  # so `-m cleaner.emulator` resolves uninstalled


@contextmanager
def _running(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start the emulator on a free port; yields the process and its base URL."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEANER_", "ANTHROPIC_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "cleaner.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base_env, **(env or {})},
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("emulator listening on http://127.0.0.1:"), line
        yield process, line.split()[3]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=READY_TIMEOUT_S)


def test_the_command_prints_one_ready_line_with_the_port_and_batch_count() -> None:
    """The line names the chosen port and how many batches were seeded; it serves them."""
    with _running("--seed", "30:ended:40d", "--seed", "5:in_progress:3h:1h") as (process, url):
        headers = {"anthropic-version": "2023-06-01"}
        page = httpx.get(f"{url}/v1/messages/batches?limit=1000", headers=headers).json()
        assert len(page["data"]) == 35
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=READY_TIMEOUT_S)
        assert process.returncode == 0
        assert out == ""  # exactly one line in all: it was read above


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_command_exits_0_on_sigterm_and_sigint(sig: signal.Signals) -> None:
    """A signal stops it cleanly, with no traceback."""
    with _running() as (process, _):
        process.send_signal(sig)
        _, err = process.communicate(timeout=READY_TIMEOUT_S)
        assert process.returncode == 0
        assert "Traceback" not in err


def test_the_command_checks_the_key_from_anthropic_api_key(tmp_path: Path) -> None:
    """With ANTHROPIC_API_KEY set, the SDK needs that key; seed files add populations."""
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps([{"count": 3, "status": "ended", "age": "30d"}]))
    with _running("--seed-file", str(seed_file), env={"ANTHROPIC_API_KEY": "env-key"}) as (_, url):
        good = anthropic.Anthropic(api_key="env-key", base_url=url, max_retries=0)
        bad = anthropic.Anthropic(api_key="other", base_url=url, max_retries=0)
        with good, bad:
            assert len(list(good.messages.batches.list())) == 3
            with pytest.raises(anthropic.AuthenticationError):
                bad.messages.batches.list()


def test_operators_can_drive_a_running_command_over_http() -> None:
    """Seed, reconfigure and move the clock of a subprocess emulator through /_emulator/."""
    with _running("--processing-time", "5m", "--fault", "server_error:delete") as (_, url):
        seeded = httpx.post(
            f"{url}/_emulator/seed", json={"count": 1, "status": "in_progress", "age": "1m"}
        )
        (batch_id,) = seeded.json()["ids"]
        httpx.post(f"{url}/_emulator/clock", json={"advance_s": 600})
        headers = {"anthropic-version": "2023-06-01"}
        batch = httpx.get(f"{url}/v1/messages/batches/{batch_id}", headers=headers).json()
        assert batch["processing_status"] == "ended"
        assert (
            httpx.delete(f"{url}/v1/messages/batches/{batch_id}", headers=headers).status_code
            == 500
        )
        httpx.patch(f"{url}/_emulator/config", json={"faults": []})
        assert (
            httpx.delete(f"{url}/v1/messages/batches/{batch_id}", headers=headers).status_code
            == 200
        )


@pytest.mark.parametrize(
    "argv",
    [
        ["--seed", "nonsense"],
        ["--processing-time", "soon"],
        ["--fault", "explode"],
        ["--seed-file", "/nonexistent/seed.json"],
        ["--workspace", "prod"],
        ["--workspace", "prod=k1", "--workspace-rate-limit-rpm", "nowhere=60"],
        ["--seed", "1:ended:1d@nowhere"],
    ],
)
def test_bad_arguments_exit_2_before_serving(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid specs, durations, faults or files: a message on stderr and exit status 2."""
    assert main(argv) == 2
    assert "cleaner emulator:" in capsys.readouterr().err


def test_the_command_serves_workspaces_limits_and_refusals(tmp_path: Path) -> None:
    """--workspace, limits, --ratelimit-headers, --refuse-delete and a seed document combine."""
    seed_file = tmp_path / "seed.json"
    document = {
        "workspaces": [
            {"name": "ops", "keys": [OPS_KEY], "batches": [{"count": 2, "status": "ended"}]}
        ],
        "populations": [{"ids": ["msgbatch_keepme"], "status": "ended", "workspace": "prod"}],
        "refuse_delete_status": 409,
    }
    seed_file.write_text(json.dumps(document))
    args = [
        *("--workspace", f"prod={PROD_KEY}", "--workspace-rate-limit-rpm", "prod=600"),
        *("--rate-limit-rpm", "6000", "--ratelimit-headers", "--workspace-mismatch", "ignore"),
        *("--seed", "3:ended:40d@prod", "--refuse-delete", "msgbatch_keepme"),
        *("--seed-file", str(seed_file), "--api-key", DEFAULT_KEY),
        *("--workspace-rate-limit-rpm", "default=120"),
    ]
    with _running(*args) as (_, url):
        headers = {"x-api-key": PROD_KEY, "anthropic-version": "2023-06-01"}
        with httpx.Client(base_url=url, headers=headers) as prod:
            listed = prod.get("/v1/messages/batches", headers={"anthropic-workspace-id": "x"})
            assert len(listed.json()["data"]) == 4
            assert listed.headers["anthropic-workspace-id"] == "wrkspc_prod"
            assert listed.headers["anthropic-ratelimit-requests-limit"] == "600"
            refused = prod.delete("/v1/messages/batches/msgbatch_keepme")
            assert refused.status_code == 409
        headers = {"x-api-key": DEFAULT_KEY, "anthropic-version": "2023-06-01"}
        default = httpx.get(f"{url}/v1/messages/batches", headers=headers)
        assert default.json()["data"] == []
        assert default.headers["anthropic-ratelimit-requests-limit"] == "120"
        ops = anthropic.Anthropic(api_key=OPS_KEY, base_url=url, max_retries=0)
        with ops:
            assert len(list(ops.messages.batches.list())) == 2


def test_the_help_names_the_workspace_and_limit_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """`cleaner emulator --help` documents every new flag and the seed document's keys."""
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in (
        "--workspace NAME[/ID]=KEY[,KEY...]",
        "--workspace-rate-limit-rpm",
        "--workspace-mismatch",
        "--ratelimit-headers",
        "--refuse-delete",
        "--refuse-delete-status",
        "processing_status",
        "archived_at",
    ):
        assert flag in text


def test_fault_specs_parse_into_rules() -> None:
    """KIND[:ENDPOINTS[:PROBABILITY[:TIMES[:SECONDS]]]]."""
    assert parse_fault("drop_after:delete,cancel:0.1:5") == FaultRule(
        kind="drop_after", endpoints=frozenset({"delete", "cancel"}), probability=0.1, times=5
    )
    assert parse_fault("hang:all:1::2s") == FaultRule(kind="hang", seconds=2.0)
    assert parse_fault("overloaded") == FaultRule(kind="overloaded")
