"""Batch state and lifecycle: an ordered in-memory index that stays cheap at a million batches.

Nothing here runs in the background. A batch stores only the moments that decide its fate
(created, when its requests would all be done, when a cancel was asked for and how long it
settles); its status and counts are worked out from "now" whenever it is read (`observe`).
So an idle emulator costs nothing, and moving a clock is all it takes to age it.

Order: ids sit in a list sorted by a key (created_at in microseconds, then an insertion
sequence to break ties), with a dict from id to record. Listing walks that list from the top
(newest first); a cursor is found with bisect on its key. Deleting leaves the id in the list
as a tombstone (remembered with its key), so a cursor naming a deleted batch still has a
position; tombstones are compacted out of the list once they make up a quarter of it.
"""

from __future__ import annotations

import base64
import itertools
import random
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

ProcessingStatus = Literal["in_progress", "canceling", "ended"]
ResultType = Literal["succeeded", "errored", "canceled", "expired"]

SECOND_US = 1_000_000
DAY_US = 86_400 * SECOND_US
EXPIRY_US = DAY_US  # expires_at = created_at + 24 h
ARCHIVE_US = 29 * DAY_US  # results kept 29 days after creation
_SEQ_BITS = 32
_ID_CHARS = 24
_ID_BYTES = _ID_CHARS * 3 // 4  # base64: 3 bytes make 4 characters
# base64 uses '-' and '_' beyond base62; map them onto letters so ids look like the real ones.
_TO_BASE62 = bytes.maketrans(b"-_", b"Ab")


def new_ids(rng: random.Random, count: int, exists: Callable[[str], bool]) -> list[str]:
    """`count` fresh ids `msgbatch_` + 24 base62 characters, unique and not `exists`."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        need = count - len(out)
        raw = base64.urlsafe_b64encode(rng.randbytes(_ID_BYTES * need)).translate(_TO_BASE62)
        text = raw.decode("ascii")
        for start in range(0, len(text), _ID_CHARS):
            batch_id = "msgbatch_" + text[start : start + _ID_CHARS]
            if batch_id not in seen and not exists(batch_id):
                seen.add(batch_id)
                out.append(batch_id)
    return out


@dataclass(slots=True)
class BatchRecord:
    """What the emulator remembers about one batch; everything else is derived."""

    id: str
    key: int
    created_us: int
    request_count: int
    finish_us: int  # when every request would be done if nothing intervened
    errored: int  # requests that fail when processed (pro rata if the batch stops early)
    cancel_us: int | None = None
    settle_us: int = 0  # how long in-flight requests take to settle after a cancel
    custom_ids: tuple[str, ...] | None = None  # None: generated as req_0, req_1, ...
    status_override: str | None = None  # a seeded status shown verbatim (e.g. a future value)
    archived_us: int | None = None  # a seeded archived_at; None: the 29-day rule

    @property
    def expires_us(self) -> int:
        return self.created_us + EXPIRY_US

    def custom_id(self, index: int) -> str:
        """The custom_id of request `index`."""
        return self.custom_ids[index] if self.custom_ids is not None else f"req_{index}"


@dataclass(frozen=True, slots=True)
class Observed:
    """A batch as seen at one moment: status, end time and counts."""

    status: str  # a ProcessingStatus, or a seeded status_override
    ended_us: int | None
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int


def observe(record: BatchRecord, now_us: int) -> Observed:
    """Status and counts of `record` at `now_us`; counts are final only once it ends."""
    n = record.request_count
    if record.status_override is not None:  # frozen as seeded; counts as not ended
        return Observed(record.status_override, None, n, 0, 0, 0, 0)
    cancel_end = None if record.cancel_us is None else record.cancel_us + record.settle_us
    end = min(record.finish_us, record.expires_us)
    if cancel_end is not None:
        end = min(end, cancel_end)
    if now_us < end:
        canceling = record.cancel_us is not None and now_us >= record.cancel_us
        status: ProcessingStatus = "canceling" if canceling else "in_progress"
        return Observed(status, None, n, 0, 0, 0, 0)
    if end == record.finish_us:
        done = n
    else:
        span = record.finish_us - record.created_us
        done = n if span <= 0 else min(n, n * max(0, end - record.created_us) // span)
    errored = record.errored * done // n if n else 0
    rest = n - done
    cancelled = cancel_end is not None and end == cancel_end and end < record.finish_us
    canceled, expired = (rest, 0) if cancelled else (0, rest)
    return Observed("ended", end, 0, done - errored, errored, canceled, expired)


def archive_us(record: BatchRecord, ended_us: int | None) -> int | None:
    """When results stop being downloadable: as seeded, else 29 days after creation once
    ended (None: never, as long as it has not ended)."""
    if record.archived_us is not None:
        return record.archived_us
    return None if ended_us is None else record.created_us + ARCHIVE_US


class BatchStore:
    """Live batches by id, all ids in created order, tombstones for deleted ones. Not locked."""

    def __init__(self, *, sequence: Iterator[int] | None = None) -> None:
        self._records: dict[str, BatchRecord] = {}
        self._tombstones: dict[str, int] = {}
        self._keys: list[int] = []  # ascending
        self._ids: list[str] = []  # parallel to _keys; may hold tombstoned ids
        self._dead_in_order = 0
        # Shared between the stores of several workspaces, so their keys merge in order.
        self._sequence = sequence if sequence is not None else itertools.count(1)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, batch_id: object) -> bool:
        return batch_id in self._records

    def get(self, batch_id: str) -> BatchRecord | None:
        return self._records.get(batch_id)

    def is_deleted(self, batch_id: str) -> bool:
        return batch_id in self._tombstones

    @property
    def deleted_ids(self) -> set[str]:
        return set(self._tombstones)

    def used(self, batch_id: str) -> bool:
        """Whether `batch_id` was ever used, live or deleted (new ids never reuse one)."""
        return batch_id in self._records or batch_id in self._tombstones

    def sort_key(self, created_us: int) -> int:
        """A fresh unique key: created time first, then insertion order."""
        seq = next(self._sequence)
        return (created_us << _SEQ_BITS) | (seq & ((1 << _SEQ_BITS) - 1))

    def add_many(self, records: list[BatchRecord]) -> None:
        """Insert records (keys from `sort_key`); appends when they are newest, else re-sorts."""
        if not records:
            return
        for record in records:
            self._records[record.id] = record
        records_sorted = sorted(records, key=_key_of)
        if not self._keys or records_sorted[0].key > self._keys[-1]:
            self._keys.extend([r.key for r in records_sorted])
            self._ids.extend([r.id for r in records_sorted])
            return
        keys = self._keys + [r.key for r in records_sorted]
        ids = self._ids + [r.id for r in records_sorted]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys = [keys[i] for i in order]
        self._ids = [ids[i] for i in order]

    def delete(self, batch_id: str) -> None:
        """Forget a live batch but remember where it stood."""
        record = self._records.pop(batch_id)
        self._tombstones[batch_id] = record.key
        self._dead_in_order += 1
        if self._dead_in_order > 1024 and self._dead_in_order * 4 > len(self._ids):
            self._compact()

    def cursor_position(self, batch_id: str, *, allow_deleted: bool) -> tuple[int, bool] | None:
        """(index of the first key >= the cursor's, whether that slot is the cursor) or None."""
        record = self._records.get(batch_id)
        if record is not None:
            key = record.key
        elif allow_deleted and batch_id in self._tombstones:
            key = self._tombstones[batch_id]
        else:
            return None
        index = bisect_left(self._keys, key)
        return index, index < len(self._keys) and self._keys[index] == key

    def page_older(self, below: int, limit: int) -> tuple[list[BatchRecord], bool]:
        """Up to `limit` live records at indexes < `below`, newest first; and whether more exist."""
        out: list[BatchRecord] = []
        records, ids = self._records, self._ids
        i = below - 1
        while i >= 0 and len(out) < limit:
            record = records.get(ids[i])
            if record is not None:
                out.append(record)
            i -= 1
        return out, self._any_live(range(i, -1, -1))

    def page_newer(self, above: int, limit: int) -> tuple[list[BatchRecord], bool]:
        """Up to `limit` live records at indexes >= `above` nearest to it, newest first; more?"""
        out: list[BatchRecord] = []
        records, ids = self._records, self._ids
        i = above
        while i < len(ids) and len(out) < limit:
            record = records.get(ids[i])
            if record is not None:
                out.append(record)
            i += 1
        out.reverse()
        return out, self._any_live(range(i, len(ids)))

    @property
    def top(self) -> int:
        """The index just above the newest batch."""
        return len(self._ids)

    def newest_first(self) -> Iterator[BatchRecord]:
        """Every live record, newest first (a snapshot of the order, safe to interleave)."""
        ids = list(self._ids)
        for batch_id in reversed(ids):
            record = self._records.get(batch_id)
            if record is not None:
                yield record

    def _any_live(self, indexes: range) -> bool:
        records, ids = self._records, self._ids
        return any(ids[i] in records for i in indexes)

    def _compact(self) -> None:
        keep = [i for i, batch_id in enumerate(self._ids) if batch_id in self._records]
        self._keys = [self._keys[i] for i in keep]
        self._ids = [self._ids[i] for i in keep]
        self._dead_in_order = 0


def _key_of(record: BatchRecord) -> int:
    return record.key
