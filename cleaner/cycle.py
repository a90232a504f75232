"""One cleanup cycle: list, plan, act, wait, delete; every failure becomes an outcome.

The listing finishes before anything is deleted, so no cursor the listing depends on
can vanish under it, whatever the API does with cursors of deleted batches. Only the
planned actions are kept in memory, never the listing, so a million batches cost what
their expired share costs.

Acting runs two kinds of work side by side under one task group: a pool of workers
that deletes ended batches, and one task per batch to cancel (or already canceling)
that cancels, polls until the batch has ended, then deletes it. Waiting never holds a
worker, so it never delays other deletions.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from cleaner.client import BatchesClient
from cleaner.errors import (
    ApiError,
    ApiStatusError,
    ApiUnreachableError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    SpendCapError,
)
from cleaner.logs import Logger
from cleaner.models import (
    Action,
    ActionKind,
    Batch,
    CycleReport,
    Outcome,
    Plan,
    ProcessingStatus,
    Progress,
)
from cleaner.policy import RetentionPolicy, cap, merge, plan

#: Errors that will fail every further call the same way: stop the cycle, not the batch.
FATAL = (ApiUnreachableError, SpendCapError, AuthenticationError, PermissionDeniedError)


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


@dataclass(slots=True)
class _Tally:
    """Mutable counters shared by the cycle's tasks; frozen into the report at the end."""

    planned: int = 0
    done: int = 0
    cancels_sent: int = 0
    waiting: int = 0
    outcomes: Counter[tuple[ActionKind, Outcome]] = field(default_factory=Counter)
    fatal: BaseException | None = None
    settle_s: float | None = None  # quickest cancel-to-ended seen: when to poll the others
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # settle_s is known
    probes: int = 0  # waiters that poll on their own backoff to learn settle_s


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
    now: Callable[[], datetime],
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_progress: Callable[[Progress], None] | None = None,
) -> CycleReport:
    """Run one cycle to the end and report what happened. Never raises an ApiError.

    ``on_progress`` receives the same snapshots as the periodic progress log line.
    """
    stop = stop or asyncio.Event()
    started_at, started = now(), clock()
    before = (client.stats.requests, client.stats.retries, client.stats.rate_limited)
    tally = _Tally()
    full = Plan()
    try:
        full = await plan_cycle(
            client, policy, now=started_at, max_actions=options.max_actions, stop=stop
        )
    except ApiError as exc:
        tally.fatal = exc
        _log_error(log, "listing_failed", exc)
    except _Interrupted:
        log.info("listing_interrupted", note="stop requested; nothing was acted on")
    else:
        tally.planned = len(full.actions)
        _log_plan(log, full, options)
        if options.dry_run:
            for action in full.actions:
                _log_action(log, "dry_run_action", action)
                tally.outcomes[(action.kind, Outcome.DRY_RUN)] += 1
        else:
            actor = _Actor(client, options, log, tally, stop, clock, on_progress)
            await actor.run(full.actions)
    report = CycleReport(
        started_at=started_at,
        duration_s=round(clock() - started, 3),
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
        error=None if tally.fatal is None else _describe(tally.fatal),
    )
    _log_summary(log, report)
    return report


class _Actor:
    """Carries out a plan: deletion workers plus one wait task per batch to cancel."""

    def __init__(
        self,
        client: BatchesClient,
        options: CycleOptions,
        log: Logger,
        tally: _Tally,
        stop: asyncio.Event,
        clock: Callable[[], float],
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.client, self.options, self.log, self.tally = client, options, log, tally
        self.stop, self.clock, self.on_progress = stop, clock, on_progress
        self.started = clock()
        self.deadline = self.started + options.wait_timeout_s

    @property
    def halted(self) -> bool:
        return self.stop.is_set() or self.tally.fatal is not None

    async def run(self, actions: tuple[Action, ...]) -> None:
        deletes = iter([a for a in actions if a.kind is ActionKind.DELETE])
        waits = [a for a in actions if a.kind is not ActionKind.DELETE]
        async with asyncio.TaskGroup() as group:
            progress = group.create_task(self._progress())
            # Cancels go first: the sooner a batch starts settling, the sooner it can go.
            tasks = [group.create_task(self._cancel_wait_delete(a)) for a in waits]
            tasks += [
                group.create_task(self._delete_worker(deletes))
                for _ in range(min(self.options.workers, len(actions) - len(waits)))
            ]
            await asyncio.gather(*tasks)
            progress.cancel()
        self._report_progress()
        # Whatever a halt left untouched is counted, so the summary adds up.
        for action in deletes:
            self._finish(action, Outcome.NOT_ATTEMPTED)

    async def _delete_worker(self, actions: Iterator[Action]) -> None:
        for action in actions:
            if self.halted:
                self._finish(action, Outcome.NOT_ATTEMPTED)
                continue
            await self._delete(action, action.batch)

    async def _cancel_wait_delete(self, action: Action) -> None:
        batch: Batch | None = action.batch
        if self.halted:
            self._finish(action, Outcome.NOT_ATTEMPTED)
            return
        if action.kind is ActionKind.CANCEL:
            batch = await self._cancel(action)
            if batch is None:
                return
            if batch.ended:  # it ended before the cancel landed: no need to wait
                await self._delete(action, batch)
                return
        self.tally.waiting += 1
        try:
            ended = await self._wait_until_ended(action, cancel_sent_at=self.clock())
        finally:
            self.tally.waiting -= 1
        if ended is not None:
            await self._delete(action, ended)

    async def _cancel(self, action: Action) -> Batch | None:
        """Cancel; returns the batch as the API now shows it, or None once finished."""
        try:
            batch = await self.client.cancel(action.batch_id)
        except BadRequestError as exc:
            # Most likely it ended between the listing and the cancel: look, don't guess.
            self.log.info("cancel_refused", batch_id=action.batch_id, error=str(exc))
            return action.batch
        except NotFoundError:
            self._finish(action, Outcome.ALREADY_GONE)
            self.log.info("batch_already_gone", batch_id=action.batch_id, step="cancel")
            return None
        except ApiError as exc:
            self._fail(action, "cancel", exc)
            return None
        self.tally.cancels_sent += 1
        _log_action(
            self.log,
            "batch_cancel_requested",
            action,
            request_counts=batch.request_counts.as_dict(),
            processing_status=str(batch.processing_status),
        )
        return batch

    async def _wait_until_ended(self, action: Action, *, cancel_sent_at: float) -> Batch | None:
        """Poll with backoff until the batch has ended; None if it did not (or is gone).

        Batches canceled together settle together. A few waiters (probes) poll on an
        exponential backoff; the others wait until a probe has seen how long settling
        takes and then poll about that long after their own cancel, so most batches need
        a single poll instead of one per backoff step.
        """
        probe = self.tally.probes < self.options.probes
        self.tally.probes += probe
        delay, not_found = self.options.poll_initial_s, 0
        while True:
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                self._finish(action, Outcome.WAIT_TIMEOUT)
                self.log.warning(
                    "batch_wait_timeout",
                    batch_id=action.batch_id,
                    wait_timeout_s=self.options.wait_timeout_s,
                    note="the next cycle picks it up",
                )
                return None
            if not probe and not self.tally.settled.is_set():
                # Until a probe knows, look again only at the slowest poll cadence.
                await _first(self.tally.settled, self.stop, min(self.options.poll_max_s, remaining))
            if self.tally.settle_s is not None:
                delay = max(delay, self.tally.settle_s - (self.clock() - cancel_sent_at))
            if await _stopped_within(self.stop, min(delay, remaining)) or self.tally.fatal:
                self._finish(action, Outcome.NOT_ATTEMPTED)
                return None
            if self.clock() >= self.deadline:
                continue  # the deadline passed while sleeping: report the timeout
            try:
                batch = await self.client.retrieve(action.batch_id)
            except NotFoundError:
                # 404 is not proof of absence right after a state change: ask again.
                not_found += 1
                if not_found >= self.options.not_found_limit:
                    self._finish(action, Outcome.ALREADY_GONE)
                    self.log.info("batch_already_gone", batch_id=action.batch_id, step="wait")
                    return None
                continue
            except ApiError as exc:
                self._fail(action, "wait", exc)
                return None
            not_found = 0
            if batch.processing_status is ProcessingStatus.ENDED:
                settle = self.clock() - cancel_sent_at
                if self.tally.settle_s is None or settle < self.tally.settle_s:
                    self.tally.settle_s = settle
                self.tally.settled.set()
                return batch
            delay = min(delay * 2, self.options.poll_max_s)

    async def _delete(self, action: Action, seen_ended: Batch) -> None:
        """Delete a batch this cycle has seen ended; the only place a DELETE is sent."""
        if not seen_ended.ended:  # a guard no refactoring may remove
            raise AssertionError(f"refusing to delete {action.batch_id}: not seen ended")
        try:
            deletion = await self.client.delete(action.batch_id)
        except NotFoundError as exc:
            self._finish(action, Outcome.ALREADY_GONE)
            _log_action(
                self.log, "batch_already_gone", action, step="delete", request_id=exc.request_id
            )
            return
        except ApiError as exc:
            self._fail(action, "delete", exc)
            return
        self._finish(action, Outcome.DELETED)
        _log_action(
            self.log,
            "batch_deleted",
            action,
            confirmation=deletion.confirmation,
            request_id=deletion.request_id,
            ended_at=None if seen_ended.ended_at is None else seen_ended.ended_at.isoformat(),
        )

    def _fail(self, action: Action, step: str, exc: ApiError) -> None:
        if isinstance(exc, FATAL):
            # The whole cycle stops: one error line for the cause, not one per request
            # that was in flight when it struck.
            if self.tally.fatal is None:
                self.tally.fatal = exc
                _log_error(self.log, "cycle_aborted", exc, batch_id=action.batch_id, step=step)
            self._finish(action, Outcome.NOT_ATTEMPTED)
            return
        self._finish(action, Outcome.FAILED)
        _log_error(
            self.log,
            "action_failed",
            exc,
            batch_id=action.batch_id,
            action=action.kind.value,
            step=step,
        )

    def _finish(self, action: Action, outcome: Outcome) -> None:
        self.tally.outcomes[(action.kind, outcome)] += 1
        self.tally.done += 1

    async def _progress(self) -> None:
        """A progress line every so often, so a long drain shows it is moving."""
        while True:
            await asyncio.sleep(self.options.progress_every_s)
            snapshot = self._report_progress()
            self.log.info(
                "cycle_progress",
                done=snapshot.done,
                planned=snapshot.planned,
                waiting_on_cancel=snapshot.waiting_on_cancel,
                rate_per_s=snapshot.rate_per_s,
                eta_s=snapshot.eta_s,
                budget_per_minute=round(self.client.budget.per_minute, 1),
            )

    def _report_progress(self) -> Progress:
        elapsed = self.clock() - self.started
        done, planned = self.tally.done, self.tally.planned
        rate = done / elapsed if elapsed > 0 else 0.0
        snapshot = Progress(
            done=done,
            planned=planned,
            waiting_on_cancel=self.tally.waiting,
            rate_per_s=round(rate, 2),
            eta_s=round((planned - done) / rate, 1) if rate > 0 else None,
        )
        if self.on_progress is not None:
            self.on_progress(snapshot)
        return snapshot


async def _first(event: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    """Sleep until ``event`` or ``stop`` is set, or ``seconds`` pass."""
    waits = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waits:
            waiter.cancel()


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; True at once if ``stop`` is set meanwhile."""
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await stop.wait()
    except TimeoutError:
        return False
    return True


def _log_action(log: Logger, event: str, action: Action, **extra: object) -> None:
    log.info(
        event,
        batch_id=action.batch_id,
        action=action.kind.value,
        reason=action.reason.value,
        created_at=action.batch.created_at.isoformat(),
        age_s=action.age_s,
        **extra,
    )


def _log_plan(log: Logger, full: Plan, options: CycleOptions) -> None:
    log.info(
        "cycle_planned",
        seen={str(k): v for k, v in full.seen.items()},
        kept={k.value: v for k, v in full.kept.items()},
        planned={kind.value: full.count(kind) for kind in ActionKind},
        dry_run=options.dry_run,
    )
    if full.deferred:
        log.warning(
            "deletion_cap_reached",
            max_deletions_per_run=options.max_actions,
            deferred=full.deferred,
            note="the oldest batches go first; the rest wait for later cycles",
        )


def _log_summary(log: Logger, report: CycleReport) -> None:
    outcomes: dict[str, dict[str, int]] = {}
    for (kind, outcome), count in sorted(report.outcomes.items()):
        outcomes.setdefault(kind.value, {})[outcome.value] = count
    fields: dict[str, object] = {
        "ok": report.ok,
        "dry_run": report.dry_run,
        "duration_s": report.duration_s,
        "seen": {str(k): v for k, v in report.seen.items()},
        "planned": {k.value: v for k, v in report.planned.items()},
        "outcomes": outcomes,
        "deleted": report.outcome_count(Outcome.DELETED),
        "already_gone": report.outcome_count(Outcome.ALREADY_GONE),
        "failed": report.outcome_count(Outcome.FAILED),
        "deferred": report.deferred,
        "cancels_sent": report.cancels_sent,
        "requests": report.requests,
        "retries": report.retries,
        "rate_limited": report.rate_limited,
    }
    if report.ok:
        log.info("cycle_finished", **fields)
    else:
        # The cause was already logged once at level error; the summary only says so.
        log.warning("cycle_finished", error=report.error, **fields)


def _log_error(log: Logger, event: str, exc: BaseException, **extra: object) -> None:
    fields: dict[str, object] = {"error": str(exc), "error_class": type(exc).__name__}
    if isinstance(exc, ApiStatusError):
        fields.update(status=exc.status, error_type=exc.error_type, request_id=exc.request_id)
    log.error(event, **fields, **extra)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
