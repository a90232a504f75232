"""Erasure requests: ``cleaner purge --ids-file FILE --reason TEXT`` against the emulator."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from cleaner.emulator import Emulator, Population
from tests.e2e.conftest import DAY, KEY, Finished, cleaner_env, command

REASON = "GDPR request 2026-0042 from data subject"


def purge(ids: list[str], *, env: Mapping[str, str], reason: str = REASON) -> Finished:
    """Run ``cleaner purge`` with the ids on stdin (``--ids-file -``)."""
    done = subprocess.run(
        command("purge", "--ids-file", "-", "--reason", reason),
        input="\n".join(ids) + "\n",
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert KEY not in done.stdout + done.stderr
    return Finished(done.returncode, done.stdout, done.stderr)


def one(emulator: Emulator, status: str, age_s: float) -> str:
    (batch_id,) = emulator.seed(Population(count=1, status=status, age_s=age_s))  # type: ignore[arg-type]
    return batch_id


def test_purge_deletes_a_young_ended_batch_and_cancels_then_deletes_a_running_one(
    emulator: Emulator, base_url: str
) -> None:
    """Whatever the age: both deleted, each batch_deleted with erasure_request and the text."""
    ended = one(emulator, "ended", 60.0)  # far within retention
    running = one(emulator, "in_progress", 60.0)
    bystander = one(emulator, "ended", 40 * DAY)  # due by policy, but not requested
    done = purge([ended, running], env=cleaner_env(base_url))
    assert done.code == 0, done.stdout + done.stderr
    deleted = {line["batch_id"]: line for line in done.events("batch_deleted")}
    assert set(deleted) == {ended, running} == emulator.deleted_ids
    for line in deleted.values():
        assert line["reason"] == "erasure_request"
        assert line["purge_reason"] == REASON
    (cancel,) = done.events("batch_cancel_requested")
    assert cancel["batch_id"] == running
    assert cancel["purge_reason"] == REASON
    assert emulator.get(bystander) is not None
    assert {entry.batch_id for entry in emulator.journal} == {ended, running}
    assert done.lines[-1]["event"] == "cycle_finished"


def test_duplicate_ids_are_collapsed_into_one_deletion(emulator: Emulator, base_url: str) -> None:
    """The same id three times: one DELETE, one batch_deleted."""
    batch_id = one(emulator, "ended", 60.0)
    done = purge([batch_id, batch_id, "", batch_id], env=cleaner_env(base_url))
    assert done.code == 0, done.stdout
    assert len(done.events("batch_deleted")) == 1
    assert [entry.endpoint for entry in emulator.journal] == ["delete"]


def test_an_unknown_id_is_reported_not_found_and_exits_one(
    emulator: Emulator, base_url: str
) -> None:
    """404: a not_found error line, never a deletion line; the others are still erased."""
    real = one(emulator, "ended", 60.0)
    unknown = "msgbatch_0000000000000000000000Nope"
    done = purge([unknown, real], env=cleaner_env(base_url))
    assert done.code == 1
    (missing,) = done.events("not_found")
    assert (missing["batch_id"], missing["level"]) == (unknown, "error")
    assert [line["batch_id"] for line in done.events("batch_deleted")] == [real]
    assert done.events("batch_already_gone") == []
    assert unknown not in {entry.batch_id for entry in emulator.journal}


def test_a_batch_held_in_the_holds_file_is_not_touched_and_exits_one(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """purge_blocked_by_hold at level error with the hold's reason and owner; no request."""
    held = one(emulator, "in_progress", 60.0)
    other = one(emulator, "ended", 60.0)
    holds = tmp_path / "holds.yaml"
    holds.write_text(f"holds:\n  - batch_id: {held}\n    reason: litigation 12\n    owner: legal\n")
    done = purge([held, other], env=cleaner_env(base_url, CLEANER_HOLDS_FILE=str(holds)))
    assert done.code == 1
    (blocked,) = done.events("purge_blocked_by_hold")
    assert blocked["level"] == "error"
    assert (blocked["batch_id"], blocked["hold_reason"], blocked["hold_owner"]) == (
        held,
        "litigation 12",
        "legal",
    )
    assert held not in {entry.batch_id for entry in emulator.journal}
    assert emulator.deleted_ids == {other}


def test_a_protected_id_is_a_permanent_hold_for_purge_too(
    emulator: Emulator, base_url: str
) -> None:
    """An id in CLEANER_PROTECTED_IDS is blocked the same way: exit 1, nothing sent for it."""
    protected = one(emulator, "ended", 40 * DAY)
    done = purge([protected], env=cleaner_env(base_url, CLEANER_PROTECTED_IDS=protected))
    assert done.code == 1
    (blocked,) = done.events("purge_blocked_by_hold")
    assert blocked["hold_reason"] == "CLEANER_PROTECTED_IDS"
    assert emulator.journal == []


def test_malformed_ids_are_refused_before_any_request(emulator: Emulator, base_url: str) -> None:
    """One bad line among good ones: exit 2, purge_refused naming the line, nothing sent."""
    good = one(emulator, "ended", 60.0)
    done = purge([good, "msgbatch_abc/../../x", "batch_42"], env=cleaner_env(base_url))
    assert done.code == 2
    (refused,) = done.events("purge_refused")
    assert "line 2" in refused["error"]
    assert "line 3" in refused["error"]
    assert emulator.request_counts.total() == 0


def test_an_empty_reason_is_refused_before_any_request(emulator: Emulator, base_url: str) -> None:
    """``--reason " "``: exit 2, nothing sent."""
    done = purge([one(emulator, "ended", 60.0)], env=cleaner_env(base_url), reason="  ")
    assert done.code == 2
    assert done.events("purge_refused")
    assert emulator.request_counts.total() == 0


def test_ids_are_read_from_a_file_with_comments(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """``--ids-file PATH``: one id per line, blank lines and # comments ignored."""
    batch_id = one(emulator, "ended", 60.0)
    path = tmp_path / "ids.txt"
    path.write_text(f"# ticket 2026-0042\n\n{batch_id}\n")
    done = subprocess.run(
        command("purge", "--ids-file", str(path), "--reason", REASON),
        env=cleaner_env(base_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    assert emulator.deleted_ids == {batch_id}


def test_a_dry_run_purge_sends_no_cancel_or_delete(emulator: Emulator, base_url: str) -> None:
    """CLEANER_DRY_RUN=true: dry_run_action lines with the purge reason, an empty journal."""
    batch_id = one(emulator, "ended", 60.0)
    done = purge([batch_id], env=cleaner_env(base_url, CLEANER_DRY_RUN="true"))
    assert done.code == 0
    (would,) = done.events("dry_run_action")
    assert would["purge_reason"] == REASON
    assert emulator.journal == []
