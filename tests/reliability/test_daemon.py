"""Invariant 4: the daemon keeps running. A failing cycle is logged and counted; the next runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from cleaner.bootstrap import build_daemon
from cleaner.daemon import Daemon
from cleaner.emulator import Emulator, FaultRule
from cleaner.models import CycleReport
from cleaner.settings import Settings, settings_from
from tests.fakes import EventLog
from tests.reliability.conftest import KEY, open_client, seed_world
from tests.reliability.invariants import check_invariants


def daemon_settings(base_url: str, protected: frozenset[str]) -> Settings:
    """Cycles every second against the emulator."""
    return settings_from(
        {
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": base_url,
            "CLEANER_RETENTION": "30d",
            "CLEANER_PROCESSING_RETENTION": "2h",
            "CLEANER_PROTECTED_IDS": ",".join(protected),
            "CLEANER_SCHEDULE": "1s",
            "CLEANER_WAIT_TIMEOUT": "5s",
        }
    )


async def until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the daemon never got there"
        await asyncio.sleep(0.02)


async def run_daemon_until(
    daemon: Daemon, condition: Callable[[], bool], *, meanwhile: Callable[[], Any] | None = None
) -> None:
    """Run the daemon's schedule until ``condition``, then stop it gracefully."""
    task = asyncio.create_task(daemon.run_forever())
    try:
        await until(condition)
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, timeout=15)


async def test_failing_cycles_are_logged_and_counted_and_the_next_cycle_still_runs(
    emulator: Emulator, base_url: str
) -> None:
    """A spend cap fails the first cycles; once lifted, a later cycle does the work."""
    world = seed_world(emulator)
    emulator.configure(faults=(FaultRule(kind="spend_cap", endpoints=frozenset({"list"})),))
    reports: list[CycleReport] = []
    log = EventLog()
    settings = daemon_settings(base_url, world.policy.protected_ids)

    def lift_the_cap_after_two_failures(report: CycleReport) -> None:
        reports.append(report)
        if len(reports) == 2:
            emulator.configure(faults=())

    async with open_client(base_url) as client:
        daemon = build_daemon(
            settings, client, log=log, observers=(lift_the_cap_after_two_failures,)
        )
        await run_daemon_until(daemon, lambda: any(r.ok for r in reports))
    assert [r.ok for r in reports[:3]] == [False, False, True]
    assert len(log.named("listing_failed")) == 2
    assert daemon.state.cycles == len(reports)
    assert daemon.state.last_success_at is not None
    assert not world.expired & {str(b["id"]) for b in emulator.batches()}
    check_invariants(
        emulator, policy=world.policy, seen=world.seen, events=log.events, secrets=[KEY]
    )


async def test_an_observer_that_raises_is_logged_and_the_daemon_carries_on(
    emulator: Emulator, base_url: str
) -> None:
    """A broken metrics hook fails once: observer_failed is logged, cycles go on."""
    world = seed_world(emulator, stale_running=0)
    calls: list[CycleReport] = []

    def broken_once(report: CycleReport) -> None:
        calls.append(report)
        if len(calls) == 1:
            raise RuntimeError("metrics backend fell over")

    log = EventLog()
    settings = daemon_settings(base_url, world.policy.protected_ids)
    async with open_client(base_url) as client:
        daemon = build_daemon(settings, client, log=log, observers=(broken_once,))
        await run_daemon_until(daemon, lambda: len(calls) >= 2)
    assert [e["error"] for e in log.named("observer_failed")] == [
        "RuntimeError: metrics backend fell over"
    ]
    assert daemon.state.cycles >= 2
    assert log.named("daemon_stopped")
