"""The actor shell on virtual time: real waiting logic, an in-memory API, no real sleeps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta

from cleaner.actor import Actor
from cleaner.commands import LifeConfig, Step
from cleaner.errors import AuthenticationError, CleanerError, NotFoundError
from cleaner.events import ActionFinished, AuditUnavailable, CycleAborted, Event
from cleaner.models import Action, ActionKind, Batch, Outcome, ProcessingStatus
from tests.fakes import VirtualClock
from tests.unit.test_lifecycle import action


@dataclass
class FakeApi:
    """Batches that end ``settle_s`` after their cancel, on the given clock."""

    clock: VirtualClock
    settle_s: float = 120.0
    canceled_at: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_with: Exception | None = None

    def _batch(self, batch_id: str) -> Batch:
        at = self.canceled_at.get(batch_id)
        ended = at is not None and self.clock.monotonic() >= at + self.settle_s
        status = ProcessingStatus.ENDED if ended else ProcessingStatus.CANCELING
        return replace(action(batch_id, ActionKind.CANCEL).batch, processing_status=status)

    async def cancel(self, batch_id: str) -> Batch:
        self.calls.append(("cancel", batch_id))
        self.canceled_at[batch_id] = self.clock.monotonic()
        return self._batch(batch_id)

    async def retrieve(self, batch_id: str) -> Batch:
        self.calls.append(("retrieve", batch_id))
        return self._batch(batch_id)

    async def delete(self, batch_id: str) -> object:
        self.calls.append(("delete", batch_id))
        if self.fail_with is not None:
            raise self.fail_with
        if batch_id.endswith("gone"):
            raise NotFoundError("gone", status=404)
        return _Deletion({"id": batch_id, "type": "message_batch_deleted"}, "req_1")


@dataclass(frozen=True)
class _Deletion:
    confirmation: dict[str, str]
    request_id: str


class FailingIntents:
    """An audit sink whose every write fails."""

    async def intend(self, action: Action, step: Step) -> None:
        raise CleanerError("audit sink file:///var/lib/cleaner/audit: read-only file system")


def _actor(api: FakeApi, clock: VirtualClock, events: list[Event], **options: object) -> Actor:
    wait_s = float(options.pop("wait_timeout_s", 300.0))  # type: ignore[arg-type]
    return Actor(
        api,
        config=LifeConfig(deadline=clock.monotonic() + wait_s, poll_initial_s=1.0, poll_max_s=30.0),
        clock=clock,
        emit=events.append,
        stop=asyncio.Event(),
        **options,  # type: ignore[arg-type]
    )


async def test_a_hundred_cancels_that_settle_together_cost_three_requests_each() -> None:
    """Probes learn the settle time on virtual time; the rest poll once after it."""
    clock = VirtualClock()
    api = FakeApi(clock, settle_s=10.0)
    events: list[Event] = []
    actions = tuple(action(f"msgbatch_{i:03d}", ActionKind.CANCEL) for i in range(100))
    tally = await clock.run(_actor(api, clock, events).run(actions))
    assert tally.outcomes == {(ActionKind.CANCEL, Outcome.DELETED): 100}
    assert clock.monotonic() >= 10.0
    assert len(api.calls) <= 3 * 100 + 3 * 4  # each probe polls at 1, 3, 7 and 15 s
    for batch_id in {b for _, b in api.calls}:
        mine = [kind for kind, b in api.calls if b == batch_id]
        assert mine[0] == "cancel"
        assert mine[-1] == "delete"


async def test_batches_that_outlast_the_wait_timeout_are_left_for_the_next_cycle() -> None:
    """A five-minute wait timeout against a ten-minute settle: wait_timeout, nothing deleted."""
    clock = VirtualClock()
    api = FakeApi(clock, settle_s=600.0)
    events: list[Event] = []
    actions = (action("msgbatch_slow", ActionKind.CANCEL),)
    tally = await clock.run(_actor(api, clock, events, wait_timeout_s=300.0).run(actions))
    assert tally.outcomes == {(ActionKind.CANCEL, Outcome.WAIT_TIMEOUT): 1}
    assert ("delete", "msgbatch_slow") not in api.calls
    assert 300.0 <= clock.monotonic() < 331.0


async def test_a_fatal_error_is_reported_once_and_the_rest_is_not_attempted() -> None:
    """A 401 on the first delete: one CycleAborted; nothing else is sent after it."""
    clock = VirtualClock()
    api = FakeApi(clock, fail_with=AuthenticationError("bad key", status=401))
    events: list[Event] = []
    actions = tuple(action(f"msgbatch_{i}", ActionKind.DELETE) for i in range(10))
    tally = await clock.run(_actor(api, clock, events, workers=1).run(actions))
    assert [type(e) for e in events].count(CycleAborted) == 1
    assert len(api.calls) == 1
    assert tally.outcomes == {(ActionKind.DELETE, Outcome.NOT_ATTEMPTED): 10}


async def test_an_unwritable_audit_sink_sends_no_cancel_and_no_delete() -> None:
    """Fail closed: one AuditUnavailable, audit_unavailable outcomes, an untouched API."""
    clock = VirtualClock()
    api = FakeApi(clock)
    events: list[Event] = []
    actions = (action("msgbatch_a", ActionKind.DELETE), action("msgbatch_b", ActionKind.CANCEL))
    actor = _actor(api, clock, events, intents=FailingIntents())
    actor.config = replace(actor.config, audit=True)
    tally = await clock.run(actor.run(actions))
    assert api.calls == []
    assert [type(e) for e in events].count(AuditUnavailable) == 1
    assert (
        tally.outcomes[(ActionKind.DELETE, Outcome.AUDIT_UNAVAILABLE)]
        + tally.outcomes[(ActionKind.DELETE, Outcome.NOT_ATTEMPTED)]
        == 1
    )
    finished = [e for e in events if isinstance(e, ActionFinished)]
    assert len(finished) == 2


async def test_progress_is_reported_every_thirty_virtual_seconds_of_a_long_wait() -> None:
    """A 200 s settle yields progress snapshots on the clock's cadence, not real time."""
    clock = VirtualClock()
    api = FakeApi(clock, settle_s=200.0)
    events: list[Event] = []
    actions = (action("msgbatch_p", ActionKind.CANCEL),)
    await clock.run(_actor(api, clock, events, progress_every_s=30.0).run(actions))
    progress = [e for e in events if type(e).__name__ == "ProgressReported"]
    assert len(progress) >= 200 // 30
    assert timedelta(seconds=clock.monotonic()) >= timedelta(seconds=200)
