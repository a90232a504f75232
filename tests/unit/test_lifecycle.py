"""The pure lifecycle core: every batch's life, driven on virtual time by a simulated API."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleaner.commands import (
    Absent,
    Archive,
    Archived,
    Cancel,
    Confirmed,
    Delete,
    Done,
    EndedBatch,
    Failed,
    Finish,
    Gone,
    Halted,
    LifeConfig,
    NotEndedError,
    Observation,
    Poll,
    Seen,
    SettleEstimate,
    Sleep,
    Step,
    Verify,
    WriteIntent,
)
from cleaner.errors import ServerError
from cleaner.life import Transition
from cleaner.lifecycle import advance, begin
from cleaner.models import Action, ActionKind, Batch, Outcome, ProcessingStatus, Reason

CREATED = datetime(2026, 11, 1, tzinfo=UTC)
KIND_REASON = {
    ActionKind.DELETE: Reason.ENDED_PAST_RETENTION,
    ActionKind.CANCEL: Reason.RUNNING_PAST_PROCESSING_RETENTION,
    ActionKind.AWAIT: Reason.CANCELING_PAST_PROCESSING_RETENTION,
}
STATUS = {
    ActionKind.DELETE: ProcessingStatus.ENDED,
    ActionKind.CANCEL: ProcessingStatus.IN_PROGRESS,
    ActionKind.AWAIT: ProcessingStatus.CANCELING,
}


def batch(batch_id: str, status: ProcessingStatus) -> Batch:
    ended = CREATED + timedelta(hours=1) if status is ProcessingStatus.ENDED else None
    return Batch(id=batch_id, processing_status=status, created_at=CREATED, ended_at=ended)


def action(batch_id: str, kind: ActionKind) -> Action:
    return Action(kind, batch(batch_id, STATUS[kind]), KIND_REASON[kind], 86400.0)


@dataclass
class SimBatch:
    """How the simulated API treats one batch."""

    kind: ActionKind
    settle_s: float  # how long after its cancel (or the start, when awaited) it ends
    transient_404s: int = 0  # polls answered 404 before the batch is seen again
    fail_delete: bool = False
    cancels: int = 0
    deletes: int = 0
    requests: int = 0
    seen_ended: bool = False  # an observation of ended was fed to its life
    canceled_at: float | None = None


@dataclass
class Sim:
    """A discrete-event run of many lives sharing one settle estimate, on virtual time."""

    batches: dict[str, SimBatch]
    config: LifeConfig
    probes: int = 3
    finishes: dict[str, tuple[float, Finish]] = field(default_factory=dict)

    def run(self, *, max_steps: int = 100_000) -> None:
        settle = SettleEstimate(probes_allowed=self.probes)
        queue: list[tuple[float, int, str, int, Transition]] = []
        generation: Counter[str] = Counter()  # a woken sleeper's older queue entry is stale
        settle_waiters: dict[str, Transition] = {}
        order = 0

        def push(at: float, batch_id: str, step: Transition) -> None:
            nonlocal order
            order += 1
            generation[batch_id] += 1
            heapq.heappush(queue, (at, order, batch_id, generation[batch_id], step))

        for batch_id, sim in self.batches.items():
            step = begin(action(batch_id, sim.kind), self.config, now=0.0, settle=settle)
            settle = step.settle
            if sim.kind is ActionKind.AWAIT:
                sim.canceled_at = 0.0
            push(0.0, batch_id, step)
        for _ in range(max_steps):
            if not queue:
                return
            now, _, batch_id, gen, step = heapq.heappop(queue)
            if gen != generation[batch_id]:
                continue
            command = step.command
            if isinstance(command, Finish):
                self.finishes[batch_id] = (now, command)
                continue
            if isinstance(command, Sleep) and command.until > now:
                if command.wake_on_settle and settle.settle_s is None:
                    settle_waiters[batch_id] = step
                step = Transition(step.life, Sleep(now), step.settle)
                push(command.until, batch_id, step)
                continue
            settle_waiters.pop(batch_id, None)
            seen = self.answer(batch_id, command, now)
            nxt = advance(step.life, seen, now=now, settle=settle)
            if nxt.settle.settle_s is not None and settle.settle_s is None:
                for waiter_id, waiter in settle_waiters.items():  # the shell wakes them too
                    push(now, waiter_id, Transition(waiter.life, Sleep(now), waiter.settle))
                settle_waiters.clear()
            settle = nxt.settle
            push(now, batch_id, nxt)
        raise AssertionError("a life did not finish")

    def answer(self, batch_id: str, command: object, now: float) -> Observation:
        sim = self.batches[batch_id]
        if isinstance(command, Sleep):
            return Done()
        sim.requests += 1
        if isinstance(command, Cancel):
            sim.cancels += 1
            sim.canceled_at = now
            return Seen(batch(batch_id, ProcessingStatus.CANCELING))
        if isinstance(command, Poll):
            if sim.transient_404s > 0:
                sim.transient_404s -= 1
                return Gone()
            assert sim.canceled_at is not None
            ended = now >= sim.canceled_at + sim.settle_s
            sim.seen_ended |= ended
            status = ProcessingStatus.ENDED if ended else ProcessingStatus.CANCELING
            return Seen(batch(batch_id, status))
        if isinstance(command, Delete):
            sim.deletes += 1
            if sim.kind is not ActionKind.DELETE:
                assert sim.seen_ended, f"{batch_id} deleted before it was seen ended"
            if sim.fail_delete:
                return Failed(ServerError("boom", status=500))
            return Confirmed({"id": batch_id, "type": "message_batch_deleted"}, "req_1")
        raise AssertionError(f"unexpected command {command!r}")


def sims(draw: st.DrawFn) -> dict[str, SimBatch]:
    count = draw(st.integers(min_value=1, max_value=40))
    out = {}
    for i in range(count):
        out[f"msgbatch_{i:04d}"] = SimBatch(
            kind=draw(st.sampled_from(list(ActionKind))),
            settle_s=draw(st.floats(min_value=0.0, max_value=400.0)),
            transient_404s=draw(st.integers(min_value=0, max_value=4)),
            fail_delete=draw(st.booleans()),
        )
    return out


populations = st.composite(sims)


@settings(max_examples=200, deadline=None)
@given(
    population=populations(),
    timeout_s=st.floats(min_value=0.0, max_value=600.0),
    probes=st.integers(min_value=0, max_value=5),
)
def test_every_life_keeps_the_invariants_on_any_population(
    population: dict[str, SimBatch], timeout_s: float, probes: int
) -> None:
    """No delete before ended, one cancel at most, an outcome per action within the timeout."""
    config = LifeConfig(deadline=timeout_s, poll_initial_s=1.0, poll_max_s=30.0)
    sim = Sim(population, config, probes=probes)
    sim.run()
    assert set(sim.finishes) == set(population)  # outcomes add up to the plan
    for batch_id, state in population.items():
        finished_at, finish = sim.finishes[batch_id]
        assert state.cancels <= 1
        assert state.cancels == (1 if state.kind is ActionKind.CANCEL else 0)
        assert state.deletes <= 1
        if finish.outcome is Outcome.DELETED:
            assert state.deletes == 1
            assert not state.fail_delete
        if state.kind is not ActionKind.DELETE:
            assert finished_at <= max(timeout_s, 0.0) + 1e-9, "waited past the deadline"
        if finish.outcome is Outcome.WAIT_TIMEOUT:
            assert state.deletes == 0


def test_canceled_batches_that_settle_together_cost_three_requests_each() -> None:
    """Probes learn the settle time; the other 97 batches poll once, when it has passed."""
    population = {
        f"msgbatch_{i:04d}": SimBatch(kind=ActionKind.CANCEL, settle_s=5.0) for i in range(100)
    }
    sim = Sim(population, LifeConfig(deadline=300.0, poll_initial_s=1.0, poll_max_s=30.0))
    sim.run()
    requests = sum(state.requests for state in population.values())
    assert all(finish.outcome is Outcome.DELETED for _, finish in sim.finishes.values())
    assert requests <= 3 * 100 + 3 * 4  # three probes back off 1, 2, 4 s before 5 s passes


def test_a_batch_that_never_ends_times_out_at_the_deadline_without_a_delete() -> None:
    """Waiting is bounded by the cycle's deadline, and a timeout deletes nothing."""
    population = {"msgbatch_slow": SimBatch(kind=ActionKind.CANCEL, settle_s=10_000.0)}
    sim = Sim(population, LifeConfig(deadline=60.0))
    sim.run()
    finished_at, finish = sim.finishes["msgbatch_slow"]
    assert finish.outcome is Outcome.WAIT_TIMEOUT
    assert finish.step is Step.WAIT
    assert finished_at == pytest.approx(60.0)
    assert population["msgbatch_slow"].deletes == 0


def test_three_404s_in_a_row_while_waiting_count_as_already_gone() -> None:
    """A 404 right after a cancel is asked again; the third in a row means gone."""
    population = {"msgbatch_gone": SimBatch(kind=ActionKind.AWAIT, settle_s=1e9, transient_404s=9)}
    sim = Sim(population, LifeConfig(deadline=1e6), probes=1)
    sim.run()
    assert sim.finishes["msgbatch_gone"][1].outcome is Outcome.ALREADY_GONE


def test_a_delete_can_only_be_built_from_a_batch_seen_ended() -> None:
    """EndedBatch refuses a running batch, so Delete cannot be asked for one."""
    with pytest.raises(NotEndedError):
        EndedBatch(batch("msgbatch_running", ProcessingStatus.IN_PROGRESS))
    assert EndedBatch.of(batch("msgbatch_running", ProcessingStatus.CANCELING)) is None
    assert EndedBatch.of(batch("msgbatch_done", ProcessingStatus.ENDED)) is not None


def test_a_cancel_answered_with_an_ended_batch_goes_straight_to_delete() -> None:
    """It ended before the cancel landed: no wait, the delete comes next."""
    config = LifeConfig(deadline=10.0)
    step = begin(action("msgbatch_x", ActionKind.CANCEL), config, now=0, settle=SettleEstimate())
    assert isinstance(step.command, Cancel)
    ended = batch("msgbatch_x", ProcessingStatus.ENDED)
    step = advance(step.life, Seen(ended), now=0.1, settle=step.settle)
    assert isinstance(step.command, Delete)
    assert step.command.ended.batch is ended


def test_with_every_step_on_the_life_is_archive_intent_delete_verify() -> None:
    """Configured steps come in order; the finish carries the archive and the verification."""
    config = LifeConfig(deadline=10.0, audit=True, archive=True, verify=True)
    step = begin(action("msgbatch_y", ActionKind.DELETE), config, now=0, settle=SettleEstimate())
    assert isinstance(step.command, Archive)
    info = {"uri": "file:///a/msgbatch_y/results.jsonl", "bytes": 10, "sha256": "ab"}
    step = advance(step.life, Archived(info), now=0, settle=step.settle)
    assert step.command == WriteIntent(Step.DELETE)
    step = advance(step.life, Done(), now=0, settle=step.settle)
    assert isinstance(step.command, Delete)
    confirmation = {"id": "msgbatch_y", "type": "message_batch_deleted"}
    step = advance(step.life, Confirmed(confirmation, "req_9"), now=0, settle=step.settle)
    assert isinstance(step.command, Verify)
    step = advance(step.life, Absent(True), now=0, settle=step.settle)
    assert isinstance(step.command, Finish)
    assert step.command.outcome is Outcome.DELETED
    assert step.command.archive == info
    assert step.command.verified_absent is True
    assert step.command.request_id == "req_9"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (ActionKind.CANCEL, Outcome.AUDIT_UNAVAILABLE),
        (ActionKind.DELETE, Outcome.AUDIT_UNAVAILABLE),
    ],
)
def test_an_intent_that_cannot_be_written_sends_nothing(
    kind: ActionKind, expected: Outcome
) -> None:
    """Write-ahead, fail closed: the life ends before its cancel or delete."""
    config = LifeConfig(deadline=10.0, audit=True)
    step = begin(action("msgbatch_z", kind), config, now=0, settle=SettleEstimate())
    assert isinstance(step.command, WriteIntent)
    step = advance(step.life, Failed(OSError("read-only")), now=0, settle=step.settle)
    assert isinstance(step.command, Finish)
    assert step.command.outcome is expected


def test_an_archive_that_fails_keeps_the_batch() -> None:
    """No verified copy, no delete: the outcome is archive_failed."""
    config = LifeConfig(deadline=10.0, archive=True)
    step = begin(action("msgbatch_a", ActionKind.DELETE), config, now=0, settle=SettleEstimate())
    step = advance(step.life, Failed(OSError("bucket gone")), now=0, settle=step.settle)
    assert isinstance(step.command, Finish)
    assert step.command.outcome is Outcome.ARCHIVE_FAILED
    assert step.command.step is Step.ARCHIVE


def test_a_halt_ends_any_life_as_not_attempted() -> None:
    """Shutdown or a fatal error elsewhere: whatever comes next is not attempted."""
    step = begin(
        action("msgbatch_h", ActionKind.AWAIT),
        LifeConfig(deadline=10.0),
        now=0,
        settle=SettleEstimate(),
    )
    step = advance(step.life, Halted(), now=1, settle=step.settle)
    assert isinstance(step.command, Finish)
    assert step.command.outcome is Outcome.NOT_ATTEMPTED


def test_a_fatal_failure_is_not_counted_as_the_batchs_own_failure() -> None:
    """An error that ends the cycle leaves the action not attempted, logged once elsewhere."""
    step = begin(
        action("msgbatch_f", ActionKind.DELETE),
        LifeConfig(deadline=1.0),
        now=0,
        settle=SettleEstimate(),
    )
    step = advance(step.life, Failed(OSError("401"), ends_cycle=True), now=0, settle=step.settle)
    assert isinstance(step.command, Finish)
    assert step.command.outcome is Outcome.NOT_ATTEMPTED
    assert Counter([step.command.step]) == Counter([Step.DELETE])
