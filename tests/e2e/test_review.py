"""Four-eyes cleanup: ``cleaner plan --out`` writes a plan, ``cleaner apply`` does exactly that.

Every test runs the real command against the emulator over loopback HTTP and checks the
emulator's journal of mutating requests: apply never touches a batch outside the plan.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cleaner.emulator import Emulator, FaultRule, Population
from tests.e2e.conftest import DAY, Finished, cleaner_env, command, run_cleaner, stop_when


def seed(emulator: Emulator, count: int, status: str, age_s: float) -> list[str]:
    return emulator.seed(Population(count=count, status=status, age_s=age_s))  # type: ignore[arg-type]


def make_plan(base_url: str, path: Path, **env: str) -> Finished:
    done = run_cleaner("plan", "--out", str(path), env=cleaner_env(base_url, **env))
    assert done.code == 0, done.stderr
    return done


def touched(emulator: Emulator) -> set[str]:
    """Every batch a mutating request named (cancel or delete)."""
    return {entry.batch_id for entry in emulator.journal if entry.batch_id is not None}


def rewrite(path: Path, change: dict[str, Any]) -> None:
    document = json.loads(path.read_text())
    document.update(change)
    path.write_text(json.dumps(document))


def test_plan_out_writes_every_action_with_the_policy_fingerprint_and_an_expiry(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """The file lists each action's batch_id, action, reason, created_at; stdout is unchanged."""
    old = set(seed(emulator, 5, "ended", 40 * DAY))
    seed(emulator, 3, "ended", DAY)
    path = tmp_path / "plan.json"
    done = run_cleaner("plan", "--out", str(path), "--ttl", "36h", env=cleaner_env(base_url))
    assert done.code == 0, done.stderr
    plan = json.loads(path.read_text())
    assert plan["format"] == "cleaner-plan"
    assert plan["version"] == 1
    assert {a["batch_id"] for a in plan["actions"]} == old
    for action in plan["actions"]:
        assert action["action"] == "delete"
        assert action["reason"] == "ended_past_retention"
        assert action["created_at"].endswith("Z")
    assert len(plan["policy_sha256"]) == 64
    assert plan["listed_at"] < plan["expires_at"]
    stdout = [json.loads(line) for line in done.stdout.splitlines()]
    assert stdout[-1]["event"] == "plan_summary"  # the same JSON lines as without --out
    written = [json.loads(line) for line in done.stderr.splitlines() if "plan_written" in line]
    assert written[0]["actions"] == 5
    assert emulator.journal == []


def test_apply_deletes_exactly_the_plan_and_skips_what_changed_since(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """Deleted by someone else, newly held, or newer batches: only the plan's due ones go."""
    planned = seed(emulator, 6, "ended", 40 * DAY)
    holds = tmp_path / "holds.yaml"
    holds.write_text("holds: []\n")
    env = {"CLEANER_HOLDS_FILE": str(holds)}
    path = tmp_path / "plan.json"
    make_plan(base_url, path, **env)
    gone, held, *rest = planned
    emulator.delete(gone)  # someone else deleted it (not through cleaner)
    holds.write_text(
        f"holds:\n  - batch_id: {held}\n    reason: legal matter 7\n    owner: legal\n"
    )
    newer = set(seed(emulator, 4, "ended", 40 * DAY))  # due, but not in the plan
    done = run_cleaner("apply", str(path), env=cleaner_env(base_url, **env))
    assert done.code == 0, done.stderr
    assert sorted(line["batch_id"] for line in done.events("batch_deleted")) == sorted(rest)
    assert touched(emulator) == set(rest)  # nothing outside the plan, nothing skipped
    assert newer <= {b["id"] for b in emulator.batches()}
    assert emulator.get(held) is not None
    skipped = {line["batch_id"]: line for line in done.events("apply_skipped")}
    assert skipped[gone]["why"] == "gone"
    assert skipped[held]["why"] == "held"
    assert skipped[held]["hold_owner"] == "legal"
    assert all(line["level"] == "info" for line in skipped.values())
    (started,) = done.events("apply_started")
    assert started["holds_changed"] is True
    assert done.lines[-1]["event"] == "cycle_finished"
    assert done.lines[-1]["deleted"] == 4


def test_apply_skips_a_batch_whose_action_changed_and_cancels_one_still_running(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """A planned cancel that someone else already canceled is skipped; the other runs its life."""
    first, second = seed(emulator, 2, "in_progress", 3 * 3600)
    path = tmp_path / "plan.json"
    make_plan(base_url, path)
    emulator.cancel(first, base_url)  # now canceling, then ended: no longer "cancel"
    done = run_cleaner("apply", str(path), env=cleaner_env(base_url))
    assert done.code == 0, done.stderr
    (skip,) = done.events("apply_skipped")
    assert skip["batch_id"] == first
    assert skip["why"] == "different_action"
    assert [line["batch_id"] for line in done.events("batch_cancel_requested")] == [second]
    assert [line["batch_id"] for line in done.events("batch_deleted")] == [second]
    assert touched(emulator) == {second}


def test_apply_skips_a_batch_protected_since_the_plan(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """An id added to CLEANER_PROTECTED_IDS after review is skipped as held, not deleted."""
    (only,) = seed(emulator, 1, "ended", 40 * DAY)
    path = tmp_path / "plan.json"
    make_plan(base_url, path)
    done = run_cleaner("apply", str(path), env=cleaner_env(base_url, CLEANER_PROTECTED_IDS=only))
    assert done.code == 0, done.stderr
    (skip,) = done.events("apply_skipped")
    assert (skip["batch_id"], skip["why"]) == (only, "held")
    assert emulator.journal == []


def test_a_plan_reviewer_can_remove_actions_and_apply_does_less(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """Removing an action from the file keeps that batch: apply acts only on what is listed."""
    seed(emulator, 3, "ended", 40 * DAY)
    path = tmp_path / "plan.json"
    make_plan(base_url, path)
    document = json.loads(path.read_text())
    kept = document["actions"].pop(0)["batch_id"]
    path.write_text(json.dumps(document))
    done = run_cleaner("apply", str(path), env=cleaner_env(base_url))
    assert done.code == 0, done.stderr
    assert kept not in touched(emulator)
    assert len(emulator.deleted_ids) == 2


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            {"listed_at": "2020-01-01T00:00:00.000000Z", "expires_at": "2020-01-02T00:00:00Z"},
            "expired",
        ),
        ({"version": 2}, "malformed"),
        ({"actions": [{"batch_id": "msgbatch_x", "action": "delete"}]}, "malformed"),
        (
            {
                "actions": [
                    {
                        "batch_id": "../v1/x",
                        "action": "delete",
                        "reason": "ended_past_retention",
                        "created_at": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            "malformed",
        ),
    ],
)
def test_an_expired_or_malformed_plan_is_refused_with_exit_two_and_nothing_sent(
    emulator: Emulator, base_url: str, tmp_path: Path, change: dict[str, Any], why: str
) -> None:
    """Exit 2, one apply_refused error naming why, and not one request to the API."""
    seed(emulator, 3, "ended", 40 * DAY)
    path = tmp_path / "plan.json"
    make_plan(base_url, path)
    rewrite(path, change)
    emulator.clear_request_counts()
    done = run_cleaner("apply", str(path), env=cleaner_env(base_url))
    assert done.code == 2
    (refused,) = done.events("apply_refused")
    assert (refused["level"], refused["why"]) == ("error", why)
    assert emulator.request_counts.total() == 0


def test_a_plan_that_is_not_json_is_refused(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """A truncated file is malformed: exit 2, nothing sent."""
    path = tmp_path / "plan.json"
    path.write_text('{"format": "cleaner-plan", "actions": [')
    done = run_cleaner("apply", str(path), env=cleaner_env(base_url))
    assert done.code == 2
    assert done.events("apply_refused")[0]["why"] == "malformed"
    assert emulator.request_counts.total() == 0


def test_a_plan_made_under_another_retention_is_refused(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """The retention changed between plan and apply: exit 2, policy_changed, nothing sent."""
    seed(emulator, 3, "ended", 40 * DAY)
    path = tmp_path / "plan.json"
    make_plan(base_url, path)
    emulator.clear_request_counts()
    done = run_cleaner("apply", str(path), env=cleaner_env(base_url, CLEANER_RETENTION="20d"))
    assert done.code == 2
    assert done.events("apply_refused")[0]["why"] == "policy_changed"
    assert emulator.request_counts.total() == 0
    assert emulator.journal == []


def test_a_plan_file_that_cannot_be_written_exits_two_before_listing(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """``--out`` into a missing directory: exit 2, not one list request."""
    done = run_cleaner(
        "plan", "--out", str(tmp_path / "no" / "plan.json"), env=cleaner_env(base_url)
    )
    assert done.code == 2
    assert "cannot write the plan" in done.stderr
    assert emulator.request_counts.total() == 0


def test_a_planned_batch_that_cannot_be_retrieved_is_left_alone_and_exits_one(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """Retrieves keep failing (500): one retrieve_failed per batch, nothing acted on, exit 1."""
    seed(emulator, 2, "ended", 40 * DAY)
    path = tmp_path / "plan.json"
    make_plan(base_url, path)
    emulator.configure(faults=(FaultRule(kind="server_error", endpoints=frozenset({"retrieve"})),))
    done = run_cleaner("apply", str(path), env=cleaner_env(base_url, CLEANER_MAX_ATTEMPTS="2"))
    assert done.code == 1
    assert len(done.events("retrieve_failed")) == 2
    assert emulator.journal == []
    assert done.lines[-1]["event"] == "cycle_finished"
    assert done.lines[-1]["ok"] is False


def test_a_rejected_key_stops_apply_before_any_action(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """401 on the first retrieve ends the command: one cycle_aborted line, exit 1, no action."""
    seed(emulator, 3, "ended", 40 * DAY)
    path = tmp_path / "plan.json"
    make_plan(base_url, path)
    env = cleaner_env(base_url, ANTHROPIC_API_KEY="sk-ant-wrong-key-for-this-test")
    done = run_cleaner("apply", str(path), env=env)
    assert done.code == 1
    assert len(done.events("cycle_aborted")) == 1
    assert emulator.journal == []


def test_sigterm_during_apply_finishes_in_flight_work_and_exits_zero(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """A slow API mid-apply: stop taking work, log what the API confirmed, exit 0."""
    planned = set(seed(emulator, 120, "ended", 40 * DAY))
    path = tmp_path / "plan.json"
    make_plan(base_url, path)
    emulator.configure(latency_s=0.1)
    env = cleaner_env(base_url, CLEANER_CONCURRENCY="4")
    process = subprocess.Popen(
        command("apply", str(path)), env=env, stdout=subprocess.PIPE, text=True
    )
    out, exit_s = stop_when(process, lambda: emulator.request_counts[("delete", 200)] >= 10)
    assert process.returncode == 0
    assert exit_s < 10
    lines = [json.loads(line) for line in out.splitlines()]
    deleted = {line["batch_id"] for line in lines if line["event"] == "batch_deleted"}
    assert deleted == emulator.deleted_ids
    assert 10 <= len(deleted) < 120
    assert touched(emulator) <= planned
    assert lines[-1]["event"] == "cycle_finished"
