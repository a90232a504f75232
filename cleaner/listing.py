"""What to list: a steady state that does not re-list every batch every cycle. Pure.

Design note
-----------
The listing is ordered by creation, newest first; new batches only appear at its head;
``ended`` is final; and age only grows, so each policy boundary (``processing_retention``,
``retention``) sweeps through the listing in creation order. Between cycles the shell keeps
a :class:`ListingMemory` (never the listing):

- per boundary, an **anchor**: a batch at which the last scan of that band stopped. Every
  batch older than the anchor (in listing order) is *covered*: it was acted on, is watched,
  or cannot become actionable without a policy/holds change. The anchor is never a batch the
  same cycle acts on, so it normally still exists;
- the **newest** batch seen, where a head scan stops;
- **watched** ids: batches acted on but not yet gone (wait timeout, failure, dry run, cap),
  batches of unknown status past the processing retention, and *stragglers* (below);
- the fingerprint of policy and holds, the earliest hold expiry, the time of the last
  listing and of the last full listing, and a pending doubt.

A band is scanned from its anchor upward (``before_id``, newer): retrieve the anchor, then
page newer until a page reaches the boundary's young side *and* holds a new anchor. That is
correct because everything older is covered and everything newer than the young side cannot
be acted on by that rule, and cheapest because it reads only the band plus one page of
overshoot, whereas paging older (``after_id``) would need an anchor above a boundary whose
position the last cycle could not know. A band whose anchor is still on the young side is
empty and costs nothing. Why each band suffices:

- *processing band*: a batch not ended past ``processing_retention`` is actionable the first
  time it is seen past it, and every batch crosses it inside the band; a batch ``ended`` when
  it crosses stays ended, and its cancel time is final, so the ``canceled past processing
  retention`` rule cannot newly fire below the anchor. That rule compares the API's own
  timestamps, so the band reaches ``max_skew`` further in case the API's clock runs ahead
  of ours; a larger lead seen in any timestamp read is doubt. New anchor: the oldest batch
  on the young side that this cycle does not act on.
- *retention band*: below the anchor every batch is acted on, settled (protected, held, no
  end time) or a watched straggler. The new anchor is the oldest batch still lagging (not
  actionable and with a deadline not yet passed, or not ended). With the ``created_at``
  basis that is the first young batch. With ``CLEANER_AGE_BASIS=ended_at`` a batch's deadline
  is ``ended_at + retention``, which may lie up to the end delay (~24 h, more for a slow
  cancel) after ``created_at + retention``: the anchor then waits at the oldest batch not yet
  due, so the band widens by exactly the lagging batches, never by a fixed guess of the
  delay. When remembering at most ``max_stragglers`` ended lagging batches by id (retrieved
  at their deadline) makes the remaining band fit one page, they are remembered instead.
- *head*: new batches lie above both anchors, so the bands reach them when they cross. The
  head is read only when a band has no anchor (its last scan reached the top of the listing
  with nothing lagging): that band's next batches are then the new ones, read from the top
  down to the newest batch known.

An anchor left alone this cycle (its band empty) that the other band acts on is replaced
at once: its band is scanned too, so no memory ever names a batch this cycle deleted.

A **full** listing runs after every start, at least every ``full_interval``, after a change
of the policy or holds fingerprint, once a hold's ``until`` has passed, when the clock went
backwards or jumped forward more than ``max_gap``, when more batches need watching than
``max_watched``, and whenever something is doubtful: an anchor or watched id answered 404
or changed, a cursor answered 404, a page broke the newest-first order. Doubt found while
listing switches the *current* cycle to a full listing at once (:meth:`Scan.next_segment`),
so no cycle ever plans on a listing it has reason to distrust; the batches already read
stay valid observations. Doubt found at :meth:`Scan.finish` (too many to watch) makes the
next cycle list in full; those batches are all still listed, so none is lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cleaner.policy import RetentionPolicy

PAGE_LIMIT = 1000
FULL_INTERVAL = timedelta(hours=24)
MAX_GAP = timedelta(hours=6)
MAX_WATCHED = 200
MAX_STRAGGLERS = 100
MAX_SKEW = timedelta(minutes=5)


class Mode(StrEnum):
    """How a cycle lists: everything, or only what can have changed."""

    FULL = "full"
    INCREMENTAL = "incremental"


class SegmentKind(StrEnum):
    FULL = "full"  # the whole listing, newest first
    HEAD = "head"  # from the top down to the newest batch already known
    PROCESSING = "processing"  # newer from the processing-retention anchor
    RETENTION = "retention"  # newer from the retention anchor


@dataclass(frozen=True, slots=True)
class Anchor:
    """A batch remembered by id and creation time."""

    id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Watched:
    """A batch retrieved directly; ``recheck_at`` None means every cycle."""

    id: str
    recheck_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListingMemory:
    """What one cycle leaves the next: a few anchors and the watched ids, never the listing."""

    listed_at: datetime
    full_at: datetime
    fingerprint: str
    hold_expiry: datetime | None = None
    newest: Anchor | None = None
    processing: Anchor | None = None
    retention: Anchor | None = None
    watched: tuple[Watched, ...] = ()
    doubt: str | None = None  # set: the next cycle lists in full, saying why


@dataclass(frozen=True, slots=True)
class Segment:
    """One run of pages: ask ``page_range(before_id=...)`` (None: from the top)."""

    kind: SegmentKind
    before_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListingPlan:
    """The listing one cycle needs: segments to page, and ids to retrieve first."""

    mode: Mode
    reason: str
    segments: tuple[Segment, ...] = ()
    retrieve: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Tuning of the listing; the defaults suit every workspace size."""

    full_interval: timedelta = FULL_INTERVAL
    max_gap: timedelta = MAX_GAP
    max_watched: int = MAX_WATCHED
    max_stragglers: int = MAX_STRAGGLERS
    page_limit: int = PAGE_LIMIT
    max_skew: timedelta = MAX_SKEW  # how far the API's clock may run ahead of ours


DEFAULT_LIMITS = Limits()


def fingerprint(policy: RetentionPolicy, *holds: object) -> str:
    """A stable digest of everything that decides which batches are kept.

    ``holds`` are whatever describes the holds in force (their reprs are hashed, in order);
    a change of any of them makes the next cycle list in full.
    """
    parts = [
        str(policy.retention.total_seconds()),
        str(policy.processing_retention.total_seconds()),
        policy.age_basis.value,
        ",".join(sorted(policy.protected_ids)),
        *(repr(hold) for hold in holds),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def decide(
    memory: ListingMemory | None,
    *,
    now: datetime,
    policy: RetentionPolicy,
    policy_fingerprint: str,
    limits: Limits = DEFAULT_LIMITS,
) -> ListingPlan:
    """Full or incremental, and for incremental which segments and retrieves."""
    why = _full_reason(memory, now=now, policy_fingerprint=policy_fingerprint, limits=limits)
    if memory is None or why is not None:
        return ListingPlan(
            mode=Mode.FULL, reason=why or "start", segments=(Segment(SegmentKind.FULL),)
        )
    segments: list[Segment] = []
    retrieve: list[str] = []
    if memory.processing is None or memory.retention is None:
        segments.append(Segment(SegmentKind.HEAD))
    bands = (
        (
            SegmentKind.PROCESSING,
            memory.processing,
            now - policy.processing_retention + limits.max_skew,
        ),
        (SegmentKind.RETENTION, memory.retention, now - policy.retention),
    )
    for kind, anchor, boundary in bands:
        if anchor is not None and anchor.created_at < boundary:
            segments.append(Segment(kind, before_id=anchor.id))
            retrieve.append(anchor.id)
    for watched in memory.watched:
        if watched.recheck_at is None or watched.recheck_at <= now:
            retrieve.append(watched.id)
    return ListingPlan(
        mode=Mode.INCREMENTAL,
        reason="steady state",
        segments=tuple(segments),
        retrieve=tuple(dict.fromkeys(retrieve)),
    )


def _full_reason(
    memory: ListingMemory | None, *, now: datetime, policy_fingerprint: str, limits: Limits
) -> str | None:
    if memory is None:
        return "start"
    if memory.doubt is not None:
        return memory.doubt
    if memory.fingerprint != policy_fingerprint:
        return "policy or holds changed"
    if memory.hold_expiry is not None and now > memory.hold_expiry:
        return "a hold expired"
    if now < memory.listed_at:
        return "the clock went backwards"
    if now - memory.listed_at > limits.max_gap:
        return "the clock jumped forward (or no cycle ran for long)"
    if now - memory.full_at >= limits.full_interval:
        return "full listing interval"
    return None


__all__ = [
    "DEFAULT_LIMITS",
    "Anchor",
    "Limits",
    "ListingMemory",
    "ListingPlan",
    "Mode",
    "Segment",
    "SegmentKind",
    "Watched",
    "decide",
    "fingerprint",
]
