"""The fault matrix: every kind of failure on every endpoint the daemon uses.

Each case injects one fault twice on one endpoint, runs a cycle, then a clean cycle, and
checks the invariants after each. Retryable faults must not even fail the first cycle;
the others may fail it, but the clean cycle that follows must finish the work.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from cleaner.emulator import Emulator, FaultRule
from cleaner.models import Outcome
from tests.reliability.conftest import (
    FAST_CYCLE,
    RefusingTransport,
    checked_cycle,
    seed_world,
)
from tests.reliability.invariants import check_invariants

ENDPOINTS = ("list", "retrieve", "cancel", "delete")
#: Fault kinds the client retries through: the first cycle still succeeds in full.
RETRIED = (
    "rate_limit",  # 429 with retry-after
    "server_error",  # 500
    "overloaded",  # 529
    "timeout",  # 504
    "refused",  # connection refused (a real refused connect, see RefusingTransport)
    "reset_before",  # connection reset before any answer
    "drop_after",  # the API acts, then the connection drops mid-response
    "hang",  # no answer: the client's read deadline fires
)
#: Fault kinds that may fail the first cycle; the next cycle finishes the work.
NOT_RETRIED = (
    "spend_cap",  # 429 without retry-after: fatal for the cycle
    "not_found",  # transient 404 (retried only on retrieve)
    "malformed",  # 200 whose body is not JSON
)


def rule(kind: str, endpoint: str) -> FaultRule:
    """The fault, twice, on one endpoint; waits scaled down for the test."""
    seconds = {"rate_limit": 0.05, "hang": 5.0}.get(kind)
    return FaultRule(kind=kind, endpoints=frozenset({endpoint}), times=2, seconds=seconds)  # type: ignore[arg-type]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("kind", RETRIED + NOT_RETRIED)
async def test_each_fault_on_each_endpoint_keeps_every_invariant_and_the_work_gets_done(
    emulator: Emulator, base_url: str, dead_port: int, kind: str, endpoint: str
) -> None:
    """One fault kind on one endpoint: invariants hold, and two cycles clear the backlog."""
    world = seed_world(emulator)
    transport = None
    if kind == "refused":
        transport = RefusingTransport(endpoint=endpoint, times=2, dead_port=dead_port)
    else:
        emulator.configure(faults=(rule(kind, endpoint),))
    started = time.monotonic()
    first, log = await checked_cycle(
        base_url, emulator, world.policy, transport=transport, timeout_s=0.5
    )
    assert time.monotonic() - started < 15  # bounded, whatever the fault
    if kind in RETRIED:
        assert first.ok, first.error
        assert first.retries >= 2  # the fault really happened, twice
        assert not world.expired & {str(b["id"]) for b in emulator.batches()}
    elif (kind, endpoint) == ("not_found", "retrieve"):
        assert first.ok  # a 404 while waiting is asked again, not believed at once
    else:
        assert not first.ok or first.outcome_count(Outcome.ALREADY_GONE) > 0
    emulator.configure(faults=())
    second, log = await checked_cycle(base_url, emulator, world.policy, log=log)
    assert second.ok, second.error
    live = {str(b["id"]) for b in emulator.batches()}
    assert not world.expired & live  # the work is done
    assert world.kept <= live  # and nothing else was touched
    check_invariants(emulator, policy=world.policy, seen=world.seen, events=log.events)


async def test_a_delete_whose_answer_was_lost_is_reported_gone_not_deleted(
    emulator: Emulator, base_url: str
) -> None:
    """drop_after on DELETE: the retry sees 404, logged already gone, never batch_deleted."""
    world = seed_world(emulator, stale_running=0, canceling=1)
    emulator.configure(faults=(FaultRule(kind="drop_after", endpoints=frozenset({"delete"})),))
    report, log = await checked_cycle(base_url, emulator, world.policy)
    assert report.ok
    assert log.named("batch_deleted") == []
    gone = {e["batch_id"] for e in log.named("batch_already_gone")}
    assert gone == world.groups["old"] | world.groups["canceling"]
    assert report.outcome_count(Outcome.ALREADY_GONE) == len(gone)


async def test_a_429_retry_after_is_honoured_before_the_next_attempt(
    emulator: Emulator, base_url: str
) -> None:
    """A 429 asking for 0.3 s on DELETE: the retried DELETE arrives no sooner."""
    world = seed_world(emulator, stale_running=0)
    emulator.configure(
        faults=(
            FaultRule(kind="rate_limit", endpoints=frozenset({"delete"}), times=1, seconds=0.3),
        )
    )
    report, _ = await checked_cycle(base_url, emulator, world.policy)
    assert report.ok
    limited = next(e for e in emulator.journal if e.fault == "rate_limit")
    retried = next(
        e for e in emulator.journal if e.batch_id == limited.batch_id and e.status == 200
    )
    assert (retried.at - limited.at).total_seconds() >= 0.29


async def test_a_spend_cap_ends_the_cycle_at_once_and_the_next_cycle_finishes(
    emulator: Emulator, base_url: str
) -> None:
    """429 without retry-after on DELETE: cycle aborted, no further request sent."""
    world = seed_world(emulator, stale_running=0)
    emulator.configure(faults=(FaultRule(kind="spend_cap", endpoints=frozenset({"delete"})),))
    options = replace(FAST_CYCLE, workers=1)
    report, log = await checked_cycle(base_url, emulator, world.policy, options=options)
    assert not report.ok
    assert "SpendCapError" in str(report.error)
    assert [e["event"] for e in log.events if e["level"] == "error"] == ["cycle_aborted"]
    assert sum(1 for e in emulator.journal if e.endpoint == "delete") == 1
    emulator.configure(faults=())
    report, log = await checked_cycle(base_url, emulator, world.policy, log=log)
    assert report.ok
    assert not world.expired & {str(b["id"]) for b in emulator.batches()}


async def test_a_batch_canceled_but_not_deleted_is_deleted_by_the_next_cycle(
    emulator: Emulator, base_url: str
) -> None:
    """A cycle cancels stale batches and then loses its wait; the next cycle deletes them."""
    world = seed_world(emulator, old=0, stale_running=2)
    emulator.configure(faults=(FaultRule(kind="malformed", endpoints=frozenset({"retrieve"})),))
    first, log = await checked_cycle(base_url, emulator, world.policy)
    assert not first.ok
    emulator.configure(faults=())
    await asyncio.sleep(0.3)  # the cancels settle: both batches are ended now
    await checked_cycle(base_url, emulator, world.policy, log=log)
    assert world.groups["stale_running"].isdisjoint(str(b["id"]) for b in emulator.batches())
