"""Parsing batches from the API: tolerant of extras, strict about what decisions use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cleaner.errors import ApiResponseError
from cleaner.models import Batch, ProcessingStatus, parse_processing_status
from cleaner.wire import parse_batch


def api_batch(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {
            "processing": 0,
            "succeeded": 95,
            "errored": 3,
            "canceled": 1,
            "expired": 1,
        },
        "ended_at": "2024-08-20T18:37:24.100435Z",
        "created_at": "2024-08-20T18:37:24.100435Z",
        "expires_at": "2024-08-21T18:37:24.100435Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": "https://api.anthropic.com/v1/messages/batches/x/results",
        "some_future_key": {"nested": True},
    }
    data.update(overrides)
    return data


def test_a_documented_batch_parses_and_unknown_keys_are_ignored() -> None:
    """The documented example parses; a key added by a later API version does no harm."""
    batch = parse_batch(api_batch())
    assert batch.processing_status is ProcessingStatus.ENDED
    assert batch.created_at.isoformat() == "2024-08-20T18:37:24.100435+00:00"
    assert batch.request_counts.succeeded == 95
    assert batch.ended
    assert batch.archived_at is None
    assert batch.results_url == "https://api.anthropic.com/v1/messages/batches/x/results"


def test_archived_at_is_parsed_as_a_utc_time() -> None:
    """The provider's archive time is read like every other timestamp."""
    batch = parse_batch(api_batch(archived_at="2024-09-18T18:37:24.100435Z"))
    assert batch.archived_at is not None
    assert batch.archived_at.isoformat() == "2024-09-18T18:37:24.100435+00:00"


def test_a_batch_without_results_has_no_results_url() -> None:
    """A running batch's null results_url stays None."""
    batch = parse_batch(api_batch(processing_status="in_progress", results_url=None))
    assert batch.results_url is None
    assert batch.processing_status is ProcessingStatus.IN_PROGRESS


def test_an_unknown_processing_status_parses_as_its_raw_string() -> None:
    """A newer API's status is kept as text, so one odd batch cannot fail a listing."""
    batch = parse_batch(api_batch(processing_status="archiving"))
    assert batch.processing_status == "archiving"
    assert not isinstance(batch.processing_status, ProcessingStatus)
    assert not batch.status_known
    assert not batch.ended


@pytest.mark.parametrize("status", list(ProcessingStatus))
def test_a_documented_status_given_as_text_becomes_its_member(status: ProcessingStatus) -> None:
    """Batch("ended") and Batch(ProcessingStatus.ENDED) are the same batch."""
    assert parse_processing_status(status.value) is status
    made = Batch(id="b", processing_status=status.value, created_at=api_created())
    assert made.processing_status is status
    assert made == Batch(id="b", processing_status=status, created_at=api_created())


@pytest.mark.parametrize(
    "overrides",
    [
        {"processing_status": None},
        {"processing_status": 3},
        {"processing_status": ""},
        {"id": None},
        {"id": ""},
        {"created_at": None},
        {"created_at": "yesterday"},
        {"created_at": 1724179044},
        {"created_at": "2024-08-20T18:37:24"},
        {"created_at": "2024-08-20T18:37:24+02:00"},
        {"ended_at": "soon"},
        {"archived_at": "2024-09-18"},
        {"results_url": 42},
        {"request_counts": None},
        {"request_counts": {"processing": -1}},
        {"request_counts": {"succeeded": "5"}},
        {"request_counts": {"errored": True}},
    ],
)
def test_a_malformed_batch_is_an_error_never_a_guess(overrides: dict[str, Any]) -> None:
    """Missing statuses and ids, missing or non-UTC times and bad counts are refused."""
    with pytest.raises(ApiResponseError):
        parse_batch(api_batch(**overrides))


def api_created() -> datetime:
    return datetime(2024, 8, 20, 18, 37, 24, tzinfo=UTC)


def test_something_that_is_not_an_object_is_refused() -> None:
    """A list or a string in place of a batch is an error."""
    with pytest.raises(ApiResponseError):
        parse_batch(["msgbatch_x"])
