"""Fakes shared by the tests: a logger that records events, and clocks on virtual time."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")


class EventLog:
    """Implements cleaner.logs.Logger by keeping every event as a dict."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _add(self, level: str, event: str, kw: dict[str, Any]) -> None:
        self.events.append({"event": event, "level": level, **kw})

    def debug(self, event: str, **kw: Any) -> None:
        self._add("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._add("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._add("warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._add("error", event, kw)

    def exception(self, event: str, **kw: Any) -> None:
        self._add("error", event, kw)

    def named(self, event: str) -> list[dict[str, Any]]:
        """Every event with this name, in order."""
        return [e for e in self.events if e["event"] == event]

    def ids(self, event: str) -> list[str]:
        """The batch ids of every event with this name."""
        return [str(e["batch_id"]) for e in self.named(event)]


class FrozenClock:
    """A clock that stands still until told to move; for pure reads of time (no sleeping)."""

    def __init__(self, *, wall: datetime, monotonic: float = 0.0) -> None:
        self.now, self.mono = wall, monotonic

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


class VirtualClock:
    """Virtual time for asyncio code: sleepers wake in order, instantly, when all are idle.

    :meth:`run` drives a coroutine: whenever every task is blocked, time jumps to the
    earliest sleeper's wake-up. Code under test only ever awaits :meth:`sleep`, so a
    five-minute wait costs microseconds and is exactly repeatable.
    """

    def __init__(self, *, wall: datetime | None = None) -> None:
        self.start = wall or datetime(2026, 12, 1, tzinfo=UTC)
        self.mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.mono)

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.mono + max(0.0, seconds), self._seq, future))
        await future

    async def run(self, work: Coroutine[Any, Any, T], *, idle_rounds: int = 50) -> T:
        """Run ``work`` to the end on virtual time."""
        task = asyncio.ensure_future(work)
        while not task.done():
            for _ in range(idle_rounds):  # let every runnable task reach its next await
                await asyncio.sleep(0)
                if task.done():
                    break
            while self._sleepers and self._sleepers[0][2].cancelled():
                heapq.heappop(self._sleepers)
            if not self._sleepers or task.done():
                continue
            wake, _, future = heapq.heappop(self._sleepers)
            self.mono = max(self.mono, wake)
            future.set_result(None)
        return task.result()
