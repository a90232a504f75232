"""The one way to act outside a cycle (apply, purge): the cycle's actor, receipts included."""

from __future__ import annotations

import asyncio

from cleaner.clock import SYSTEM
from cleaner.commands import Step
from cleaner.cycle import CycleOptions, carry_out
from cleaner.emulator import Emulator, Population
from cleaner.erasure import purge_action
from cleaner.models import Action, Outcome
from tests.integration.conftest import DAY, POLICY, open_test_client


class RecordingIntents:
    """A receipt writer that notes each intent and what the emulator held at that moment."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.seen: list[tuple[str, Step, bool]] = []

    async def intend(self, action: Action, step: Step) -> None:
        exists = self.emulator.get(action.batch_id) is not None
        self.seen.append((action.batch_id, step, exists))


async def test_receipts_passed_to_carry_out_are_written_before_each_erasure(
    emulator: Emulator, base_url: str
) -> None:
    """An erasure action through carry_out: intent first (batch still there), then the delete."""
    (batch_id,) = emulator.seed(Population(count=1, status="ended", age_s=DAY))
    async with open_test_client(base_url) as client:
        batch = await client.retrieve(batch_id)
        action = purge_action(batch, POLICY, emulator.now(), purge_reason="ticket 42")
        assert isinstance(action, Action)
        intents = RecordingIntents(emulator)
        tally = await carry_out(
            client,
            (action,),
            CycleOptions(wait_timeout_s=5.0),
            clock=SYSTEM,
            emit=lambda event: None,
            stop=asyncio.Event(),
            intents=intents,
        )
    assert intents.seen == [(batch_id, Step.DELETE, True)]
    assert tally.outcomes[(action.kind, Outcome.DELETED)] == 1
    assert emulator.deleted_ids == {batch_id}


async def test_a_dry_run_through_carry_out_sends_nothing(emulator: Emulator, base_url: str) -> None:
    """dry_run: every action is counted as dry_run and the journal stays empty."""
    (batch_id,) = emulator.seed(Population(count=1, status="ended", age_s=DAY))
    async with open_test_client(base_url) as client:
        batch = await client.retrieve(batch_id)
        action = purge_action(batch, POLICY, emulator.now(), purge_reason="x")
        assert isinstance(action, Action)
        tally = await carry_out(
            client,
            (action,),
            CycleOptions(dry_run=True),
            clock=SYSTEM,
            emit=lambda event: None,
            stop=asyncio.Event(),
        )
    assert tally.outcomes[(action.kind, Outcome.DRY_RUN)] == 1
    assert emulator.journal == []
