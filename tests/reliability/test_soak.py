"""A randomised soak: many short cycles, a changing population, faults on a fifth of requests.

Between cycles the emulator's clock jumps ahead (batches age, finish and expire), new
batches arrive, and some are canceled by someone else. Every cycle runs with random
faults on about 20 % of requests and is followed by the invariant check. Everything is
drawn from one seed, printed on failure; RELIABILITY_SOAK_SEED replays a given one.
"""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta

import pytest

from cleaner.emulator import Emulator, EmulatorConfig, FaultRule, OffsetClock, serve_in_thread
from cleaner.policy import RetentionPolicy
from tests.fakes import EventLog
from tests.reliability.conftest import HOUR, KEY, checked_cycle

CYCLES = 30
SEED = int(os.environ.get("RELIABILITY_SOAK_SEED", "20261122"))

#: About one request in five meets one of these (the rule walk stops at the first firing).
FAULTS = (
    FaultRule(kind="latency", probability=0.3, seconds=0.005),
    FaultRule(kind="server_error", probability=0.04),
    FaultRule(kind="overloaded", probability=0.03),
    FaultRule(kind="timeout", probability=0.02),
    FaultRule(kind="rate_limit", probability=0.03, seconds=0.02),
    FaultRule(kind="reset_before", probability=0.02),
    FaultRule(kind="drop_after", probability=0.03),
    FaultRule(kind="not_found", probability=0.015),
    FaultRule(kind="malformed", probability=0.01),
    FaultRule(kind="hang", probability=0.005, seconds=2.0),
    FaultRule(kind="spend_cap", probability=0.002),
)


def evolve(emulator: Emulator, clock: OffsetClock, rng: random.Random) -> None:
    """Between cycles: time passes, batches arrive, some are canceled elsewhere."""
    clock.advance(rng.uniform(0, 3 * HOUR))
    for _ in range(rng.randint(0, 6)):
        emulator.add_batch(
            created_at=clock() - timedelta(seconds=rng.uniform(0, 2 * HOUR)),
            status="in_progress",
        )
    if rng.random() < 0.5:
        emulator.add_batch(created_at=clock() - timedelta(days=rng.uniform(1, 60)), status="ended")
    running = [b["id"] for b in emulator.batches() if b["processing_status"] == "in_progress"]
    for batch_id in rng.sample(running, k=min(len(running), rng.randint(0, 2))):
        emulator.cancel(str(batch_id), "")  # canceled by someone else, in-process


@pytest.mark.slow
async def test_a_randomised_soak_keeps_every_invariant_after_every_cycle() -> None:
    """30 cycles, a changing population, 20 % faults: invariants after each; all done at the end."""
    rng = random.Random(SEED)  # noqa: S311  # replayable test data, not a secret
    clock = OffsetClock()
    emulator = Emulator(
        EmulatorConfig(
            api_key=KEY,
            processing_time_s=8 * HOUR,
            cancel_settle_s=0.1,
            seed=SEED,
            faults=FAULTS,
        ),
        clock=clock,
    )
    emulator.add_batch(created_at=clock() - timedelta(days=45), status="ended")
    protected = {
        str(emulator.add_batch(created_at=clock() - timedelta(days=40), status="ended")["id"])
    }
    protected.add(str(emulator.add_batch(created_at=clock() - timedelta(hours=4))["id"]))
    policy = RetentionPolicy(
        retention=timedelta(days=2),
        processing_retention=timedelta(hours=6),
        protected_ids=frozenset(protected),
    )
    log = EventLog()
    with serve_in_thread(emulator) as base_url:
        for number in range(CYCLES):
            evolve(emulator, clock, rng)
            try:
                await checked_cycle(base_url, emulator, policy, log=log, timeout_s=0.5)
            except AssertionError as exc:
                raise AssertionError(f"soak seed {SEED}, cycle {number}: {exc}") from None
        emulator.configure(faults=())
        clock.advance(3 * HOUR)  # whatever a failed wait left canceling has ended since
        await checked_cycle(base_url, emulator, policy, log=log)
    left = [b for b in emulator.batches() if str(b["id"]) not in protected]
    deleted = len(log.named("batch_deleted"))
    assert deleted >= 15, f"seed {SEED}: the soak deleted too little to mean much"
    assert log.named("batch_cancel_requested"), f"seed {SEED}: no cancel was exercised"
    assert sum(1 for e in emulator.journal if e.fault) >= 5, f"seed {SEED}: too few faults"
    for batch in left:  # whatever is left is within its retention
        age = clock() - _created(batch)
        if batch["processing_status"] == "ended":
            assert age <= policy.retention, f"seed {SEED}: {batch['id']} left behind"
        else:
            assert age <= policy.processing_retention, f"seed {SEED}: {batch['id']} left"


def _created(batch: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(batch["created_at"]))
