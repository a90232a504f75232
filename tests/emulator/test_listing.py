"""Listing cursors: after_id pages older, before_id the page just newer, both at once is 400."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleaner.emulator import Emulator, EmulatorConfig, ManualClock, Population, WorkspaceSpec
from tests.emulator.conftest import START

DAY_S = 86400
BATCHES = "/v1/messages/batches"
OTHER_KEY = "sk-listing-other-key"


def _everything(emulator: Emulator, count: int = 30) -> list[str]:
    emulator.seed(Population(count=count, status="ended", age_s=2 * DAY_S, spread_s=DAY_S))
    return [str(b["id"]) for b in emulator.batches()]


def _page(http: httpx.Client, **params: str | int) -> dict[str, object]:
    response = http.get(BATCHES, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, object] = response.json()
    return page


def _page_ids(page: dict[str, object]) -> list[str]:
    data = page["data"]
    assert isinstance(data, list)
    return [batch["id"] for batch in data]


def test_before_id_gives_the_page_just_newer_than_the_cursor_newest_first(
    http: httpx.Client, emulator: Emulator
) -> None:
    """limit=3 before the 11th newest: the 8th to 10th, newest first, and more are newer."""
    everything = _everything(emulator)
    page = _page(http, limit=3, before_id=everything[10])
    assert _page_ids(page) == everything[7:10]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (
        everything[7],
        everything[9],
        True,
    )


def test_before_id_near_the_newest_end_says_nothing_newer_is_left(
    http: httpx.Client, emulator: Emulator
) -> None:
    """A page reaching the newest batch has has_more false."""
    everything = _everything(emulator)
    page = _page(http, limit=5, before_id=everything[2])
    assert (_page_ids(page), page["has_more"]) == (everything[:2], False)
    exact = _page(http, limit=2, before_id=everything[2])
    assert (_page_ids(exact), exact["has_more"]) == (everything[:2], False)


def test_before_id_of_the_newest_batch_is_an_empty_last_page(
    http: httpx.Client, emulator: Emulator
) -> None:
    """Nothing is newer than the newest: empty data, null ids, has_more false."""
    everything = _everything(emulator, count=4)
    page = _page(http, before_id=everything[0])
    assert page == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_paging_backwards_by_first_id_sees_every_newer_batch_once(
    http: httpx.Client, emulator: Emulator
) -> None:
    """From the oldest batch, before_id=first_id until has_more is false walks them all."""
    everything = _everything(emulator, count=23)
    seen: list[str] = []
    cursor = everything[-1]
    while True:
        page = _page(http, limit=4, before_id=cursor)
        seen = _page_ids(page) + seen
        if not page["has_more"]:
            break
        cursor = str(page["first_id"])
    assert seen == everything[:-1]


def test_the_sdk_auto_paginates_backwards_from_before_id(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """The official SDK follows before_id=first_id: every newer batch once, pages newest first."""
    everything = _everything(emulator, count=23)
    pages = list(sdk.messages.batches.list(limit=4, before_id=everything[-1]).iter_pages())
    assert [len(p.data) for p in pages] == [4, 4, 4, 4, 4, 2]
    for page in pages:
        created = [b.created_at for b in page.data]
        assert created == sorted(created, reverse=True)
    listed = [b.id for b in sdk.messages.batches.list(limit=4, before_id=everything[-1])]
    assert sorted(listed) == sorted(everything[:-1])
    assert len(listed) == len(set(listed))


def test_the_sdk_gets_400_for_after_id_and_before_id_together(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """Both cursors at once raise BadRequestError."""
    everything = _everything(emulator, count=5)
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.batches.list(after_id=everything[1], before_id=everything[3])


def test_a_cursor_from_another_workspace_is_not_found(
    http: httpx.Client, emulator: Emulator, base_url: str
) -> None:
    """Cursors name batches of the key's own workspace; another's answers 404."""
    emulator.configure(workspaces=(WorkspaceSpec("other", keys=frozenset({OTHER_KEY})),))
    everything = _everything(emulator, count=3)
    headers = {"x-api-key": OTHER_KEY, "anthropic-version": "2023-06-01"}
    for cursor in ("before_id", "after_id"):
        response = httpx.get(
            f"{base_url}{BATCHES}", params={cursor: everything[1]}, headers=headers
        )
        assert response.status_code == 404


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 40),
    data=st.data(),
    limit=st.integers(1, 12),
)
def test_before_id_pages_are_the_slice_just_newer_than_the_cursor(
    count: int, data: st.DataObject, limit: int
) -> None:
    """For any population, cursor and limit: the `limit` batches nearest above, and has_more."""
    emulator = Emulator(EmulatorConfig(), clock=ManualClock(START))
    everything = _everything(emulator, count=count)
    index = data.draw(st.integers(0, count - 1))
    page, _ = emulator.list_page(
        limit=limit, after_id=None, before_id=everything[index], base_url=""
    )
    assert _page_ids(page) == everything[max(0, index - limit) : index]
    assert page["has_more"] is (index - limit > 0)
