"""``cleaner demo``: the real job, end to end, against the built-in emulator. No key needed.

The emulator runs in this process and is reached over loopback HTTP, exactly as the
real API would be. Three real cycles run: a dry run (what would happen), the cleanup
itself (deletions, cancels, waits), and a last one that finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from cleaner.bootstrap import assemble
from cleaner.emulator import Emulator, EmulatorConfig, Population, serve_in_thread
from cleaner.logs import configure_logging
from cleaner.models import CycleReport, Outcome
from cleaner.settings import Settings, settings_from

DEMO_KEY = "sk-ant-demo-not-a-real-key"
DAY_S = 86400.0


def demo_population(emulator: Emulator) -> list[str]:
    """A realistic backlog; returns the ids of three old batches to protect."""
    keep = emulator.seed(Population(count=3, status="ended", age_s=120 * DAY_S))
    emulator.seed(
        Population(count=1500, status="ended", age_s=31 * DAY_S, spread_s=60 * DAY_S),
        Population(count=300, status="ended", age_s=1 * DAY_S, spread_s=20 * DAY_S),
        Population(count=20, status="ended", age_s=40 * DAY_S, ended_by="cancel"),
        Population(count=25, status="in_progress", age_s=3 * 3600, spread_s=3600),
        Population(count=60, status="in_progress", age_s=600, spread_s=3000),
        Population(count=5, status="canceling", age_s=5 * 3600),
    )
    return keep


def run_demo(out: TextIO | None = None) -> int:
    """Run the demo; JSON log lines on stdout, then a short human summary."""
    out = out or sys.stdout
    configure_logging("info", secrets=[DEMO_KEY], stream=out)
    emulator = Emulator(
        EmulatorConfig(
            api_key=DEMO_KEY,
            processing_time_s=6 * 3600,
            cancel_settle_s=2.0,
            rate_limit_rpm=30_000,
            latency_s=0.005,
        )
    )
    protected = demo_population(emulator)
    with serve_in_thread(emulator) as base_url:
        # The demo behaves the same whatever the caller's shell has set.
        settings = settings_from(
            {
                "ANTHROPIC_API_KEY": DEMO_KEY,
                "ANTHROPIC_BASE_URL": base_url,
                "CLEANER_RETENTION": "7d",
                "CLEANER_PROCESSING_RETENTION": "2h",
                "CLEANER_PROTECTED_IDS": ",".join(protected),
                "CLEANER_REQUESTS_PER_MINUTE": 30_000,
                "CLEANER_WAIT_TIMEOUT": "1m",
            }
        )
        before = len(emulator)
        reports = asyncio.run(_cycles(settings))
        after = len(emulator)
    _summary(out, before, after, reports)
    return 0 if all(report.ok for report in reports) else 1


async def _cycles(settings: Settings) -> list[CycleReport]:
    reports = []
    async with assemble(settings.model_copy(update={"dry_run": True})) as dry:
        reports.append(await dry.daemon.run_cycle())
    async with assemble(settings) as real:
        reports.append(await real.daemon.run_cycle())
        reports.append(await real.daemon.run_cycle())
    return reports


def _summary(out: TextIO, before: int, after: int, reports: list[CycleReport]) -> None:
    dry, real, last = reports
    lines = [
        "",
        "== cleaner demo: summary ==",
        f"batches in the emulator: {before} before, {after} after",
        f"cycle 1 (dry run): would act on {dry.outcome_count(Outcome.DRY_RUN)} batches, "
        f"sent {dry.requests} requests (list only)",
        f"cycle 2: deleted {real.outcome_count(Outcome.DELETED)} "
        f"(cancelled {real.cancels_sent} running first), "
        f"already gone {real.outcome_count(Outcome.ALREADY_GONE)}, "
        f"failed {real.outcome_count(Outcome.FAILED)}; "
        f"{real.requests} requests in {real.duration_s:.1f}s, {real.rate_limited} rate-limited",
        f"cycle 3: nothing due ({sum(last.planned.values())} planned)",
        "Every deletion above is one JSON line with event=batch_deleted and the API's "
        "confirmation.",
        "Retention used: 7 days for ended batches (the provider keeps results 29 days, so "
        "this removes them three weeks early), 2 hours for running ones.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()
