"""The listing shell: carries out what :mod:`cleaner.listing` decided to list, and plans on it.

A cycle with no memory (the first after a start, ``cleaner plan``) lists everything. With
the memory of the last cycle it retrieves the remembered batches and pages only the bands
that can have changed; whatever makes the memory doubtful turns the same cycle into a full
listing. The memory itself (a few anchors and the ids in flight) lives in
:class:`ListingState`, one per workspace and process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cleaner.client import BatchesClient, CursorNotFoundError
from cleaner.errors import NotFoundError
from cleaner.listing import DEFAULT_LIMITS, Limits, ListingMemory, SegmentKind, decide
from cleaner.listing_scan import Scan
from cleaner.models import Batch, Plan
from cleaner.policy import RetentionPolicy, merge, policy_sha256
from cleaner.policy import decide as decide_batch
from cleaner.policy import plan as plan_batches


class Interrupted(Exception):
    """A stop was requested while listing: there is nothing half-done to finish."""


@dataclass(frozen=True, slots=True)
class ListingSummary:
    """How a cycle listed: ``full`` or ``incremental``, why, and what it cost."""

    mode: str
    reason: str
    pages: int
    retrieves: int


@dataclass(slots=True)
class ListingState:
    """What one process remembers between cycles; ``incremental=False`` always lists in full."""

    incremental: bool = True
    limits: Limits = DEFAULT_LIMITS
    memory: ListingMemory | None = None
    population: int | None = None  # batches the last full listing saw (the blast radius)
    scan: Scan | None = field(default=None, repr=False)

    def finish(self, done: Iterable[str]) -> None:
        """The cycle acted; ``done``: ids now gone. Keeps the memory for the next cycle."""
        if self.scan is not None and self.incremental:
            try:
                self.memory = self.scan.finish(done=done)
            except RuntimeError:  # the scan did not see its listing to the end: start over
                self.memory = None
        self.scan = None

    def abandon(self) -> None:
        """The listing stopped early: keep what is still valid."""
        if self.scan is not None:
            self.memory = self.scan.abandoned()
        self.scan = None


async def list_and_plan(
    client: BatchesClient,
    policy: RetentionPolicy,
    *,
    now: datetime,
    state: ListingState | None = None,
    stop: asyncio.Event | None = None,
) -> tuple[Plan, ListingSummary]:
    """List what can have changed (everything, without memory) and plan on it."""
    state = state or ListingState(incremental=False)
    stamp = policy_sha256(policy)
    memory = state.memory if state.incremental else None
    listing = decide(memory, now=now, policy=policy, policy_fingerprint=stamp, limits=state.limits)
    scan = Scan(
        listing,
        memory,
        now=now,
        policy=policy,
        judge=lambda batch: decide_batch(batch, policy, now),
        policy_fingerprint=stamp,
        hold_expiry=_earliest_expiry(policy, now),
        limits=state.limits,
    )
    state.scan = scan
    plans: list[Plan] = []
    # An incremental cycle may read a batch twice (a retrieve, then a page): plan it once,
    # so the counts (and the blast radius) stay true. A full listing reads each once.
    seen: set[str] | None = set() if scan.mode.value == "incremental" else None

    def fresh(batches: list[Batch]) -> list[Batch]:
        if seen is None or scan.mode.value != "incremental":
            return batches
        new = [batch for batch in batches if batch.id not in seen]
        seen.update(batch.id for batch in new)
        return new

    try:
        for batch_id in scan.retrieve:
            try:
                batch = await client.retrieve(batch_id)
            except NotFoundError:
                scan.missing(batch_id)
                continue
            scan.retrieved(batch)
            plans.append(plan_batches(fresh([batch]), policy, now))
        while (segment := scan.next_segment()) is not None:
            if segment.kind is SegmentKind.FULL:
                # The whole listing, through the guarded pager every full listing has always
                # used; the scan only takes notes for the next cycle.
                wanted = True
                async for page in client.pages(limit=state.limits.page_limit):
                    plans.append(plan_batches(page.batches, policy, now))
                    if stop is not None and stop.is_set():
                        raise Interrupted
                    if wanted:
                        wanted = scan.absorb(segment, page.batches, has_more=page.has_more)
                continue
            try:
                async for page in client.page_range(
                    before_id=segment.before_id, limit=state.limits.page_limit
                ):
                    plans.append(plan_batches(fresh(page.batches), policy, now))
                    if stop is not None and stop.is_set():
                        raise Interrupted
                    if not scan.absorb(segment, page.batches, has_more=page.has_more):
                        break
            except CursorNotFoundError as exc:
                scan.failed(segment, str(exc))
    except BaseException:
        state.abandon()
        raise
    summary = ListingSummary(
        mode=scan.mode.value,
        reason=scan.reason,
        pages=scan.counts.pages,
        retrieves=scan.counts.retrieves,
    )
    return merge(plans), summary


def _earliest_expiry(policy: RetentionPolicy, now: datetime) -> datetime | None:
    ends = [
        hold.until for hold in policy.holds.holds if hold.until is not None and hold.until > now
    ]
    return min(ends, default=None)
