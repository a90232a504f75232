"""The hash chain's primitives: records that verify, and every change that must not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleaner.audit import Receipt
from cleaner.chain import ChainError, Layout, Link, check_id, decode, encode, timestamp

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
records = st.dictionaries(
    st.text(min_size=1).filter(lambda k: k != "hash"), json_values, max_size=8
)


@given(records)
def test_an_encoded_record_decodes_to_itself(record: dict[str, Any]) -> None:
    """Any plain-JSON record survives encode and decode, with its hash."""
    line, digest = encode(record)
    assert line.endswith(b"\n")
    assert decode(line) == {**record, "hash": digest}


@given(records, st.text(min_size=1), json_values)
def test_changing_or_adding_any_field_breaks_the_hash(
    record: dict[str, Any], key: str, value: Any
) -> None:
    """A record whose content changed after hashing no longer decodes."""
    _, digest = encode(record)
    if key == "hash" or record.get(key, object()) == value:
        return
    tampered = orjson.dumps({**record, key: value, "hash": digest})
    with pytest.raises(ChainError, match="altered"):
        decode(tampered)


def test_a_line_that_is_not_a_record_is_refused() -> None:
    """Garbage, a JSON array, or a record with no hash is a ChainError."""
    for line in [b"{not json", b"[1, 2]", b'{"a": 1}']:
        with pytest.raises(ChainError):
            decode(line)


def test_a_link_accepts_the_next_record_and_names_one_out_of_order() -> None:
    """Link.follow passes the record that comes next and explains one that does not."""
    _, first = encode({"seq": 0, "prev": None})
    second = decode(encode({"seq": 1, "prev": first})[0])
    stray = decode(encode({"seq": 2, "prev": "somewhere else"})[0])
    link = Link(seq=1, prev=first)
    assert link.follow(second) is None
    assert link.follow(stray) == "out of order or a record before it is missing (prev hash differs)"


def test_non_json_and_huge_ints_are_refused_as_records() -> None:
    """Only plain JSON goes into a record."""
    bad_records: list[dict[str, Any]] = [{"what": {1, 2}}, {"n": 2**70}, {"x": object()}]
    for bad in bad_records:
        with pytest.raises(ValueError, match="plain JSON"):
            encode(bad)


def test_timestamps_are_utc_with_microseconds_and_naive_ones_are_refused() -> None:
    """Every timestamp reads like the API's; a naive datetime is a bug, not a guess."""
    east = datetime(2026, 12, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert timestamp(east) == "2026-12-01T12:00:00.000000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        timestamp(datetime(2026, 12, 1))


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "has space", "x" * 129])
def test_ids_that_would_escape_or_garble_a_path_are_refused(bad: str) -> None:
    """Cycle ids and workspaces become path segments: only safe characters."""
    with pytest.raises(ValueError, match="must be"):
        check_id(bad, what="cycle_id")


def test_the_layout_dates_cycle_objects_and_nests_workspaces() -> None:
    """Cycle objects are filed by UTC day; a workspace adds one level above everything."""
    started = datetime(2026, 12, 1, 23, 59, 1, 5, tzinfo=UTC)
    assert Layout().cycle_object(started, "c1") == (
        "cycles/2026/12/01/20261201T235901.000005Z-c1.jsonl"
    )
    assert Layout("ws").head == "ws/HEAD"
    assert Layout("ws").segment("c1", 12) == "ws/pending/c1/0000000012.jsonl"


def test_receipt_extras_may_not_overwrite_reserved_or_standard_fields() -> None:
    """An extra named like a chain field or a receipt field is refused."""
    for name in ["hash", "prev", "seq", "outcome", "batch_id"]:
        bad = Receipt(action="delete", batch_id="b", reason="r", outcome="deleted",
                      extra={name: "x"})  # fmt: skip
        with pytest.raises(ValueError, match="clash"):
            bad.fields()
