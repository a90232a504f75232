"""The JSON shapes the API speaks: MessageBatch, list page, error envelope, results lines.

Kept apart from the HTTP plumbing so the Python API (`Emulator.get`) and the server render
batches identically. Timestamps are RFC 3339 UTC with microseconds and `Z`, always.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import datetime

import orjson

from cleaner.emulator.clock import from_us
from cleaner.emulator.store import BatchRecord, ResultType, archive_us, observe

JsonObject = dict[str, object]


def timestamp(us: int) -> str:
    """`2024-08-20T18:37:24.100435Z` for microseconds since the epoch."""
    return format_datetime(from_us(us))


def format_datetime(moment: datetime) -> str:
    """RFC 3339, UTC, microseconds always shown, `Z` suffix."""
    return f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z"


def request_id() -> str:
    """A fresh `req_…` id, as every response carries."""
    return "req_" + secrets.token_hex(12)


def results_path(batch_id: str) -> str:
    return f"/v1/messages/batches/{batch_id}/results"


def batch_json(record: BatchRecord, now_us: int, base_url: str) -> JsonObject:
    """The MessageBatch object: every documented key (ten), lifecycle applied at `now_us`."""
    seen = observe(record, now_us)
    ended = seen.ended_us is not None
    archived = archive_us(record, seen.ended_us)
    return {
        "id": record.id,
        "type": "message_batch",
        "processing_status": seen.status,
        "request_counts": {
            "processing": seen.processing,
            "succeeded": seen.succeeded,
            "errored": seen.errored,
            "canceled": seen.canceled,
            "expired": seen.expired,
        },
        "ended_at": timestamp(seen.ended_us) if seen.ended_us is not None else None,
        "created_at": timestamp(record.created_us),
        "expires_at": timestamp(record.expires_us),
        "archived_at": timestamp(archived) if archived is not None and now_us >= archived else None,
        "cancel_initiated_at": (
            timestamp(record.cancel_us) if record.cancel_us is not None else None
        ),
        "results_url": base_url + results_path(record.id) if ended else None,
    }


def page_json(data: list[JsonObject], has_more: bool) -> JsonObject:
    """A list page: the four keys are always present."""
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def deleted_json(batch_id: str) -> JsonObject:
    return {"id": batch_id, "type": "message_batch_deleted"}


def error_json(
    error_type: str, message: str, req_id: str, details: JsonObject | None = None
) -> JsonObject:
    """The documented error envelope (`details` only when given, as SDK 2.x reads it)."""
    error: JsonObject = {"type": error_type, "message": message}
    if details is not None:
        error["details"] = details
    return {"type": "error", "error": error, "request_id": req_id}


def result_plan(record: BatchRecord, now_us: int) -> list[tuple[ResultType, int]]:
    """How many results of each kind the batch has, in the order its file lists them."""
    seen = observe(record, now_us)
    return [
        ("succeeded", seen.succeeded),
        ("errored", seen.errored),
        ("canceled", seen.canceled),
        ("expired", seen.expired),
    ]


def result_lines(record: BatchRecord, now_us: int, chunk: int = 1000) -> Iterator[bytes]:
    """The results file in chunks: one JSON object per line, `\\n` endings, no blank lines."""
    plan = result_plan(record, now_us)
    lines: list[bytes] = []
    index = 0
    for kind, count in plan:
        for _ in range(count):
            line = {"custom_id": record.custom_id(index), "result": _result(kind, record, index)}
            lines.append(orjson.dumps(line) + b"\n")
            index += 1
            if len(lines) >= chunk:
                yield b"".join(lines)
                lines = []
    if lines:
        yield b"".join(lines)


def _result(kind: ResultType, record: BatchRecord, index: int) -> JsonObject:
    if kind == "succeeded":
        return {"type": "succeeded", "message": _message(record, index)}
    if kind == "errored":
        return {
            "type": "errored",
            "error": error_json("invalid_request_error", "emulated request error", request_id()),
        }
    return {"type": kind}


def _message(record: BatchRecord, index: int) -> JsonObject:
    return {
        "id": f"msg_{record.id[-16:]}{index:08d}",
        "type": "message",
        "role": "assistant",
        "model": "claude-emulated",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


class ApiError(Exception):
    """An error answer: HTTP status, error type and message for the envelope."""

    def __init__(
        self, status: int, error_type: str, message: str, details: JsonObject | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.details = details


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def not_found(batch_id: str) -> ApiError:
    return ApiError(404, "not_found_error", f"message batch {batch_id!r} not found")


#: The documented error type of each status an emulated refusal may answer with.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def status_error(status: int, message: str) -> ApiError:
    """An error of the documented type for `status` (one of ERROR_TYPES)."""
    return ApiError(status, ERROR_TYPES[status], message)


def state_error(status: int, message: str) -> ApiError:
    """The [assume]d answer to an operation the batch's state forbids: 400 or 409."""
    if status == 409:
        return ApiError(409, "conflict_error", message)
    return ApiError(400, "invalid_request_error", message)
