"""Bad input answers the documented 400 envelope, never a 500 or a traceback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleaner.emulator import Emulator, EmulatorConfig, Population
from cleaner.emulator.asgi import MAX_BODY_BYTES
from cleaner.emulator.server import serve_in_thread
from tests.emulator.conftest import KEY, PARAMS

HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def _assert_400(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["request_id"] == response.headers["request-id"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"not json",
        b"[]",
        b'"requests"',
        b"{}",
        b'{"requests": {}}',
        b'{"requests": []}',
        orjson.dumps({"requests": [{"custom_id": "a", "params": PARAMS}], "extra": 1}),
        orjson.dumps({"requests": [{"custom_id": "a", "params": PARAMS, "extra": 1}]}),
        orjson.dumps({"requests": [{"custom_id": 7, "params": PARAMS}]}),
        orjson.dumps({"requests": [{"custom_id": "", "params": PARAMS}]}),
        orjson.dumps({"requests": [{"custom_id": "x" * 65, "params": PARAMS}]}),
        orjson.dumps({"requests": [{"custom_id": "spaces not ok", "params": PARAMS}]}),
        orjson.dumps({"requests": [{"custom_id": "a"}]}),
        orjson.dumps({"requests": [{"custom_id": "a", "params": []}]}),
        orjson.dumps({"requests": [{"custom_id": "a", "params": {**PARAMS, "max_tokens": "9"}}]}),
        orjson.dumps({"requests": [{"custom_id": "a", "params": {**PARAMS, "max_tokens": True}}]}),
        orjson.dumps({"requests": [{"custom_id": "a", "params": {**PARAMS, "model": 3}}]}),
        orjson.dumps({"requests": [{"custom_id": "a", "params": {**PARAMS, "messages": "x"}}]}),
        orjson.dumps({"requests": [{"custom_id": "a", "params": PARAMS}] * 2}),
        orjson.dumps({"requests": ["a"]}),
    ],
)
def test_a_malformed_create_body_answers_400(http: httpx.Client, body: bytes) -> None:
    """Broken JSON, unknown fields, wrong types, bad or duplicate custom_ids: all 400."""
    _assert_400(http.post("/v1/messages/batches", content=body))


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "", "1.5", "1e3", "٣", " 5"])
def test_an_out_of_range_or_non_integer_limit_answers_400(http: httpx.Client, limit: str) -> None:
    """limit must be an integer from 1 to 1000."""
    _assert_400(http.get("/v1/messages/batches", params={"limit": limit}))


@pytest.mark.parametrize("limit", ["1", "1000", "20"])
def test_limits_at_the_edges_of_the_range_are_accepted(http: httpx.Client, limit: str) -> None:
    """1 and 1000 are valid limits."""
    assert http.get("/v1/messages/batches", params={"limit": limit}).status_code == 200


@pytest.mark.parametrize("batch_id", ["foo", "msgbatch_", "msgbatch_a!b", "msgbatch_" + "a" * 65])
def test_a_malformed_batch_id_answers_400(http: httpx.Client, batch_id: str) -> None:
    """Ids that cannot be batch ids are refused as invalid, on every endpoint."""
    _assert_400(http.get(f"/v1/messages/batches/{batch_id}"))
    _assert_400(http.delete(f"/v1/messages/batches/{batch_id}"))
    _assert_400(http.post(f"/v1/messages/batches/{batch_id}/cancel"))
    _assert_400(http.get("/v1/messages/batches", params={"after_id": batch_id}))


def test_a_well_formed_unknown_cursor_answers_404(http: httpx.Client) -> None:
    """A cursor naming a batch that never existed is not found."""
    response = http.get("/v1/messages/batches", params={"after_id": "msgbatch_" + "0" * 24})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_after_id_and_before_id_together_answer_400(http: httpx.Client, emulator: Emulator) -> None:
    """Both cursors at once are refused."""
    ids = emulator.seed(Population(count=2, status="ended", age_s=3600))
    _assert_400(http.get("/v1/messages/batches", params={"after_id": ids[0], "before_id": ids[1]}))


def test_an_oversized_body_answers_413(http: httpx.Client) -> None:
    """A body beyond the limit answers 413 request_too_large."""
    response = http.post("/v1/messages/batches", content=b" " * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


@pytest.fixture(scope="module")
def lenient_url() -> Iterator[str]:
    """A module-wide emulator for property tests (hypothesis runs many examples per test)."""
    with serve_in_thread(Emulator(EmulatorConfig(api_key=KEY))) as url:
        yield url


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=10,
        ).map(orjson.dumps),
    )
)
def test_no_create_body_makes_the_emulator_fail(lenient_url: str, body: bytes) -> None:
    """Whatever the create body, the answer is 200 or a 4xx envelope, never 5xx."""
    response = httpx.post(f"{lenient_url}/v1/messages/batches", content=body, headers=HEADERS)
    assert response.status_code in (200, 400), response.text
    assert "type" in response.json()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.dictionaries(
        st.sampled_from(["limit", "after_id", "before_id", "beta", "x"]),
        st.text(max_size=30),
        max_size=3,
    )
)
def test_no_list_query_makes_the_emulator_fail(lenient_url: str, query: dict[str, str]) -> None:
    """Whatever the list query, the answer is 200, 400 or 404 in the envelope, never 5xx."""
    response = httpx.get(f"{lenient_url}/v1/messages/batches", params=query, headers=HEADERS)
    assert response.status_code in (200, 400, 404), response.text
    assert response.json()
