"""The client's request budget: a smooth pace under the configured rate, adapted to 429s.

The requests-per-minute budget is shared with the organisation's production traffic, so
the configured rate is an upper bound, not a promise. Pacing uses aiolimiter's leaky
bucket. Adaptation sits on top of it, without rebuilding the bucket (which would allow a
fresh burst right after a cut): while throttled, each request is charged ``1 / share``
tokens instead of one.

* A 429 while pacing is a congestion signal. The share drops to what the API accepted
  over the last ``window_s`` (a little under it), or halves, whichever is lower; every
  caller pauses until the ``retry-after`` has passed, including those already queued in
  the bucket: a request that got its token during a pause waits the pause out and queues
  again at the new rate, so a 429 is not followed by the queue leaking out into the same
  exhausted window (nor by a burst of the whole queue when it ends). 429s closer together than
  ``cooldown_s`` are one signal, so a volley from concurrent requests cuts once.
* Every ``recover_every_s`` without a 429 the share climbs back by ``recover_step``,
  so a mis-set budget costs a few 429s, not a storm, and a passing squeeze is forgotten.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiolimiter import AsyncLimiter

from cleaner.clock import SYSTEM


class Limiter(Protocol):
    """The pacing bucket: aiolimiter's, or a fake in tests."""

    async def acquire(self, amount: float = 1) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetTuning:
    """How the budget paces and adapts. Defaults suit the real API."""

    burst_s: float = 0.25  # how much of a second's budget may leave at once
    floor: float = 0.01  # never throttle below this share of the configured rate
    cut: float = 0.5  # at most this share of the current rate survives a 429
    headroom: float = 0.9  # aim this far under the rate the API was seen to accept
    window_s: float = 2.0  # how far back the accepted rate is measured
    cooldown_s: float = 1.0  # 429s closer together than this are one signal
    recover_every_s: float = 5.0
    recover_step: float = 0.05  # share of the configured rate regained per step


class RequestBudget:
    """Paces requests to at most ``requests_per_minute``, less while the API says so."""

    def __init__(
        self,
        requests_per_minute: float,
        *,
        tuning: BudgetTuning | None = None,
        clock: Callable[[], float] = SYSTEM.monotonic,
        sleep: Callable[[float], Awaitable[None]] = SYSTEM.sleep,
        limiter: Limiter | None = None,
    ) -> None:
        self.tuning = tuning or BudgetTuning()
        self.configured_per_s = requests_per_minute / 60.0
        self._clock = clock
        self._sleep = sleep
        self._share = 1.0  # the fraction of the configured rate in force now
        self._capacity = max(1.0, self.configured_per_s * self.tuning.burst_s)
        self._limiter: Limiter = limiter or AsyncLimiter(
            self._capacity, self._capacity / self.configured_per_s
        )
        self._accepted: deque[float] = deque()
        self._paused_until = 0.0
        self._last_cut = float("-inf")
        self._last_change = clock()
        self.cuts = 0

    @property
    def share(self) -> float:
        """The fraction of the configured rate currently allowed (1.0 = full budget)."""
        return self._share

    @property
    def per_minute(self) -> float:
        """The effective requests-per-minute in force now."""
        return self.configured_per_s * self._share * 60.0

    async def acquire(self) -> None:
        """Wait until one more request fits the budget, and no pause is in force."""
        while True:
            while (wait := self._paused_until - self._clock()) > 0:
                await self._sleep(wait)
            self._recover()
            charge = 1.0 / self._share
            while charge > 0:  # a charge above the bucket's size is paid in instalments
                part = min(charge, self._capacity)
                await self._limiter.acquire(part)
                charge -= part
            if self._paused_until <= self._clock():
                return
            # A 429 came while this request queued in the bucket: its token was paid at
            # the old rate into a window the API says is spent. Wait, then pay again.

    def accepted(self) -> None:
        """Record a request the API served (any status but 429)."""
        now = self._clock()
        self._accepted.append(now)
        horizon = now - self.tuning.window_s
        while self._accepted and self._accepted[0] < horizon:
            self._accepted.popleft()

    def rate_limited(self, retry_after_s: float) -> bool:
        """Record a 429; returns True when it lowered the rate (a new congestion signal)."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + retry_after_s)
        if now - self._last_cut < self.tuning.cooldown_s:
            return False
        horizon = now - self.tuning.window_s
        served = sum(1 for t in self._accepted if t >= horizon)
        share = self._share * self.tuning.cut
        if served:  # with no history the measurement says nothing; just halve
            measured = served / self.tuning.window_s / self.configured_per_s
            share = min(share, self.tuning.headroom * measured)
        self._share = max(self.tuning.floor, share)
        self._last_cut = now
        self._last_change = now + retry_after_s
        self.cuts += 1
        return True

    def pause_until_reset(self, reset_in_s: float) -> None:
        """The API said the window is spent (ratelimit headers): hold everyone until reset."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, reset_in_s))

    def _recover(self) -> None:
        if self._share >= 1.0:
            return
        now = self._clock()
        steps = int((now - self._last_change) / self.tuning.recover_every_s)
        if steps > 0:
            self._share = min(1.0, self._share + steps * self.tuning.recover_step)
            self._last_change += steps * self.tuning.recover_every_s
