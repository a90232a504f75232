"""The decision core: which batch gets which action, given the policy and the time.

Pure functions of their arguments. No clock, no I/O, no logging: the cycle lists batches,
passes them here page by page with ``now``, merges the page plans, caps the result and
carries it out. Everything that makes cleaner safe to trust is decided in this file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cleaner.models import (
    Action,
    ActionKind,
    AgeBasis,
    Batch,
    KeepReason,
    Plan,
    ProcessingStatus,
    Reason,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """How long batches are kept.

    ``retention`` applies to ended batches; ``processing_retention`` to batches not yet
    ended (running, or being canceled), which are canceled, waited on, then deleted.
    """

    retention: timedelta
    processing_retention: timedelta
    protected_ids: frozenset[str] = frozenset()
    age_basis: AgeBasis = AgeBasis.CREATED_AT


def plan(batches: Iterable[Batch], policy: RetentionPolicy, now: datetime) -> Plan:
    """Decide, for each batch, whether to delete, cancel, wait on, or keep it.

    A batch is acted on only when it is strictly older than its retention; a batch
    created in the future (clock skew) has a negative age and is kept.
    """
    actions: list[Action] = []
    seen: Counter[ProcessingStatus] = Counter()
    kept: Counter[KeepReason] = Counter()
    for batch in batches:
        seen[batch.processing_status] += 1
        decision = decide(batch, policy, now)
        if isinstance(decision, Action):
            actions.append(decision)
        else:
            kept[decision] += 1
    return Plan(actions=tuple(actions), seen=seen, kept=kept)


def decide(batch: Batch, policy: RetentionPolicy, now: datetime) -> Action | KeepReason:
    """The rule for one batch."""
    if batch.id in policy.protected_ids:
        return KeepReason.PROTECTED
    if batch.processing_status is ProcessingStatus.ENDED:
        canceled = batch.cancel_initiated_at
        if canceled is not None and canceled - batch.created_at > policy.processing_retention:
            # It was still running past the processing retention when canceled: exactly the
            # batch this policy cancels. Without this rule a cycle that canceled it but could
            # not wait for the end would leave it for the full retention.
            age = now - batch.created_at
            return Action(
                ActionKind.DELETE, batch, Reason.CANCELED_PAST_PROCESSING_RETENTION, _s(age)
            )
        start = batch.created_at
        if policy.age_basis is AgeBasis.ENDED_AT:
            if batch.ended_at is None:
                return KeepReason.NO_END_TIME
            start = batch.ended_at
        age = now - start
        if age > policy.retention:
            return Action(ActionKind.DELETE, batch, Reason.ENDED_PAST_RETENTION, _s(age))
        return KeepReason.WITHIN_RETENTION
    age = now - batch.created_at
    if age <= policy.processing_retention:
        return KeepReason.RUNNING_WITHIN_RETENTION
    if batch.processing_status is ProcessingStatus.IN_PROGRESS:
        return Action(ActionKind.CANCEL, batch, Reason.RUNNING_PAST_PROCESSING_RETENTION, _s(age))
    # Canceling: someone already canceled it. Cancelling again is pointless; wait instead.
    return Action(ActionKind.AWAIT, batch, Reason.CANCELING_PAST_PROCESSING_RETENTION, _s(age))


def merge(plans: Iterable[Plan]) -> Plan:
    """Join page plans into one, keeping the first action per batch id.

    A listing that repeats a batch (a misbehaving page, or a batch seen on two pages)
    must still yield at most one action per batch.
    """
    actions: list[Action] = []
    acted: set[str] = set()
    seen: Counter[ProcessingStatus] = Counter()
    kept: Counter[KeepReason] = Counter()
    deferred = 0
    for page in plans:
        for action in page.actions:
            if action.batch_id not in acted:
                acted.add(action.batch_id)
                actions.append(action)
        seen.update(page.seen)
        kept.update(page.kept)
        deferred += page.deferred
    return Plan(actions=tuple(actions), seen=seen, kept=kept, deferred=deferred)


def cap(full: Plan, max_actions: int | None) -> Plan:
    """Keep at most ``max_actions`` actions, the oldest batches first.

    Every action ends in a deletion, so cancels count toward the cap as well. The
    batches left out are counted in ``deferred``; a later cycle plans them again.
    """
    if max_actions is None or len(full.actions) <= max_actions:
        return full
    oldest_first = sorted(
        full.actions, key=lambda action: (action.batch.created_at, action.batch_id)
    )
    return Plan(
        actions=tuple(oldest_first[:max_actions]),
        seen=full.seen,
        kept=full.kept,
        deferred=full.deferred + len(full.actions) - max_actions,
    )


def _s(age: timedelta) -> float:
    return round(age.total_seconds(), 3)
