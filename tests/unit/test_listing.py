"""The listing core: incremental cycles plan what a full listing would, for fewer pages."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from cleaner.listing import (
    Limits,
    Mode,
    fingerprint,
)
from cleaner.models import AgeBasis, ProcessingStatus
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
        # Now and then our clock lags the API's for one cycle (which is seen as a jump).
        lag = 2 * H if churn and rng.random() < 0.05 else timedelta(0)
        now = api.now + skew - lag
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
