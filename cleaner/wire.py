"""The API's JSON, read at the boundary: every shape is checked before it becomes a value.

The domain values (:mod:`cleaner.models`) know nothing of the wire; this module turns a
MessageBatch object, a listing page, a delete confirmation or an error envelope into them,
and raises :class:`ApiResponseError` for anything malformed, so a hostile or broken
response can never be mistaken for an ended, expired batch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from cleaner.errors import ApiResponseError
from cleaner.models import Batch, ProcessingStatus, RequestCounts, parse_processing_status


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the listing, newest batch first."""

    batches: list[Batch]
    has_more: bool
    first_id: str | None
    last_id: str | None


@dataclass(frozen=True, slots=True)
class Deletion:
    """The API's confirmation of one deletion, verbatim, and the request that got it."""

    confirmation: dict[str, Any]
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP exchange with the API ended: a status, or how it failed."""

    endpoint: str
    status: int | None  # None when no response arrived
    failure: str | None = None  # "timeout" or "connection_error" when status is None
    retry: bool = False  # a later attempt of a call whose earlier attempt failed

    @property
    def label(self) -> str:
        """The status as a metric label: the number, or the kind of failure."""
        return str(self.status) if self.status is not None else (self.failure or "error")

    @property
    def answered(self) -> bool:
        """The API answered, with a status that shows our credentials are usable."""
        return self.status is not None and self.status not in (401, 403)


@dataclass(slots=True)
class ClientStats:
    """What the client did, over its lifetime, for the benchmarks and tests."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    responses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, status)


def parse_batch(data: object) -> Batch:
    """Parse one MessageBatch object, tolerating unknown extra keys.

    Raises :class:`ApiResponseError` for anything that is not a well-formed batch, so a
    hostile or broken response can never be mistaken for an ended, expired batch.
    """
    if not isinstance(data, Mapping):
        raise ApiResponseError(f"batch is not an object: {type(data).__name__}")
    batch_id = data.get("id")
    if not isinstance(batch_id, str) or not batch_id:
        raise ApiResponseError(f"batch has no string id: {batch_id!r}")
    status = _status(batch_id, data.get("processing_status"))
    created_at = _timestamp(batch_id, "created_at", data.get("created_at"))
    if created_at is None:
        raise ApiResponseError(f"batch {batch_id} has no created_at")
    ended_at = _timestamp(batch_id, "ended_at", data.get("ended_at"))
    canceled_at = _timestamp(batch_id, "cancel_initiated_at", data.get("cancel_initiated_at"))
    return Batch(
        id=batch_id,
        processing_status=status,
        created_at=created_at,
        ended_at=ended_at,
        cancel_initiated_at=canceled_at,
        request_counts=_counts(batch_id, data.get("request_counts")),
        archived_at=_timestamp(batch_id, "archived_at", data.get("archived_at")),
        results_url=_results_url(batch_id, data.get("results_url")),
    )


def _status(batch_id: str, value: object) -> ProcessingStatus | str:
    # Only a missing or non-string status is malformed; an unknown string is a newer API.
    if not isinstance(value, str) or not value:
        raise ApiResponseError(f"batch {batch_id} has a non-string processing_status: {value!r}")
    return parse_processing_status(value)


def _results_url(batch_id: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ApiResponseError(f"batch {batch_id} has a non-string results_url: {value!r}")


def _timestamp(batch_id: str, key: str, value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiResponseError(f"batch {batch_id} has a non-string {key}: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiResponseError(f"batch {batch_id} has a malformed {key}: {value!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        # A naive or shifted timestamp would silently skew every age computed from it.
        raise ApiResponseError(f"batch {batch_id} has a {key} not in UTC: {value!r}")
    return parsed


def _counts(batch_id: str, value: object) -> RequestCounts:
    if not isinstance(value, Mapping):
        raise ApiResponseError(f"batch {batch_id} has no request_counts object")
    numbers: dict[str, int] = {}
    for key in ("processing", "succeeded", "errored", "canceled", "expired"):
        number = value.get(key, 0)
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ApiResponseError(f"batch {batch_id} has a bad request_counts.{key}: {number!r}")
        numbers[key] = number
    return RequestCounts(**numbers)


def parse_page(data: Any) -> Page:
    if not isinstance(data, dict):
        raise ApiResponseError("a listing page is not a JSON object")
    items, has_more = data.get("data"), data.get("has_more")
    if not isinstance(items, list) or not isinstance(has_more, bool):
        raise ApiResponseError("a listing page lacks a data list or a boolean has_more")
    first_id, last_id = data.get("first_id"), data.get("last_id")
    if not (first_id is None or isinstance(first_id, str)) or not (
        last_id is None or isinstance(last_id, str)
    ):
        raise ApiResponseError("a listing page has non-string cursors")
    batches = [parse_batch(item) for item in items]
    if batches and last_id != batches[-1].id:
        raise ApiResponseError("a listing page's last_id is not its last batch")
    return Page(batches=batches, has_more=has_more, first_id=first_id, last_id=last_id)


def checked(batch: Batch, batch_id: str) -> Batch:
    if batch.id != batch_id:
        raise ApiResponseError(f"asked for {batch_id}, the API answered with {batch.id}")
    return batch


def safe_id(batch_id: str) -> str:
    """Ids are opaque, but one must never be able to change the path it is put in."""
    if not batch_id or any(ch in batch_id for ch in "/?#%\\ ") or batch_id in {".", ".."}:
        raise ApiResponseError(f"refusing to use a malformed batch id: {batch_id!r}")
    return batch_id


def parse_deletion(data: Any, batch_id: str, request_id: str | None) -> Deletion:
    """The confirmation of deleting ``batch_id``; anything else was not a deletion."""
    if (
        not isinstance(data, dict)
        or data.get("id") != batch_id
        or data.get("type") != "message_batch_deleted"
    ):
        raise ApiResponseError(f"delete of {batch_id} was not confirmed: {data!r:.200}")
    return Deletion(confirmation=data, request_id=request_id)


MAX_WAIT_S = 600.0  # an absurd wait is a bug upstream; cap it


def retry_after_s(headers: Mapping[str, str], *, now: datetime) -> float | None:
    """How long the server asks to wait, or None when it does not say.

    ``retry-after-ms`` wins over ``retry-after``, like the SDKs read them; ``retry-after`` is
    seconds or an HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime
    forms), a date being read against ``now``. A date already past means "now" (0 s).
    """
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            value = seconds_until(raw, now) if scale == 1.0 else math.nan
        if math.isfinite(value) and value >= 0:
            return min(value, MAX_WAIT_S)  # an absurd wait is a bug upstream; cap it
    return None


def seconds_until(http_date: str, now: datetime) -> float:
    """Seconds from ``now`` until an HTTP date (NaN when it is not one)."""
    try:
        moment = parsedate_to_datetime(http_date.strip())
    except (ValueError, TypeError, IndexError):
        return math.nan
    if moment.tzinfo is None:  # asctime carries no zone; HTTP dates are always GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def error_envelope(body: bytes) -> tuple[str, str, str | None, str | None]:
    """(error.type, error.message, request_id, error.details.error_code) from an error body.

    Anything missing or of the wrong type reads as empty: an error without the envelope
    (e.g. from a proxy) keeps only its status.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", "", None, None
    if not isinstance(data, dict):
        return "", "", None, None
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    request_id = data.get("request_id")
    return (
        str(error.get("type") or ""),
        str(error.get("message") or ""),
        request_id if isinstance(request_id, str) and request_id else None,
        code if isinstance(code, str) and code else None,
    )


def exhausted_for_s(headers: Mapping[str, str], *, now: datetime) -> float | None:
    """How long until the request limit resets, when ``anthropic-ratelimit-requests-*``
    say none are left; None when they do not say so (or say it unreadably)."""
    remaining = headers.get("anthropic-ratelimit-requests-remaining")
    reset = headers.get("anthropic-ratelimit-requests-reset")
    if remaining is None or reset is None:
        return None
    try:
        if int(remaining) > 0:
            return None
        reset_at = datetime.fromisoformat(reset.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if reset_at.tzinfo is None:
        reset_at = reset_at.replace(tzinfo=UTC)
    return min((reset_at - now).total_seconds(), MAX_WAIT_S)
