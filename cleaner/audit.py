"""Deletion receipts: written ahead of every cancel and DELETE, chained, one object a cycle.

Write-ahead and fail closed: :meth:`CycleAudit.intend` returns only once the intent is
durable; if it raises :class:`AuditUnavailableError` the request must not be sent. After
the API answers, :meth:`CycleAudit.receipt` records the outcome the same way.

Group commit: records arriving while a write is in flight are written together by the
next write, one small *segment* object each, so 32 concurrent actions cost one write
round trip between them rather than 32. :meth:`CycleAudit.seal` turns the cycle's
segments into one cycle object and moves ``HEAD`` to it; a process killed mid-cycle
leaves segments that the next :meth:`AuditTrail.open_cycle` seals first (recovery).
Layout and chain format: :mod:`cleaner.chain`.

Receipt fields a report relies on: ``outcome``, ``reason``, ``at`` (when recorded),
``deleted_at``, and ``deadline`` (when policy wanted the batch gone: its age basis plus
the retention); a deletion after its deadline counts as late.

Errors::

    AuditError
    └── AuditUnavailableError   the sink cannot be written: send nothing
        └── AuditIntegrityError the stored trail is inconsistent (HEAD lost, chain forked)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Protocol

from cleaner.chain import JSON, Layout, check_id, encode, timestamp
from cleaner.errors import CleanerError
from cleaner.sealing import SealError, read_head, seal_pending
from cleaner.storage import StorageError, Store

__all__ = [
    "AuditError",
    "AuditIntegrityError",
    "AuditTrail",
    "AuditUnavailableError",
    "CycleAudit",
    "Intent",
    "NullTrail",
    "Receipt",
]

_RESERVED = frozenset({"kind", "seq", "prev", "hash", "at", "cycle_id"})


class AuditError(CleanerError):
    """Receipts could not be kept."""


class AuditUnavailableError(AuditError):
    """The audit sink cannot be written: the request it would cover must not be sent."""


class AuditIntegrityError(AuditUnavailableError):
    """The stored trail does not continue from where this process would write."""


def _ts(moment: datetime | None) -> str | None:
    return None if moment is None else timestamp(moment)


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """About to send ``action`` (cancel or delete) for one batch."""

    action: str
    batch_id: str
    reason: str
    deadline: datetime | None = None

    def fields(self) -> dict[str, JSON]:
        return {
            "action": self.action,
            "batch_id": self.batch_id,
            "reason": self.reason,
            "deadline": _ts(self.deadline),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """What became of one action. ``extra`` adds caller fields (archive_uri, error, ...)."""

    action: str
    batch_id: str
    reason: str
    outcome: str  # deleted, already_gone, failed, wait_timeout, ...
    created_at: datetime | None = None
    ended_at: datetime | None = None
    archived_at: datetime | None = None
    request_counts: Mapping[str, int] | None = None
    confirmation: JSON = None  # the API's response body, verbatim
    request_id: str | None = None
    deleted_at: datetime | None = None
    verified_absent: bool | None = None
    deadline: datetime | None = None
    extra: Mapping[str, JSON] = field(default_factory=dict)

    def fields(self) -> dict[str, JSON]:
        clash = (_RESERVED | _RECEIPT_FIELDS).intersection(self.extra)
        if clash:
            raise ValueError(f"extra receipt fields clash with reserved names: {sorted(clash)}")
        return {
            "action": self.action,
            "batch_id": self.batch_id,
            "reason": self.reason,
            "outcome": self.outcome,
            "created_at": _ts(self.created_at),
            "ended_at": _ts(self.ended_at),
            "archived_at": _ts(self.archived_at),
            "request_counts": dict(self.request_counts) if self.request_counts else None,
            "confirmation": self.confirmation,
            "request_id": self.request_id,
            "deleted_at": _ts(self.deleted_at),
            "verified_absent": self.verified_absent,
            "deadline": _ts(self.deadline),
            **self.extra,
        }


_RECEIPT_FIELDS = frozenset(f.name for f in fields(Receipt)) - {"extra"}


class CycleLog(Protocol):
    """What a cycle writes to: :class:`CycleAudit` or the no-op of :class:`NullTrail`."""

    async def intend(self, intent: Intent) -> None: ...
    async def receipt(self, receipt: Receipt) -> None: ...
    async def seal(self) -> None: ...


class AuditTrail:
    """Receipts on one store, optionally under a ``<workspace>/`` level."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        cleaner_version: str,
        workspace: str | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._version = cleaner_version
        self._workspace = None if workspace is None else check_id(workspace, what="workspace")
        self._layout = Layout(self._workspace)

    def describe(self) -> str:
        """Where receipts go, without credentials."""
        return self._store.describe()

    async def open_cycle(
        self, *, cycle_id: str, policy_sha256: str, started_at: datetime
    ) -> CycleAudit:
        """Seal what a killed process left, then durably open this cycle's log.

        Raises :class:`AuditUnavailableError` if anything cannot be read or written:
        the whole cycle must then send no cancel and no delete.
        """
        check_id(cycle_id, what="cycle_id")
        try:
            pending = await self._store.list(self._layout.pending)
            for leftover in sorted({path.split("/")[-2] for path in pending} - {cycle_id}):
                await seal_pending(self._store, self._layout, leftover, self._clock, recovered=True)
            head = await read_head(self._store, self._layout)
            header: dict[str, JSON] = {
                "kind": "cycle",
                "cycle_id": cycle_id,
                "started_at": timestamp(started_at),
                "policy_sha256": policy_sha256,
                "cleaner_version": self._version,
                "workspace": self._workspace,
                "prev_object": head.object if head else None,
                "at": timestamp(self._clock()),
            }
            log = CycleAudit(self, header, prev=head.hash if head else None)
            await log.write_header()
        except SealError as exc:
            raise AuditIntegrityError(f"audit trail at {self.describe()}: {exc}") from exc
        except StorageError as exc:
            raise AuditUnavailableError(f"audit sink unavailable: {exc}") from exc
        return log


class CycleAudit:
    """One cycle's receipts; concurrent callers share writes (group commit)."""

    def __init__(self, trail: AuditTrail, header: dict[str, JSON], *, prev: str | None) -> None:
        self._trail = trail
        self._header = header
        self._cycle_id = str(header["cycle_id"])
        self._stamp = {
            "cycle_id": header["cycle_id"],
            "policy_sha256": header["policy_sha256"],
            "cleaner_version": header["cleaner_version"],
        }
        if header["workspace"] is not None:
            self._stamp["workspace"] = header["workspace"]
        self._seq = 0
        self._prev = prev
        self._queue: list[tuple[dict[str, JSON], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._failure: AuditUnavailableError | None = None
        self._sealed = False

    @property
    def cycle_id(self) -> str:
        return self._cycle_id

    async def write_header(self) -> None:
        await self._append(self._header)
        if self._failure is not None:
            raise self._failure

    async def intend(self, intent: Intent) -> None:
        """Return once the intent is durable; raise AuditUnavailableError if it is not."""
        await self._append({"kind": "intent", **intent.fields(), **self._stamp})

    async def receipt(self, receipt: Receipt) -> None:
        """Return once the receipt is durable; raise AuditUnavailableError if it is not."""
        await self._append({"kind": "receipt", **receipt.fields(), **self._stamp})

    async def seal(self) -> None:
        """Write the cycle object and move HEAD to it; the segments are then removed."""
        self._sealed = True
        if self._writer is not None:
            await asyncio.shield(self._writer)
        store, layout, clock = self._trail._store, self._trail._layout, self._trail._clock
        try:
            await seal_pending(store, layout, self._cycle_id, clock)
        except SealError as exc:
            raise AuditIntegrityError(f"cannot seal cycle {self._cycle_id}: {exc}") from exc
        except StorageError as exc:
            raise AuditUnavailableError(f"cannot seal cycle {self._cycle_id}: {exc}") from exc

    async def _append(self, body: dict[str, JSON]) -> None:
        if self._failure is not None:
            raise self._failure
        if self._sealed:
            raise AuditError(f"cycle {self._cycle_id} is sealed; nothing more can be recorded")
        body.setdefault("at", timestamp(self._trail._clock()))
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((body, waiter))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_queued())
        await waiter

    async def _write_queued(self) -> None:
        # One write at a time; whatever queued meanwhile goes in the next one.
        try:
            while self._queue and self._failure is None:
                group, self._queue = self._queue, []
                await self._write_group(group)
        finally:
            self._writer = None

    async def _write_group(self, group: list[tuple[dict[str, JSON], asyncio.Future[None]]]) -> None:
        first, prev = self._seq, self._prev
        lines: list[bytes] = []
        for body, waiter in group:
            try:
                line, prev = encode({**body, "seq": first + len(lines), "prev": prev})
            except ValueError as exc:
                _settle(waiter, exc)
                continue
            lines.append(line)
        path = self._trail._layout.segment(self._cycle_id, first)
        try:
            if lines:
                await self._trail._store.put(path, b"".join(lines), create_only=True)
        except StorageError as exc:
            self._failure = AuditUnavailableError(f"audit sink unavailable: {exc}")
            self._failure.__cause__ = exc
            for _, waiter in group + self._queue:
                _settle(waiter, self._failure)
            self._queue = []
            return
        self._seq, self._prev = first + len(lines), prev
        for _, waiter in group:
            _settle(waiter, None)


def _settle(waiter: asyncio.Future[None], error: BaseException | None) -> None:
    if waiter.done():  # its caller was cancelled; the record is written all the same
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(error)


class _NullCycle:
    async def intend(self, intent: Intent) -> None:
        return None

    async def receipt(self, receipt: Receipt) -> None:
        return None

    async def seal(self) -> None:
        return None


class NullTrail:
    """No receipts configured: the same interface, recording nothing."""

    def describe(self) -> str:
        return "none"

    async def open_cycle(
        self, *, cycle_id: str, policy_sha256: str, started_at: datetime
    ) -> CycleLog:
        return _NullCycle()
