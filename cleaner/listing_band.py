"""One band of the listing: where its next scan starts, chosen as the batches stream by. Pure.

A band is scanned in listing order, oldest first when paged newer from its anchor, newest
first when it is read from the top. Either way the result is the same: the oldest batch the
band still has to come back to (its next anchor), or none if the stream reached the top of
the listing with nothing left behind; and, if remembering a few of those lagging batches by
id makes the rest of the band fit one page, those few (the stragglers).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from cleaner.listing import Anchor, Watched
from cleaner.models import Batch


@dataclass(slots=True)
class Lagging:
    batch: Batch
    below_before: int  # batches on the old side of the boundary met before this one
    deadline: datetime | None  # known for an ended batch: it may become a straggler


@dataclass(slots=True)
class Band:
    """Chooses one band's next anchor from a stream of batches in listing order."""

    ascending: bool
    boundary: datetime
    keep: int  # lagging batches remembered: the stragglers allowed, plus one
    lagging: deque[Lagging] = field(default_factory=deque)
    below: int = 0
    still: Batch | None = None  # the newest batch seen that this cycle does not act on
    passed: bool = False  # a batch on the young side was seen
    reached_top: bool = False
    last: Batch | None = None  # the batch seen last

    def see(
        self, batch: Batch, *, actionable: bool, lagging: bool, deadline: datetime | None
    ) -> None:
        self.last = batch
        if not actionable and (self.ascending or self.still is None):
            self.still = batch
        if lagging and (not self.ascending or len(self.lagging) < self.keep):
            self.lagging.append(Lagging(batch, self.below, deadline))
            if len(self.lagging) > self.keep:
                self.lagging.popleft()  # descending: only the oldest few matter
        if batch.created_at < self.boundary:
            self.below += 1
        else:
            self.passed = True

    @property
    def satisfied(self) -> bool:
        """Ascending: the young side is reached and a next anchor is known."""
        return self.passed and (bool(self.lagging) or self.still is not None)

    def result(self, page_limit: int) -> tuple[Anchor | None, list[Watched]]:
        """The next anchor, and the stragglers to watch instead of lagging behind them."""
        if not self.lagging:
            if self.reached_top or not self.ascending or self.still is None:
                return None, []
            return anchor_of(self.still), []
        oldest_first = list(self.lagging) if self.ascending else list(reversed(self.lagging))
        spans = [self._span(entry) for entry in oldest_first]
        chosen = 0
        for m in range(min(self.keep, len(oldest_first))):
            if spans[m] < page_limit:
                chosen = m
                break
            if oldest_first[m].deadline is None:
                break  # a batch not ended cannot be remembered by deadline
        stragglers = [
            Watched(entry.batch.id, recheck_at=entry.deadline) for entry in oldest_first[:chosen]
        ]
        return anchor_of(oldest_first[chosen].batch), stragglers

    def _span(self, entry: Lagging) -> int:
        """Batches a rescan from this one would read on the old side of the boundary."""
        mine = int(entry.batch.created_at < self.boundary)
        if self.ascending:
            return self.below - entry.below_before
        return entry.below_before + mine


def anchor_of(batch: Batch) -> Anchor:
    return Anchor(batch.id, batch.created_at)


__all__ = ["Band", "Lagging", "anchor_of"]
