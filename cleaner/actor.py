"""The thin async shell around :mod:`cleaner.lifecycle`: it carries out commands, nothing more.

For each planned action it asks the pure core what to do, does it (a request, a sleep on
the injected clock, an intent, an archive), and feeds back what it saw. What to do next,
when to poll and when to give up are the core's decisions, never made here.

Two kinds of work run side by side: a pool of workers takes the ended batches to delete
(a million planned deletions cost ``workers`` tasks, not a million), and every batch to
cancel or await gets a task of its own, so waiting never holds a deletion worker.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cleaner.clock import Clock, sleep_unless
from cleaner.commands import (
    Absent,
    Archive,
    Archived,
    Cancel,
    Command,
    Confirmed,
    Delete,
    Done,
    EndedBatch,
    Failed,
    Finish,
    Gone,
    Halted,
    LifeConfig,
    NothingToArchive,
    Observation,
    Poll,
    Refused,
    Seen,
    SettleEstimate,
    Sleep,
    Step,
    Verify,
    WriteIntent,
)
from cleaner.errors import ApiError, BadRequestError, CleanerError, NotFoundError, ends_cycle
from cleaner.events import (
    ActionFinished,
    AuditUnavailable,
    CancelRefused,
    CancelRequested,
    CycleAborted,
    Observer,
    ProgressReported,
)
from cleaner.life import Transition
from cleaner.lifecycle import advance, begin
from cleaner.models import Action, ActionKind, Batch, Outcome, Progress


class BatchOperations(Protocol):
    """The calls a life needs; :class:`cleaner.client.BatchesClient` is the real one."""

    async def cancel(self, batch_id: str) -> Batch: ...
    async def retrieve(self, batch_id: str) -> Batch: ...
    async def delete(self, batch_id: str) -> Any: ...  # has .confirmation and .request_id


class IntentLog(Protocol):
    """The write-ahead receipts: returns once the intent is durable, raises if it cannot be."""

    async def intend(self, action: Action, step: Step) -> None: ...


class Archiver(Protocol):
    """Keeps a verified copy of an ended batch's results; None when none is downloadable."""

    async def archive(self, ended: EndedBatch) -> Mapping[str, Any] | None: ...


@dataclass(slots=True)
class Tally:
    """What the actions came to: the cycle report reads it."""

    planned: int = 0
    done: int = 0
    waiting: int = 0
    cancels_sent: int = 0
    outcomes: Counter[tuple[ActionKind, Outcome]] = field(default_factory=Counter)
    fatal: Exception | None = None


class Actor:
    """Carries out a plan's actions, each through its life in the pure core."""

    def __init__(
        self,
        api: BatchOperations,
        *,
        config: LifeConfig,
        clock: Clock,
        emit: Observer,
        stop: asyncio.Event,
        workers: int = 32,
        probes: int = 3,
        progress_every_s: float = 30.0,
        budget_per_minute: Any = None,
        intents: IntentLog | None = None,
        archiver: Archiver | None = None,
    ) -> None:
        self.api, self.config, self.clock, self.emit, self.stop = api, config, clock, emit, stop
        self.workers, self.progress_every_s = workers, progress_every_s
        self.budget_per_minute = budget_per_minute or (lambda: 0.0)
        self.intents, self.archiver = intents, archiver
        self.settle = SettleEstimate(probes_allowed=probes)
        self.settled = asyncio.Event()  # a probe has learned the settle time
        self.tally = Tally()
        self.started = clock.monotonic()

    @property
    def halted(self) -> bool:
        return self.stop.is_set() or self.tally.fatal is not None

    async def run(self, actions: tuple[Action, ...]) -> Tally:
        """Every action to an outcome; returns the tally."""
        self.tally.planned = len(actions)
        deletes = iter([a for a in actions if a.kind is ActionKind.DELETE])
        waits = [a for a in actions if a.kind is not ActionKind.DELETE]
        async with asyncio.TaskGroup() as group:
            progress = group.create_task(self._progress())
            # Cancels go first: the sooner a batch starts settling, the sooner it can go.
            tasks = [group.create_task(self.live(action)) for action in waits]
            pool = min(self.workers, len(actions) - len(waits))
            tasks += [group.create_task(self._worker(deletes)) for _ in range(pool)]
            await asyncio.gather(*tasks)
            progress.cancel()
        self.snapshot(final=True)
        return self.tally

    async def _worker(self, actions: Iterator[Action]) -> None:
        for action in actions:
            await self.live(action)

    async def live(self, action: Action) -> None:
        """One action's whole life: commands from the core, observations back."""
        now = self.clock.monotonic()
        step = begin(action, self.config, now=now, settle=self.settle)
        while not isinstance(step.command, Finish):
            seen = await self._carry_out(action, step.command)
            waiting = step.life.waiting
            step = advance(step.life, seen, now=self.clock.monotonic(), settle=self.settle)
            self._note(step, was_waiting=waiting)
        self._finish(action, step.command)

    def _note(self, step: Transition, *, was_waiting: bool) -> None:
        if step.settle.settle_s is not None and self.settle.settle_s is None:
            self.settled.set()
        self.settle = step.settle
        self.tally.waiting += int(step.life.waiting) - int(was_waiting)

    async def _carry_out(self, action: Action, command: Command) -> Observation:
        if self.halted:
            return Halted()
        match command:
            case Sleep(until=until, wake_on_settle=wake):
                events = (self.stop, self.settled) if wake else (self.stop,)
                await sleep_unless(self.clock, until - self.clock.monotonic(), *events)
                return Halted() if self.halted else Done()
            case Poll():
                return await self._ask(action, Step.WAIT, self._poll(action))
            case Cancel():
                return await self._ask(action, Step.CANCEL, self._cancel(action))
            case Delete(ended=ended):
                return await self._ask(action, Step.DELETE, self._delete(ended))
            case Verify():
                return await self._verify(action)
            case WriteIntent(step=step):
                return await self._intend(action, step)
            case Archive(ended=ended):
                return await self._archive(action, ended)
        raise TypeError(f"unknown command {command!r}")  # pragma: no cover

    async def _ask(self, action: Action, step: Step, call: Any) -> Observation:
        """Await an API call; an error becomes an observation, a fatal one halts the cycle."""
        try:
            return await call  # type: ignore[no-any-return]
        except NotFoundError as exc:
            return Gone(request_id=exc.request_id)
        except ApiError as exc:
            fatal = ends_cycle(exc)
            if fatal:
                self._abort(exc, action, step)
            return Failed(exc, ends_cycle=fatal)

    async def _cancel(self, action: Action) -> Observation:
        try:
            batch = await self.api.cancel(action.batch_id)
        except BadRequestError as exc:
            # Most likely it ended between the listing and the cancel: look, don't guess.
            self.emit(CancelRefused(action, exc))
            return Refused()
        self.tally.cancels_sent += 1
        self.emit(CancelRequested(action, batch))
        return Seen(batch)

    async def _poll(self, action: Action) -> Observation:
        return Seen(await self.api.retrieve(action.batch_id))

    async def _delete(self, ended: EndedBatch) -> Observation:
        """The only place a DELETE is sent, and it takes nothing but an EndedBatch."""
        deletion = await self.api.delete(ended.batch.id)
        return Confirmed(deletion.confirmation, deletion.request_id)

    async def _verify(self, action: Action) -> Observation:
        try:
            await self.api.retrieve(action.batch_id)
        except NotFoundError:
            return Absent(True)
        except ApiError:
            return Absent(None)  # could not tell; the receipt says so
        return Absent(False)

    async def _intend(self, action: Action, step: Step) -> Observation:
        if self.intents is None:
            return Done()
        try:
            await self.intents.intend(action, step)
        except CleanerError as exc:
            # A sink that fails once fails for every action: say so once, then stop acting.
            if self.tally.fatal is None:
                self.tally.fatal = exc
                self.emit(AuditUnavailable(exc, action.batch_id, step.value))
            return Failed(exc, ends_cycle=True)
        return Done()

    async def _archive(self, action: Action, ended: EndedBatch) -> Observation:
        if self.archiver is None:
            return NothingToArchive()
        try:
            info = await self.archiver.archive(ended)
        except ApiError as exc:
            fatal = ends_cycle(exc)
            if fatal:
                self._abort(exc, action, Step.ARCHIVE)
            return Failed(exc, ends_cycle=fatal)
        except CleanerError as exc:
            return Failed(exc)
        return NothingToArchive() if info is None else Archived(info)

    def _abort(self, exc: Exception, action: Action, step: Step) -> None:
        # One error line for the cause, not one per request that was in flight when it struck.
        if self.tally.fatal is None:
            self.tally.fatal = exc
            self.emit(CycleAborted(exc, action.batch_id, step.value))

    def _finish(self, action: Action, finish: Finish) -> None:
        self.tally.outcomes[(action.kind, finish.outcome)] += 1
        self.tally.done += 1
        self.emit(ActionFinished(action, finish))

    async def _progress(self) -> None:
        """A progress snapshot every so often, so a long drain shows it is moving."""
        while True:
            await self.clock.sleep(self.progress_every_s)
            self.snapshot()

    def snapshot(self, *, final: bool = False) -> Progress:
        elapsed = self.clock.monotonic() - self.started
        done, planned = self.tally.done, self.tally.planned
        rate = done / elapsed if elapsed > 0 else 0.0
        progress = Progress(
            done=done,
            planned=planned,
            waiting_on_cancel=self.tally.waiting,
            rate_per_s=round(rate, 2),
            eta_s=round((planned - done) / rate, 1) if rate > 0 else None,
        )
        self.emit(ProgressReported(progress, float(self.budget_per_minute()), final=final))
        return progress
