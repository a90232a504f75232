"""The daemon's schedule: first cycle at start, never two at once, late ticks coalesced."""

from __future__ import annotations

import asyncio

from cleaner.bootstrap import build_daemon
from cleaner.emulator import Emulator, Population
from cleaner.models import CycleReport, Outcome
from cleaner.settings import settings_from
from tests.fakes import EventLog
from tests.integration.conftest import DAY, KEY, open_test_client


async def test_a_cycle_longer_than_the_interval_delays_the_next_instead_of_overlapping(
    emulator: Emulator, base_url: str
) -> None:
    """With a 1 s schedule and ~2 s cycles, cycles run back to back, one at a time."""
    emulator.seed(Population(count=40, status="ended", age_s=40 * DAY))
    emulator.configure(latency_s=0.05)
    settings = settings_from(
        {
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": base_url,
            "CLEANER_RETENTION": "30d",
            "CLEANER_SCHEDULE": "1s",
            "CLEANER_CONCURRENCY": "1",
        }
    )
    log = EventLog()
    reports: list[CycleReport] = []
    three = asyncio.Event()

    def observe(report: CycleReport) -> None:
        reports.append(report)
        if len(reports) >= 3:
            three.set()

    async with open_test_client(base_url, concurrency=1) as client:
        daemon = build_daemon(settings, client, log=log, observers=(observe,))
        task = asyncio.create_task(daemon.run_forever())
        await asyncio.wait_for(three.wait(), timeout=30)
        daemon.request_stop()
        await asyncio.wait_for(task, timeout=15)

    assert reports[0].outcome_count(Outcome.DELETED) == 40  # the first cycle ran at start
    assert reports[0].duration_s > 1.0  # longer than the interval
    # Ticks missed during the long first cycle coalesced: the next cycles found nothing due.
    assert all(not r.planned for r in reports[1:])
    # Never two at once: every cycle finished before the next one planned.
    events = [e["event"] for e in log.events if e["event"] in ("cycle_planned", "cycle_finished")]
    assert events == ["cycle_planned", "cycle_finished"] * (len(events) // 2)
