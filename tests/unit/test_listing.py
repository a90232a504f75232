"""The listing core: incremental cycles plan what a full listing would, for fewer pages."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleaner.listing import (
    Anchor,
    Limits,
    ListingMemory,
    Mode,
    SegmentKind,
    Watched,
    decide,
    fingerprint,
)
from cleaner.listing_scan import Scan
from cleaner.models import AgeBasis, Batch, ProcessingStatus
from cleaner.policy import RetentionPolicy
from tests.unit.listing_sim import CycleResult, SimApi, bound, judge_for, run_cycle

H = timedelta(hours=1)
T0 = datetime(2026, 11, 1, tzinfo=UTC)
LIMITS = Limits(page_limit=4, max_watched=30, max_stragglers=3)
POLICIES = [(30 * H, 2 * H), (10 * H, 10 * H), (48 * H, 26 * H), (3 * H, 6 * H), (H, H / 2)]
GAPS = [timedelta(minutes=1), timedelta(minutes=10), H, 5 * H]
RUNS = [timedelta(minutes=1), timedelta(minutes=30), 3 * H, 20 * H, 30 * H]


@dataclass(frozen=True, slots=True)
class Step:
    """One cycle of a history, with the moment before it."""

    result: CycleResult
    policy: RetentionPolicy
    now: datetime
    previous_now: datetime | None
    previous_api_now: datetime | None


def history(
    rng: random.Random,
    *,
    basis: AgeBasis,
    cursor: Literal["works", "404"],
    fail_rate: float,
    cycles: int,
    churn: bool = True,
) -> Iterator[Step]:
    """Random creates, ends, cancels and deletes by others, time, clock and policy changes."""
    api = SimApi(now=T0 - 72 * H, deleted_cursor=cursor)
    while api.now < T0:
        api.now += rng.choice(GAPS)
        for _ in range(rng.choice([0, 1, 1, 3])):
            api.create(runs_for=rng.choice(RUNS))
    retention, processing = rng.choice(POLICIES)
    held: frozenset[str] = frozenset()
    until: datetime | None = None
    skew, memory = timedelta(0), None
    previous: tuple[datetime, datetime] | None = None
    for _ in range(cycles):
        for _ in range(rng.randint(1, 5)):
            _between(api, rng, churn=churn)
        if churn and rng.random() < 0.1:
            retention, processing = rng.choice(POLICIES)
        if churn and rng.random() < 0.1 and api.live:
            held = frozenset(rng.sample(sorted(api.live), min(3, len(api.live))))
            until = rng.choice([None, api.now + skew + rng.choice(GAPS)])
        if churn and rng.random() < 0.05:
            skew = rng.choice([timedelta(0), H, 10 * H])
        now = api.now + skew
        if churn and previous and rng.random() < 0.05 and now - 2 * H < previous[0]:
            # Now and then our clock lags the API's for one cycle, seen as going backwards.
            # (A lead of the API's clock beyond max_skew that nothing shows is out of scope.)
            now -= 2 * H
        policy = RetentionPolicy(
            retention=retention, processing_retention=processing, age_basis=basis
        )
        result = run_cycle(
            api,
            memory,
            now=now,
            policy=policy,
            judge=judge_for(policy, now, held, until),
            fingerprint=fingerprint(policy, sorted(held), until),
            hold_expiry=until if until is not None and until >= now else None,
            limits=LIMITS,
            rng=rng,
            fail_rate=fail_rate,
        )
        yield Step(result, policy, now, *(previous or (None, None)))
        memory, previous = result.memory, (now, api.now)


def _between(api: SimApi, rng: random.Random, *, churn: bool) -> None:
    api.now += rng.choice(GAPS)
    for _ in range(rng.choice([0, 1, 2, 5])):
        api.create(runs_for=rng.choice(RUNS))
    live = sorted(api.live)
    if churn and live and rng.random() < 0.3:
        victim = rng.choice(live)
        if api.live[victim].view(api.now).processing_status is ProcessingStatus.IN_PROGRESS:
            api.cancel(victim, settle=rng.choice([timedelta(0), H, 30 * H]))
    if churn and live and rng.random() < 0.3:
        victim = rng.choice(live)
        if api.live[victim].view(api.now).ended:
            api.delete(victim)


histories = {
    "rng": st.integers(0, 2**32).map(random.Random),
    "basis": st.sampled_from(AgeBasis),
    "cursor": st.sampled_from(["works", "404"]),
    "fail_rate": st.sampled_from([0.0, 0.2, 0.6]),
}


@settings(max_examples=400, deadline=None)
@given(**histories)
def test_an_incremental_cycle_plans_every_action_a_full_listing_would(
    rng: random.Random, basis: AgeBasis, cursor: Literal["works", "404"], fail_rate: float
) -> None:
    """Every cycle plans exactly the actions a full listing at the same moment plans."""
    for step in history(rng, basis=basis, cursor=cursor, fail_rate=fail_rate, cycles=14):
        assert step.result.planned == step.result.expected, step.result.mode
        assert len(step.result.memory.watched) <= LIMITS.max_watched


@settings(max_examples=200, deadline=None)
@given(**histories)
def test_most_cycles_are_incremental(
    rng: random.Random, basis: AgeBasis, cursor: Literal["works", "404"], fail_rate: float
) -> None:
    """Without policy, hold or clock changes, only the first cycle lists everything."""
    steps = list(
        history(rng, basis=basis, cursor=cursor, fail_rate=fail_rate, cycles=10, churn=False)
    )
    assert steps[0].result.mode is Mode.FULL
    for step in steps[1:]:
        assert not step.result.fell_back, step.result.reason
        if step.result.mode is Mode.FULL:
            assert step.result.reason.startswith(EXPECTED_FULL), step.result.reason


EXPECTED_FULL = ("the clock jumped forward", "full listing interval", "more than")


@settings(max_examples=300, deadline=None)
@given(rng=st.integers(0, 2**32).map(random.Random), cursor=st.sampled_from(["works", "404"]))
def test_a_steady_state_cycle_lists_within_the_request_bound(
    rng: random.Random, cursor: Literal["works", "404"]
) -> None:
    """pages <= ceil(new/L) + ceil(crossed processing/L) + ceil(crossed retention/L) + 3."""
    steps = history(
        rng, basis=AgeBasis.CREATED_AT, cursor=cursor, fail_rate=0.2, cycles=12, churn=False
    )
    for step in steps:
        result = step.result
        if result.mode is Mode.FULL or result.fell_back:
            continue
        assert step.previous_now is not None
        assert step.previous_api_now is not None
        created = [b.created_at for b in result.listed]
        new = sum(c > step.previous_api_now for c in created)
        crossed = [
            sum(step.previous_now - window <= c < step.now - window for c in created)
            for window in (step.policy.processing_retention, step.policy.retention)
        ]
        assert result.pages <= bound(LIMITS.page_limit, new, *crossed), (new, crossed)


# --- the plan and the scan, one rule at a time

POLICY = RetentionPolicy(retention=30 * H, processing_retention=2 * H)
STAMP = fingerprint(POLICY)


def batch(batch_id: str, age: timedelta, *, ended_age: timedelta | None = None) -> Batch:
    """A batch created ``age`` before T0; ended ``ended_age`` before T0 if given."""
    ended = ended_age is not None
    return Batch(
        id=batch_id,
        processing_status=ProcessingStatus.ENDED if ended else ProcessingStatus.IN_PROGRESS,
        created_at=T0 - age,
        ended_at=T0 - ended_age if ended_age is not None else None,
    )


def remembered(**changes: object) -> ListingMemory:
    """A memory left by a cycle an hour before T0, both anchors on the young side."""
    young = Anchor("msgbatch_young", T0 - H)
    values: dict[str, object] = {
        "listed_at": T0 - H,
        "full_at": T0 - H,
        "fingerprint": STAMP,
        "processing": young,
        "retention": young,
        "newest": young,
    }
    values.update(changes)
    return ListingMemory(**values)  # type: ignore[arg-type]


def scan_of(memory: ListingMemory | None, *, policy: RetentionPolicy = POLICY) -> Scan:
    plan = decide(memory, now=T0, policy=policy, policy_fingerprint=fingerprint(policy))
    return Scan(
        plan,
        memory,
        now=T0,
        policy=policy,
        judge=judge_for(policy, T0, frozenset(), None),
        policy_fingerprint=fingerprint(policy),
        limits=Limits(page_limit=2),
    )


def test_the_first_cycle_after_a_start_lists_in_full() -> None:
    """No memory: one full segment from the top."""
    plan = decide(None, now=T0, policy=POLICY, policy_fingerprint=STAMP)
    assert (plan.mode, plan.reason) == (Mode.FULL, "start")
    assert [s.kind for s in plan.segments] == [SegmentKind.FULL]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"fingerprint": "other"}, "policy or holds changed"),
        ({"hold_expiry": T0 - timedelta(seconds=1)}, "a hold expired"),
        ({"listed_at": T0 + timedelta(seconds=1)}, "the clock went backwards"),
        ({"listed_at": T0 - 7 * H, "full_at": T0 - 7 * H}, "the clock jumped forward"),
        ({"full_at": T0 - 24 * H}, "full listing interval"),
        ({"doubt": "remembered batch x answered 404"}, "remembered batch x answered 404"),
    ],
)
def test_anything_doubtful_or_changed_lists_in_full(
    changes: dict[str, object], reason: str
) -> None:
    """Policy or holds changed, a hold expired, clock jumps, the daily full, a doubt."""
    plan = decide(remembered(**changes), now=T0, policy=POLICY, policy_fingerprint=STAMP)
    assert plan.mode is Mode.FULL
    assert plan.reason.startswith(reason)


def test_bands_whose_anchors_are_still_young_cost_no_request() -> None:
    """Nothing crossed a boundary: no segment; only watched batches due for a look."""
    memory = remembered(
        watched=(Watched("msgbatch_w1"), Watched("msgbatch_w2", recheck_at=T0 + H)),
    )
    plan = decide(memory, now=T0, policy=POLICY, policy_fingerprint=STAMP)
    assert plan.mode is Mode.INCREMENTAL
    assert plan.segments == ()
    assert plan.retrieve == ("msgbatch_w1",)


def test_a_band_that_crossed_pages_newer_from_its_anchor_and_the_head_waits() -> None:
    """Old anchors: each band pages newer (before_id) from it; no head while both exist."""
    old = Anchor("msgbatch_old", T0 - 40 * H)
    plan = decide(
        remembered(processing=old, retention=old),
        now=T0,
        policy=POLICY,
        policy_fingerprint=STAMP,
    )
    assert [(s.kind, s.before_id) for s in plan.segments] == [
        (SegmentKind.PROCESSING, "msgbatch_old"),
        (SegmentKind.RETENTION, "msgbatch_old"),
    ]
    assert plan.retrieve == ("msgbatch_old",)


def test_the_head_is_listed_when_a_band_has_no_anchor() -> None:
    """A band left without an anchor takes its next batches from the top of the listing."""
    plan = decide(remembered(processing=None), now=T0, policy=POLICY, policy_fingerprint=STAMP)
    assert [(s.kind, s.before_id) for s in plan.segments] == [(SegmentKind.HEAD, None)]


def test_a_page_out_of_order_switches_the_cycle_to_a_full_listing_at_once() -> None:
    """A head page not newest first is doubt: the very next segment is the full listing."""
    scan = scan_of(remembered(processing=None))
    segment = scan.next_segment()
    assert segment is not None
    pages = [batch("msgbatch_a", 2 * H), batch("msgbatch_b", H)]
    assert scan.absorb(segment, pages, has_more=True) is False
    full = scan.next_segment()
    assert full is not None
    assert full.kind is SegmentKind.FULL
    assert scan.reason == "fell back: a head page is not newest first"


def test_finish_before_the_listing_is_complete_is_refused() -> None:
    """The next memory is only made from a listing read to its end."""
    scan = scan_of(None)
    with pytest.raises(RuntimeError, match="before the listing was complete"):
        scan.finish(done=())
    assert scan.abandoned() is None


def test_too_many_batches_to_watch_make_the_next_listing_full() -> None:
    """Past max_watched, nothing is remembered by id: the next cycle lists everything."""
    scan = scan_of(None)
    segment = scan.next_segment()
    assert segment is not None
    due = [batch(f"msgbatch_{i:04d}", 40 * H, ended_age=39 * H) for i in range(250)]
    scan.absorb(segment, due, has_more=False)
    assert scan.next_segment() is None
    memory = scan.finish(done=[b.id for b in due[:40]])
    assert memory.doubt == "more than 200 to watch"
    assert memory.watched == ()
    assert scan.finish(done=[b.id for b in due]).doubt is None


def test_with_the_ended_at_basis_a_late_ender_is_watched_instead_of_holding_the_band() -> None:
    """An old batch that ended late is remembered by id so the anchor can move past it."""
    policy = RetentionPolicy(
        retention=30 * H, processing_retention=2 * H, age_basis=AgeBasis.ENDED_AT
    )
    late = batch("msgbatch_late", 40 * H, ended_age=10 * H)  # due 20 h from now
    due = [batch(f"msgbatch_due{i}", (39 - i) * H, ended_age=(38 - i) * H) for i in range(3)]
    young = batch("msgbatch_young", 20 * H, ended_age=19 * H)
    scan = scan_of(None, policy=policy)
    segment = scan.next_segment()
    assert segment is not None
    scan.absorb(segment, [young, *reversed(due), late], has_more=False)
    assert scan.next_segment() is None
    memory = scan.finish(done=[b.id for b in due])
    assert memory.retention == Anchor("msgbatch_young", young.created_at)
    assert memory.watched == (Watched("msgbatch_late", recheck_at=T0 + 20 * H),)
