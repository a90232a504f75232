"""Hypothesis: any sequence of receipts verifies; any single tampered line is caught."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleaner.report import AuditReport, build_report
from cleaner.storage import Store, open_store
from tests.audit_helpers import T0, TickingClock, altered, edit_lines, record_cycle, trail_on

outcomes = st.sampled_from(["deleted", "already_gone", "failed", "wait_timeout"])
histories = st.lists(st.lists(outcomes, min_size=1, max_size=12), min_size=1, max_size=4)
tampers = st.sampled_from(["edit", "delete", "swap"])
SINCE = T0 - timedelta(days=1)
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


async def write(history: list[list[str]]) -> tuple[Store, list[str]]:
    store = open_store("memory:///")
    for number, cycle in enumerate(history):
        started = T0 + timedelta(hours=number)
        trail = trail_on(store, clock=TickingClock(started))
        await record_cycle(trail, f"c{number}", cycle, started_at=started)
    return store, await store.list("cycles")


async def verify(store: Store) -> AuditReport:
    return await build_report(store, since=SINCE)


@fast
@given(histories)
def test_any_history_verifies_and_counts_every_receipt(history: list[list[str]]) -> None:
    """Untouched, the chain holds and each outcome is counted once."""

    async def run() -> AuditReport:
        store, _ = await write(history)
        return await verify(store)

    report = asyncio.run(run())
    assert report.chain_ok, report.problems
    flat = [outcome for cycle in history for outcome in cycle]
    for outcome in ["deleted", "already_gone", "failed"]:
        assert report.total(outcome) == flat.count(outcome)
    assert report.objects == len(history)


@fast
@given(histories, st.data(), tampers)
def test_any_single_tampered_line_is_detected_in_its_object(
    history: list[list[str]], data: st.DataObject, tamper: str
) -> None:
    """An edited, deleted or swapped line breaks the chain, and the problem names its object."""

    async def run() -> tuple[AuditReport, str]:
        store, objects = await write(history)
        target = data.draw(st.sampled_from(objects), label="object")
        lines = (await store.get(target)).splitlines()
        at = data.draw(st.integers(0, len(lines) - 2 if tamper == "swap" else len(lines) - 1))
        if tamper == "edit":
            edited = altered(lines[at], batch_id="msgbatch_tampered")
            await edit_lines(store, target, lambda ls: [*ls[:at], edited, *ls[at + 1 :]])
        elif tamper == "delete":
            await edit_lines(store, target, lambda ls: [*ls[:at], *ls[at + 1 :]])
        else:
            await edit_lines(
                store, target, lambda ls: [*ls[:at], ls[at + 1], ls[at], *ls[at + 2 :]]
            )
        return await verify(store), target

    report, target = asyncio.run(run())
    assert not report.chain_ok
    assert any(problem.object == target for problem in report.problems), report.problems
