"""Shared pieces of the audit tests: a ticking clock, stores that stall or fail, edits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import orjson

from cleaner.audit import AuditTrail, CycleAudit, Intent, Receipt
from cleaner.storage import StorageUnavailableError, Store, open_store

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY_SHA = "ab" * 32
VERSION = "0.1.0"
REASON = "ended_past_retention"


class TickingClock:
    """Each reading is one second after the previous: deterministic, never sleeps."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def trail_on(
    store: Store, *, clock: TickingClock | None = None, workspace: str | None = None
) -> AuditTrail:
    """An AuditTrail on ``store`` with a ticking clock."""
    return AuditTrail(
        store, clock=clock or TickingClock(), cleaner_version=VERSION, workspace=workspace
    )


def intent(batch_id: str, *, action: str = "delete", deadline: datetime | None = None) -> Intent:
    return Intent(action=action, batch_id=batch_id, reason=REASON, deadline=deadline)


def receipt(
    batch_id: str,
    outcome: str,
    *,
    action: str = "delete",
    deleted_at: datetime | None = None,
    deadline: datetime | None = None,
    created_at: datetime | None = None,
    **extra: object,
) -> Receipt:
    return Receipt(
        action=action,
        batch_id=batch_id,
        reason=REASON,
        outcome=outcome,
        created_at=created_at,
        deleted_at=deleted_at,
        deadline=deadline,
        request_counts={"succeeded": 1, "errored": 0},
        confirmation={"id": batch_id, "type": "message_batch_deleted"}
        if outcome == "deleted"
        else None,
        request_id="req_test",
        verified_absent=True if outcome == "deleted" else None,
        extra=extra,  # type: ignore[arg-type]
    )


async def record_cycle(
    trail: AuditTrail, cycle_id: str, outcomes: Sequence[str], *, started_at: datetime = T0
) -> CycleAudit:
    """One cycle acting on one batch per outcome, concurrently, then sealed."""
    log = await trail.open_cycle(cycle_id=cycle_id, policy_sha256=POLICY_SHA, started_at=started_at)

    async def act(number: int, outcome: str) -> None:
        batch_id = f"msgbatch_{cycle_id}_{number}"
        await log.intend(intent(batch_id))
        await log.receipt(receipt(batch_id, outcome))

    await asyncio.gather(*(act(n, outcome) for n, outcome in enumerate(outcomes)))
    await log.seal()
    return log


class StallingStore(Store):
    """A memory store whose puts wait for ``gate`` while ``stall`` is set; records each put."""

    def __init__(self) -> None:
        inner = open_store("memory:///")
        super().__init__(inner._inner, described="memory:///stalling")
        self.gate = asyncio.Event()
        self.stall = False
        self.puts: list[tuple[str, bytes]] = []
        self.put_started = asyncio.Event()

    async def put(self, path: str, data: bytes, *, create_only: bool = False) -> None:
        self.puts.append((path, data))
        self.put_started.set()
        if self.stall:
            await self.gate.wait()
        await super().put(path, data, create_only=create_only)


class FailingStore(Store):
    """A memory store whose puts fail once ``broken`` is set (a sink that went away)."""

    def __init__(self) -> None:
        inner = open_store("memory:///")
        super().__init__(inner._inner, described="memory:///failing")
        self.broken = False
        self.fail_path: Callable[[str], bool] = lambda path: True

    async def put(self, path: str, data: bytes, *, create_only: bool = False) -> None:
        if self.broken and self.fail_path(path):
            raise StorageUnavailableError("put failed (test)", store=self.describe(), path=path)
        await super().put(path, data, create_only=create_only)


async def edit_lines(store: Store, path: str, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    """Rewrite an object's lines with ``edit`` (tampering, as a test does it)."""
    lines = (await store.get(path)).splitlines()
    await store.put(path, b"".join(line + b"\n" for line in edit(lines)))


def altered(line: bytes, **changes: object) -> bytes:
    """The record on ``line`` with fields changed and its stored hash left as it was."""
    record = orjson.loads(line)
    record.update(changes)
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
