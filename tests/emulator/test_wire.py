"""Wire details the contract names: headers, key styles, versions, envelope, formats."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from cleaner.emulator import Emulator, ManualClock, Population
from tests.emulator.conftest import KEY

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
# The contract says "eleven keys" but lists ten, and the SDK's MessageBatch has these ten.
BATCH_KEYS = {
    "id",
    "type",
    "processing_status",
    "request_counts",
    "ended_at",
    "created_at",
    "expires_at",
    "archived_at",
    "cancel_initiated_at",
    "results_url",
}
DAY_S = 86400


def _ended(emulator: Emulator, *, request_count: int = 1, age_s: float = DAY_S) -> str:
    population = Population(count=1, status="ended", age_s=age_s, request_count=request_count)
    (batch_id,) = emulator.seed(population)
    return batch_id


def _assert_error(response: httpx.Response, status: int, error_type: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str)
    assert body["request_id"] == response.headers["request-id"]
    assert isinstance(body, dict)
    return body


def test_the_old_header_style_x_api_key_with_2023_06_01_is_accepted(http: httpx.Client) -> None:
    """x-api-key with anthropic-version 2023-06-01 lists batches."""
    assert http.get("/v1/messages/batches").status_code == 200


def test_the_sdk_2_header_style_bearer_with_2026_10_21_is_accepted(base_url: str) -> None:
    """Authorization: Bearer with anthropic-version 2026-10-21 lists batches."""
    headers = {"authorization": f"Bearer {KEY}", "anthropic-version": "2026-10-21"}
    assert httpx.get(f"{base_url}/v1/messages/batches", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"anthropic-version": "2023-06-01"},
        {"x-api-key": "wrong", "anthropic-version": "2023-06-01"},
        {"authorization": "Bearer wrong", "anthropic-version": "2023-06-01"},
        {"authorization": f"Basic {KEY}", "anthropic-version": "2023-06-01"},
    ],
)
def test_a_missing_or_wrong_key_answers_401(base_url: str, headers: dict[str, str]) -> None:
    """Without the configured key the answer is 401 authentication_error."""
    response = httpx.get(f"{base_url}/v1/messages/batches", headers=headers)
    _assert_error(response, 401, "authentication_error")


def test_any_key_or_none_is_accepted_when_no_key_is_configured(
    base_url: str, emulator: Emulator
) -> None:
    """With api_key=None the key is not checked at all."""
    emulator.configure(api_key=None)
    response = httpx.get(
        f"{base_url}/v1/messages/batches", headers={"anthropic-version": "2023-06-01"}
    )
    assert response.status_code == 200


def test_a_missing_version_header_answers_400_with_the_known_message(base_url: str) -> None:
    """No anthropic-version: 400 "anthropic-version: header is required"."""
    response = httpx.get(f"{base_url}/v1/messages/batches", headers={"x-api-key": KEY})
    body = _assert_error(response, 400, "invalid_request_error")
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


def test_an_unknown_version_answers_400(base_url: str) -> None:
    """An anthropic-version the API does not know is refused."""
    headers = {"x-api-key": KEY, "anthropic-version": "1999-01-01"}
    response = httpx.get(f"{base_url}/v1/messages/batches", headers=headers)
    _assert_error(response, 400, "invalid_request_error")


def test_beta_headers_comma_separated_or_repeated_and_the_beta_query_are_accepted(
    http: httpx.Client,
) -> None:
    """anthropic-beta as a list or repeated header, and ?beta=true, change nothing."""
    comma = http.get(
        "/v1/messages/batches?beta=true",
        headers={"anthropic-beta": "message-batches-2024-09-24,files-api-2025-04-14"},
    )
    repeated = http.get(
        "/v1/messages/batches",
        params={"beta": "true"},
        headers=[("anthropic-beta", "message-batches-2024-09-24"), ("anthropic-beta", "x")],
    )
    assert comma.status_code == repeated.status_code == 200


def test_every_answer_carries_a_request_id_and_errors_echo_it(http: httpx.Client) -> None:
    """request-id: req_… on successes and errors; the envelope repeats it."""
    ok = http.get("/v1/messages/batches")
    missing = http.get("/v1/messages/batches/msgbatch_" + "x" * 24)
    assert ok.headers["request-id"].startswith("req_")
    assert ok.headers["request-id"] != missing.headers["request-id"]
    _assert_error(missing, 404, "not_found_error")


def test_a_batch_has_every_documented_key_with_microsecond_utc_timestamps(
    http: httpx.Client, emulator: Emulator
) -> None:
    """All keys present, request_counts complete, timestamps like 2024-08-20T18:37:24.100435Z."""
    batch_id = _ended(emulator, age_s=40 * DAY_S)
    body = http.get(f"/v1/messages/batches/{batch_id}").json()
    assert set(body) == BATCH_KEYS
    assert set(body["request_counts"]) == {
        "processing",
        "succeeded",
        "errored",
        "canceled",
        "expired",
    }
    for key in ("created_at", "expires_at", "ended_at", "archived_at"):
        assert TIMESTAMP.match(body[key]), body[key]


def test_cancel_and_delete_accept_a_json_content_type_with_an_empty_body(
    http: httpx.Client, emulator: Emulator
) -> None:
    """POST cancel and DELETE with content-type: application/json and no body succeed."""
    running = emulator.add_batch(status="in_progress")["id"]
    ended = _ended(emulator)
    headers = {"content-type": "application/json"}
    cancel = http.post(f"/v1/messages/batches/{running}/cancel", headers=headers, content=b"")
    delete = http.request("DELETE", f"/v1/messages/batches/{ended}", headers=headers, content=b"")
    assert (cancel.status_code, delete.status_code) == (200, 200)
    assert delete.json() == {"id": ended, "type": "message_batch_deleted"}


def test_results_are_json_lines_with_newline_endings_and_no_blank_lines(
    http: httpx.Client, emulator: Emulator
) -> None:
    """application/x-jsonl, one object per line, only \\n, nothing blank, count lines."""
    batch_id = _ended(emulator, request_count=2500)
    response = http.get(f"/v1/messages/batches/{batch_id}/results")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-jsonl"
    assert b"\r" not in response.content
    assert response.content.endswith(b"\n")
    lines = response.content.split(b"\n")[:-1]
    assert len(lines) == 2500
    assert all(line.startswith(b'{"custom_id":') for line in lines)


def test_results_url_points_back_at_the_emulator(
    http: httpx.Client, emulator: Emulator, base_url: str
) -> None:
    """results_url is this emulator's absolute URL, and fetching it works."""
    batch_id = _ended(emulator)
    url = http.get(f"/v1/messages/batches/{batch_id}").json()["results_url"]
    assert url == f"{base_url}/v1/messages/batches/{batch_id}/results"
    assert httpx.get(url, headers=dict(http.headers)).status_code == 200


def test_results_of_a_running_batch_answer_400(http: httpx.Client, emulator: Emulator) -> None:
    """No results before the batch has ended."""
    running = emulator.add_batch(status="in_progress")["id"]
    _assert_error(http.get(f"/v1/messages/batches/{running}/results"), 400, "invalid_request_error")


def test_results_after_archiving_answer_404(
    http: httpx.Client, emulator: Emulator, clock: ManualClock
) -> None:
    """Past 29 days after creation the results are gone (archived_at is set)."""
    batch_id = _ended(emulator, age_s=28 * DAY_S)
    assert http.get(f"/v1/messages/batches/{batch_id}/results").status_code == 200
    clock.advance(DAY_S)
    assert http.get(f"/v1/messages/batches/{batch_id}").json()["archived_at"] is not None
    _assert_error(http.get(f"/v1/messages/batches/{batch_id}/results"), 404, "not_found_error")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/models", 404),
        ("GET", "/v1/messages/batches/msgbatch_abc/nothing", 404),
        ("PUT", "/v1/messages/batches", 405),
        ("GET", "/v1/messages/batches/msgbatch_abc/cancel", 405),
    ],
)
def test_unknown_routes_and_methods_answer_the_error_envelope(
    http: httpx.Client, method: str, path: str, status: int
) -> None:
    """Anything off the map answers 404/405 in the envelope, never a bare page."""
    response = http.request(method, path)
    assert response.status_code == status
    assert response.json()["type"] == "error"
    assert response.headers["request-id"].startswith("req_")


def test_the_list_page_always_has_its_four_keys(
    http: httpx.Client, create_batch: Callable[..., dict[str, object]]
) -> None:
    """An empty page says data [], has_more false, first_id and last_id null."""
    assert http.get("/v1/messages/batches").json() == {
        "data": [],
        "has_more": False,
        "first_id": None,
        "last_id": None,
    }
    batch = create_batch()
    page = http.get("/v1/messages/batches").json()
    assert (page["first_id"], page["last_id"], page["has_more"]) == (
        batch["id"],
        batch["id"],
        False,
    )
