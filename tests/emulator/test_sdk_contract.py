"""The official SDK (2.10, strict validation) cannot tell the emulator from the real API."""

from __future__ import annotations

import anthropic
import pytest
from anthropic.types.messages import MessageBatch

from cleaner.emulator import Emulator, FaultRule, ManualClock, Population, WorkspaceSpec
from tests.emulator.conftest import KEY, PARAMS

DAY_S = 86400
TEAM_A_KEY = "sk-sdk-team-a-key"
TEAM_B_KEY = "sk-sdk-team-b-key"


def _create(sdk: anthropic.Anthropic, n: int = 1) -> MessageBatch:
    requests = [{"custom_id": f"r{i}", "params": PARAMS} for i in range(n)]
    return sdk.messages.batches.create(requests=requests)  # type: ignore[arg-type]


def test_creating_a_batch_returns_it_in_progress_with_every_request_processing(
    sdk: anthropic.Anthropic, clock: ManualClock
) -> None:
    """Create answers a MessageBatch that is in_progress with all requests processing."""
    batch = _create(sdk, 3)
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3
    assert batch.created_at == clock()
    assert (batch.expires_at - batch.created_at).total_seconds() == DAY_S
    assert batch.ended_at is None
    assert batch.results_url is None


def test_retrieving_a_batch_returns_the_same_batch(sdk: anthropic.Anthropic) -> None:
    """Retrieve answers the batch that create made."""
    created = _create(sdk)
    assert sdk.messages.batches.retrieve(created.id) == created


@pytest.mark.parametrize("limit", [7, 1000])
def test_auto_paginating_2500_batches_yields_each_once_newest_first(
    sdk: anthropic.Anthropic, emulator: Emulator, limit: int
) -> None:
    """Auto-pagination over 2,500 batches sees every batch exactly once, newest first."""
    emulator.seed(Population(count=2500, status="ended", age_s=40 * DAY_S, spread_s=10 * DAY_S))
    listed = list(sdk.messages.batches.list(limit=limit))
    ids = [batch.id for batch in listed]
    assert sorted(ids) == sorted(b["id"] for b in emulator.batches())  # type: ignore[type-var]
    assert len(set(ids)) == 2500
    created = [batch.created_at for batch in listed]
    assert created == sorted(created, reverse=True)


def test_paging_backwards_with_before_id_returns_the_newer_batches(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """A page fetched with before_id holds the batches just newer than the cursor."""
    emulator.seed(Population(count=30, status="ended", age_s=2 * DAY_S, spread_s=DAY_S))
    everything = [b.id for b in sdk.messages.batches.list(limit=1000)]
    page = sdk.messages.batches.list(limit=5, before_id=everything[20])
    assert [b.id for b in page.data] == everything[15:20]
    assert page.has_more is True


def test_canceling_a_running_batch_makes_it_canceling_then_ended(
    sdk: anthropic.Anthropic, clock: ManualClock
) -> None:
    """Cancel answers the batch canceling; after the settle time it has ended, canceled."""
    batch = _create(sdk, 2)
    canceling = sdk.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at == clock()
    clock.advance(30)
    ended = sdk.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.canceled + ended.request_counts.succeeded == 2
    assert ended.results_url is not None


def test_deleting_an_ended_batch_answers_the_deleted_marker(
    sdk: anthropic.Anthropic, emulator: Emulator, clock: ManualClock
) -> None:
    """Delete of an ended batch answers {id, type: message_batch_deleted} and forgets it."""
    batch = _create(sdk)
    clock.advance(300)
    deleted = sdk.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    assert emulator.get(batch.id) is None
    assert batch.id in emulator.deleted_ids


def test_results_yield_one_line_per_request_matching_the_counts(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """Iterating results gives one typed line per request, agreeing with request_counts."""
    (batch_id,) = emulator.seed(
        Population(count=1, status="ended", age_s=DAY_S, request_count=20, errored_fraction=0.25)
    )
    batch = sdk.messages.batches.retrieve(batch_id)
    lines = list(sdk.messages.batches.results(batch_id))
    assert len(lines) == 20
    assert len({line.custom_id for line in lines}) == 20
    kinds = [line.result.type for line in lines]
    assert kinds.count("succeeded") == batch.request_counts.succeeded == 15
    assert kinds.count("errored") == batch.request_counts.errored == 5


def test_results_of_a_created_batch_carry_its_custom_ids(
    sdk: anthropic.Anthropic, clock: ManualClock
) -> None:
    """The results file names the custom_ids the batch was created with."""
    batch = _create(sdk, 3)
    clock.advance(300)
    assert {line.custom_id for line in sdk.messages.batches.results(batch.id)} == {
        "r0",
        "r1",
        "r2",
    }


def test_the_beta_client_reaches_every_endpoint(
    sdk: anthropic.Anthropic, clock: ManualClock
) -> None:
    """client.beta.messages.batches: create, retrieve, list, cancel, results and delete work."""
    beta = sdk.beta.messages.batches
    requests = [{"custom_id": "b0", "params": PARAMS}]
    batch = beta.create(requests=requests)  # type: ignore[arg-type]
    assert beta.retrieve(batch.id).id == batch.id
    assert [b.id for b in beta.list()] == [batch.id]
    assert beta.cancel(batch.id).processing_status == "canceling"
    clock.advance(60)
    assert [line.custom_id for line in beta.results(batch.id)] == ["b0"]
    assert beta.delete(batch.id).type == "message_batch_deleted"


def _running(emulator: Emulator) -> str:
    return emulator.add_batch(status="in_progress")["id"]  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        ("server_error", anthropic.InternalServerError),
        ("overloaded", anthropic.OverloadedError),
        ("timeout", anthropic.GatewayTimeoutError),
        ("rate_limit", anthropic.RateLimitError),
        ("spend_cap", anthropic.RateLimitError),
        ("not_found", anthropic.NotFoundError),
    ],
)
def test_each_injected_error_raises_the_matching_sdk_exception(
    sdk: anthropic.Anthropic, emulator: Emulator, fault: str, error_class: type[Exception]
) -> None:
    """Injected 500/529/504/429/404 answers raise the SDK's class for that status."""
    batch_id = _running(emulator)
    emulator.configure(faults=(FaultRule(kind=fault),))  # type: ignore[arg-type]
    with pytest.raises(error_class):
        sdk.messages.batches.retrieve(batch_id)


def test_an_overloaded_answer_is_an_api_status_error_with_status_529(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """529 surfaces as an APIStatusError whose status_code is 529."""
    batch_id = _running(emulator)
    emulator.configure(faults=(FaultRule(kind="overloaded"),))
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk.messages.batches.retrieve(batch_id)
    assert caught.value.status_code == 529
    assert caught.value.type == "overloaded_error"


def test_deleting_a_running_batch_raises_bad_request_by_default(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """Delete of an in_progress batch raises BadRequestError (400 invalid_request_error)."""
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.batches.delete(_running(emulator))


def test_deleting_a_running_batch_raises_conflict_when_switched(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """With delete_running_status=409 the SDK raises ConflictError."""
    emulator.configure(delete_running_status=409)
    with pytest.raises(anthropic.ConflictError):
        sdk.messages.batches.delete(_running(emulator))


def test_a_wrong_key_raises_authentication_error(base_url: str) -> None:
    """A client with the wrong key gets AuthenticationError."""
    client = anthropic.Anthropic(api_key="wrong", base_url=base_url, max_retries=0)
    with client, pytest.raises(anthropic.AuthenticationError):
        client.messages.batches.list()


def test_an_unknown_batch_raises_not_found(sdk: anthropic.Anthropic) -> None:
    """Retrieve of an id that never existed raises NotFoundError."""
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.retrieve("msgbatch_" + "0" * 24)


def test_the_spend_cap_raises_the_sdks_spend_limit_error_without_retry_after(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """The monthly-spend-cap 429 has no retry-after and carries the SDK's error code."""
    emulator.configure(faults=(FaultRule(kind="spend_cap"),))
    with pytest.raises(anthropic.RateLimitError) as caught:
        sdk.messages.batches.list()
    assert "retry-after" not in caught.value.response.headers
    assert caught.value.error_code == "enforced_spend_limit_reached"


def test_a_dropped_connection_raises_api_connection_error(
    sdk: anthropic.Anthropic, emulator: Emulator
) -> None:
    """drop_after and reset_before both surface as APIConnectionError."""
    batch_id = _running(emulator)
    for kind in ("drop_after", "reset_before"):
        emulator.configure(faults=(FaultRule(kind=kind),))
        with pytest.raises(anthropic.APIConnectionError):
            sdk.messages.batches.retrieve(batch_id)


def test_a_hang_raises_api_timeout_error(base_url: str, emulator: Emulator) -> None:
    """A hanging answer makes the SDK time out (APITimeoutError)."""
    emulator.configure(faults=(FaultRule(kind="hang", seconds=5),))
    client = anthropic.Anthropic(api_key=KEY, base_url=base_url, max_retries=0, timeout=0.3)
    with client, pytest.raises(anthropic.APITimeoutError):
        client.messages.batches.list()


def test_a_malformed_body_raises_an_sdk_error(sdk: anthropic.Anthropic, emulator: Emulator) -> None:
    """A 200 whose body is not JSON makes the SDK raise rather than return a batch."""
    batch_id = _running(emulator)
    emulator.configure(faults=(FaultRule(kind="malformed"),))
    with pytest.raises((anthropic.APIResponseValidationError, ValueError)):
        sdk.messages.batches.retrieve(batch_id)


def test_an_sdk_client_with_a_workspace_key_sees_only_that_workspaces_batches(
    base_url: str, emulator: Emulator
) -> None:
    """Team A's client lists, retrieves and creates only in A; B's batches are 404 to it."""
    emulator.configure(
        workspaces=(
            WorkspaceSpec("a", keys=frozenset({TEAM_A_KEY})),
            WorkspaceSpec("b", keys=frozenset({TEAM_B_KEY})),
        )
    )
    a_ids = emulator.seed(Population(count=25, status="ended", age_s=DAY_S, workspace="a"))
    b_ids = emulator.seed(Population(count=9, status="ended", age_s=DAY_S, workspace="b"))
    team_a = anthropic.Anthropic(api_key=TEAM_A_KEY, base_url=base_url, max_retries=0)
    with team_a:
        assert sorted(b.id for b in team_a.messages.batches.list(limit=7)) == sorted(a_ids)
        assert team_a.messages.batches.retrieve(a_ids[0]).id == a_ids[0]
        with pytest.raises(anthropic.NotFoundError):
            team_a.messages.batches.retrieve(b_ids[0])
        created = _create(team_a)
        page = team_a.messages.batches.with_raw_response.list(limit=1)
        assert page.headers["anthropic-workspace-id"] == "wrkspc_a"
    assert emulator.workspace_of(created.id) == "wrkspc_a"
    assert len(emulator.batches("b")) == 9


def test_an_sdk_client_sending_another_workspace_id_gets_permission_denied(
    base_url: str, emulator: Emulator
) -> None:
    """anthropic-workspace-id naming another workspace raises PermissionDeniedError (403)."""
    emulator.configure(workspaces=(WorkspaceSpec("a", keys=frozenset({TEAM_A_KEY})),))
    client = anthropic.Anthropic(
        api_key=TEAM_A_KEY,
        base_url=base_url,
        max_retries=0,
        default_headers={"anthropic-workspace-id": "wrkspc_default"},
    )
    with client, pytest.raises(anthropic.PermissionDeniedError):
        client.messages.batches.list()
