"""One checker for the invariants every reliability test ends with.

It reads only what is outside cleaner: the emulator's final state and its journal of
mutating requests (status 0: the connection dropped before any answer), the batches as the
API showed them before the cycle, and what cleaner logged and printed. The emulator is the
proof of "seen ended": it answers a DELETE of a batch that has not ended with 400 (or 409),
and a cancel of an ended batch with 400, so a journal free of those answers shows cleaner
never sent either.

    1. no batch younger than its retention, protected, or not ended is deleted;
    2. no ended batch is canceled, and no batch is canceled twice by one cycle;
    3. each batch is logged ``batch_deleted`` at most once, only after the API confirmed it;
    5. the key appears in no output, log event or repr.

(Invariant 4, the daemon keeps running, is about time, not state: see test_daemon.py.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cleaner.emulator import Emulator, JournalEntry
from cleaner.models import AgeBasis
from cleaner.policy import RetentionPolicy

Snapshot = Mapping[str, Mapping[str, Any]]
_REFUSED = (400, 409)


def snapshot(emulator: Emulator) -> dict[str, dict[str, Any]]:
    """Every live batch as the API shows it now, by id: what a cycle about to run will see."""
    return {str(batch["id"]): dict(batch) for batch in emulator.batches()}


def confirmed_deletes(journal: Iterable[JournalEntry]) -> list[str]:
    """Ids whose DELETE the API answered 200 and whose answer reached the client."""
    return [
        e.batch_id or ""
        for e in journal
        if e.endpoint == "delete" and e.status == 200 and e.fault is None
    ]


def applied_deletes(journal: Iterable[JournalEntry]) -> list[str]:
    """Ids the API really deleted, answered or not (a dropped answer still deleted)."""
    return [
        e.batch_id or ""
        for e in journal
        if e.endpoint == "delete" and e.status == 200 and e.fault in (None, "drop_after")
    ]


@dataclass
class Violations:
    """Every broken invariant found, so one failure message shows them all."""

    found: list[str] = field(default_factory=list)

    def add(self, invariant: int, message: str) -> None:
        self.found.append(f"invariant {invariant}: {message}")

    def raise_if_any(self) -> None:
        if self.found:
            shown = "\n  ".join(self.found[:40])
            more = f"\n  ... and {len(self.found) - 40} more" if len(self.found) > 40 else ""
            raise AssertionError(f"{len(self.found)} invariant violation(s):\n  {shown}{more}")


def check_invariants(
    emulator: Emulator,
    *,
    policy: RetentionPolicy,
    seen: Snapshot,
    events: Sequence[Mapping[str, Any]],
    journal: Sequence[JournalEntry] | None = None,
    outputs: Iterable[str] = (),
    secrets: Iterable[str] = (),
    every_confirmation_logged: bool = True,
) -> None:
    """Assert invariants 1, 2, 3 and 5; raises AssertionError listing every violation.

    ``seen`` is every batch as the API showed it before the cycle (see :func:`snapshot`);
    ``journal`` the part of the emulator's journal written by that cycle (default: all of
    it); ``events`` every log event cleaner emitted, across all runs being checked.
    ``every_confirmation_logged`` also demands the converse of invariant 3: each deletion
    whose confirmation reached cleaner was logged (false for a process that was killed).
    """
    entries = list(emulator.journal if journal is None else journal)
    found = Violations()
    _deletions(found, emulator, entries, policy, seen)
    _cancels(found, entries, seen, policy)
    _deletion_log(found, emulator, entries, events, every_confirmation_logged)
    _secrets(found, events, outputs, secrets)
    found.raise_if_any()


def _age_limit(
    policy: RetentionPolicy, batch: Mapping[str, Any]
) -> tuple[datetime | None, timedelta]:
    """Where a batch's age counts from (None: it may never go), and the age it must pass."""
    if batch["processing_status"] != "ended":
        # Not ended when listed: cancel-then-delete, ruled by processing_retention.
        return _parse(batch["created_at"]), policy.processing_retention
    canceled = batch.get("cancel_initiated_at")
    created = _parse(batch["created_at"])
    if canceled is not None and _parse(canceled) - created > policy.processing_retention:
        # Canceled while running past the processing retention: the same rule applies.
        return created, policy.processing_retention
    if policy.age_basis is AgeBasis.ENDED_AT:
        ended = batch.get("ended_at")
        return (None if ended is None else _parse(ended)), policy.retention
    return _parse(batch["created_at"]), policy.retention


def _deletions(
    found: Violations,
    emulator: Emulator,
    entries: Sequence[JournalEntry],
    policy: RetentionPolicy,
    seen: Snapshot,
) -> None:
    for entry in entries:
        if entry.endpoint != "delete":
            continue
        if entry.status in _REFUSED and entry.fault is None:
            found.add(1, f"DELETE {entry.batch_id} sent before it ended ({entry.status})")
        if entry.status != 200 or entry.fault not in (None, "drop_after"):
            continue
        batch_id = entry.batch_id or ""
        if batch_id in policy.protected_ids:
            found.add(1, f"protected batch {batch_id} deleted")
        batch = seen.get(batch_id)
        if batch is None:
            found.add(1, f"{batch_id} deleted but never listed before the cycle")
            continue
        start, limit = _age_limit(policy, batch)
        if start is None:
            found.add(1, f"{batch_id} deleted though it has no ended_at to count from")
        elif entry.at - start <= limit:
            found.add(1, f"{batch_id} deleted at age {entry.at - start}, retention {limit}")
    # Whatever is gone from the emulator went through a DELETE this test can see.
    every_applied = set(applied_deletes(emulator.journal))
    for batch_id in sorted(emulator.deleted_ids - every_applied):
        found.add(1, f"{batch_id} is gone without a DELETE the API applied")


def _cancels(
    found: Violations, entries: Sequence[JournalEntry], seen: Snapshot, policy: RetentionPolicy
) -> None:
    answered: Counter[str] = Counter()
    for entry in entries:
        if entry.endpoint != "cancel":
            continue
        batch_id = entry.batch_id or ""
        batch = seen.get(batch_id)
        status = None if batch is None else batch["processing_status"]
        if batch_id in policy.protected_ids:
            found.add(2, f"protected batch {batch_id} was sent a cancel")
        if status != "in_progress":
            found.add(2, f"cancel sent to {batch_id}, which was {status} when listed")
        elif entry.status in _REFUSED and entry.fault is None:
            # Listed running, ended before the cancel arrived: the API refused, nothing
            # was canceled. Allowed (a race no client can close), but never twice.
            answered[batch_id] += 1
        if entry.status == 200 and entry.fault is None:
            answered[batch_id] += 1
    for batch_id, count in sorted(answered.items()):
        if count > 1:
            found.add(2, f"{batch_id} was canceled {count} times in one cycle")


def _deletion_log(
    found: Violations,
    emulator: Emulator,
    entries: Sequence[JournalEntry],
    events: Sequence[Mapping[str, Any]],
    every_confirmation_logged: bool,
) -> None:
    logged = Counter(str(e.get("batch_id")) for e in events if e.get("event") == "batch_deleted")
    for batch_id, count in sorted(logged.items()):
        if count > 1:
            found.add(3, f"{batch_id} logged batch_deleted {count} times")
    confirmed_anywhere = set(confirmed_deletes(emulator.journal))
    for batch_id in sorted(set(logged) - confirmed_anywhere):
        found.add(3, f"{batch_id} logged batch_deleted without a confirmed DELETE")
    if every_confirmation_logged:
        for batch_id in sorted(set(confirmed_deletes(entries)) - set(logged)):
            found.add(3, f"{batch_id} deletion confirmed by the API but never logged")


def _secrets(
    found: Violations,
    events: Sequence[Mapping[str, Any]],
    outputs: Iterable[str],
    secrets: Iterable[str],
) -> None:
    texts = [repr(event) for event in events]
    texts += [str(value) for event in events for value in event.values()]
    texts += list(outputs)
    for secret in secrets:
        for text in texts:
            if secret in text:
                shown = text.replace(secret, "<THE KEY>")[:160]
                found.add(5, f"the key appears in output: {shown!r}")
                break


def _parse(value: object) -> datetime:
    return datetime.fromisoformat(str(value))
