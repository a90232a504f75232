"""A 429 pause holds the requests already queued in the pacer, not only those still to come."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cleaner.budget import RequestBudget


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


class FakeLimiter:
    """Hands out tokens at once; ``during`` runs while the n-th caller waits for its token."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.paid: list[float] = []
        self.during: dict[int, Callable[[], object]] = {}

    async def acquire(self, amount: float = 1) -> None:
        self.paid.append(amount)
        action = self.during.pop(len(self.paid), None)
        await asyncio.sleep(0)  # a queued caller yields while it waits its turn
        if action is not None:
            action()


async def test_a_429_while_a_request_waits_in_the_bucket_holds_it_for_the_retry_after() -> None:
    """Its token came after the 429: it waits the pause out, then queues again."""
    clock = FakeClock()
    limiter = FakeLimiter(clock)
    budget = RequestBudget(600, clock=clock, sleep=clock.sleep, limiter=limiter)
    limiter.during[1] = lambda: budget.rate_limited(2.0)
    await budget.acquire()
    assert clock.slept == [pytest.approx(2.0)]
    assert len(limiter.paid) == 2  # paid again, at the rate the 429 cut
    assert limiter.paid[1] == pytest.approx(1 / budget.share)


async def test_every_queued_request_is_held_not_only_the_first() -> None:
    """Ten callers queued when the 429 lands: none leaves before the pause has ended."""
    clock = FakeClock()
    limiter = FakeLimiter(clock)
    budget = RequestBudget(600, clock=clock, sleep=clock.sleep, limiter=limiter)
    paused_until: list[float] = []

    def throttle() -> None:
        budget.rate_limited(2.0)
        paused_until.append(clock.now + 2.0)

    limiter.during[1] = throttle
    left_at: list[float] = []

    async def caller() -> None:
        await budget.acquire()
        left_at.append(clock.now)

    await asyncio.gather(*(caller() for _ in range(10)))
    assert len(left_at) == 10
    assert min(left_at) >= paused_until[0]


async def test_without_a_429_a_request_pays_once_and_never_sleeps() -> None:
    """The re-check costs nothing on the normal path."""
    clock = FakeClock()
    limiter = FakeLimiter(clock)
    budget = RequestBudget(600, clock=clock, sleep=clock.sleep, limiter=limiter)
    for _ in range(5):
        await budget.acquire()
    assert limiter.paid == [1.0] * 5
    assert clock.slept == []
