"""The request budget adapts to 429s: cut fast, recover slowly, pause for retry-after."""

from __future__ import annotations

import pytest

from cleaner.budget import BudgetTuning, RequestBudget


class FakeClock:
    """A monotonic clock that moves only when told to, or when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_429_halves_the_rate_and_a_volley_counts_once() -> None:
    """Concurrent 429s from one burst are one congestion signal, not ten."""
    clock = FakeClock()
    budget = RequestBudget(600, clock=clock)
    assert budget.rate_limited(1.0) is True
    for _ in range(9):
        assert budget.rate_limited(1.0) is False
    assert budget.share == pytest.approx(0.5)
    assert budget.per_minute == pytest.approx(300)


def test_a_429_drops_the_rate_to_what_the_api_was_seen_to_accept() -> None:
    """Ten times over budget: one signal brings the rate near the accepted rate."""
    clock = FakeClock()
    budget = RequestBudget(12_000, clock=clock)  # 200/s configured
    for _ in range(40):  # the API served 20/s over the two-second window
        budget.accepted()
        clock.now += 0.05
    budget.rate_limited(0.1)
    assert budget.per_minute == pytest.approx(0.9 * 20 * 60)


def test_repeated_congestion_cuts_again_but_never_below_the_floor() -> None:
    """Each separate signal halves again, down to the floor."""
    clock = FakeClock()
    tuning = BudgetTuning(floor=0.1, cooldown_s=1.0)
    budget = RequestBudget(600, clock=clock, tuning=tuning)
    for _ in range(10):
        budget.rate_limited(0.0)
        clock.now += 2.0
    assert budget.share == pytest.approx(0.1)


async def test_the_rate_recovers_step_by_step_without_429s() -> None:
    """After the retry-after, every recovery interval gives back a step of the rate."""
    clock = FakeClock()
    tuning = BudgetTuning(recover_every_s=5.0, recover_step=0.1)
    budget = RequestBudget(60_000, clock=clock, tuning=tuning)
    budget.rate_limited(2.0)
    clock.now += 2.0 + 5.0 * 3  # the pause, then three recovery steps
    await budget.acquire()
    assert budget.share == pytest.approx(0.8)
    clock.now += 1000
    await budget.acquire()
    assert budget.share == 1.0


async def test_acquire_waits_out_a_retry_after_pause() -> None:
    """Every caller holds back until the server's retry-after has passed."""
    clock = FakeClock()
    budget = RequestBudget(60_000, clock=clock, sleep=clock.sleep)
    budget.rate_limited(3.0)
    await budget.acquire()
    assert clock.slept == [pytest.approx(3.0)]


async def test_ratelimit_headers_pause_until_the_reset() -> None:
    """An exhausted window reported by the API pauses callers until it resets."""
    clock = FakeClock()
    budget = RequestBudget(60_000, clock=clock, sleep=clock.sleep)
    budget.pause_until_reset(4.0)
    await budget.acquire()
    assert sum(clock.slept) == pytest.approx(4.0)
    assert budget.share == 1.0
