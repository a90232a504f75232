"""Hostile responses: whatever the server says, a clear logged error and a bounded cycle.

Never a hang, a crash or a wrong deletion. Each test serves a real emulator behind a
script (tests/reliability/hostile.py) over real HTTP and ends with the invariants.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from cleaner.client import MAX_BODY_BYTES, RetryPolicy
from cleaner.emulator import Emulator
from cleaner.models import CycleReport, Outcome
from tests.fakes import EventLog
from tests.reliability.conftest import KEY, World, one_cycle, seed_world
from tests.reliability.hostile import Request, Script, Wire, page, serve_hostile
from tests.reliability.invariants import check_invariants

QUICK_RETRY = RetryPolicy(
    attempts=3, total_s=5.0, wait_initial_s=0.01, wait_max_s=0.05, wait_jitter_s=0.01
)
Mutation = Callable[[dict[str, Any]], Any]


async def hostile_cycle(
    emulator: Emulator, world: World, script: Script, **client_options: Any
) -> tuple[CycleReport, EventLog, float]:
    """One cycle against the emulator behind ``script``; invariants checked; time taken."""
    started = time.monotonic()
    with serve_hostile(emulator, script) as (base_url, _):
        report, log = await one_cycle(base_url, emulator, world.policy, **client_options)
    took = time.monotonic() - started
    check_invariants(
        emulator,
        policy=world.policy,
        seen=world.seen,
        events=log.events,
        secrets=[KEY],
        outputs=[repr(report)],
    )
    return report, log, took


def listing_of(emulator: Emulator, mutate: Mutation) -> Script:
    """Every list request answered with the emulator's real page after ``mutate``."""

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "list":
            return False
        await wire.json(mutate(page(emulator.batches())))
        return True

    return script


def first_batch(change: Callable[[dict[str, Any]], None]) -> Mutation:
    """A mutation of the page's first expired batch (the oldest ones are listed last)."""

    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        change(body["data"][-1])
        return body

    return mutate


def nothing_deleted_and_listing_failed(emulator: Emulator, log: EventLog, report: Any) -> str:
    """The common outcome of an unusable listing; returns the logged error."""
    assert emulator.deleted_ids == set()
    assert [e for e in emulator.journal if e.endpoint in ("cancel", "delete")] == []
    failures = log.named("listing_failed")
    assert len(failures) == 1
    assert failures[0]["level"] == "error"
    assert not report.ok
    return str(failures[0]["error"])


BAD_PAGES: dict[str, tuple[Mutation, str]] = {
    "missing created_at": (first_batch(lambda b: b.pop("created_at")), "no created_at"),
    "created_at a number": (first_batch(lambda b: b.update(created_at=0)), "non-string"),
    "created_at not a date": (
        first_batch(lambda b: b.update(created_at="last tuesday")),
        "malformed created_at",
    ),
    "created_at without a zone": (
        first_batch(lambda b: b.update(created_at="2020-01-01T00:00:00")),
        "not in UTC",
    ),
    "processing_status a number": (
        first_batch(lambda b: b.update(processing_status=3)),
        "non-string processing_status",
    ),
    "id missing": (first_batch(lambda b: b.pop("id")), "no string id"),
    "request_counts a string": (
        first_batch(lambda b: b.update(request_counts="many")),
        "request_counts",
    ),
    "negative count": (
        first_batch(lambda b: b["request_counts"].update(succeeded=-1)),
        "request_counts.succeeded",
    ),
    "a batch that is a list": (first_batch(lambda b: b.clear()), "no string id"),
    "has_more a string": (lambda body: {**body, "has_more": "false"}, "boolean has_more"),
    "data not a list": (lambda body: {**body, "data": {}}, "data list"),
    "the page a list": (lambda body: [body], "not a JSON object"),
    "last_id not the last batch": (lambda body: {**body, "last_id": "msgbatch_x"}, "last_id"),
    "cursor of the wrong type": (lambda body: {**body, "first_id": 7}, "non-string cursors"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAGES))
async def test_a_listing_with_a_bad_field_deletes_nothing_and_says_why(
    emulator: Emulator, case: str
) -> None:
    """Missing, mistyped or unknown fields: one listing_failed naming the problem."""
    world = seed_world(emulator)
    mutate, expected = BAD_PAGES[case]
    report, log, took = await hostile_cycle(emulator, world, listing_of(emulator, mutate))
    assert expected in nothing_deleted_and_listing_failed(emulator, log, report)
    assert took < 5


async def test_malformed_json_in_a_listing_deletes_nothing(emulator: Emulator) -> None:
    """A 200 whose body is not JSON: listing_failed, not retried into a storm."""
    world = seed_world(emulator)

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint == "list":
            await wire.raw(b'{"data": [{"id": "msgbatch_')
            return True
        return False

    report, log, _ = await hostile_cycle(emulator, world, script)
    assert "not JSON" in nothing_deleted_and_listing_failed(emulator, log, report)


async def test_has_more_that_never_turns_false_ends_at_the_page_limit(emulator: Emulator) -> None:
    """Fresh cursors forever: the listing stops at max_pages with a ListingError."""
    world = seed_world(emulator)
    young = emulator.batches()[0]
    counter = itertools.count()

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "list":
            return False
        fake = {**young, "id": f"msgbatch_{next(counter):024d}"}
        await wire.json(page([fake], has_more=True))
        return True

    report, log, took = await hostile_cycle(emulator, world, script, max_pages=40)
    error = nothing_deleted_and_listing_failed(emulator, log, report)
    assert "did not end within 40 pages" in error
    assert log.named("listing_failed")[0]["error_class"] == "ListingError"
    assert took < 10


async def test_a_listing_that_repeats_its_page_is_caught_at_the_second_page(
    emulator: Emulator,
) -> None:
    """The same page with has_more forever: the repeated cursor ends the listing at once."""
    world = seed_world(emulator)

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "list":
            return False
        await wire.json(page(emulator.batches(), has_more=True))
        return True

    with serve_hostile(emulator, script) as (base_url, app):
        report, log = await one_cycle(base_url, emulator, world.policy)
    assert "repeats cursor" in nothing_deleted_and_listing_failed(emulator, log, report)
    assert app.seen["list"] == 2
    check_invariants(emulator, policy=world.policy, seen=world.seen, events=log.events)


async def test_an_empty_page_claiming_more_ends_the_listing(emulator: Emulator) -> None:
    """has_more with no data and no cursor: a ListingError, not a loop."""
    world = seed_world(emulator)
    report, log, _ = await hostile_cycle(
        emulator, world, listing_of(emulator, lambda _: page([], has_more=True))
    )
    assert "names no cursor" in nothing_deleted_and_listing_failed(emulator, log, report)


async def test_batches_repeated_within_and_across_pages_are_deleted_once(
    emulator: Emulator,
) -> None:
    """Duplicates in the listing: one DELETE and one batch_deleted per batch."""
    world = seed_world(emulator, stale_running=0)
    everything = emulator.batches()
    half = len(everything) // 2

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "list":
            return False
        if "after_id" not in request.query:
            first = everything[:half] + everything[:2]  # repeats inside the page
            first.append(everything[half - 1])  # and the cursor batch again, last
            await wire.json(page(first, has_more=True))
        else:
            await wire.json(page(everything, has_more=False))  # page one again, and more
        return True

    report, _, _ = await hostile_cycle(emulator, world, script)
    assert report.ok
    assert emulator.deleted_ids == world.groups["old"]
    deletes = [e.batch_id or "" for e in emulator.journal if e.endpoint == "delete"]
    assert sorted(deletes) == sorted(world.groups["old"])


async def test_a_huge_body_is_cut_off_at_the_limit_and_the_cycle_ends(emulator: Emulator) -> None:
    """A listing body past MAX_BODY_BYTES: read no further, listing_failed, no retry."""
    world = seed_world(emulator)

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "list":
            return False
        await wire.start(200)
        block = b" " * (1 << 20)
        await wire.chunks(itertools.repeat(block, MAX_BODY_BYTES // len(block) + 8))
        return True

    with serve_hostile(emulator, script) as (base_url, app):
        started = time.monotonic()
        report, log = await one_cycle(base_url, emulator, world.policy)
        took = time.monotonic() - started
    assert "over" in nothing_deleted_and_listing_failed(emulator, log, report)
    assert app.seen["list"] == 1  # not retried
    assert took < 10


async def test_a_response_that_trickles_is_cut_by_the_request_deadline(
    emulator: Emulator,
) -> None:
    """A byte every 50 ms: each attempt ends at the 0.4 s deadline, the cycle soon after."""
    world = seed_world(emulator)

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "list":
            return False
        await wire.start(200)
        await wire.chunks(itertools.repeat(b" ", 400), every_s=0.05)
        return True

    report, log, took = await hostile_cycle(
        emulator, world, script, timeout_s=0.4, retry=QUICK_RETRY
    )
    error = nothing_deleted_and_listing_failed(emulator, log, report)
    assert "within 0.4s" in error
    assert took < 5


async def test_a_deletion_confirmed_slowly_is_never_logged_twice_or_falsely(
    emulator: Emulator,
) -> None:
    """The API deletes, then trickles its answer: the retry sees 404, logged already gone."""
    world = seed_world(emulator, stale_running=0)

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "delete" or request.batch_id is None:
            return False
        if emulator.get(request.batch_id) is None:
            return False  # already gone: the emulator answers its 404
        answer = emulator.delete(request.batch_id)
        emulator.record(
            method="DELETE",
            path=request.path,
            endpoint="delete",
            batch_id=request.batch_id,
            status=200,
            fault="drop_after",  # applied, but the client never gets the answer
        )
        body = str(answer).encode()
        await wire.start(200, length=len(body))
        await wire.chunks(iter([body[:1]] * 1), every_s=2.0)
        return True

    report, log, took = await hostile_cycle(
        emulator, world, script, timeout_s=0.3, retry=QUICK_RETRY
    )
    assert emulator.deleted_ids == world.groups["old"]
    assert log.named("batch_deleted") == []
    assert report.outcome_count(Outcome.ALREADY_GONE) == len(world.groups["old"])
    assert took < 10


@pytest.mark.parametrize(
    "confirmation",
    [{}, {"id": "msgbatch_someone_else", "type": "message_batch_deleted"}, {"type": "ok"}, []],
    ids=["empty", "another id", "no id", "a list"],
)
async def test_a_delete_answer_that_confirms_nothing_is_not_logged_as_a_deletion(
    emulator: Emulator, confirmation: object
) -> None:
    """200 without the documented confirmation: action_failed, never batch_deleted."""
    world = seed_world(emulator, stale_running=0)

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "delete":
            return False
        await wire.json(confirmation)
        return True

    report, log, _ = await hostile_cycle(emulator, world, script)
    assert not report.ok
    assert log.named("batch_deleted") == []
    failed = log.named("action_failed")
    assert {e["batch_id"] for e in failed} == world.groups["old"]
    assert all("not confirmed" in e["error"] for e in failed)


async def test_a_retrieve_answering_for_another_batch_is_not_trusted(emulator: Emulator) -> None:
    """While waiting, an answer about a different (ended) batch never leads to a DELETE."""
    world = seed_world(emulator, old=0)
    other = next(iter(world.groups["young"]))

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "retrieve":
            return False
        await wire.json(emulator.get(other))
        return True

    report, log, _ = await hostile_cycle(emulator, world, script)
    assert not report.ok
    assert emulator.deleted_ids == set()
    assert all("answered with" in e["error"] for e in log.named("action_failed"))


async def test_a_429_asking_for_an_absurd_wait_ends_the_cycle_promptly(
    emulator: Emulator,
) -> None:
    """retry-after: 100000 on the listing: no ten-minute sleep; a clear error instead."""
    world = seed_world(emulator)

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "list":
            return False
        error = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
        await wire.json(error, status=429, headers=[(b"retry-after", b"100000")])
        return True

    report, log, took = await hostile_cycle(emulator, world, script)
    nothing_deleted_and_listing_failed(emulator, log, report)
    assert took < 10


async def test_a_proxy_error_page_is_retried_like_a_server_error(emulator: Emulator) -> None:
    """Two 502s with an HTML body, then the real answer: the cycle succeeds."""
    world = seed_world(emulator, stale_running=0)

    async def script(request: Request, wire: Wire) -> bool:
        if request.endpoint != "list" or request.number >= 2:
            return False
        await wire.raw(b"<html>Bad Gateway</html>", status=502, content_type=b"text/html")
        return True

    report, _, _ = await hostile_cycle(emulator, world, script)
    assert report.ok
    assert emulator.deleted_ids == world.groups["old"]
