"""An in-memory Message Batches API for the listing properties, and a shell that drives it.

The simulator follows the contract's listing semantics: newest created first, ties in
creation order, ``limit``, ``after_id`` (older) and ``before_id`` (newer, the ``limit``
batches nearest the cursor), ``has_more``; a deleted cursor either keeps its place or
answers 404. Time is the API's own clock; the cleaner's clock may be skewed from it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from cleaner.listing import Limits, ListingMemory, Mode, decide
from cleaner.listing_scan import Scan
from cleaner.models import Action, ActionKind, Batch, KeepReason, ProcessingStatus
from cleaner.policy import RetentionPolicy
from cleaner.policy import decide as policy_decide

EXPIRY = timedelta(hours=24)


class SimNotFound(Exception):
    """404 from the simulator."""


@dataclass(slots=True)
class SimBatch:
    id: str
    seq: int
    created: datetime
    natural_end: datetime  # when it ends if nobody cancels it
    cancel_at: datetime | None = None
    settle: timedelta = timedelta(0)

    def end(self) -> datetime:
        end = min(self.natural_end, self.created + EXPIRY)
        if self.cancel_at is not None:
            end = min(end, self.cancel_at + self.settle)
        return end

    def view(self, now: datetime) -> Batch:
        end = self.end()
        canceled = self.cancel_at if self.cancel_at is not None and self.cancel_at <= end else None
        if now >= end:
            status, ended_at = ProcessingStatus.ENDED, end
        elif canceled is not None and now >= canceled:
            status, ended_at = ProcessingStatus.CANCELING, None
        else:
            status, ended_at, canceled = ProcessingStatus.IN_PROGRESS, None, None
        return Batch(
            id=self.id,
            processing_status=status,
            created_at=self.created,
            ended_at=ended_at,
            cancel_initiated_at=canceled,
        )


@dataclass(slots=True)
class SimApi:
    now: datetime
    deleted_cursor: Literal["works", "404"] = "works"
    live: dict[str, SimBatch] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # every id ever, oldest first
    position: dict[str, int] = field(default_factory=dict)
    list_calls: int = 0

    def create(self, *, runs_for: timedelta) -> SimBatch:
        seq = len(self.order)
        batch = SimBatch(f"msgbatch_{seq:06d}", seq, self.now, self.now + runs_for)
        self.live[batch.id] = batch
        self.order.append(batch.id)
        self.position[batch.id] = seq
        return batch

    def retrieve(self, batch_id: str) -> Batch:
        if batch_id not in self.live:
            raise SimNotFound(batch_id)
        return self.live[batch_id].view(self.now)

    def cancel(self, batch_id: str, *, settle: timedelta) -> Batch:
        batch = self.live[batch_id]
        if batch.view(self.now).processing_status is ProcessingStatus.IN_PROGRESS:
            batch.cancel_at, batch.settle = self.now, settle
        return batch.view(self.now)

    def delete(self, batch_id: str) -> None:
        assert self.live[batch_id].view(self.now).ended, "deleting a batch not ended"
        del self.live[batch_id]

    def everything(self) -> list[Batch]:
        return [self.live[i].view(self.now) for i in reversed(self.order) if i in self.live]

    def page(
        self, *, limit: int, after_id: str | None = None, before_id: str | None = None
    ) -> tuple[list[Batch], bool]:
        """One list page, newest first, and has_more."""
        self.list_calls += 1
        live_ids = [i for i in self.order if i in self.live]
        if before_id is not None:
            pos = self._cursor(before_id)
            newer = [i for i in live_ids if self.position[i] > pos]
            chosen, more = newer[:limit], len(newer) > limit
        else:
            pos = self._cursor(after_id) if after_id is not None else len(self.order)
            older = [i for i in live_ids if self.position[i] < pos]
            chosen, more = older[-limit:] if limit else [], len(older) > limit
        return [self.live[i].view(self.now) for i in reversed(chosen)], more

    def _cursor(self, batch_id: str) -> int:
        if batch_id not in self.position:
            raise SimNotFound(batch_id)
        if batch_id not in self.live and self.deleted_cursor == "404":
            raise SimNotFound(batch_id)
        return self.position[batch_id]


Judge = Callable[[Batch], Action | KeepReason]


@dataclass(frozen=True, slots=True)
class CycleResult:
    memory: ListingMemory
    mode: Mode
    reason: str  # why it listed as it did (after any fall back)
    fell_back: bool
    pages: int
    planned: dict[str, ActionKind]  # what the incremental listing planned
    expected: dict[str, ActionKind]  # what a full listing at the same moment plans
    listed: list[Batch]  # every batch there was while listing


def judge_for(
    policy: RetentionPolicy, now: datetime, held: frozenset[str], until: datetime | None
) -> Judge:
    """The policy, plus holds that protect until ``until`` (None: forever)."""

    def judge(batch: Batch) -> Action | KeepReason:
        if batch.id in held and (until is None or now <= until):
            return KeepReason.PROTECTED
        return policy_decide(batch, policy, now)

    return judge


def run_cycle(
    api: SimApi,
    memory: ListingMemory | None,
    *,
    now: datetime,
    policy: RetentionPolicy,
    judge: Judge,
    fingerprint: str,
    hold_expiry: datetime | None,
    limits: Limits,
    rng: random.Random,
    fail_rate: float,
) -> CycleResult:
    """One cycle as the shell will run it: retrieve, page, plan, act, finish."""
    plan = decide(memory, now=now, policy=policy, policy_fingerprint=fingerprint, limits=limits)
    scan = Scan(
        plan,
        memory,
        now=now,
        policy=policy,
        judge=judge,
        policy_fingerprint=fingerprint,
        hold_expiry=hold_expiry,
        limits=limits,
    )
    seen: dict[str, Batch] = {}
    for batch_id in scan.retrieve:
        try:
            seen[batch_id] = batch = api.retrieve(batch_id)
        except SimNotFound:
            scan.missing(batch_id)
        else:
            scan.retrieved(batch)
    calls_before = api.list_calls
    while (segment := scan.next_segment()) is not None:
        before, after = segment.before_id, None
        try:
            while True:
                batches, more = api.page(limit=limits.page_limit, after_id=after, before_id=before)
                seen.update((b.id, b) for b in batches)
                if not scan.absorb(segment, batches, has_more=more) or not more:
                    break
                if before is not None:
                    before = batches[0].id
                else:
                    after = batches[-1].id
        except SimNotFound as exc:
            scan.failed(segment, f"cursor {exc} answered 404")
    assert scan.counts.pages == api.list_calls - calls_before
    planned = {i: d.kind for i, b in seen.items() if isinstance(d := judge(b), Action)}
    listed = api.everything()
    expected = {b.id: d.kind for b in listed if isinstance(d := judge(b), Action)}
    done = _act(api, planned, rng=rng, fail_rate=fail_rate)
    return CycleResult(
        memory=scan.finish(done=done),
        mode=plan.mode,
        reason=scan.reason,
        fell_back=scan.mode is not plan.mode,
        pages=scan.counts.pages,
        planned=planned,
        expected=expected,
        listed=listed,
    )


def _act(
    api: SimApi, planned: dict[str, ActionKind], *, rng: random.Random, fail_rate: float
) -> list[str]:
    """Carry out the plan, some actions failing; returns the ids now gone."""
    done = []
    for batch_id, kind in planned.items():
        if batch_id not in api.live or rng.random() < fail_rate:
            continue
        if kind is ActionKind.CANCEL:
            settle = rng.choice([timedelta(0), timedelta(minutes=5), timedelta(hours=30)])
            api.cancel(batch_id, settle=settle)
        if api.live[batch_id].view(api.now).ended:
            api.delete(batch_id)
            done.append(batch_id)
    return done


def bound(pages_per: int, *counts: int) -> int:
    """The target: ceil(count / page) per region, plus 3."""
    return sum(math.ceil(c / pages_per) for c in counts) + 3
