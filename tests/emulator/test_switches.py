"""Every [assume] behaviour of the contract is switchable; each setting is tested here."""

from __future__ import annotations

import httpx
import pytest

from cleaner.emulator import Emulator, ManualClock, Population

DAY_S = 86400


def _batch_path(batch_id: object) -> str:
    return f"/v1/messages/batches/{batch_id}"


def _error_type(response: httpx.Response) -> str:
    error_type = response.json()["error"]["type"]
    assert isinstance(error_type, str)
    return error_type


@pytest.mark.parametrize("status", ["in_progress", "canceling"])
def test_deleting_an_unended_batch_answers_400_by_default(
    http: httpx.Client, emulator: Emulator, status: str
) -> None:
    """Delete before `ended` is 400 invalid_request_error and leaves the batch alone."""
    batch_id = emulator.add_batch(status=status)["id"]  # type: ignore[arg-type]
    response = http.delete(_batch_path(batch_id))
    assert (response.status_code, _error_type(response)) == (400, "invalid_request_error")
    assert emulator.get(str(batch_id)) is not None


@pytest.mark.parametrize("status", ["in_progress", "canceling"])
def test_deleting_an_unended_batch_answers_409_when_switched(
    http: httpx.Client, emulator: Emulator, status: str
) -> None:
    """delete_running_status=409 turns it into 409 conflict_error."""
    emulator.configure(delete_running_status=409)
    batch_id = emulator.add_batch(status=status)["id"]  # type: ignore[arg-type]
    response = http.delete(_batch_path(batch_id))
    assert (response.status_code, _error_type(response)) == (409, "conflict_error")
    assert emulator.get(str(batch_id)) is not None


def test_a_refused_delete_is_journaled_with_its_status(
    http: httpx.Client, emulator: Emulator
) -> None:
    """The journal shows a premature delete and the 400 it got."""
    batch_id = emulator.add_batch(status="in_progress")["id"]
    http.delete(_batch_path(batch_id))
    (entry,) = emulator.journal
    assert (entry.method, entry.endpoint, entry.batch_id, entry.status) == (
        "DELETE",
        "delete",
        batch_id,
        400,
    )


def test_canceling_an_ended_batch_answers_400_by_default(
    http: httpx.Client, emulator: Emulator
) -> None:
    """Cancel of an ended batch is 400 invalid_request_error."""
    batch_id = emulator.add_batch(status="ended")["id"]
    response = http.post(f"{_batch_path(batch_id)}/cancel")
    assert (response.status_code, _error_type(response)) == (400, "invalid_request_error")


def test_canceling_an_ended_batch_answers_200_unchanged_when_switched(
    http: httpx.Client, emulator: Emulator
) -> None:
    """cancel_ended_ok=True answers 200 with the batch exactly as it was."""
    emulator.configure(cancel_ended_ok=True)
    batch = emulator.add_batch(status="ended")
    response = http.post(f"{_batch_path(batch['id'])}/cancel")
    assert response.status_code == 200
    assert response.json() == {**batch, "results_url": response.json()["results_url"]}
    assert response.json()["cancel_initiated_at"] is None


def test_canceling_a_canceling_batch_answers_200_unchanged(
    http: httpx.Client, emulator: Emulator, clock: ManualClock
) -> None:
    """A second cancel keeps the first cancel_initiated_at."""
    batch_id = emulator.add_batch(status="in_progress")["id"]
    first = http.post(f"{_batch_path(batch_id)}/cancel").json()
    clock.advance(5)
    second = http.post(f"{_batch_path(batch_id)}/cancel")
    assert second.status_code == 200
    assert second.json() == first


@pytest.mark.parametrize(
    ("status", "error_type"), [(400, "invalid_request_error"), (409, "conflict_error")]
)
def test_canceling_a_canceling_batch_answers_an_error_when_switched(
    http: httpx.Client, emulator: Emulator, status: int, error_type: str
) -> None:
    """cancel_canceling_status=400/409 refuses a repeated cancel."""
    emulator.configure(cancel_canceling_status=status)
    batch_id = emulator.add_batch(status="canceling")["id"]
    response = http.post(f"{_batch_path(batch_id)}/cancel")
    assert (response.status_code, _error_type(response)) == (status, error_type)


def _listing(emulator: Emulator, count: int = 10) -> list[str]:
    emulator.seed(Population(count=count, status="ended", age_s=2 * DAY_S, spread_s=DAY_S))
    return [str(b["id"]) for b in emulator.batches()]


def test_a_cursor_naming_a_deleted_batch_keeps_its_position_by_default(
    http: httpx.Client, emulator: Emulator
) -> None:
    """deleted_cursor="works": after_id of a deleted batch still gives the next older page."""
    ids = _listing(emulator)
    first = http.get("/v1/messages/batches", params={"limit": 4}).json()
    assert first["last_id"] == ids[3]
    assert http.delete(_batch_path(ids[3])).status_code == 200
    after = http.get("/v1/messages/batches", params={"limit": 4, "after_id": ids[3]}).json()
    assert [b["id"] for b in after["data"]] == ids[4:8]
    before = http.get("/v1/messages/batches", params={"limit": 2, "before_id": ids[3]}).json()
    assert [b["id"] for b in before["data"]] == ids[1:3]


def test_a_cursor_naming_a_deleted_batch_answers_404_when_switched(
    http: httpx.Client, emulator: Emulator
) -> None:
    """deleted_cursor="404": the same request is not_found_error."""
    emulator.configure(deleted_cursor="404")
    ids = _listing(emulator)
    http.delete(_batch_path(ids[3]))
    response = http.get("/v1/messages/batches", params={"limit": 4, "after_id": ids[3]})
    assert (response.status_code, _error_type(response)) == (404, "not_found_error")


def test_cursors_survive_the_compaction_of_many_deleted_batches(
    http: httpx.Client, emulator: Emulator
) -> None:
    """Deleting most batches (tombstones compacted away) keeps every cursor's position."""
    ids = _listing(emulator, count=3000)
    for batch_id in ids[:2900]:
        emulator.delete(batch_id)
    page = http.get("/v1/messages/batches", params={"limit": 3, "after_id": ids[1500]}).json()
    assert [b["id"] for b in page["data"]] == ids[2900:2903]
    assert page["has_more"] is True


def test_creating_batches_on_every_list_never_disturbs_a_listing_under_way(
    http: httpx.Client, emulator: Emulator
) -> None:
    """create_on_list=N adds N new batches per list call; paging still sees each old one once."""
    ids = _listing(emulator, count=25)
    emulator.configure(create_on_list=3)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 10}
    while True:
        page = http.get("/v1/messages/batches", params=params).json()
        seen += [b["id"] for b in page["data"]]
        if not page["has_more"]:
            break
        params["after_id"] = page["last_id"]
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(seen)
    assert len(emulator) == 25 + 3 * 3
    assert len(seen) == 25 + 3  # only the first page sees the batches its call created


def test_a_list_that_created_batches_is_journaled(http: httpx.Client, emulator: Emulator) -> None:
    """With create_on_list the list call changed state, so the journal shows it."""
    emulator.configure(create_on_list=2)
    http.get("/v1/messages/batches")
    assert [(e.endpoint, e.status) for e in emulator.journal] == [("list", 200)]


def test_configure_changes_behaviour_between_requests(
    http: httpx.Client, emulator: Emulator
) -> None:
    """Runtime reconfiguration applies to the very next request."""
    batch_id = emulator.add_batch(status="in_progress")["id"]
    assert http.delete(_batch_path(batch_id)).status_code == 400
    emulator.configure(delete_running_status=409)
    assert http.delete(_batch_path(batch_id)).status_code == 409


def test_configure_refuses_invalid_values(emulator: Emulator) -> None:
    """Unknown switch values raise ValueError and leave the configuration alone."""
    with pytest.raises(ValueError, match="409"):
        emulator.configure(delete_running_status=418)
    with pytest.raises(ValueError, match="deleted_cursor"):
        emulator.configure(deleted_cursor="maybe")
    assert emulator.config.delete_running_status == 400
