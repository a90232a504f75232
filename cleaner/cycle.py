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
    ActionFinished,
    BlastRadiusExceeded,
    CycleFinished,
    CyclePlanned,
    DryRunAction,
    Event,
    Exchange,
    HoldExpiring,
    ListingFailed,
    ListingInterrupted,
    Observer,
    UnknownStatuses,
    fan_out,
)
from cleaner.lister import Interrupted, ListingState, ListingSummary, list_and_plan
from cleaner.logs import Logger
from cleaner.logsink import LogSink
from cleaner.models import Action, CycleReport, Outcome, Plan
from cleaner.policy import RetentionPolicy, blast_radius, cap


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


#: A drain larger than this is not remembered id by id: the next cycle lists in full.
REMEMBER_AT_MOST = 10_000


async def plan_cycle(
    client: BatchesClient,
    policy: RetentionPolicy,
    *,
    now: datetime,
    max_actions: int | None,
    stop: asyncio.Event | None = None,
    listing: ListingState | None = None,
) -> tuple[Plan, ListingSummary]:
    """List (in full, or what changed) and decide what to do; sends no cancel or delete."""
    full, summary = await list_and_plan(client, policy, now=now, state=listing, stop=stop)
    return cap(full, max_actions), summary


@dataclass(slots=True)
class RequestTally:
    """One cycle's requests, counted from its exchanges (never lifetime counters subtracted)."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0

    def __call__(self, exchange: Exchange) -> None:
        self.requests += 1
        self.retries += exchange.retry
        self.rate_limited += exchange.status == 429


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
    listing: ListingState | None = None,
) -> CycleReport:
    """Run one cycle to the end and report what happened. Never raises an ApiError."""
    cycle = _Cycle(
        client=client,
        policy=policy,
        options=options,
        clock=clock,
        stop=stop or asyncio.Event(),
        emit=fan_out(LogSink(log, wait_timeout_s=options.wait_timeout_s), *observers),
        intents=intents,
        archiver=archiver,
        listing=listing,
    )
    started_at, started = clock.wall(), clock.monotonic()
    requests = RequestTally()
    with client.observed(requests):
        full, tally, error = await cycle.plan_and_act(started_at)
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
        requests=requests.requests,
        retries=requests.retries,
        rate_limited=requests.rate_limited,
        error=None if error is None else f"{type(error).__name__}: {error}",
    )
    cycle.emit(CycleFinished(report))
    return report


@dataclass(slots=True, kw_only=True)
class _Cycle:
    """The parts of one cycle, so its steps read as methods instead of one long function."""

    client: BatchesClient
    policy: RetentionPolicy
    options: CycleOptions
    clock: Clock
    stop: asyncio.Event
    emit: Observer
    intents: IntentLog | None
    archiver: Archiver | None
    listing: ListingState | None

    async def plan_and_act(self, now: datetime) -> tuple[Plan, Tally, Exception | None]:
        """List and plan; then act (or refuse, or only say what would happen)."""
        try:
            full, summary = await plan_cycle(
                self.client,
                self.policy,
                now=now,
                max_actions=self.options.max_actions,
                stop=self.stop,
                listing=self.listing,
            )
        except ApiError as exc:
            self.emit(ListingFailed(exc))
            return Plan(), Tally(), exc
        except Interrupted:
            self.emit(ListingInterrupted())
            return Plan(), Tally(), None
        self.emit(CyclePlanned(full, self.options.dry_run, self.options.max_actions, summary))
        gone: list[str] = []
        remember = len(full.actions) <= REMEMBER_AT_MOST
        if remember:
            self.emit = fan_out(self.emit, _collect_gone(gone))
        _warn(full, self.policy, now, self.emit)
        tally, error = await self.act(full)
        if self.listing is not None:
            _remember(self.listing, summary, full, gone, trusted=remember and error is None)
        return full, tally, error

    async def act(self, full: Plan) -> tuple[Tally, Exception | None]:
        """Carry the plan out, unless the blast-radius stop refuses it or this is a dry run."""
        population = self.listing.population if self.listing is not None else None
        stop_radius = blast_radius(full, self.options.max_delete_fraction, listed=population)
        if stop_radius is not None:
            self.emit(BlastRadiusExceeded(stop_radius))
            return Tally(), BlastRadiusError(
                f"the plan acts on {stop_radius.planned} of {stop_radius.listed} batches "
                f"listed, over CLEANER_MAX_DELETE_FRACTION={stop_radius.max_fraction}"
            )
        tally = await carry_out(
            self.client,
            full.actions,
            self.options,
            clock=self.clock,
            emit=self.emit,
            stop=self.stop,
            intents=self.intents,
            archiver=self.archiver,
        )
        return tally, tally.fatal


def build_actor(
    client: BatchesClient,
    options: CycleOptions,
    *,
    clock: Clock,
    emit: Observer,
    stop: asyncio.Event,
    intents: IntentLog | None = None,
    archiver: Archiver | None = None,
) -> Actor:
    """The actor that carries out actions as these options say (``apply`` and ``purge`` too)."""
    return Actor(
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


async def carry_out(
    client: BatchesClient,
    actions: tuple[Action, ...],
    options: CycleOptions,
    *,
    clock: Clock,
    emit: Observer,
    stop: asyncio.Event,
    intents: IntentLog | None = None,
    archiver: Archiver | None = None,
) -> Tally:
    """Carry out ``actions`` (or, in a dry run, only say what would be done).

    A cycle, ``cleaner apply`` and ``cleaner purge`` all act through here.
    """
    if options.dry_run:
        return _dry_run(actions, emit)
    actor = build_actor(
        client, options, clock=clock, emit=emit, stop=stop, intents=intents, archiver=archiver
    )
    return await actor.run(actions)


def _remember(
    listing: ListingState, summary: ListingSummary, full: Plan, gone: list[str], *, trusted: bool
) -> None:
    """What the next cycle's listing may rely on.

    Remember only after a cycle that acted as planned; after a refusal, a fatal error or a
    large drain the next cycle lists in full (the cautious side).
    """
    if summary.mode == "full":
        listing.population = sum(full.seen.values())
    listing.finish(done=gone)
    if not trusted:
        listing.memory = None


def _collect_gone(into: list[str]) -> Observer:
    """An observer that notes the ids this cycle deleted or found gone."""

    def note(event: Event) -> None:
        if isinstance(event, ActionFinished) and event.finish.outcome in _GONE:
            into.append(event.action.batch_id)

    return note


_GONE = frozenset({Outcome.DELETED, Outcome.ALREADY_GONE})


def _warn(full: Plan, policy: RetentionPolicy, now: datetime, emit: Observer) -> None:
    """Once per cycle: holds about to end, with what they keep, and unknown statuses."""
    for hold in policy.holds.expiring(now):
        kept = tuple(held.batch_id for held in full.held if held.hold is hold)
        emit(HoldExpiring(hold, kept))
    if full.unknown_statuses:
        emit(UnknownStatuses(full.unknown_statuses))


def _dry_run(actions: tuple[Action, ...], emit: Callable[[Event], None]) -> Tally:
    tally = Tally(planned=len(actions))
    for action in actions:
        emit(DryRunAction(action))
        tally.outcomes[(action.kind, Outcome.DRY_RUN)] += 1
        tally.done += 1
    return tally
