"""The ``cleaner`` command as operators run it: exit codes, JSON lines, signals, config."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from cleaner.emulator import Emulator, FaultRule, Population
from tests.e2e.conftest import DAY, KEY, cleaner_env, command, run_cleaner, stop_when


def seed_backlog(emulator: Emulator, old: int = 50, young: int = 10) -> set[str]:
    ids = set(emulator.seed(Population(count=old, status="ended", age_s=40 * DAY)))
    emulator.seed(Population(count=young, status="ended", age_s=DAY))
    return ids


def test_run_once_deletes_the_backlog_and_exits_zero(emulator: Emulator, base_url: str) -> None:
    """Exit 0; stdout is JSON lines only; one batch_deleted per deleted id; a summary last."""
    old = seed_backlog(emulator)
    done = run_cleaner("run", "--once", env=cleaner_env(base_url))
    assert done.code == 0, done.stderr
    lines = done.lines  # every line parses as JSON, or this raises
    deleted = [line["batch_id"] for line in done.events("batch_deleted")]
    assert sorted(deleted) == sorted(old) == sorted(emulator.deleted_ids)
    assert lines[-1]["event"] == "cycle_finished"
    assert lines[-1]["deleted"] == 50
    for line in lines:
        assert {"timestamp", "level", "event"} <= set(line)
        assert line["timestamp"].endswith("Z")


def test_a_dry_run_changes_nothing_and_logs_no_deletion(emulator: Emulator, base_url: str) -> None:
    """CLEANER_DRY_RUN=true: no cancel, no delete, no batch_deleted."""
    seed_backlog(emulator)
    done = run_cleaner("run", "--once", env=cleaner_env(base_url, CLEANER_DRY_RUN="true"))
    assert done.code == 0
    assert emulator.journal == []
    assert done.events("batch_deleted") == []
    assert len(done.events("dry_run_action")) == 50


def test_failed_actions_exit_one(emulator: Emulator, base_url: str) -> None:
    """Deletions that keep failing make the cycle fail: exit 1, each failure logged."""
    seed_backlog(emulator, old=5, young=0)
    emulator.configure(faults=(FaultRule(kind="server_error", endpoints=frozenset({"delete"})),))
    env = cleaner_env(base_url, CLEANER_MAX_ATTEMPTS="2")
    done = run_cleaner("run", "--once", env=env)
    assert done.code == 1
    assert len(done.events("action_failed")) == 5
    assert all(line["level"] == "error" for line in done.events("action_failed"))


def test_an_unreachable_api_exits_one_with_one_error_line_and_no_traceback() -> None:
    """Nothing listens on the port: one structured error, exit 1, well within two minutes."""
    started = time.monotonic()
    env = cleaner_env("http://127.0.0.1:9", CLEANER_MAX_ATTEMPTS="3")
    done = run_cleaner("run", "--once", env=env, timeout=120)
    assert done.code == 1
    errors = [line for line in done.lines if line["level"] == "error"]
    assert [e["event"] for e in errors] == ["listing_failed"]
    assert "Traceback" not in done.stdout + done.stderr
    assert time.monotonic() - started < 120


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLEANER_RETENTION", "forever"),
        ("CLEANER_SCHEDULE", "0 0 31 2 *"),
        ("ANTHROPIC_BASE_URL", "ftp://example.invalid"),
        ("CLEANER_CONCURRENCY", "-1"),
        ("CLEANER_DRYRUN", "true"),
    ],
)
def test_bad_configuration_exits_two_naming_the_variable_before_any_request(
    emulator: Emulator, base_url: str, name: str, value: str
) -> None:
    """Exit 2, the variable named on stderr and in the JSON error, and no request sent."""
    done = run_cleaner("run", "--once", env=cleaner_env(base_url, **{name: value}))
    assert done.code == 2
    assert name in done.stderr
    assert name in done.events("configuration_invalid")[0]["variables"]
    assert emulator.request_counts.total() == 0


def test_a_missing_key_exits_two(base_url: str) -> None:
    """No key anywhere: exit 2 naming ANTHROPIC_API_KEY."""
    env = cleaner_env(base_url)
    del env["ANTHROPIC_API_KEY"]
    done = run_cleaner("run", "--once", env=env)
    assert done.code == 2
    assert "ANTHROPIC_API_KEY" in done.stderr


def test_plan_prints_one_json_line_per_action_and_sends_no_cancel_or_delete(
    emulator: Emulator, base_url: str
) -> None:
    """``cleaner plan`` off a terminal: JSON lines and a summary; the journal stays empty."""
    old = seed_backlog(emulator, old=7)
    emulator.seed(Population(count=2, status="in_progress", age_s=3 * 3600))
    done = run_cleaner("plan", env=cleaner_env(base_url))
    assert done.code == 0
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    actions = [line for line in lines if "action" in line]
    assert {a["batch_id"] for a in actions if a["action"] == "delete"} == old
    assert sum(1 for a in actions if a["action"] == "cancel") == 2
    assert lines[-1]["event"] == "plan_summary"
    assert emulator.journal == []


def test_the_daemon_runs_on_its_schedule_and_stops_cleanly_on_sigterm(
    emulator: Emulator, base_url: str
) -> None:
    """`cleaner run` cycles every second; SIGTERM ends it with exit 0 within 10 s."""
    seed_backlog(emulator, old=20)
    env = cleaner_env(base_url, CLEANER_SCHEDULE="1s", CLEANER_HTTP_PORT="off")
    process = subprocess.Popen(command("run"), env=env, stdout=subprocess.PIPE, text=True)
    out, exit_s = stop_when(process, lambda: emulator.request_counts[("list", 200)] >= 3)
    assert emulator.request_counts[("list", 200)] >= 3  # several scheduled cycles ran
    assert exit_s < 10
    assert process.returncode == 0
    assert KEY not in out
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert events[0] == "daemon_started"
    assert events[-1] == "daemon_stopped"
    assert "shutdown_requested" in events
    assert events.count("batch_deleted") == 20


def test_sigterm_mid_drain_finishes_in_flight_requests_and_exits_zero(
    emulator: Emulator, base_url: str
) -> None:
    """A slow API mid-drain: stop taking work, log what was confirmed, exit 0 within 10 s."""
    seed_backlog(emulator, old=400, young=0)
    emulator.configure(latency_s=0.2)
    env = cleaner_env(base_url, CLEANER_CONCURRENCY="4")
    process = subprocess.Popen(command("run", "--once"), env=env, stdout=subprocess.PIPE, text=True)
    out, exit_s = stop_when(process, lambda: emulator.request_counts[("delete", 200)] >= 10)
    assert exit_s < 10
    assert process.returncode == 0
    logged = [json.loads(line) for line in out.splitlines()]
    deleted = [line["batch_id"] for line in logged if line["event"] == "batch_deleted"]
    # Every deletion the API confirmed was logged; none was logged without one.
    assert set(deleted) == emulator.deleted_ids
    assert 10 <= len(deleted) < 400
    summary = logged[-1]
    assert summary["event"] == "cycle_finished"
    assert summary["outcomes"]["delete"]["not_attempted"] == 400 - len(deleted)


def test_the_demo_runs_real_cycles_and_summarises() -> None:
    """The README's first command works: exit 0, JSON deletion lines, a summary."""
    done = subprocess.run(command("demo"), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    json_lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    deleted = {x["batch_id"] for x in json_lines if x["event"] == "batch_deleted"}
    would = {x["batch_id"] for x in json_lines if x["event"] == "dry_run_action"}
    assert deleted == would  # the real cycle did exactly what the dry run planned
    assert len(deleted) > 1500
    assert "== cleaner demo: summary ==" in done.stdout


def test_the_daemon_serves_health_and_metrics_on_its_http_port(
    emulator: Emulator, base_url: str
) -> None:
    """`cleaner run` with CLEANER_HTTP_PORT: /livez, /readyz and /metrics answer."""
    import socket

    import httpx

    seed_backlog(emulator, old=5)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = cleaner_env(base_url, CLEANER_SCHEDULE="1h", CLEANER_HTTP_PORT=str(port))
    process = subprocess.Popen(command("run"), env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                if ready.status_code == 200 and emulator.deleted_ids:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert ready is not None
        assert ready.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
        assert 'cleaner_api_requests_total{endpoint="list",status="200"}' in metrics
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0


def test_healthcheck_fails_when_nothing_serves_the_port() -> None:
    """The container HEALTHCHECK command exits non-zero without a live daemon."""
    env = {"CLEANER_HTTP_PORT": "9", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        command("healthcheck"), env=env, capture_output=True, timeout=30, check=False
    )
    assert done.returncode != 0


def test_config_reference_matches_the_committed_file() -> None:
    """`cleaner config-reference --check` passes on the committed config/README.md."""
    done = subprocess.run(
        command("config-reference", "--check", "config/README.md"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_plan_prints_a_readable_table_when_asked(emulator: Emulator, base_url: str) -> None:
    """``--format table`` (the default on a terminal): one row per action and a summary."""
    old = seed_backlog(emulator, old=3)
    done = run_cleaner("plan", "--format", "table", env=cleaner_env(base_url))
    assert done.code == 0
    rows = done.stdout.splitlines()
    assert rows[0].split() == ["ACTION", "BATCH", "STATUS", "AGE", "REASON"]
    assert {row.split()[1] for row in rows[1:4]} == old
    assert all(row.split()[0] == "delete" for row in rows[1:4])
    assert "3 planned" in done.stdout
    assert emulator.journal == []
