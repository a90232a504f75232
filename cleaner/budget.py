"""The client's request budget: a smooth pace under the configured rate, adapted to 429s.

The requests-per-minute budget is shared with the organisation's production traffic, so
the configured rate is an upper bound, not a promise. Pacing uses aiolimiter's leaky
bucket; adaptation is additive-increase / multiplicative-decrease on top of it, done by
charging each request more than one token while throttled (aiolimiter's public API),
so the bucket never has to be rebuilt and never bursts after a cut:

* a 429 while pacing halves the effective rate (at most once per ``cooldown_s``, so a
  volley of concurrent 429s counts as one signal) and pauses every caller until its
  ``retry-after`` has passed;
* every ``recover_every_s`` without a 429 the rate climbs back by ``recover_step`` of
  the configured rate, so a mis-set budget costs a few 429s, not a storm.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetTuning:
    """How the budget paces and adapts. Defaults suit the real API."""

    burst_s: float = 0.25  # how much of a second's budget may leave at once
    floor: float = 0.05  # never throttle below this share of the configured rate
    cut: float = 0.5  # multiply the share by this on a 429
    cooldown_s: float = 2.0  # 429s closer together than this are one signal
    recover_every_s: float = 5.0
    recover_step: float = 0.05  # share of the configured rate regained per step


class RequestBudget:
    """Paces requests to at most ``requests_per_minute``, less while the API says so."""

    def __init__(
        self,
        requests_per_minute: float,
        *,
        tuning: BudgetTuning | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.tuning = tuning or BudgetTuning()
        self.configured_per_s = requests_per_minute / 60.0
        self._clock = clock
        self._sleep = sleep
        self._share = 1.0  # the fraction of the configured rate in force now
        # Capacity must hold the heaviest charge (1 / floor tokens) and a short burst.
        self._capacity = max(self.configured_per_s * self.tuning.burst_s, 1.0 / self.tuning.floor)
        self._limiter = AsyncLimiter(self._capacity, self._capacity / self.configured_per_s)
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
        """Wait until one more request fits the budget."""
        while (wait := self._paused_until - self._clock()) > 0:
            await self._sleep(wait)
        self._recover()
        await self._limiter.acquire(min(1.0 / self._share, self._capacity))

    def rate_limited(self, retry_after_s: float) -> bool:
        """Record a 429; returns True when it lowered the rate (a new congestion signal)."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + retry_after_s)
        if now - self._last_cut < self.tuning.cooldown_s:
            return False
        self._last_cut = now
        self._last_change = now + retry_after_s
        self._share = max(self.tuning.floor, self._share * self.tuning.cut)
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
