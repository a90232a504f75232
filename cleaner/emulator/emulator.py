"""The emulator's state and behaviour, independent of HTTP: what each API call does.

`Emulator` owns the batch store, the clock, the configuration (switches for every
[assume] behaviour of the contract, plus faults), the journal of mutating requests and the
per-endpoint request counters. The ASGI app (`app.py`) parses requests, asks this class, and
renders; tests reach the same object in-process to seed, move time, reconfigure and assert.

Thread safety: the server runs in its own thread (or process) while tests call in from
another, so every operation takes one re-entrant lock; all of them are short.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cleaner.emulator.clock import Clock, system_clock, to_us
from cleaner.emulator.config import EmulatorConfig
from cleaner.emulator.faults import FaultPlan, Firing, TokenBucket
from cleaner.emulator.results import result_chunks
from cleaner.emulator.seeding import Population, Timing, build_records
from cleaner.emulator.store import (
    ARCHIVE_US,
    SECOND_US,
    BatchRecord,
    BatchStore,
    new_ids,
    observe,
)
from cleaner.emulator.wire import (
    ApiError,
    JsonObject,
    batch_json,
    deleted_json,
    invalid,
    not_found,
    page_json,
    state_error,
)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request that changed state or tried to (status 0: connection dropped, no answer)."""

    at: datetime
    method: str
    path: str
    endpoint: str
    batch_id: str | None
    status: int
    fault: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "at": f"{self.at:%Y-%m-%dT%H:%M:%S.%f}Z",
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "batch_id": self.batch_id,
            "status": self.status,
            "fault": self.fault,
        }


MUTATING_ENDPOINTS = frozenset({"create", "cancel", "delete"})


@dataclass(eq=False)
class Emulator:
    """A stateful, in-memory Message Batches API."""

    config: EmulatorConfig = field(default_factory=EmulatorConfig)
    clock: Clock | None = None
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._now: Clock = self.clock if self.clock is not None else system_clock
        self._store = BatchStore()
        # Seeded on purpose: ids and seeding replay; nothing here is a secret.
        self._rng = random.Random(self.config.seed)  # noqa: S311  # nosec B311
        self._faults = FaultPlan.build(self.config.faults, self.config.seed)
        self._bucket = self._make_bucket(self.config.rate_limit_rpm)
        self.journal: list[JournalEntry] = []
        self.request_counts: Counter[tuple[str, int]] = Counter()
        self.base_url = ""  # set by the server: makes results_url absolute

    # ----- the Python API for tests, benchmarks and the demo -----

    def now(self) -> datetime:
        return self._now()

    def seed(self, *populations: Population) -> list[str]:
        """Add populations of batches; returns their ids (oldest population first)."""
        ids: list[str] = []
        with self._lock:
            now_us = to_us(self._now())
            for population in populations:
                records = build_records(
                    self._store, population, now_us=now_us, timing=self._timing(), rng=self._rng
                )
                self._store.add_many(records)
                ids.extend(record.id for record in records)
        return ids

    def add_batch(
        self,
        *,
        created_at: datetime | None = None,
        status: Literal["ended", "in_progress", "canceling"] = "in_progress",
        request_count: int = 1,
        errored_fraction: float = 0.0,
        ended_by: Literal["finish", "cancel", "expiry"] = "finish",
    ) -> JsonObject:
        """Add one batch created at `created_at` (default now) in `status`; returns its JSON."""
        with self._lock:
            now = self._now()
            age_s = 0.0 if created_at is None else (now - created_at).total_seconds()
            population = Population(
                count=1,
                status=status,
                age_s=age_s,
                request_count=request_count,
                errored_fraction=errored_fraction,
                ended_by=ended_by,
            )
            (batch_id,) = self.seed(population)
            found = self.get(batch_id)
            if found is None:  # cannot happen: added under the lock just now
                raise RuntimeError(f"batch {batch_id} vanished while being added")
            return found

    def get(self, batch_id: str) -> JsonObject | None:
        """The batch as the API would show it now, or None if unknown or deleted."""
        with self._lock:
            record = self._store.get(batch_id)
            if record is None:
                return None
            return batch_json(record, to_us(self._now()), self.base_url)

    def batches(self) -> list[JsonObject]:
        """Every live batch, newest first (meant for small populations)."""
        with self._lock:
            now_us = to_us(self._now())
            return [batch_json(r, now_us, self.base_url) for r in self._store.newest_first()]

    def iter_batches(self, chunk: int = 1000) -> Iterator[list[JsonObject]]:
        """Every live batch in chunks, newest first, taking the lock per chunk (for 1M)."""
        records = self._store.newest_first()
        while True:
            with self._lock:
                now_us = to_us(self._now())
                out = [
                    batch_json(r, now_us, self.base_url) for r in itertools.islice(records, chunk)
                ]
            if not out:
                return
            yield out

    def __len__(self) -> int:
        return len(self._store)

    @property
    def deleted_ids(self) -> set[str]:
        with self._lock:
            return self._store.deleted_ids

    def status_counts(self) -> Counter[str]:
        """How many live batches are in each processing status now."""
        with self._lock:
            now_us = to_us(self._now())
            return Counter(observe(r, now_us).status for r in self._store.newest_first())

    def configure(self, **changes: object) -> EmulatorConfig:
        """Replace configuration fields at runtime; faults restart their budgets and RNG."""
        if "faults" in changes and isinstance(changes["faults"], list | tuple):
            changes["faults"] = tuple(changes["faults"])
        with self._lock:
            new = dataclasses.replace(self.config, **changes)  # type: ignore[arg-type]
            if "faults" in changes or "seed" in changes:
                self._faults = FaultPlan.build(new.faults, new.seed)
            if new.rate_limit_rpm != self.config.rate_limit_rpm:
                self._bucket = self._make_bucket(new.rate_limit_rpm)
            self.config = new
            return new

    def clear_journal(self) -> None:
        with self._lock:
            self.journal.clear()

    def clear_request_counts(self) -> None:
        with self._lock:
            self.request_counts.clear()

    # ----- what the HTTP layer asks before serving a request -----

    def take_token(self) -> float | None:
        """None when the shared rate limit admits a request, else seconds to wait."""
        bucket = self._bucket
        return None if bucket is None else bucket.take()

    def decide_fault(self, endpoint: str) -> Firing:
        return self._faults.decide(endpoint, self.config.latency_s)

    def record(
        self,
        *,
        method: str,
        path: str,
        endpoint: str,
        batch_id: str | None,
        status: int,
        fault: str | None = None,
        changed_state: bool = False,
    ) -> None:
        """Count a request; journal it if it is a mutating one (or changed state anyway)."""
        with self._lock:
            self.request_counts[(endpoint, status)] += 1
            if endpoint in MUTATING_ENDPOINTS or changed_state:
                entry = JournalEntry(self._now(), method, path, endpoint, batch_id, status, fault)
                self.journal.append(entry)

    # ----- the API operations; each raises ApiError for an error answer -----

    def create(self, custom_ids: list[str], base_url: str) -> JsonObject:
        with self._lock:
            now_us = to_us(self._now())
            record = self._new_record(now_us, len(custom_ids))
            record.custom_ids = tuple(custom_ids)
            self._store.add_many([record])
            return batch_json(record, now_us, base_url)

    def retrieve(self, batch_id: str, base_url: str) -> JsonObject:
        with self._lock:
            return batch_json(self._live(batch_id), to_us(self._now()), base_url)

    def list_page(
        self,
        *,
        limit: int,
        after_id: str | None,
        before_id: str | None,
        base_url: str,
        create: bool = True,
    ) -> tuple[JsonObject, int]:
        """A page (newest first) and how many batches `create_on_list` made first."""
        with self._lock:
            now_us = to_us(self._now())
            created = self.config.create_on_list if create else 0
            if created:
                self._store.add_many([self._new_record(now_us, 1) for _ in range(created)])
            store = self._store
            if after_id is not None:
                index, _ = self._cursor(after_id)
                records, has_more = store.page_older(index, limit)
            elif before_id is not None:
                index, is_cursor = self._cursor(before_id)
                records, has_more = store.page_newer(index + int(is_cursor), limit)
            else:
                records, has_more = store.page_older(store.top, limit)
            data = [batch_json(r, now_us, base_url) for r in records]
            return page_json(data, has_more), created

    def cancel(self, batch_id: str, base_url: str) -> JsonObject:
        with self._lock:
            record = self._live(batch_id)
            now_us = to_us(self._now())
            status = observe(record, now_us).status
            if status == "in_progress":
                record.cancel_us = now_us
                record.settle_us = round(self.config.cancel_settle_s * SECOND_US)
            elif status == "canceling" and self.config.cancel_canceling_status != 200:
                raise state_error(
                    self.config.cancel_canceling_status,
                    f"message batch {batch_id!r} is already canceling",
                )
            elif status == "ended" and not self.config.cancel_ended_ok:
                raise invalid(
                    f"message batch {batch_id!r} has already ended; it cannot be canceled"
                )
            return batch_json(record, now_us, base_url)

    def delete(self, batch_id: str) -> JsonObject:
        with self._lock:
            record = self._live(batch_id)
            status = observe(record, to_us(self._now())).status
            if status != "ended":
                raise state_error(
                    self.config.delete_running_status,
                    f"message batch {batch_id!r} is {status}; it can be deleted only once it"
                    " has ended (cancel it first)",
                )
            self._store.delete(batch_id)
            return deleted_json(batch_id)

    def results(self, batch_id: str) -> Iterator[bytes]:
        """The results file in chunks; only for an ended batch not yet archived."""
        with self._lock:
            record = self._live(batch_id)
            now_us = to_us(self._now())
            seen = observe(record, now_us)
            if seen.ended_us is None:
                raise invalid(
                    f"message batch {batch_id!r} is still {seen.status}; results are not ready"
                )
            if now_us >= record.created_us + ARCHIVE_US:
                raise ApiError(
                    404, "not_found_error", f"results of {batch_id!r} are archived and gone"
                )
        return result_chunks(record, now_us, line_bytes=self.config.results_line_bytes)

    def results_total(self, batch_id: str) -> int:
        """How many lines the results file of `batch_id` has (its final request count)."""
        with self._lock:
            record = self._live(batch_id)
            return record.request_count

    # ----- helpers -----

    def _live(self, batch_id: str) -> BatchRecord:
        record = self._store.get(batch_id)
        if record is None:
            raise not_found(batch_id)
        return record

    def _cursor(self, batch_id: str) -> tuple[int, bool]:
        allow_deleted = self.config.deleted_cursor == "works"
        found = self._store.cursor_position(batch_id, allow_deleted=allow_deleted)
        if found is None:
            raise not_found(batch_id)
        return found

    def _new_record(self, now_us: int, request_count: int) -> BatchRecord:
        (batch_id,) = new_ids(self._rng, 1, self._store.used)
        key = self._store.sort_key(now_us)
        finish = now_us + round(self.config.processing_time_s * SECOND_US)
        return BatchRecord(batch_id, key, now_us, request_count, finish, 0)

    def _timing(self) -> Timing:
        return Timing(
            processing_us=round(self.config.processing_time_s * SECOND_US),
            settle_us=round(self.config.cancel_settle_s * SECOND_US),
        )

    def _make_bucket(self, rpm: float | None) -> TokenBucket | None:
        return None if rpm is None else TokenBucket(rpm, self.monotonic)
