"""The daemon: runs cycles on a schedule until told to stop. It is given values, not settings.

APScheduler only decides *when*: its job sets a "due" flag, and a single runner task runs
cycles one after another. So a cycle longer than the interval delays the next one instead
of overlapping it, ticks missed meanwhile coalesce into one run, and shutting the scheduler
down never cancels a cycle halfway.

Shutdown (SIGTERM or SIGINT): stop starting new work, let requests in flight finish,
and cancel whatever is still running after ``grace_s``, well inside Kubernetes' 30 s.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from cleaner.clock import SYSTEM, Clock
from cleaner.logs import Logger, get_logger
from cleaner.models import CycleReport
from cleaner.schedule import Schedule

#: How long a stopping daemon lets the running cycle finish before cancelling it.
GRACE_S = 8.0

#: One cycle, given the stop event; bootstrap builds it from the settings.
CycleJob = Callable[[asyncio.Event], Awaitable[CycleReport]]
Observer = Callable[[CycleReport], None]


@dataclass(slots=True)
class DaemonState:
    """What the health endpoints read: is it alive, how did it last go."""

    started_at: float
    last_tick: float | None = None  # when the scheduler last fired (monotonic)
    cycle_started: float | None = None  # set while a cycle runs
    last_report: CycleReport | None = None
    last_success_at: datetime | None = None
    cycles: int = 0


class Daemon:
    """Runs cycles: once, or on the schedule until :meth:`request_stop`."""

    def __init__(
        self,
        cycle: CycleJob,
        *,
        schedule: Schedule | None = None,
        dry_run: bool = False,
        clock: Clock = SYSTEM,
        log: Logger | None = None,
        observers: tuple[Observer, ...] = (),
        grace_s: float = GRACE_S,
        announce: dict[str, object] | None = None,
    ) -> None:
        self.cycle = cycle
        self.schedule = schedule
        self.dry_run = dry_run
        self.clock = clock
        self.log = log or get_logger()
        self.observers = observers
        self.grace_s = grace_s
        self.announce = announce or {}
        self.state = DaemonState(started_at=clock.monotonic())
        self.stopping = asyncio.Event()
        self._due = asyncio.Event()

    def request_stop(self) -> None:
        """Begin a graceful stop (signal handlers call this)."""
        if not self.stopping.is_set():
            self.log.info("shutdown_requested", grace_s=self.grace_s)
        self.stopping.set()
        self._due.set()  # wake the runner so it notices

    async def run_cycle(self) -> CycleReport:
        """One cycle with bookkeeping; a bug in a cycle is logged, never raised."""
        self.state.cycle_started = self.clock.monotonic()
        started = self.clock.wall()
        try:
            report = await self.cycle(self.stopping)
        except Exception as exc:  # a bug, not an API error: keep the daemon alive
            self.log.exception("cycle_crashed", error=f"{type(exc).__name__}: {exc}")
            report = _crashed_report(started, exc, dry_run=self.dry_run)
        finally:
            self.state.cycle_started = None
        self._record(report)
        return report

    def _record(self, report: CycleReport) -> None:
        self.state.cycles += 1
        self.state.last_report = report
        if report.ok:
            self.state.last_success_at = self.clock.wall()
        for observe in self.observers:
            try:
                observe(report)
            except Exception as exc:  # a broken metric must not stop the cycles
                self.log.exception("observer_failed", error=f"{type(exc).__name__}: {exc}")

    async def run_once(self) -> CycleReport:
        with _signals(self.request_stop):
            return await self._shielded(self.run_cycle())

    async def run_forever(self) -> None:
        """Cycles on the schedule, the first one at start, until a stop is requested."""
        if self.schedule is None:
            raise ValueError("run_forever needs a schedule")
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._tick,
            trigger=self.schedule.trigger(),
            id="cycle",
            next_run_time=self.clock.wall(),  # first run at start
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,  # a late tick still counts; coalescing keeps it single
        )
        scheduler.start()
        self.log.info(
            "daemon_started", schedule=self.schedule.text, dry_run=self.dry_run, **self.announce
        )
        try:
            with _signals(self.request_stop):
                while True:
                    await self._due.wait()
                    if self.stopping.is_set():
                        break
                    self._due.clear()
                    await self._shielded(self.run_cycle())
                    if self.stopping.is_set():
                        break
        finally:
            scheduler.shutdown(wait=False)
            self.log.info("daemon_stopped", cycles=self.state.cycles)

    def _tick(self) -> None:
        self.state.last_tick = self.clock.monotonic()
        self._due.set()

    async def _shielded(self, cycle: Coroutine[Any, Any, CycleReport]) -> CycleReport:
        """Run a cycle; after a stop request, give it ``grace_s`` before cancelling it."""
        task = asyncio.ensure_future(cycle)
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                done, _ = await asyncio.wait({task}, timeout=self.grace_s)
                if not done:
                    self.log.warning("cycle_cancelled_at_grace", grace_s=self.grace_s)
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
                    return _crashed_report(self.clock.wall(), None, dry_run=self.dry_run)
            return task.result()
        finally:
            stop.cancel()


def _crashed_report(started: datetime, exc: BaseException | None, *, dry_run: bool) -> CycleReport:
    error = "cancelled at shutdown grace" if exc is None else f"{type(exc).__name__}: {exc}"
    return CycleReport.refused(started_at=started, dry_run=dry_run, error=error)


class _signals:
    """Route SIGTERM and SIGINT to a callback while inside the block."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._callback)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                continue
            self._installed.append(sig)

    def __exit__(self, *_: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
