"""Parsing batches from the API: tolerant of extras, strict about what decisions use."""

from __future__ import annotations

from typing import Any

import pytest

from cleaner.errors import ApiResponseError
from cleaner.models import Batch, ProcessingStatus


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
    batch = Batch.from_api(api_batch())
    assert batch.processing_status is ProcessingStatus.ENDED
    assert batch.created_at.isoformat() == "2024-08-20T18:37:24.100435+00:00"
    assert batch.request_counts.succeeded == 95
    assert batch.ended


@pytest.mark.parametrize(
    "overrides",
    [
        {"processing_status": "archived"},
        {"processing_status": None},
        {"id": None},
        {"id": ""},
        {"created_at": None},
        {"created_at": "yesterday"},
        {"created_at": 1724179044},
        {"created_at": "2024-08-20T18:37:24"},
        {"created_at": "2024-08-20T18:37:24+02:00"},
        {"ended_at": "soon"},
        {"request_counts": None},
        {"request_counts": {"processing": -1}},
        {"request_counts": {"succeeded": "5"}},
        {"request_counts": {"errored": True}},
    ],
)
def test_a_malformed_batch_is_an_error_never_a_guess(overrides: dict[str, Any]) -> None:
    """Unknown statuses, missing or non-UTC times and bad counts are refused."""
    with pytest.raises(ApiResponseError):
        Batch.from_api(api_batch(**overrides))


def test_something_that_is_not_an_object_is_refused() -> None:
    """A list or a string in place of a batch is an error."""
    with pytest.raises(ApiResponseError):
        Batch.from_api(["msgbatch_x"])
