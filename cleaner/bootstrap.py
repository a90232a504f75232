"""The composition root: the one place that turns :class:`Settings` into running parts.

``cleaner run``, ``plan`` and ``demo``, the benchmarks and the test fixtures all build
through here: the HTTP client and its budget, the policy, the cycle options, the schedule,
the metrics and the daemon. Everything downstream receives values, never the settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import CollectorRegistry

from cleaner.actor import Tally
from cleaner.budget import RequestBudget
from cleaner.client import BatchesClient, RetryPolicy
from cleaner.clock import SYSTEM, Clock
from cleaner.cycle import CycleOptions, carry_out, run_cycle
from cleaner.daemon import Daemon
from cleaner.events import CycleFinished, HoldsInvalid, Observer, fan_out
from cleaner.holds import HoldsError
from cleaner.lister import ListingState
from cleaner.listing import Limits
from cleaner.logs import Logger, get_logger
from cleaner.logsink import LogSink
from cleaner.metrics import Metrics
from cleaner.models import Action, CycleReport
from cleaner.policy import (
    PROVIDER_RESULTS_RETENTION,
    RetentionPolicy,
    retention_after_provider_archive,
)
from cleaner.schedule import Schedule
from cleaner.settings import Settings, read_holds


def cycle_options(settings: Settings) -> CycleOptions:
    """The cycle's behaviour as the settings describe it."""
    return CycleOptions(
        dry_run=settings.dry_run,
        max_actions=settings.max_deletions_per_run,
        wait_timeout_s=settings.wait_timeout.total_seconds(),
        workers=settings.concurrency,
        max_delete_fraction=settings.max_delete_fraction,
    )


def listing_limits(settings: Settings, schedule: Schedule, clock: Clock) -> Limits:
    """When the steady-state listing must list in full: the interval, and a gap of cycles.

    A gap longer than three schedule periods (at least six hours) means cycles were missed
    (the process was stopped, or the clock jumped): the memory is then not trusted.
    """
    gap = max(timedelta(hours=6), timedelta(seconds=3 * schedule.period_s(clock.wall())))
    return Limits(full_interval=settings.full_listing_interval, max_gap=gap)


def retention_policy(settings: Settings) -> RetentionPolicy:
    """The retention policy the settings describe, with the holds file read now."""
    return settings.policy(read_holds(settings.holds_file))


@asynccontextmanager
async def open_client(
    settings: Settings, *, clock: Clock = SYSTEM, emit: Observer | None = None
) -> AsyncIterator[BatchesClient]:
    """The production client for these settings, closed on exit."""
    timeout_s = settings.request_timeout.total_seconds()
    http = BatchesClient.http_client(
        base_url=settings.base_url,
        api_key=settings.api_key.get_secret_value(),
        request_timeout_s=timeout_s,
        concurrency=settings.concurrency,
    )

    async with http:
        yield BatchesClient(
            http,
            budget=RequestBudget(
                settings.requests_per_minute, clock=clock.monotonic, sleep=clock.sleep
            ),
            concurrency=settings.concurrency,
            request_timeout_s=timeout_s,
            retry=RetryPolicy(attempts=settings.max_attempts),
            on_exchange=emit,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleRunner:
    """One cycle with everything it needs, called by the daemon with its stop event."""

    client: BatchesClient
    settings: Settings
    clock: Clock
    log: Logger
    observers: tuple[Observer, ...] = ()
    listing: ListingState = field(default_factory=ListingState)

    async def __call__(self, stop: asyncio.Event) -> CycleReport:
        try:
            holds = read_holds(self.settings.holds_file)  # again each cycle: edits apply live
        except HoldsError as exc:
            emit = fan_out(LogSink(self.log), *self.observers)
            emit(HoldsInvalid(exc))
            report = CycleReport.refused(
                started_at=self.clock.wall(),
                dry_run=self.settings.dry_run,
                error=f"HoldsError: {exc}",
            )
            emit(CycleFinished(report))
            return report
        return await run_cycle(
            self.client,
            self.settings.policy(holds),
            cycle_options(self.settings),
            log=self.log,
            clock=self.clock,
            stop=stop,
            observers=self.observers,
            listing=self.listing,
        )


async def act_on(
    settings: Settings,
    client: BatchesClient,
    actions: tuple[Action, ...],
    *,
    clock: Clock,
    emit: Observer,
    stop: asyncio.Event,
) -> Tally:
    """Carry out actions chosen outside a cycle (``cleaner apply``, ``cleaner purge``).

    The same options, actor and lifecycle as a cycle of ``run --once``; receipts and
    archives, once wired, are passed here for both commands.
    """
    return await carry_out(
        client, actions, cycle_options(settings), clock=clock, emit=emit, stop=stop
    )


def build_daemon(
    settings: Settings,
    client: BatchesClient,
    *,
    clock: Clock = SYSTEM,
    log: Logger | None = None,
    observers: tuple[Callable[[CycleReport], None], ...] = (),
    event_observers: tuple[Observer, ...] = (),
) -> Daemon:
    """The daemon for these settings over ``client`` (tests pass a client of their own)."""
    log = log or get_logger()
    schedule = Schedule.parse(settings.schedule, now=clock.wall())
    runner = CycleRunner(
        client=client,
        settings=settings,
        clock=clock,
        log=log,
        observers=event_observers,
        listing=ListingState(limits=listing_limits(settings, schedule, clock)),
    )
    return Daemon(
        runner,
        schedule=schedule,
        dry_run=settings.dry_run,
        clock=clock,
        log=log,
        observers=observers,
        announce={"retention_s": settings.retention.total_seconds()},
    )


def warn_about_the_providers_clock(settings: Settings, log: Logger) -> None:
    """Say at start when the policy only ever deletes what the provider already dropped."""
    policy = settings.policy()
    if retention_after_provider_archive(policy):
        log.warning(
            "retention_after_provider_archive",
            retention_s=policy.retention.total_seconds(),
            provider_results_retention_s=PROVIDER_RESULTS_RETENTION.total_seconds(),
            note="results are already undownloadable 29 days after creation, so this policy "
            "removes only metadata (ids, counts, timestamps); a retention under 29 days "
            "removes the data early",
        )


@dataclass(frozen=True, slots=True)
class App:
    """What ``cleaner run`` runs: the daemon and the metrics it feeds."""

    daemon: Daemon
    metrics: Metrics
    client: BatchesClient
    schedule: Schedule


@asynccontextmanager
async def assemble(
    settings: Settings,
    *,
    clock: Clock = SYSTEM,
    log: Logger | None = None,
    registry: CollectorRegistry | None = None,
    observers: tuple[Observer, ...] = (),
) -> AsyncIterator[App]:
    """Client, metrics and daemon wired together for these settings."""
    log = log or get_logger()
    warn_about_the_providers_clock(settings, log)
    metrics = Metrics(registry or CollectorRegistry(), clock=clock.monotonic)
    metrics.set_dry_run(settings.dry_run)
    schedule = Schedule.parse(settings.schedule, now=clock.wall())
    metrics.set_schedule(schedule.period_s(clock.wall()))
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            open_client(settings, clock=clock, emit=metrics.observe)
        )
        metrics.watch_budget(lambda: client.budget.per_minute)
        daemon = build_daemon(
            settings,
            client,
            clock=clock,
            log=log,
            observers=(metrics.observe_report,),
            event_observers=(metrics.observe, *observers),
        )
        yield App(daemon=daemon, metrics=metrics, client=client, schedule=schedule)
