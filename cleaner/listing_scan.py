"""Feeding a cycle's listing back: pages and retrieves in, the next memory out. Pure.

:class:`Scan` follows one :class:`~cleaner.listing.ListingPlan`. The shell retrieves every
id in ``scan.retrieve`` first (in any order, concurrently if it likes), then pages each
segment ``next_segment()`` hands out, passing every page to ``absorb`` until it returns
False. Every batch retrieved or listed is also planned by the shell with the same policy;
this module only decides where the listing stands. See :mod:`cleaner.listing` for why.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from cleaner.listing import (
    DEFAULT_LIMITS,
    Anchor,
    Limits,
    ListingMemory,
    ListingPlan,
    Mode,
    Segment,
    SegmentKind,
    Watched,
)
from cleaner.listing_band import Band, anchor_of
from cleaner.models import Action, AgeBasis, Batch, KeepReason
from cleaner.policy import RetentionPolicy

#: Keep reasons that cannot turn into an action without a policy or holds change (which
#: makes the next listing full) or a hold expiry (likewise): safe to leave behind.
SETTLED = frozenset({"protected", "held", "no_end_time"})

Judge = Callable[[Batch], Action | KeepReason]


@dataclass(slots=True)
class Counts:
    """What the listing cost this cycle, for ``cycle_planned``."""

    pages: int = 0
    retrieves: int = 0


class Scan:
    """One cycle's listing, absorbed piece by piece; ``finish`` gives the next memory."""

    def __init__(
        self,
        plan: ListingPlan,
        memory: ListingMemory | None,
        *,
        now: datetime,
        policy: RetentionPolicy,
        judge: Judge,
        policy_fingerprint: str,
        hold_expiry: datetime | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._memory = memory if plan.mode is Mode.INCREMENTAL else None
        self._now, self._policy, self._judge, self._limits = now, policy, judge, limits
        self._fingerprint, self._hold_expiry = policy_fingerprint, hold_expiry
        self.mode, self.reason = plan.mode, plan.reason
        self.retrieve = plan.retrieve
        self.counts = Counts()
        self._pending_retrieves = set(plan.retrieve)
        self._queue: deque[Segment] = deque(plan.segments)
        self._current: Segment | None = None
        self._last: datetime | None = None  # the edge of the segment read so far
        self._doubt: str | None = None  # doubt for the next cycle (found too late)
        self._new_watch: dict[str, Watched] = {}
        self._top: Batch | None = None
        self._top_unknown = True
        self._rechecked: set[str] = set()
        self._watched_ids: set[str] = set()
        self._anchor_of: dict[SegmentKind, Anchor] = {}
        self._bands: dict[SegmentKind, Band] = {}
        self._carried: dict[str, list[SegmentKind]] = {}
        self._reset_streams()

    # --- what the shell calls

    def retrieved(self, batch: Batch) -> None:
        """A batch from ``retrieve``, as the API shows it now."""
        self._pending_retrieves.discard(batch.id)
        self.counts.retrieves += 1
        if self._memory is None:
            return  # a full listing is on its way and sees it again
        bands = []
        for kind, anchor in self._anchor_of.items():
            if anchor.id == batch.id:
                if batch.created_at != anchor.created_at:
                    self.doubt(f"the {kind.value} anchor changed its created_at")
                    return
                bands.append(self._bands[kind])
        actionable, settled, deadline = self._see(batch, bands=tuple(bands))
        if not actionable and not settled and batch.id in self._watched_ids:
            self._watch(batch.id, deadline)  # still to come back to: at its deadline

    def missing(self, batch_id: str) -> None:
        """A batch from ``retrieve`` answered 404: the memory cannot be trusted."""
        self._pending_retrieves.discard(batch_id)
        self.counts.retrieves += 1
        if self._memory is not None:  # else a full listing is on its way: nothing to doubt
            self.doubt(f"remembered batch {batch_id} answered 404")

    def next_segment(self) -> Segment | None:
        """The next run of pages to list, or None once the listing is complete."""
        if self._pending_retrieves and self.mode is Mode.INCREMENTAL:
            raise RuntimeError("retrieve every id in scan.retrieve before listing")
        self._current = self._queue.popleft() if self._queue else None
        self._last = None
        return self._current

    def absorb(self, segment: Segment, batches: Sequence[Batch], *, has_more: bool) -> bool:
        """One page of ``segment``; True while more pages of it are wanted."""
        self.counts.pages += 1
        if segment is not self._current:
            return False  # a segment abandoned by a fall back to a full listing
        if not self._in_order(segment, batches):
            return False
        ascending = segment.kind in (SegmentKind.PROCESSING, SegmentKind.RETENTION)
        ordered = list(reversed(batches)) if ascending else list(batches)
        if not ascending and self._top_unknown:
            # The first top seen wins: a band left without an anchor is covered up to the
            # top its own stream saw, never beyond, so the next head scan starts no higher.
            self._top, self._top_unknown = (batches[0] if batches else None), False
        bands = self._bands_for(segment)
        for batch in ordered:
            self._see(batch, bands=bands)
            if self._current is not segment:
                return False  # fell back to a full listing
        if not has_more:
            for band in bands:
                band.reached_top = True
            if ascending and self._top_unknown:
                self._top, self._top_unknown = bands[0].last, False
            return False
        if segment.kind is SegmentKind.HEAD:
            return not self._head_reached(batches)
        if ascending:
            return not all(band.satisfied for band in bands)
        return True

    def failed(self, segment: Segment, why: str) -> None:
        """A segment could not be listed to its end (e.g. its cursor answered 404)."""
        self.doubt(f"{segment.kind.value} listing failed: {why}")

    def doubt(self, why: str) -> None:
        """Something contradicts the memory: list in full now (or, if listing in full, next)."""
        if self.mode is Mode.FULL:
            self._doubt = self._doubt or why
            return
        self.mode, self.reason = Mode.FULL, f"fell back: {why}"
        self._memory = None
        self._queue = deque([Segment(SegmentKind.FULL)])
        self._current = None
        self._reset_streams()

    def finish(self, *, done: Iterable[str]) -> ListingMemory:
        """The memory for the next cycle; ``done``: ids deleted or already gone this cycle."""
        if self._queue or self._current is not None:
            raise RuntimeError("finish() before the listing was complete")
        if self.mode is Mode.INCREMENTAL and self._pending_retrieves:
            raise RuntimeError("finish() before every id in scan.retrieve was retrieved")
        memory, now = self._memory, self._now
        watched = dict(self._new_watch)
        anchors: dict[SegmentKind, Anchor | None] = {}
        for kind in (SegmentKind.PROCESSING, SegmentKind.RETENTION):
            band = self._bands.get(kind)
            if band is None:
                anchors[kind] = getattr(memory, kind.value, None)
                continue
            anchors[kind], stragglers = band.result(self._limits.page_limit)
            for straggler in stragglers:
                watched.setdefault(straggler.id, straggler)
        if memory is not None:
            for old in memory.watched:
                if old.id not in self._rechecked:
                    watched.setdefault(old.id, old)
        for batch_id in done:
            watched.pop(batch_id, None)
        doubt = self._doubt
        if len(watched) > self._limits.max_watched:
            doubt, watched = doubt or f"more than {self._limits.max_watched} to watch", {}
        if self._top_unknown:
            newest = memory.newest if memory is not None else None
        else:
            newest = None if self._top is None else anchor_of(self._top)
        return ListingMemory(
            listed_at=now,
            full_at=now if memory is None else memory.full_at,
            fingerprint=self._fingerprint,
            hold_expiry=self._hold_expiry,
            newest=newest,
            processing=anchors[SegmentKind.PROCESSING],
            retention=anchors[SegmentKind.RETENTION],
            watched=tuple(watched.values()),
            doubt=doubt,
        )

    def abandoned(self) -> ListingMemory | None:
        """The memory to keep when the listing stopped early: the old one, still valid."""
        if self._memory is None:
            return None
        if self.mode is Mode.FULL or self._doubt is not None:
            return None
        return self._memory

    # --- internals

    def _reset_streams(self) -> None:
        memory = self._memory
        self._new_watch = {}
        self._top, self._top_unknown = None, True
        self._rechecked = set(self._pending_retrieves if memory is not None else ())
        self._watched_ids = {w.id for w in memory.watched} if memory is not None else set()
        self._anchor_of, self._bands, self._carried = {}, {}, {}
        for kind in (SegmentKind.PROCESSING, SegmentKind.RETENTION):
            anchor = getattr(memory, kind.value, None) if memory is not None else None
            planned = any(s.kind is kind for s in self._queue)
            if anchor is not None and planned:
                self._anchor_of[kind] = anchor
            if memory is None or anchor is None or planned:
                self._bands[kind] = self._band(kind, ascending=planned)
            else:
                self._carried.setdefault(anchor.id, []).append(kind)

    def _band(self, kind: SegmentKind, *, ascending: bool) -> Band:
        if kind is SegmentKind.PROCESSING:
            # The canceled-past-processing-retention rule reads the API's own timestamps:
            # with the API's clock up to max_skew ahead, it reaches that much further.
            young = self._now - self._policy.processing_retention + self._limits.max_skew
            return Band(ascending, young, keep=1)
        keep = self._limits.max_stragglers + 1
        return Band(ascending, self._now - self._policy.retention, keep=keep)

    def _reopen(self, batch_id: str) -> tuple[Band, ...]:
        """A band left alone this cycle has its anchor acted on: scan that band too."""
        opened = []
        for kind in self._carried.pop(batch_id, []):
            self._anchor_of[kind] = getattr(self._memory, kind.value)
            self._bands[kind] = band = self._band(kind, ascending=True)
            self._queue.append(Segment(kind, before_id=batch_id))
            opened.append(band)
        return tuple(opened)

    def _bands_for(self, segment: Segment) -> tuple[Band, ...]:
        if segment.kind in (SegmentKind.PROCESSING, SegmentKind.RETENTION):
            return (self._bands[segment.kind],)
        return tuple(band for band in self._bands.values() if not band.ascending)

    def _classify(self, batch: Batch) -> tuple[bool, bool, datetime | None]:
        """(acted on this cycle, settled, the retention deadline if known)."""
        decision = self._judge(batch)
        if isinstance(decision, Action):
            return True, False, None
        settled = str(decision) in SETTLED
        start = batch.created_at
        if self._policy.age_basis is AgeBasis.ENDED_AT:
            start = batch.ended_at  # type: ignore[assignment]
        deadline = start + self._policy.retention if batch.ended and start else None
        return False, settled, deadline

    def _see(self, batch: Batch, *, bands: tuple[Band, ...]) -> tuple[bool, bool, datetime | None]:
        """Note one batch: watch it if it must be, and show it to ``bands``."""
        actionable, settled, deadline = self._classify(batch)
        stamps = (batch.created_at, batch.ended_at, batch.cancel_initiated_at)
        if max(t for t in stamps if t is not None) > self._now + self._limits.max_skew:
            self.doubt("the API's clock is ahead of ours by more than max_skew")
        past_processing = batch.created_at < self._now - self._policy.processing_retention
        if actionable or (past_processing and not batch.ended and not settled):
            self._watch(batch.id, None)
        if actionable and batch.id in self._carried:
            bands = (*bands, *self._reopen(batch.id))
        for band in bands:
            if band is self._bands.get(SegmentKind.PROCESSING):
                lagging = not actionable and not past_processing
            else:
                lagging = not actionable and not settled
            band.see(batch, actionable=actionable, lagging=lagging, deadline=deadline)
        return actionable, settled, deadline

    def _watch(self, batch_id: str, recheck_at: datetime | None) -> None:
        old = self._new_watch.get(batch_id)
        if old is None or (old.recheck_at is not None and recheck_at is None):
            self._new_watch[batch_id] = Watched(batch_id, recheck_at)

    def _head_reached(self, batches: Sequence[Batch]) -> bool:
        newest = self._memory.newest if self._memory is not None else None
        if newest is None:
            return False
        return any(b.id == newest.id or b.created_at < newest.created_at for b in batches)

    def _in_order(self, segment: Segment, batches: Sequence[Batch]) -> bool:
        """Newest first within the page, and each page beyond the one before."""
        created = [b.created_at for b in batches]
        if any(a < b for a, b in pairwise(created)):
            self.doubt(f"a {segment.kind.value} page is not newest first")
            return False
        if not created:
            return True
        ascending = segment.kind in (SegmentKind.PROCESSING, SegmentKind.RETENTION)
        last = self._last
        if last is None and ascending:
            last = self._anchor_of[segment.kind].created_at
        if last is not None and (created[-1] < last if ascending else created[0] > last):
            self.doubt(f"a {segment.kind.value} page overlaps the one before it")
            return False
        self._last = created[0] if ascending else created[-1]
        return True


__all__ = ["SETTLED", "Counts", "Judge", "Scan"]
