"""One cleanup cycle: list, plan, act, report. Every failure becomes an outcome or an event.

The listing finishes before anything is deleted, so no cursor the listing depends on can
vanish under it, whatever the API does with cursors of deleted batches. Only the planned
actions are kept in memory, never the listing. Deciding is :mod:`cleaner.policy`'s job,
each batch's life :mod:`cleaner.lifecycle`'s, carrying it out :mod:`cleaner.actor`'s;
this module only sequences them and says what happened, as events.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cleaner.actor import Actor, Archiver, IntentLog, Tally
from cleaner.client import BatchesClient
from cleaner.clock import SYSTEM, Clock
from cleaner.commands import LifeConfig
from cleaner.errors import ApiError, BlastRadiusError
from cleaner.events import (
    BlastRadiusExceeded,
    CycleFinished,
    CyclePlanned,
    DryRunAction,
    Event,
    HoldExpiring,
    ListingFailed,
    ListingInterrupted,
    Observer,
    UnknownStatuses,
    fan_out,
)
from cleaner.logs import Logger
from cleaner.logsink import LogSink
from cleaner.models import CycleReport, Outcome, Plan
from cleaner.policy import RetentionPolicy, blast_radius, cap, merge, plan


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleOptions:
    """How one cycle behaves, beyond the retention policy."""

    dry_run: bool = False
    max_actions: int | None = None
    wait_timeout_s: float = 300.0
    workers: int = 32  # deletions in flight at most (the client gates requests too)
    poll_initial_s: float = 1.0
    poll_max_s: float = 30.0
    not_found_limit: int = 3  # consecutive 404s on retrieve before a batch counts as gone
    probes: int = 3  # waiters that poll early; the rest wait to learn how long settling takes
    progress_every_s: float = 30.0
    verify_deletions: bool = False  # one retrieve after each confirmed delete, expecting 404
    max_delete_fraction: float | None = None  # the blast-radius stop


class _Interrupted(Exception):
    """A stop was requested while listing: there is nothing half-done to finish."""


async def plan_cycle(
    client: BatchesClient,
    policy: RetentionPolicy,
    *,
    now: datetime,
    max_actions: int | None,
    stop: asyncio.Event | None = None,
) -> Plan:
    """List every batch and decide what to do; sends no cancel or delete."""
    pages: list[Plan] = []
    async for page in client.pages():
        pages.append(plan(page.batches, policy, now))
        if stop is not None and stop.is_set():
            raise _Interrupted
    return cap(merge(pages), max_actions)


async def run_cycle(
    client: BatchesClient,
    policy: RetentionPolicy,
    options: CycleOptions,
    *,
    log: Logger,
    clock: Clock = SYSTEM,
    stop: asyncio.Event | None = None,
    observers: tuple[Observer, ...] = (),
    intents: IntentLog | None = None,
    archiver: Archiver | None = None,
) -> CycleReport:
    """Run one cycle to the end and report what happened. Never raises an ApiError."""
    stop = stop or asyncio.Event()
    emit = fan_out(LogSink(log, wait_timeout_s=options.wait_timeout_s), *observers)
    started_at, started = clock.wall(), clock.monotonic()
    before = (client.stats.requests, client.stats.retries, client.stats.rate_limited)
    tally, full = Tally(), Plan()
    error: Exception | None = None
    try:
        full = await plan_cycle(
            client, policy, now=started_at, max_actions=options.max_actions, stop=stop
        )
    except ApiError as exc:
        error = exc
        emit(ListingFailed(exc))
    except _Interrupted:
        emit(ListingInterrupted())
    else:
        emit(CyclePlanned(full, options.dry_run, options.max_actions))
        _warn(full, policy, started_at, emit)
        stop_radius = blast_radius(full, options.max_delete_fraction)
        if stop_radius is not None:
            emit(BlastRadiusExceeded(stop_radius))
            error = BlastRadiusError(
                f"the plan acts on {stop_radius.planned} of {stop_radius.listed} batches "
                f"listed, over CLEANER_MAX_DELETE_FRACTION={stop_radius.max_fraction}"
            )
        elif options.dry_run:
            tally = _dry_run(full, emit)
        else:
            actor = Actor(
                client,
                config=LifeConfig(
                    deadline=clock.monotonic() + options.wait_timeout_s,
                    poll_initial_s=options.poll_initial_s,
                    poll_max_s=options.poll_max_s,
                    not_found_limit=options.not_found_limit,
                    audit=intents is not None,
                    archive=archiver is not None,
                    verify=options.verify_deletions,
                ),
                clock=clock,
                emit=emit,
                stop=stop,
                workers=options.workers,
                probes=options.probes,
                progress_every_s=options.progress_every_s,
                budget_per_minute=lambda: client.budget.per_minute,
                intents=intents,
                archiver=archiver,
            )
            tally = await actor.run(full.actions)
            error = tally.fatal
    report = CycleReport(
        started_at=started_at,
        duration_s=round(clock.monotonic() - started, 3),
        dry_run=options.dry_run,
        seen=dict(full.seen),
        kept=dict(full.kept),
        planned=Counter(action.kind for action in full.actions),
        outcomes=tally.outcomes,
        deferred=full.deferred,
        cancels_sent=tally.cancels_sent,
        requests=client.stats.requests - before[0],
        retries=client.stats.retries - before[1],
        rate_limited=client.stats.rate_limited - before[2],
        error=None if error is None else f"{type(error).__name__}: {error}",
    )
    emit(CycleFinished(report))
    return report


def _warn(full: Plan, policy: RetentionPolicy, now: datetime, emit: Observer) -> None:
    """Once per cycle: holds about to end, with what they keep, and unknown statuses."""
    for hold in policy.holds.expiring(now):
        kept = tuple(held.batch_id for held in full.held if held.hold is hold)
        emit(HoldExpiring(hold, kept))
    if full.unknown_statuses:
        emit(UnknownStatuses(full.unknown_statuses))


def _dry_run(full: Plan, emit: Callable[[Event], None]) -> Tally:
    tally = Tally(planned=len(full.actions))
    for action in full.actions:
        emit(DryRunAction(action))
        tally.outcomes[(action.kind, Outcome.DRY_RUN)] += 1
        tally.done += 1
    return tally
