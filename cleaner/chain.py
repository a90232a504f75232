"""The audit trail's hash chain and object layout: pure, no I/O.

Each record is one JSON line with sorted keys. It carries ``seq`` (its position in its
cycle object), ``prev`` (the previous record's hash, across cycle objects too) and
``hash``: the SHA-256 of the record's canonical form without ``hash`` (compact JSON,
sorted keys, UTF-8). A cycle object's first record (``kind: cycle``) names the previous
object (``prev_object``); its last (``kind: seal``) counts the records before it. The
``HEAD`` object names the newest sealed object and its seal's hash.

Anyone who can rewrite the store can rewrite a consistent chain: this detects accidents,
partial loss and naive edits, not a determined writer (that needs an external anchor,
e.g. S3 Object Lock on the cycle objects, or HEAD hashes copied elsewhere).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from cleaner.errors import CleanerError

#: A JSON value as records hold it.
JSON = str | int | float | bool | None | list[Any] | dict[str, Any]

_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_OPTIONS = orjson.OPT_SORT_KEYS


class ChainError(CleanerError):
    """A line that is not a valid record: unreadable JSON, or a hash that does not match."""


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``, like the API's own timestamps."""
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """The inverse of :func:`timestamp` (accepts any ISO 8601 with an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def digest(record: Mapping[str, JSON]) -> str:
    """SHA-256 hex of the record's canonical form, ``hash`` left out."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(orjson.dumps(body, option=_OPTIONS)).hexdigest()


def encode(record: Mapping[str, JSON]) -> tuple[bytes, str]:
    """The record as one line with its ``hash`` added, and that hash."""
    try:
        hashed = digest(record)
        return orjson.dumps({**record, "hash": hashed}, option=_OPTIONS) + b"\n", hashed
    except TypeError as exc:  # orjson.JSONEncodeError: not JSON (or an int over 64 bits)
        raise ValueError(f"an audit record must be plain JSON: {exc}") from exc


def decode(line: bytes) -> dict[str, JSON]:
    """One verified record; :class:`ChainError` if it does not parse or its hash is wrong."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ChainError("not a JSON line") from exc
    if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
        raise ChainError("not a record (no hash)")
    if digest(record) != record["hash"]:
        raise ChainError("record altered: its hash does not match its content")
    return record


@dataclass
class Link:
    """Where a chain stands: the next expected ``seq`` and the last hash seen."""

    seq: int
    prev: str | None

    def follow(self, record: Mapping[str, JSON]) -> str | None:
        """Advance past ``record``; returns the problem if it does not come next."""
        if record.get("prev") != self.prev:
            return "out of order or a record before it is missing (prev hash differs)"
        if record.get("seq") != self.seq:
            return f"expected record number {self.seq}, found {record.get('seq')!r}"
        self.seq += 1
        self.prev = str(record["hash"])
        return None


def check_id(value: str, *, what: str) -> str:
    """``value`` if it is safe in an object path (letters, digits, ``._-``)."""
    if not _SAFE_ID.fullmatch(value) or value in {".", ".."}:
        raise ValueError(f"{what} must be 1-128 of [A-Za-z0-9._-], got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Layout:
    """Object paths under the store root, with an optional ``<workspace>/`` level."""

    workspace: str | None = None

    @property
    def _base(self) -> str:
        return f"{self.workspace}/" if self.workspace else ""

    @property
    def head(self) -> str:
        return f"{self._base}HEAD"

    @property
    def pending(self) -> str:
        return f"{self._base}pending"

    @property
    def cycles(self) -> str:
        return f"{self._base}cycles"

    def pending_cycle(self, cycle_id: str) -> str:
        return f"{self.pending}/{cycle_id}"

    def segment(self, cycle_id: str, first_seq: int) -> str:
        return f"{self.pending_cycle(cycle_id)}/{first_seq:010d}.jsonl"

    def cycle_object(self, started_at: datetime, cycle_id: str) -> str:
        day = started_at.astimezone(UTC)
        stamp = day.strftime("%Y%m%dT%H%M%S.%fZ")
        return f"{self.cycles}/{day:%Y/%m/%d}/{stamp}-{cycle_id}.jsonl"
