"""Lifecycle on the injected clock: in_progress, canceling, ended, expired, archived."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from cleaner.emulator import Emulator, EmulatorConfig, ManualClock, Population

DAY_S = 86400
ID = re.compile(r"^msgbatch_[A-Za-z0-9]{24}$")


@pytest.fixture
def emu(clock: ManualClock) -> Emulator:
    """An in-process emulator: 100 s processing, 30 s cancel settling."""
    return Emulator(EmulatorConfig(processing_time_s=100, cancel_settle_s=30), clock=clock)


def _counts(batch: dict[str, object]) -> dict[str, int]:
    counts = batch["request_counts"]
    assert isinstance(counts, dict)
    return counts


def test_a_new_batch_runs_until_the_processing_time_has_passed(
    emu: Emulator, clock: ManualClock
) -> None:
    """in_progress with everything processing, then ended with everything succeeded."""
    batch_id = emu.add_batch(request_count=10)["id"]
    assert isinstance(batch_id, str)
    clock.advance(99.999)
    running = emu.get(batch_id)
    assert running is not None
    assert running["processing_status"] == "in_progress"
    assert _counts(running)["processing"] == 10
    assert running["ended_at"] is None
    assert running["results_url"] is None
    clock.advance(0.001)
    ended = emu.get(batch_id)
    assert ended is not None
    assert ended["processing_status"] == "ended"
    assert _counts(ended) == {
        "processing": 0,
        "succeeded": 10,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert ended["ended_at"] == "2026-03-01T12:01:40.000000Z"
    assert isinstance(ended["results_url"], str)


def test_a_batch_that_cannot_finish_in_24_hours_expires_at_expires_at(
    clock: ManualClock,
) -> None:
    """Unfinished requests become expired at created_at + 24 h; finished ones succeeded."""
    emu = Emulator(EmulatorConfig(processing_time_s=2 * DAY_S), clock=clock)
    batch_id = emu.add_batch(request_count=10)["id"]
    assert isinstance(batch_id, str)
    clock.advance(DAY_S)
    batch = emu.get(batch_id)
    assert batch is not None
    assert batch["processing_status"] == "ended"
    assert batch["ended_at"] == batch["expires_at"]
    assert _counts(batch) == {
        "processing": 0,
        "succeeded": 5,
        "errored": 0,
        "canceled": 0,
        "expired": 5,
    }


def test_a_canceled_batch_is_canceling_until_it_settles_then_ends_canceled(
    emu: Emulator, clock: ManualClock
) -> None:
    """Cancel sets cancel_initiated_at; after the settle time the rest is canceled."""
    batch_id = emu.add_batch(request_count=10)["id"]
    assert isinstance(batch_id, str)
    clock.advance(40)
    canceled = emu.cancel(batch_id, "")
    assert canceled["processing_status"] == "canceling"
    assert canceled["cancel_initiated_at"] == "2026-03-01T12:00:40.000000Z"
    assert _counts(canceled)["processing"] == 10
    clock.advance(29)
    still = emu.get(batch_id)
    assert still is not None
    assert still["processing_status"] == "canceling"
    clock.advance(1)
    ended = emu.get(batch_id)
    assert ended is not None
    assert ended["processing_status"] == "ended"
    assert _counts(ended) == {
        "processing": 0,
        "succeeded": 7,
        "errored": 0,
        "canceled": 3,
        "expired": 0,
    }


def test_a_batch_that_finishes_while_canceling_ends_with_everything_succeeded(
    emu: Emulator, clock: ManualClock
) -> None:
    """If all requests finish before the cancel settles, nothing is canceled."""
    batch_id = emu.add_batch(request_count=4)["id"]
    assert isinstance(batch_id, str)
    clock.advance(90)
    emu.cancel(batch_id, "")
    clock.advance(10)
    batch = emu.get(batch_id)
    assert batch is not None
    assert batch["processing_status"] == "ended"
    assert _counts(batch)["succeeded"] == 4
    assert batch["cancel_initiated_at"] is not None


def test_archived_at_is_set_29_days_after_creation(emu: Emulator, clock: ManualClock) -> None:
    """archived_at stays null until created_at + 29 days, then is exactly that moment."""
    batch_id = emu.add_batch(request_count=1)["id"]
    assert isinstance(batch_id, str)
    clock.advance(29 * DAY_S - 1)
    before = emu.get(batch_id)
    assert before is not None
    assert before["archived_at"] is None
    clock.advance(1)
    after = emu.get(batch_id)
    assert after is not None
    assert after["archived_at"] == "2026-03-30T12:00:00.000000Z"


@pytest.mark.parametrize(
    ("population", "status"),
    [
        (Population(count=30, status="ended", age_s=40 * DAY_S), "ended"),
        (Population(count=20, status="in_progress", age_s=3 * 3600), "in_progress"),
        (Population(count=10, status="canceling", age_s=3600, spread_s=600), "canceling"),
        (Population(count=5, status="ended", age_s=2 * DAY_S, ended_by="cancel"), "ended"),
        (Population(count=5, status="ended", age_s=2 * DAY_S, ended_by="expiry"), "ended"),
    ],
)
def test_seeded_populations_show_the_status_and_age_asked_for(
    emu: Emulator, clock: ManualClock, population: Population, status: str
) -> None:
    """Every seeded batch is in the asked status and at least as old as asked."""
    ids = emu.seed(population)
    assert len(ids) == population.count
    oldest = clock() - timedelta(seconds=population.age_s + population.spread_s)
    newest = clock() - timedelta(seconds=population.age_s)
    for batch in emu.batches():
        assert batch["processing_status"] == status
        created = str(batch["created_at"])
        assert oldest.strftime("%Y-%m-%dT%H:%M:%S") <= created[:19] <= newest.isoformat()[:19]


def test_batches_ended_by_cancel_or_expiry_carry_those_counts(emu: Emulator) -> None:
    """ended_by="cancel" yields canceled requests; ended_by="expiry" yields expired ones."""
    (canceled,) = emu.seed(
        Population(count=1, status="ended", age_s=DAY_S, request_count=10, ended_by="cancel")
    )
    (expired,) = emu.seed(
        Population(count=1, status="ended", age_s=DAY_S, request_count=10, ended_by="expiry")
    )
    canceled_batch, expired_batch = emu.get(canceled), emu.get(expired)
    assert canceled_batch is not None
    assert expired_batch is not None
    assert _counts(canceled_batch)["canceled"] > 0
    assert canceled_batch["cancel_initiated_at"] is not None
    assert _counts(expired_batch)["expired"] == 8  # a quarter (rounded down) finished in time
    assert expired_batch["ended_at"] == expired_batch["expires_at"]


def test_seeded_in_progress_batches_end_after_the_processing_time(
    emu: Emulator, clock: ManualClock
) -> None:
    """Seeded running batches keep running for the processing time from now, then end."""
    emu.seed(Population(count=3, status="in_progress", age_s=3 * 3600))
    clock.advance(100)
    assert {b["processing_status"] for b in emu.batches()} == {"ended"}


def test_ids_are_unique_and_look_like_real_ones(emu: Emulator) -> None:
    """msgbatch_ + 24 base62 characters, unique across a large seed."""
    ids = emu.seed(Population(count=20_000, status="ended", age_s=DAY_S))
    assert len(set(ids)) == 20_000
    assert all(ID.match(batch_id) for batch_id in ids)


def test_the_same_seed_replays_the_same_ids(clock: ManualClock) -> None:
    """Two emulators with the same RNG seed produce the same ids."""
    population = Population(count=5, status="ended", age_s=DAY_S, spread_s=3600)
    first = Emulator(EmulatorConfig(seed=7), clock=clock).seed(population)
    second = Emulator(EmulatorConfig(seed=7), clock=clock).seed(population)
    assert first == second


def test_timestamps_show_microseconds_even_when_they_are_zero(emu: Emulator) -> None:
    """created_at at a whole second still prints .000000Z."""
    batch = emu.add_batch()
    assert batch["created_at"] == "2026-03-01T12:00:00.000000Z"
    assert batch["expires_at"] == "2026-03-02T12:00:00.000000Z"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("3000:ended:40d", Population(3000, "ended", 40 * DAY_S)),
        ("200:ended:1d:2h", Population(200, "ended", DAY_S, spread_s=7200)),
        ("50:in_progress:3h:0s:10", Population(50, "in_progress", 3 * 3600, request_count=10)),
    ],
)
def test_seed_specs_parse_into_populations(spec: str, expected: Population) -> None:
    """COUNT:STATUS:AGE[:SPREAD[:REQUESTS]] as the command line takes it."""
    assert Population.from_spec(spec) == expected


@pytest.mark.parametrize(
    "spec", ["3000:ended", "x:ended:1d", "5:lost:1d", "5:ended:forever", "5:in_progress:2d"]
)
def test_bad_seed_specs_are_refused(spec: str) -> None:
    """Malformed specs, unknown statuses and running batches older than 24 h are errors."""
    with pytest.raises(ValueError, match=r".+"):
        Population.from_spec(spec)
