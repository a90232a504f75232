"""Seeded states beyond the lifecycle: unknown statuses, early archiving, refused deletes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from cleaner.emulator import Emulator, ManualClock, Population
from cleaner.emulator.command import main

DAY_S = 86400
BATCHES = "/v1/messages/batches"


def _seed(http: httpx.Client, body: object) -> list[str]:
    response = http.post("/_emulator/seed", json=body)
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()["ids"]
    return ids


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["type"]


def test_a_seeded_unknown_status_lists_and_retrieves_verbatim(
    http: httpx.Client, emulator: Emulator, clock: ManualClock
) -> None:
    """processing_status "archiving" shows as is, stays so as time passes, and is not ended."""
    (batch_id,) = _seed(http, {"count": 1, "processing_status": "archiving", "age": "30d"})
    clock.advance(40 * DAY_S)
    listed = http.get(BATCHES).json()["data"]
    retrieved = http.get(f"{BATCHES}/{batch_id}").json()
    assert [b["processing_status"] for b in listed] == ["archiving"]
    assert retrieved == listed[0]
    assert (retrieved["ended_at"], retrieved["results_url"]) == (None, None)
    assert retrieved["request_counts"]["processing"] == 1


@pytest.mark.parametrize(
    ("switch", "expected"), [(400, "invalid_request_error"), (409, "conflict_error")]
)
def test_deleting_a_batch_in_an_unknown_status_is_refused_like_a_running_one(
    http: httpx.Client, emulator: Emulator, switch: int, expected: str
) -> None:
    """Delete answers delete_running_status, and the batch stays."""
    emulator.configure(delete_running_status=switch)
    (batch_id,) = _seed(http, {"count": 1, "processing_status": "archiving"})
    assert _error(http.delete(f"{BATCHES}/{batch_id}")) == (switch, expected)
    assert emulator.get(batch_id) is not None


def test_canceling_a_batch_in_an_unknown_status_answers_it_unchanged(
    http: httpx.Client, emulator: Emulator
) -> None:
    """Cancel treats it as not ended: 200, status still verbatim, no cancel recorded."""
    (batch_id,) = _seed(http, {"count": 1, "processing_status": "queued_v2", "age": "1h"})
    before = http.get(f"{BATCHES}/{batch_id}").json()
    response = http.post(f"{BATCHES}/{batch_id}/cancel")
    assert response.status_code == 200
    assert response.json() == before
    assert _error(http.get(f"{BATCHES}/{batch_id}/results")) == (400, "invalid_request_error")


def test_an_unknown_status_can_be_added_from_python(emulator: Emulator) -> None:
    """add_batch(processing_status=...) does the same in-process; a known one is the status."""
    odd = emulator.add_batch(processing_status="archiving")
    known = Population(count=1, status="in_progress", age_s=0, processing_status="ended")
    assert odd["processing_status"] == "archiving"
    assert (known.status, known.processing_status) == ("ended", None)


def test_a_seeded_archived_at_shows_and_makes_results_404(
    http: httpx.Client, emulator: Emulator, clock: ManualClock
) -> None:
    """archived_at "now" on a 3-day-old batch: archived_at is set and results are gone."""
    (archived,) = _seed(http, {"count": 1, "status": "ended", "age": "3d", "archived_at": "now"})
    (fresh,) = _seed(http, {"count": 1, "status": "ended", "age": "3d"})
    batch = http.get(f"{BATCHES}/{archived}").json()
    assert batch["archived_at"] == f"{clock():%Y-%m-%dT%H:%M:%S.%f}Z"
    assert _error(http.get(f"{BATCHES}/{archived}/results")) == (404, "not_found_error")
    assert http.get(f"{BATCHES}/{fresh}").json()["archived_at"] is None
    assert http.get(f"{BATCHES}/{fresh}/results").status_code == 200


def test_a_future_archived_at_takes_effect_when_the_clock_reaches_it(
    http: httpx.Client, emulator: Emulator, clock: ManualClock
) -> None:
    """An RFC 3339 archived_at an hour ahead: results until then, 404 after."""
    moment = (clock() + timedelta(hours=1)).isoformat()
    (batch_id,) = _seed(http, {"count": 1, "status": "ended", "age": "1d", "archived_at": moment})
    assert http.get(f"{BATCHES}/{batch_id}/results").status_code == 200
    assert http.get(f"{BATCHES}/{batch_id}").json()["archived_at"] is None
    clock.advance(3600)
    assert http.get(f"{BATCHES}/{batch_id}").json()["archived_at"] is not None
    assert http.get(f"{BATCHES}/{batch_id}/results").status_code == 404


def test_without_a_seeded_archived_at_the_29_day_rule_holds(
    http: httpx.Client, emulator: Emulator, clock: ManualClock
) -> None:
    """A batch is archived exactly 29 days after creation, on the emulator's clock."""
    (batch_id,) = _seed(http, {"count": 1, "status": "ended", "age": "28d"})
    assert http.get(f"{BATCHES}/{batch_id}/results").status_code == 200
    clock.advance(DAY_S)
    batch = http.get(f"{BATCHES}/{batch_id}").json()
    assert batch["archived_at"] == f"{clock():%Y-%m-%dT%H:%M:%S.%f}Z"
    assert http.get(f"{BATCHES}/{batch_id}/results").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"count": 1, "status": "in_progress", "archived_at": "now"},
        {"count": 1, "status": "ended", "archived_at": "2026-01-01T00:00:00"},
        {"count": 1, "processing_status": ""},
        {"count": 1, "processing_status": 5},
        {"count": 2, "status": "ended", "ids": ["msgbatch_one"]},
        {"ids": ["not-a-batch"], "status": "ended"},
    ],
)
def test_bad_extras_are_refused(http: httpx.Client, body: dict[str, object]) -> None:
    """Archiving a running batch, naive times, empty statuses and bad ids answer 400."""
    assert http.post("/_emulator/seed", json=body).status_code == 400


def test_fixed_ids_are_used_as_given_and_never_twice(http: httpx.Client) -> None:
    """ids names the batches; seeding a used id again is refused."""
    body = {"ids": ["msgbatch_overdue_one", "msgbatch_overdue_two"], "status": "ended"}
    assert _seed(http, body) == body["ids"]
    assert http.get(f"{BATCHES}/msgbatch_overdue_one").status_code == 200
    assert http.post("/_emulator/seed", json=body).status_code == 400


def test_a_refused_delete_fails_every_time_with_500_and_is_journaled(
    http: httpx.Client, emulator: Emulator
) -> None:
    """refuse_delete ids answer 500 api_error on every DELETE; other batches delete fine."""
    ids = _seed(http, {"count": 2, "status": "ended", "age": "40d"})
    http.post("/_emulator/refuse-delete", json={"ids": [ids[0]]})
    for _ in range(3):
        assert _error(http.delete(f"{BATCHES}/{ids[0]}")) == (500, "api_error")
    assert http.delete(f"{BATCHES}/{ids[1]}").status_code == 200
    assert emulator.get(ids[0]) is not None
    assert [e.status for e in emulator.journal] == [500, 500, 500, 200]


def test_the_refusal_status_is_configurable_and_the_list_clearable(
    http: httpx.Client, emulator: Emulator
) -> None:
    """POST {"status": 529} changes the answer; DELETE /_emulator/refuse-delete clears it."""
    (batch_id,) = _seed(http, {"count": 1, "status": "ended"})
    shown = http.post("/_emulator/refuse-delete", json={"ids": [batch_id], "status": 529}).json()
    assert shown == {"ids": [batch_id], "status": 529}
    assert _error(http.delete(f"{BATCHES}/{batch_id}")) == (529, "overloaded_error")
    assert http.delete("/_emulator/refuse-delete").json()["ids"] == []
    assert http.delete(f"{BATCHES}/{batch_id}").status_code == 200
    assert http.post("/_emulator/refuse-delete", json={"status": 418}).status_code == 400


def test_a_population_can_refuse_its_own_deletion(http: httpx.Client, emulator: Emulator) -> None:
    """ "refuse_delete": true on a population puts all its batches on the refusal list."""
    ids = _seed(http, {"count": 3, "status": "ended", "age": "40d", "refuse_delete": True})
    assert emulator.config.refuse_delete == frozenset(ids)
    assert http.get("/_emulator/refuse-delete").json()["ids"] == sorted(ids)


def test_a_bad_seed_document_makes_the_command_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad seed document makes the command exit 2 before serving."""
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps({"refuse_delete_status": 418}))
    assert main(["--seed-file", str(seed_file)]) == 2
    assert "refuse_delete_status" in capsys.readouterr().err
