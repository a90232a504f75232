"""The operator endpoints under /_emulator/: seed, state, journal, counters, config, clock."""

from __future__ import annotations

import httpx
import orjson

from cleaner.emulator import Emulator, ManualClock, Population
from cleaner.emulator.app import EmulatorApp

DAY_S = 86400


def test_seeding_over_http_adds_populations_and_returns_their_ids(
    http: httpx.Client, emulator: Emulator
) -> None:
    """POST /_emulator/seed takes {"populations": [...]} with durations as text or seconds."""
    body = {
        "populations": [
            {"count": 30, "status": "ended", "age": "40d", "spread": "1h"},
            {"count": 5, "status": "in_progress", "age_s": 3 * 3600},
        ]
    }
    response = http.post("/_emulator/seed", json=body)
    assert response.status_code == 200
    assert response.json()["created"] == 35
    assert len(response.json()["ids"]) == 35
    assert emulator.status_counts() == {"ended": 30, "in_progress": 5}


def test_bad_seed_bodies_answer_400(http: httpx.Client) -> None:
    """Unknown fields, statuses or malformed JSON are refused in the error envelope."""
    for body in (b"{", b'{"count": 1}', b'[{"count": 1, "status": "lost", "age": "1d"}]'):
        response = http.post("/_emulator/seed", content=body)
        assert response.status_code == 400
        assert response.json()["type"] == "error"


def test_state_summarises_counts_by_status(http: httpx.Client, emulator: Emulator) -> None:
    """GET /_emulator/state reports totals, statuses, deletions and the config."""
    ids = emulator.seed(Population(count=4, status="ended", age_s=DAY_S))
    emulator.delete(ids[0])
    state = http.get("/_emulator/state").json()
    assert (state["batches"], state["deleted"], state["by_status"]) == (3, 1, {"ended": 3})
    assert state["config"]["api_key_set"] is True
    assert "api_key" not in state["config"]


def test_the_full_state_pages_by_cursor_and_streams_as_json_lines(
    http: httpx.Client, emulator: Emulator
) -> None:
    """/_emulator/batches pages newest first; /_emulator/batches.jsonl streams them all."""
    emulator.seed(Population(count=250, status="ended", age_s=DAY_S, spread_s=DAY_S))
    expected = [b["id"] for b in emulator.batches()]
    paged: list[str] = []
    params: dict[str, str | int] = {"limit": 100}
    while True:
        page = http.get("/_emulator/batches", params=params).json()
        paged += [b["id"] for b in page["data"]]
        if not page["has_more"]:
            break
        params["after_id"] = page["last_id"]
    streamed = [
        orjson.loads(line)["id"] for line in http.get("/_emulator/batches.jsonl").iter_lines()
    ]
    assert paged == streamed == expected


def test_the_journal_can_be_read_and_cleared(http: httpx.Client, emulator: Emulator) -> None:
    """GET shows every mutating request; DELETE empties it; reads are never journaled."""
    batch_id = emulator.add_batch(status="ended")["id"]
    http.get(f"/v1/messages/batches/{batch_id}")
    http.delete(f"/v1/messages/batches/{batch_id}")
    entries = http.get("/_emulator/journal").json()["entries"]
    assert [(e["method"], e["endpoint"], e["batch_id"], e["status"]) for e in entries] == [
        ("DELETE", "delete", batch_id, 200)
    ]
    assert http.delete("/_emulator/journal").json() == {"cleared": 1}
    assert emulator.journal == []


def test_request_counts_cover_every_request_by_endpoint_and_status(
    http: httpx.Client, emulator: Emulator
) -> None:
    """Reads, writes, errors and 429s are all counted; DELETE resets the counters."""
    emulator.configure(rate_limit_rpm=60)
    http.get("/v1/messages/batches")
    http.get("/v1/messages/batches")
    http.get("/v1/nothing")
    counts = http.get("/_emulator/requests").json()
    assert counts["total"] == 3
    assert {"endpoint": "list", "status": 429, "count": 1} in counts["counts"]
    assert {"endpoint": "other", "status": 404, "count": 1} in counts["counts"]
    http.delete("/_emulator/requests")
    assert emulator.request_counts == {}


def test_config_can_be_patched_and_replaced_at_runtime(
    http: httpx.Client, emulator: Emulator
) -> None:
    """PATCH merges fields (faults as JSON rules); PUT resets the rest to defaults."""
    patch = {
        "delete_running_status": 409,
        "faults": [{"kind": "not_found", "endpoints": ["retrieve"], "times": 1}],
    }
    patched = http.patch("/_emulator/config", json=patch).json()
    assert patched["delete_running_status"] == 409
    assert patched["faults"][0]["kind"] == "not_found"
    assert emulator.config.faults[0].endpoints == frozenset({"retrieve"})
    replaced = http.put("/_emulator/config", json={"cancel_ended_ok": True}).json()
    assert (replaced["delete_running_status"], replaced["faults"], replaced["cancel_ended_ok"]) == (
        400,
        [],
        True,
    )
    assert emulator.config.api_key is not None  # PUT keeps the key


def test_bad_config_answers_400_and_changes_nothing(http: httpx.Client, emulator: Emulator) -> None:
    """Unknown fields, bad values and bad fault rules are refused."""
    for body in (
        {"nonsense": 1},
        {"delete_running_status": 418},
        {"faults": [{"kind": "explode"}]},
        {"faults": "server_error"},
        {"processing_time_s": "soon"},
    ):
        assert http.patch("/_emulator/config", json=body).status_code == 400, body
    assert emulator.config.faults == ()


def test_the_clock_can_be_advanced_over_http(
    http: httpx.Client, emulator: Emulator, clock: ManualClock
) -> None:
    """POST /_emulator/clock {"advance_s": N} moves a manual or offset clock."""
    batch_id = emulator.add_batch(status="in_progress")["id"]
    response = http.post("/_emulator/clock", json={"advance_s": 300})
    assert response.json()["now"] == "2026-03-01T12:05:00.000000Z"
    assert http.get(f"/v1/messages/batches/{batch_id}").json()["processing_status"] == "ended"
    http.post("/_emulator/clock", json={"set": "2026-04-01T00:00:00+00:00"})
    assert clock().isoformat() == "2026-04-01T00:00:00+00:00"


def test_the_real_clock_cannot_be_moved(server: tuple[EmulatorApp, str]) -> None:
    """With the system clock, moving time answers 409."""
    app, url = server
    app.emulator = Emulator()
    assert httpx.post(f"{url}/_emulator/clock", json={"advance_s": 1}).status_code == 409


def test_unknown_operator_routes_answer_404(http: httpx.Client) -> None:
    """Typos under /_emulator/ get the error envelope."""
    response = http.get("/_emulator/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
