"""The decision core: which batch gets which action, given the policy and the time.

Pure functions of their arguments. No clock, no I/O, no logging: the cycle lists batches,
passes them here page by page with ``now``, merges the page plans, caps the result and
carries it out. Everything that makes cleaner safe to trust is decided in this file.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from cleaner.holds import Holds
from cleaner.models import (
    Action,
    ActionKind,
    AgeBasis,
    Batch,
    HeldBatch,
    KeepReason,
    Plan,
    ProcessingStatus,
    Reason,
)

#: How long the provider keeps a batch's results after creation; then ``archived_at``.
PROVIDER_RESULTS_RETENTION = timedelta(days=29)
#: The blast-radius stop never fires on a plan of this many actions or fewer.
BLAST_RADIUS_MIN_ACTIONS = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """How long batches are kept.

    ``retention`` applies to ended batches; ``processing_retention`` to batches not yet
    ended (running, or being canceled), which are canceled, waited on, then deleted.
    ``holds`` keep batches whatever their age. ``protected_ids`` is a shorthand merged
    into ``holds`` as permanent holds; afterwards both name the same ids.
    """

    retention: timedelta
    processing_retention: timedelta
    protected_ids: frozenset[str] = frozenset()
    age_basis: AgeBasis = AgeBasis.CREATED_AT
    holds: Holds = field(default_factory=Holds)

    def __post_init__(self) -> None:
        merged = self.holds.with_protected_ids(self.protected_ids)
        object.__setattr__(self, "holds", merged)
        object.__setattr__(self, "protected_ids", merged.protected_ids)


def plan(batches: Iterable[Batch], policy: RetentionPolicy, now: datetime) -> Plan:
    """Decide, for each batch, whether to delete, cancel, wait on, or keep it.

    A batch is acted on only when it is strictly older than its retention; a batch
    created in the future (clock skew) has a negative age and is kept. A held batch is
    kept and recorded with its hold.
    """
    actions: list[Action] = []
    held: list[HeldBatch] = []
    seen: Counter[ProcessingStatus | str] = Counter()
    kept: Counter[KeepReason] = Counter()
    for batch in batches:
        seen[batch.processing_status] += 1
        hold = policy.holds.protecting(batch, now)
        if hold is not None:
            kept[_held_reason(batch, policy)] += 1
            held.append(HeldBatch(batch, hold))
            continue
        decision = _rule(batch, policy, now)
        if isinstance(decision, Action):
            actions.append(decision)
        else:
            kept[decision] += 1
    return Plan(actions=tuple(actions), seen=seen, kept=kept, held=tuple(held))


def decide(batch: Batch, policy: RetentionPolicy, now: datetime) -> Action | KeepReason:
    """The rule for one batch: holds first, then the retention rules."""
    if policy.holds.protecting(batch, now) is not None:
        return _held_reason(batch, policy)
    return _rule(batch, policy, now)


def _held_reason(batch: Batch, policy: RetentionPolicy) -> KeepReason:
    # Ids from CLEANER_PROTECTED_IDS keep their own reason, as before holds existed.
    return KeepReason.PROTECTED if batch.id in policy.protected_ids else KeepReason.HELD


def _rule(batch: Batch, policy: RetentionPolicy, now: datetime) -> Action | KeepReason:
    if not isinstance(batch.processing_status, ProcessingStatus):
        # A status this version does not know: no rule can say it is safe to touch.
        return KeepReason.UNKNOWN_STATUS
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
    held: dict[str, HeldBatch] = {}
    seen: Counter[ProcessingStatus | str] = Counter()
    kept: Counter[KeepReason] = Counter()
    deferred = 0
    for page in plans:
        for action in page.actions:
            if action.batch_id not in acted:
                acted.add(action.batch_id)
                actions.append(action)
        for record in page.held:
            held.setdefault(record.batch_id, record)
        seen.update(page.seen)
        kept.update(page.kept)
        deferred += page.deferred
    return Plan(
        actions=tuple(actions),
        seen=seen,
        kept=kept,
        deferred=deferred,
        held=tuple(held.values()),
    )


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
        held=full.held,
    )


def _s(age: timedelta) -> float:
    return round(age.total_seconds(), 3)


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """A plan acting on too large a share of what was listed: the cycle acts on none of it."""

    planned: int
    listed: int
    fraction: float
    max_fraction: float


def blast_radius(full: Plan, max_fraction: float | None) -> BlastRadius | None:
    """The stop, when the plan acts on strictly more than ``max_fraction`` of the listing.

    It fires only above :data:`BLAST_RADIUS_MIN_ACTIONS` actions, so a small workspace
    can still be cleaned. Actions the cap deferred count too: the answer is the same
    before and after :func:`cap`. Compared exactly, so 0.3 of 100 stops at 31, not 30.
    """
    if max_fraction is None:
        return None
    if not 0 < max_fraction <= 1:
        raise ValueError(f"max_fraction must be in (0, 1]: {max_fraction!r}")
    planned = len(full.actions) + full.deferred
    listed = sum(full.seen.values())
    if planned <= BLAST_RADIUS_MIN_ACTIONS or planned <= Fraction(repr(max_fraction)) * listed:
        return None
    return BlastRadius(
        planned=planned,
        listed=listed,
        fraction=planned / listed,
        max_fraction=max_fraction,
    )


def results_downloadable(batch: Batch, now: datetime) -> bool:
    """Whether the batch still has results to download: the data a deletion removes.

    The provider sets ``archived_at`` when it drops the results, 29 days after creation.
    """
    if not batch.results_url:
        return False
    return batch.archived_at is None or batch.archived_at > now


def downloadable(full: Plan, now: datetime) -> dict[ActionKind, int]:
    """Per action kind, how many of the planned batches still have downloadable results."""
    counts = dict.fromkeys(ActionKind, 0)
    for action in full.actions:
        if results_downloadable(action.batch, now):
            counts[action.kind] += 1
    return counts


def retention_after_provider_archive(policy: RetentionPolicy) -> bool:
    """True when every deletion comes after the provider dropped the results itself.

    Then the policy removes only metadata (ids, counts, timestamps). Both retentions
    count: a batch canceled past the processing retention is deleted once it ends,
    with whatever results it holds, however short the processing retention is.
    """
    return (
        policy.retention >= PROVIDER_RESULTS_RETENTION
        and policy.processing_retention >= PROVIDER_RESULTS_RETENTION
    )


def policy_sha256(policy: RetentionPolicy) -> str:
    """A fingerprint of the effective policy, holds and protected ids included.

    Canonical JSON (sorted keys, durations in whole microseconds, UTC times), so it is
    the same in every run for the same policy and differs when any part of it does.
    """
    document = {
        "version": 1,
        "retention_us": policy.retention // timedelta(microseconds=1),
        "processing_retention_us": policy.processing_retention // timedelta(microseconds=1),
        "age_basis": policy.age_basis.value,
        "holds": policy.holds.canonical(),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
