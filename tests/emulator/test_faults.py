"""Fault injection: the shared rate limit and every fault rule kind, asserted on state."""

from __future__ import annotations

import time

import httpx
import pytest

from cleaner.emulator import Emulator, FaultRule
from tests.emulator.conftest import FakeMonotonic

BATCHES = "/v1/messages/batches"


def _ended(emulator: Emulator) -> str:
    return str(emulator.add_batch(status="ended")["id"])


def test_the_rate_limit_answers_429_with_retry_after_once_the_burst_is_spent(
    http: httpx.Client, emulator: Emulator
) -> None:
    """rpm=120 holds two requests; the third gets 429 with retry-after and retry-after-ms."""
    emulator.configure(rate_limit_rpm=120)
    assert [http.get(BATCHES).status_code for _ in range(2)] == [200, 200]
    limited = http.get(BATCHES)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["retry-after-ms"] == "500"


def test_retry_after_is_rounded_up_to_whole_seconds(http: httpx.Client, emulator: Emulator) -> None:
    """At 6 rpm the next token is 10 s away: retry-after 10, retry-after-ms 10000."""
    emulator.configure(rate_limit_rpm=6)
    http.get(BATCHES)
    limited = http.get(BATCHES)
    assert (limited.headers["retry-after"], limited.headers["retry-after-ms"]) == ("10", "10000")


def test_the_bucket_refills_continuously(
    http: httpx.Client, emulator: Emulator, monotonic: FakeMonotonic
) -> None:
    """After waiting what retry-after said, the next request passes."""
    emulator.configure(rate_limit_rpm=60)
    assert http.get(BATCHES).status_code == 200
    assert http.get(BATCHES).status_code == 429
    monotonic.now += 0.5
    assert http.get(BATCHES).status_code == 429
    monotonic.now += 0.5
    assert http.get(BATCHES).status_code == 200


def test_every_batch_endpoint_draws_from_the_same_bucket(
    http: httpx.Client, emulator: Emulator
) -> None:
    """A retrieve spends the token a delete then lacks; both 429s are counted."""
    batch_id = _ended(emulator)
    emulator.configure(rate_limit_rpm=60)
    assert http.get(f"{BATCHES}/{batch_id}").status_code == 200
    assert http.delete(f"{BATCHES}/{batch_id}").status_code == 429
    assert http.get(f"{BATCHES}/{batch_id}/results").status_code == 429
    assert emulator.get(batch_id) is not None
    assert emulator.request_counts[("delete", 429)] == 1
    assert emulator.request_counts[("results", 429)] == 1


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("server_error", 500, "api_error"),
        ("overloaded", 529, "overloaded_error"),
        ("timeout", 504, "timeout_error"),
        ("rate_limit", 429, "rate_limit_error"),
        ("spend_cap", 429, "rate_limit_error"),
        ("not_found", 404, "not_found_error"),
    ],
)
def test_error_faults_answer_their_status_in_the_envelope_and_change_nothing(
    http: httpx.Client, emulator: Emulator, kind: str, status: int, error_type: str
) -> None:
    """Each error kind answers its status and type; the delete it hit did not happen."""
    batch_id = _ended(emulator)
    emulator.configure(faults=(FaultRule(kind=kind),))  # type: ignore[arg-type]
    response = http.delete(f"{BATCHES}/{batch_id}")
    assert response.status_code == status
    assert response.json()["error"]["type"] == error_type
    assert response.json()["request_id"] == response.headers["request-id"]
    assert emulator.get(batch_id) is not None
    assert emulator.journal[-1].fault == kind


def test_a_spend_cap_429_has_no_retry_after_but_a_rate_limit_fault_has(
    http: httpx.Client, emulator: Emulator
) -> None:
    """spend_cap: no retry-after; rate_limit: retry-after from the rule's seconds."""
    emulator.configure(
        faults=(FaultRule(kind="spend_cap", times=1), FaultRule(kind="rate_limit", seconds=2.5))
    )
    capped, limited = http.get(BATCHES), http.get(BATCHES)
    assert "retry-after" not in capped.headers
    assert "retry-after-ms" not in capped.headers
    assert (limited.headers["retry-after"], limited.headers["retry-after-ms"]) == ("3", "2500")


def test_random_errors_pick_among_500_529_and_504_and_replay_with_the_seed(
    http: httpx.Client, emulator: Emulator
) -> None:
    """random_error draws its status from the seeded RNG: same seed, same sequence."""
    rule = FaultRule(kind="random_error", probability=0.5)
    emulator.configure(faults=(rule,), seed=3)
    first = [http.get(BATCHES).status_code for _ in range(40)]
    emulator.configure(faults=(rule,), seed=3)
    second = [http.get(BATCHES).status_code for _ in range(40)]
    assert first == second
    assert set(first) == {200, 500, 529, 504}


def test_a_rule_fires_only_on_its_endpoints_and_only_times_times(
    http: httpx.Client, emulator: Emulator
) -> None:
    """endpoints={"retrieve"}, times=2: two retrieves fail, lists never, then all is well."""
    batch_id = _ended(emulator)
    rule = FaultRule(kind="not_found", endpoints=frozenset({"retrieve"}), times=2)
    emulator.configure(faults=(rule,))
    assert http.get(BATCHES).status_code == 200
    statuses = [http.get(f"{BATCHES}/{batch_id}").status_code for _ in range(3)]
    assert statuses == [404, 404, 200]


def test_a_rule_with_probability_zero_never_fires(http: httpx.Client, emulator: Emulator) -> None:
    """probability=0 is off."""
    emulator.configure(faults=(FaultRule(kind="server_error", probability=0.0),))
    assert {http.get(BATCHES).status_code for _ in range(20)} == {200}


def test_x_should_retry_is_added_when_the_rule_says_so(
    http: httpx.Client, emulator: Emulator
) -> None:
    """should_retry=False adds x-should-retry: false; None adds nothing."""
    emulator.configure(
        faults=(
            FaultRule(kind="server_error", should_retry=False, times=1),
            FaultRule(kind="overloaded", should_retry=True, times=1),
            FaultRule(kind="timeout", times=1),
        )
    )
    headers = [http.get(BATCHES).headers.get("x-should-retry") for _ in range(3)]
    assert headers == ["false", "true", None]


def test_latency_delays_every_answer(http: httpx.Client, emulator: Emulator) -> None:
    """latency_s and latency rules add up before the request is served."""
    emulator.configure(latency_s=0.1, faults=(FaultRule(kind="latency", seconds=0.1),))
    started = time.monotonic()
    assert http.get(BATCHES).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_drop_after_deletes_then_drops_the_connection(
    http: httpx.Client, emulator: Emulator
) -> None:
    """The client sees an incomplete answer, yet the batch is gone; a retry then sees 404."""
    batch_id = _ended(emulator)
    emulator.configure(
        faults=(FaultRule(kind="drop_after", endpoints=frozenset({"delete"}), times=1),)
    )
    with pytest.raises(httpx.RemoteProtocolError):
        http.delete(f"{BATCHES}/{batch_id}")
    assert emulator.get(batch_id) is None
    assert batch_id in emulator.deleted_ids
    entry = emulator.journal[-1]
    assert (entry.batch_id, entry.status, entry.fault) == (batch_id, 200, "drop_after")
    assert http.delete(f"{BATCHES}/{batch_id}").status_code == 404


def test_reset_before_drops_the_connection_without_acting(
    http: httpx.Client, emulator: Emulator
) -> None:
    """The client's connection is reset and the batch is still there; journal status 0."""
    batch_id = _ended(emulator)
    emulator.configure(faults=(FaultRule(kind="reset_before", times=1),))
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        http.delete(f"{BATCHES}/{batch_id}")
    assert emulator.get(batch_id) is not None
    entry = emulator.journal[-1]
    assert (entry.status, entry.fault) == (0, "reset_before")
    assert http.delete(f"{BATCHES}/{batch_id}").status_code == 200


def test_a_hang_makes_the_client_read_time_out_and_changes_nothing(
    http: httpx.Client, emulator: Emulator
) -> None:
    """No answer at all until the client gives up; the delete did not happen."""
    batch_id = _ended(emulator)
    emulator.configure(faults=(FaultRule(kind="hang", seconds=10, times=1),))
    with pytest.raises(httpx.ReadTimeout):
        http.delete(f"{BATCHES}/{batch_id}", timeout=0.3)
    assert emulator.get(batch_id) is not None


def test_a_malformed_answer_is_not_json(http: httpx.Client, emulator: Emulator) -> None:
    """malformed: 200 with a truncated JSON body."""
    emulator.configure(faults=(FaultRule(kind="malformed"),))
    response = http.get(BATCHES)
    assert response.status_code == 200
    with pytest.raises(ValueError, match=r".*"):
        response.json()


def test_faults_never_touch_the_operator_endpoints(http: httpx.Client, emulator: Emulator) -> None:
    """/_emulator/ is exempt from faults and the rate limit."""
    emulator.configure(rate_limit_rpm=1, faults=(FaultRule(kind="server_error"),))
    assert {http.get("/_emulator/health").status_code for _ in range(5)} == {200}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "explode"},
        {"kind": "server_error", "endpoints": frozenset({"everything"})},
        {"kind": "server_error", "probability": 1.5},
        {"kind": "server_error", "times": -1},
    ],
)
def test_invalid_fault_rules_are_refused(kwargs: dict[str, object]) -> None:
    """Unknown kinds or endpoints and out-of-range numbers raise ValueError."""
    with pytest.raises(ValueError, match=r".+"):
        FaultRule(**kwargs)  # type: ignore[arg-type]
