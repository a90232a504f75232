"""What each API call does, independent of HTTP: the operations on top of the state.

`Emulator` is `EmulatorState` (state.py: stores per workspace, clock, configuration, journal,
counters and the Python API for tests) plus the operations the ASGI app (`app.py`) calls
after parsing a request. Each operation acts in one workspace (`workspace`: an id or name;
None means the default workspace for create and list, and any workspace for the per-batch
calls, which is how in-process tests use them) and raises ApiError for an error answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Literal

from cleaner.emulator.clock import to_us
from cleaner.emulator.faults import Firing
from cleaner.emulator.journal import MUTATING_ENDPOINTS, JournalEntry
from cleaner.emulator.results import result_chunks
from cleaner.emulator.seeding import Population
from cleaner.emulator.state import EmulatorState
from cleaner.emulator.store import SECOND_US, BatchRecord, BatchStore, archive_us, new_ids, observe
from cleaner.emulator.wire import (
    ApiError,
    JsonObject,
    batch_json,
    deleted_json,
    invalid,
    not_found,
    page_json,
    state_error,
    status_error,
)

__all__ = ["Emulator", "JournalEntry"]


class Emulator(EmulatorState):
    """A stateful, in-memory Message Batches API."""

    def add_batch(
        self,
        *,
        created_at: datetime | None = None,
        status: Literal["ended", "in_progress", "canceling"] = "in_progress",
        request_count: int = 1,
        errored_fraction: float = 0.0,
        ended_by: Literal["finish", "cancel", "expiry"] = "finish",
        workspace: str | None = None,
        processing_status: str | None = None,
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
                workspace=workspace,
                processing_status=processing_status,
            )
            (batch_id,) = self.seed(population)
            found = self.get(batch_id)
            if found is None:  # cannot happen: added under the lock just now
                raise RuntimeError(f"batch {batch_id} vanished while being added")
            return found

    # ----- what the HTTP layer asks before serving a request -----

    def take_token(self, workspace_id: str | None = None) -> float | None:
        """None when the rate limits admit a request, else seconds to wait."""
        return self.admit(self.workspace_id(workspace_id)).wait_s

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
        workspace_id: str | None = None,
    ) -> None:
        """Count a request; journal it if it is a mutating one (or changed state anyway)."""
        with self._lock:
            self.request_counts[(endpoint, status)] += 1
            if endpoint in MUTATING_ENDPOINTS or changed_state:
                entry = JournalEntry(
                    self._now(), method, path, endpoint, batch_id, status, fault, workspace_id
                )
                self.journal.append(entry)

    # ----- the API operations; each raises ApiError for an error answer -----

    def create(
        self, custom_ids: list[str], base_url: str, *, workspace: str | None = None
    ) -> JsonObject:
        with self._lock:
            now_us = to_us(self._now())
            record = self._new_record(now_us, len(custom_ids))
            record.custom_ids = tuple(custom_ids)
            self._stores.store(self.workspace_id(workspace)).add_many([record])
            return batch_json(record, now_us, base_url)

    def retrieve(self, batch_id: str, base_url: str, *, workspace: str | None = None) -> JsonObject:
        with self._lock:
            return batch_json(self._live(batch_id, workspace), to_us(self._now()), base_url)

    def list_page(
        self,
        *,
        limit: int,
        after_id: str | None,
        before_id: str | None,
        base_url: str,
        create: bool = True,
        workspace: str | None = None,
    ) -> tuple[JsonObject, int]:
        """A page (newest first) and how many batches `create_on_list` made first.

        `after_id`: the page just older than the cursor. `before_id`: the page just newer
        than it, still newest first, `has_more` telling whether even newer ones exist."""
        with self._lock:
            now_us = to_us(self._now())
            created = self.config.create_on_list if create else 0
            store = self._stores.store(self.workspace_id(workspace))
            if created:
                store.add_many([self._new_record(now_us, 1) for _ in range(created)])
            if after_id is not None:
                index, _ = self._cursor(store, after_id)
                records, has_more = store.page_older(index, limit)
            elif before_id is not None:
                index, is_cursor = self._cursor(store, before_id)
                records, has_more = store.page_newer(index + int(is_cursor), limit)
            else:
                records, has_more = store.page_older(store.top, limit)
            data = [batch_json(r, now_us, base_url) for r in records]
            return page_json(data, has_more), created

    def operator_page(self, *, limit: int, after_id: str | None) -> JsonObject:
        """A page of every workspace's batches merged, newest first (the operator's view)."""
        with self._lock:
            now_us = to_us(self._now())
            after_key: int | None = None
            if after_id is not None:
                found = self._stores.find(after_id)
                if found is None:
                    raise not_found(after_id)
                after_key = found[1].key
            records, has_more = self._stores.page_all(after_key, limit)
            data = [batch_json(r, now_us, self.base_url) for r in records]
            return page_json(data, has_more)

    def cancel(self, batch_id: str, base_url: str, *, workspace: str | None = None) -> JsonObject:
        """Cancel a running batch; a canceling one, or one in a seeded unknown status, is
        answered unchanged (or refused, as `cancel_canceling_status` says for canceling)."""
        with self._lock:
            record = self._live(batch_id, workspace)
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

    def delete(self, batch_id: str, *, workspace: str | None = None) -> JsonObject:
        """Delete an ended batch; refuse one not ended, or one listed in `refuse_delete`."""
        with self._lock:
            record = self._live(batch_id, workspace)
            if batch_id in self.config.refuse_delete:
                raise status_error(
                    self.config.refuse_delete_status,
                    f"message batch {batch_id!r} could not be deleted (emulated refusal)",
                )
            status = observe(record, to_us(self._now())).status
            if status != "ended":
                raise state_error(
                    self.config.delete_running_status,
                    f"message batch {batch_id!r} is {status}; it can be deleted only once it"
                    " has ended (cancel it first)",
                )
            self._owning_store(batch_id, workspace).delete(batch_id)
            return deleted_json(batch_id)

    def results(self, batch_id: str, *, workspace: str | None = None) -> Iterator[bytes]:
        """The results file in chunks; only for an ended batch not yet archived."""
        with self._lock:
            record = self._live(batch_id, workspace)
            now_us = to_us(self._now())
            seen = observe(record, now_us)
            if seen.ended_us is None:
                raise invalid(
                    f"message batch {batch_id!r} is still {seen.status}; results are not ready"
                )
            archived_us = archive_us(record, seen.ended_us)
            if archived_us is not None and now_us >= archived_us:
                raise ApiError(
                    404, "not_found_error", f"results of {batch_id!r} are archived and gone"
                )
        return result_chunks(record, now_us, line_bytes=self.config.results_line_bytes)

    def results_total(self, batch_id: str, *, workspace: str | None = None) -> int:
        """How many lines the results file of `batch_id` has (its final request count)."""
        with self._lock:
            record = self._live(batch_id, workspace)
            return record.request_count

    # ----- helpers -----

    def _live(self, batch_id: str, workspace: str | None) -> BatchRecord:
        """The live batch, looked up in `workspace` (None: in any); 404 when not there."""
        if workspace is None:
            found = self._stores.find(batch_id)
            record = None if found is None else found[1]
        else:
            record = self._stores.store(self.workspace_id(workspace)).get(batch_id)
        if record is None:
            raise not_found(batch_id)
        return record

    def _owning_store(self, batch_id: str, workspace: str | None) -> BatchStore:
        owner = self._stores.owner(batch_id) if workspace is None else workspace
        return self._stores.store(self.workspace_id(owner))

    def _cursor(self, store: BatchStore, batch_id: str) -> tuple[int, bool]:
        allow_deleted = self.config.deleted_cursor == "works"
        found = store.cursor_position(batch_id, allow_deleted=allow_deleted)
        if found is None:
            raise not_found(batch_id)
        return found

    def _new_record(self, now_us: int, request_count: int) -> BatchRecord:
        (batch_id,) = new_ids(self._rng, 1, self._stores.used)
        key = self._stores.store(self.workspace_id(None)).sort_key(now_us)
        finish = now_us + round(self.config.processing_time_s * SECOND_US)
        return BatchRecord(batch_id, key, now_us, request_count, finish, 0)
