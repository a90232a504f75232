"""Clocks for the emulator: lifecycle is computed from "now", so time is an argument.

A clock is any callable returning an aware UTC datetime. Tests use `ManualClock` and move it
by hand instead of sleeping; the command line uses `OffsetClock`, real time that an operator
can push forward (``POST /_emulator/clock``) to age a running emulator without waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def system_clock() -> datetime:
    """The real time, aware and in UTC."""
    return datetime.now(UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch: exact integer time, cheap to compare and store."""
    if moment.tzinfo is None:
        raise ValueError("the emulator needs aware datetimes (UTC)")
    return (moment - EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """The aware UTC datetime for microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


class ManualClock:
    """A clock that only moves when told to; thread-safe, for tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = start if start is not None else datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward (or back, if negative) by `seconds`; returns the new time."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (aware)."""
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        with self._lock:
            self._now = moment


class OffsetClock:
    """Real time plus an offset that can only be pushed by `advance`; thread-safe."""

    def __init__(self, base: Clock = system_clock) -> None:
        self._lock = threading.Lock()
        self._base = base
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        with self._lock:
            return self._base() + self._offset

    def advance(self, seconds: float) -> datetime:
        """Add `seconds` to the offset; returns the new time."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)
            return self._base() + self._offset

    def set(self, moment: datetime) -> None:
        """Make "now" equal `moment`, from here on moving with real time."""
        with self._lock:
            self._offset = moment - self._base()
