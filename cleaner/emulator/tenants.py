"""One batch store per workspace, with ids unique across the organisation.

A workspace's listing walks only its own store, so a million batches in one workspace never
slow another's paging. The operator's views (every batch, counts, the admin listing) merge
the stores newest first; with a single workspace in use they read it directly. Not locked:
the emulator holds its lock around every call.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator

from cleaner.emulator.store import BatchRecord, BatchStore


class WorkspaceStores:
    """`BatchStore`s by workspace id; sort keys share one sequence, so merging keeps order."""

    def __init__(self) -> None:
        self._stores: dict[str, BatchStore] = {}
        self._sequence = itertools.count(1)

    def store(self, workspace_id: str) -> BatchStore:
        """The store of a workspace, made on first use."""
        found = self._stores.get(workspace_id)
        if found is None:
            found = BatchStore(sequence=self._sequence)
            self._stores[workspace_id] = found
        return found

    def used(self, batch_id: str) -> bool:
        """Whether any workspace ever used `batch_id` (new ids never reuse one)."""
        return any(store.used(batch_id) for store in self._stores.values())

    def find(self, batch_id: str) -> tuple[str, BatchRecord] | None:
        """(workspace id, live record) for `batch_id`, in whichever workspace holds it."""
        for workspace_id, store in self._stores.items():
            record = store.get(batch_id)
            if record is not None:
                return workspace_id, record
        return None

    def owner(self, batch_id: str) -> str | None:
        """The workspace a live or deleted batch belongs to."""
        for workspace_id, store in self._stores.items():
            if store.used(batch_id):
                return workspace_id
        return None

    def __len__(self) -> int:
        return sum(len(store) for store in self._stores.values())

    def counts(self) -> dict[str, int]:
        """Live batches per workspace id."""
        return {ws: len(store) for ws, store in self._stores.items()}

    @property
    def deleted_ids(self) -> set[str]:
        out: set[str] = set()
        for store in self._stores.values():
            out |= store.deleted_ids
        return out

    def newest_first(self, workspace_id: str | None = None) -> Iterator[BatchRecord]:
        """Live records newest first: of one workspace, or of all of them merged."""
        if workspace_id is not None:
            return self.store(workspace_id).newest_first()
        busy = [store for store in self._stores.values() if len(store)]
        if len(busy) == 1:
            return busy[0].newest_first()
        streams = [store.newest_first() for store in busy]
        return heapq.merge(*streams, key=_key_of, reverse=True)

    def page_all(self, after_key: int | None, limit: int) -> tuple[list[BatchRecord], bool]:
        """Up to `limit` live records of every workspace older than `after_key`; more?"""
        records = self.newest_first()
        if after_key is not None:
            records = itertools.dropwhile(lambda r: r.key >= after_key, records)
        page = list(itertools.islice(records, limit + 1))
        return page[:limit], len(page) > limit


def _key_of(record: BatchRecord) -> int:
    return record.key
