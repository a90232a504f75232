"""Validating what clients send: create bodies, list queries and batch ids.

Everything malformed becomes a 400 invalid_request_error (never a 500), with a message that
names the offending field the way the real API does (`requests.0.custom_id: ...`).
"""

from __future__ import annotations

import re

import orjson

from cleaner.emulator.wire import invalid

MAX_REQUESTS_PER_BATCH = 100_000
MAX_LIST_LIMIT = 1000
BATCH_ID = re.compile(r"^msgbatch_[A-Za-z0-9_-]{1,64}$")
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def valid_batch_id(batch_id: str) -> bool:
    """Whether `batch_id` could be a batch id at all (else 400, not 404)."""
    return BATCH_ID.match(batch_id) is not None


def parse_create(body: bytes) -> list[str]:
    """Validate a create body; returns the custom_ids. Raises ApiError(400) when invalid."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("request body must be a JSON object")
    for key in data:
        if key != "requests":
            raise invalid(f"{key}: Extra inputs are not permitted")
    requests = data.get("requests")
    if not isinstance(requests, list):
        raise invalid("requests: Field required (a list of {custom_id, params})")
    if not 1 <= len(requests) <= MAX_REQUESTS_PER_BATCH:
        raise invalid(f"requests: must hold 1 to {MAX_REQUESTS_PER_BATCH} items")
    custom_ids: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(requests):
        custom_id = _check_request(index, item)
        if custom_id in seen:
            raise invalid(f"requests.{index}.custom_id: duplicate custom_id {custom_id!r}")
        seen.add(custom_id)
        custom_ids.append(custom_id)
    return custom_ids


def _check_request(index: int, item: object) -> str:
    where = f"requests.{index}"
    if not isinstance(item, dict):
        raise invalid(f"{where}: must be an object with custom_id and params")
    for key in item:
        if key not in ("custom_id", "params"):
            raise invalid(f"{where}.{key}: Extra inputs are not permitted")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
        raise invalid(f"{where}.custom_id: must be 1-64 characters of [a-zA-Z0-9_-]")
    params = item.get("params")
    if not isinstance(params, dict):
        raise invalid(f"{where}.params: Field required (an object)")
    model, max_tokens, messages = (
        params.get("model"),
        params.get("max_tokens"),
        params.get("messages"),
    )
    if not isinstance(model, str) or not model:
        raise invalid(f"{where}.params.model: Field required (a string)")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise invalid(f"{where}.params.max_tokens: must be a positive integer")
    if not isinstance(messages, list):
        raise invalid(f"{where}.params.messages: Field required (a list)")
    return custom_id


def parse_list_query(query: list[tuple[str, str]]) -> tuple[int, str | None, str | None]:
    """limit (1-1000, default 20), after_id, before_id; raises ApiError(400) when invalid."""
    params = dict(query)
    raw_limit = params.get("limit")
    limit = 20
    if raw_limit is not None:
        if not raw_limit.isdigit() or not raw_limit.isascii():
            raise invalid(f"limit: Input should be a valid integer, got {raw_limit!r}")
        limit = int(raw_limit)
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise invalid(f"limit: must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
    after_id, before_id = params.get("after_id"), params.get("before_id")
    if after_id is not None and before_id is not None:
        raise invalid("after_id and before_id cannot be used together")
    for name, value in (("after_id", after_id), ("before_id", before_id)):
        if value is not None and not valid_batch_id(value):
            raise invalid(f"{name}: invalid id {value!r}")
    return limit, after_id, before_id
