"""page_range over real HTTP: one segment of the listing, older or newer from a cursor."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pytest

from cleaner.client import BatchesClient, CursorNotFoundError, Page
from cleaner.emulator import Emulator
from cleaner.errors import NotFoundError
from cleaner.listing import Anchor, Limits, ListingMemory, Mode, SegmentKind, decide, fingerprint
from cleaner.listing_scan import Scan
from cleaner.policy import RetentionPolicy
from cleaner.policy import decide as policy_decide
from cleaner.wire import parse_batch
from tests.integration.conftest import open_test_client


def seed(emulator: Emulator, count: int) -> list[str]:
    """``count`` ended batches an hour apart; their ids newest first."""
    now = emulator.now()
    ids = [
        str(emulator.add_batch(created_at=now - timedelta(hours=count - i), status="ended")["id"])
        for i in range(count)
    ]
    return ids[::-1]


async def collect(client: BatchesClient, **cursor: str) -> list[Page]:
    return [page async for page in client.page_range(limit=3, **cursor)]


def ids(pages: list[Page]) -> list[str]:
    return [batch.id for page in pages for batch in page.batches]


async def test_without_a_cursor_page_range_lists_everything_newest_first(
    emulator: Emulator, base_url: str
) -> None:
    """From the top, page_range is the whole listing, as pages() gives it."""
    newest_first = seed(emulator, 8)
    async with open_test_client(base_url) as client:
        pages = await collect(client)
        whole = [b.id async for page in client.pages(limit=3) for b in page.batches]
    assert ids(pages) == newest_first == whole
    assert [len(p.batches) for p in pages] == [3, 3, 2]


async def test_after_id_pages_older_than_the_cursor(emulator: Emulator, base_url: str) -> None:
    """after_id gives every batch older than the cursor, newest first, and stops."""
    newest_first = seed(emulator, 9)
    async with open_test_client(base_url) as client:
        pages = await collect(client, after_id=newest_first[1])
    assert ids(pages) == newest_first[2:]
    assert pages[-1].has_more is False


async def test_before_id_pages_newer_than_the_cursor(emulator: Emulator, base_url: str) -> None:
    """before_id walks newer page by page (each newest first) up to the newest batch."""
    newest_first = seed(emulator, 9)
    async with open_test_client(base_url) as client:
        pages = await collect(client, before_id=newest_first[-2])
    assert [[b.id for b in p.batches] for p in pages] == [
        newest_first[4:7],
        newest_first[1:4],
        newest_first[0:1],
    ]
    assert [p.has_more for p in pages] == [True, True, False]


@pytest.mark.parametrize("direction", ["after_id", "before_id"])
async def test_a_deleted_cursor_that_still_works_keeps_its_place(
    emulator: Emulator, base_url: str, direction: str
) -> None:
    """With --deleted-cursor works, paging from a deleted batch goes on from where it stood."""
    emulator.configure(deleted_cursor="works")
    newest_first = seed(emulator, 7)
    emulator.delete(newest_first[3])
    async with open_test_client(base_url) as client:
        pages = await collect(client, **{direction: newest_first[3]})
    expected = newest_first[4:] if direction == "after_id" else newest_first[:3]
    assert ids(pages) == expected


@pytest.mark.parametrize("direction", ["after_id", "before_id"])
async def test_a_deleted_cursor_that_answers_404_raises_a_typed_error(
    emulator: Emulator, base_url: str, direction: str
) -> None:
    """With --deleted-cursor 404, the cursor's 404 is a CursorNotFoundError, not a listing."""
    emulator.configure(deleted_cursor="404")
    newest_first = seed(emulator, 7)
    emulator.delete(newest_first[3])
    async with open_test_client(base_url) as client:
        with pytest.raises(CursorNotFoundError) as caught:
            await collect(client, **{direction: newest_first[3]})
    assert isinstance(caught.value, NotFoundError)
    assert caught.value.status == 404


async def test_giving_both_cursors_is_refused_before_any_request(
    emulator: Emulator, base_url: str
) -> None:
    """after_id and before_id together are a caller's mistake, caught without a request."""
    async with open_test_client(base_url) as client:
        with pytest.raises(ValueError, match="not both"):
            await collect(client, after_id="msgbatch_a", before_id="msgbatch_b")
        assert client.stats.requests == 0


@pytest.mark.parametrize("deleted_cursor", ["works", "404"])
async def test_a_cursor_deleted_mid_band_makes_the_cycle_list_in_full_only_if_it_answers_404(
    emulator: Emulator, base_url: str, deleted_cursor: Literal["works", "404"]
) -> None:
    """The shell's loop over real HTTP: a band's next cursor deleted under it means doubt."""
    emulator.configure(deleted_cursor=deleted_cursor)
    newest_first = seed(emulator, 8)
    now = emulator.now()
    oldest = parse_batch(emulator.get(newest_first[-1]))
    policy = RetentionPolicy(retention=timedelta(hours=3), processing_retention=timedelta(hours=2))
    stamp = fingerprint(policy)
    anchor = Anchor(oldest.id, oldest.created_at)
    memory = ListingMemory(
        listed_at=now, full_at=now, fingerprint=stamp, processing=anchor, retention=anchor
    )
    later = now + timedelta(hours=5)  # both windows moved on; the bands lie above the anchor
    limits = Limits(page_limit=2, max_gap=timedelta(days=1))
    plan = decide(memory, now=later, policy=policy, policy_fingerprint=stamp, limits=limits)
    assert plan.mode is Mode.INCREMENTAL
    scan = Scan(
        plan,
        memory,
        now=later,
        policy=policy,
        judge=lambda batch: policy_decide(batch, policy, later),
        policy_fingerprint=stamp,
        limits=limits,
    )
    kinds: list[SegmentKind] = []
    async with open_test_client(base_url) as client:
        for batch_id in scan.retrieve:
            scan.retrieved(await client.retrieve(batch_id))
        while (segment := scan.next_segment()) is not None:
            kinds.append(segment.kind)
            try:
                async for page in client.page_range(before_id=segment.before_id, limit=2):
                    more = scan.absorb(segment, page.batches, has_more=page.has_more)
                    if len(kinds) == 1 and page.has_more:
                        emulator.delete(page.batches[0].id)  # the next cursor, gone
                    if not more:
                        break
            except CursorNotFoundError as exc:
                scan.failed(segment, str(exc))
    if deleted_cursor == "404":
        assert kinds == [SegmentKind.PROCESSING, SegmentKind.FULL]
        assert scan.mode is Mode.FULL
        assert scan.reason.startswith("fell back: processing listing failed")
    else:
        assert kinds == [SegmentKind.PROCESSING, SegmentKind.RETENTION]
        assert scan.mode is Mode.INCREMENTAL
    assert scan.finish(done=()).doubt is None
