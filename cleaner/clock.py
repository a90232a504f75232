"""The one clock: wall time, monotonic time and sleeping, passed to everything that waits.

Nothing else in cleaner calls ``datetime.now()``, ``time.monotonic()`` or ``asyncio.sleep()``;
it asks the clock it was given. Production uses :data:`SYSTEM`; tests pass a virtual clock
(``tests/fakes.py``) so waiting logic runs on virtual time, with no real sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What cleaner needs to know about time."""

    def wall(self) -> datetime:
        """Now, as an aware UTC datetime (ages, timestamps in receipts and logs)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (deadlines, durations)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock of the machine; ``wall`` may be replaced (an emulator's clock in tests)."""

    def __init__(self, wall: Callable[[], datetime] | None = None) -> None:
        self._wall = wall

    def wall(self) -> datetime:
        return datetime.now(UTC) if self._wall is None else self._wall()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM: Clock = SystemClock()


async def sleep_unless(clock: Clock, seconds: float, *events: asyncio.Event) -> bool:
    """Sleep ``seconds`` on ``clock``; return True early as soon as any event is set."""
    if any(event.is_set() for event in events):
        return True
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait([sleeper, *waiters], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, *waiters):
            task.cancel()
    return any(event.is_set() for event in events)
