"""The holds file: strict parsing, and which hold protects which batch when."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleaner.holds import Hold, Holds, HoldsError, parse_holds
from cleaner.models import PROTECTED_IDS_REASON, Batch, ProcessingStatus

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SOURCE = "/etc/cleaner/holds.yaml"

EXAMPLE = """\
holds:
  - batch_id: msgbatch_013Zva2CMHLNnXjNJJKqJ2EF
    reason: debugging eval run 42
    owner: ml-infra
    until: 2027-01-15T00:00:00Z        # optional; after it the hold protects nothing
  - created_after: 2026-11-01T00:00:00Z  # a window: either bound or both
    created_before: 2026-11-08T00:00:00Z
    reason: legal matter 2026-117
    owner: legal
"""


def batch(created_at: datetime = NOW - 90 * 24 * HOUR, *, batch_id: str = "msgbatch_a") -> Batch:
    return Batch(id=batch_id, processing_status=ProcessingStatus.ENDED, created_at=created_at)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_documented_example_parses_into_two_holds() -> None:
    """A batch hold with owner and until, and a window hold."""
    holds = parse_holds(EXAMPLE, source=SOURCE)
    assert holds.holds == (
        Hold(
            reason="debugging eval run 42",
            owner="ml-infra",
            until=at("2027-01-15T00:00:00Z"),
            batch_id="msgbatch_013Zva2CMHLNnXjNJJKqJ2EF",
        ),
        Hold(
            reason="legal matter 2026-117",
            owner="legal",
            created_after=at("2026-11-01T00:00:00Z"),
            created_before=at("2026-11-08T00:00:00Z"),
        ),
    )
    assert holds.protected_ids == frozenset()


def test_the_same_holds_in_json_parse_the_same() -> None:
    """JSON is accepted, with tabs, and means what the YAML means."""
    document = {
        "holds": [
            {
                "batch_id": "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF",
                "reason": "debugging eval run 42",
                "owner": "ml-infra",
                "until": "2027-01-15T00:00:00+00:00",
            },
            {
                "created_after": "2026-11-01T00:00:00Z",
                "created_before": "2026-11-08T00:00:00.000Z",
                "reason": "legal matter 2026-117",
                "owner": "legal",
            },
        ]
    }
    text = json.dumps(document, indent="\t")
    assert parse_holds(text, source="h.json") == parse_holds(EXAMPLE, source=SOURCE)


@pytest.mark.parametrize("text", ["holds: []\n", '{"holds": []}', "# none yet\nholds: []\n"])
def test_an_empty_list_of_holds_means_no_holds(text: str) -> None:
    """`holds: []` is how a file says there are none."""
    assert parse_holds(text, source=SOURCE) == Holds()


def test_quoted_and_fractional_times_are_accepted() -> None:
    """Quoting a time in YAML or giving microseconds changes nothing."""
    text = 'holds:\n  - batch_id: b\n    reason: r\n    until: "2027-01-15T00:00:00.250000Z"\n'
    (hold,) = parse_holds(text, source=SOURCE).holds
    assert hold.until == datetime(2027, 1, 15, 0, 0, 0, 250000, tzinfo=UTC)


def test_whitespace_around_reason_and_owner_is_dropped() -> None:
    """A quoted reason with stray spaces is stored trimmed."""
    text = 'holds:\n  - batch_id: b\n    reason: "  eval  "\n    owner: " ml "\n'
    (hold,) = parse_holds(text, source=SOURCE).holds
    assert (hold.reason, hold.owner) == ("eval", "ml")


def entry(body: str) -> str:
    """A file whose holds[1] is ``body`` (YAML mapping lines), after a valid holds[0]."""
    lines = "".join(f"    {line}\n" for line in body.splitlines()[1:])
    first = body.splitlines()[0]
    return f"holds:\n  - batch_id: msgbatch_ok\n    reason: fine\n  - {first}\n{lines}"


WINDOW_AFTER = "created_after: 2026-11-08T00:00:00Z"

# name -> (file text, the entry's index or None, text the message must contain)
BAD_FILES: dict[str, tuple[str, int | None, str]] = {
    "empty file": ("", None, "empty"),
    "whitespace only": ("  \n\n", None, "empty"),
    "comments only": ("# holds go here\n", None, "empty"),
    "not yaml": ("holds: [\n", None, "not valid YAML or JSON: line 2, column 1"),
    "not json": ('{"holds": [}', None, "not valid YAML or JSON"),
    "a list at the top": ("- batch_id: b\n  reason: r\n", None, "mapping with a `holds` list"),
    "a misspelled top key": ("hold: []\n", None, "unknown top-level key(s) hold"),
    "holds null": ("holds:\n", None, "`holds` must be a list"),
    "holds a mapping": ("holds: {}\n", None, "`holds` must be a list"),
    "duplicate top key": ("holds: []\nholds: []\n", None, "duplicate key holds at line 2"),
    "duplicate json key": ('{"holds": [], "holds": []}', None, "duplicate key holds"),
    "entry a string": ("holds:\n  - msgbatch_x\n", 0, "holds[0]: not a mapping"),
    "untill": (
        entry("batch_id: msgbatch_b\nreason: eval\nuntill: 2027-01-01T00:00:00Z"),
        1,
        "holds[1] ('msgbatch_b'): unknown key(s) untill",
    ),
    "duplicate until": (
        entry(
            "batch_id: b\nreason: eval\nuntil: 2027-01-01T00:00:00Z\nuntil: 2028-01-01T00:00:00Z"
        ),
        None,
        "duplicate key until at line 7",
    ),
    "no reason": (entry("batch_id: msgbatch_b"), 1, "holds[1] ('msgbatch_b'): a hold needs"),
    "blank reason": (entry('batch_id: msgbatch_b\nreason: "  "'), 1, "non-empty `reason`"),
    "reason a number": (entry("batch_id: msgbatch_b\nreason: 42"), 1, "non-empty `reason`"),
    "owner blank": (entry('batch_id: b\nreason: eval\nowner: ""'), 1, "holds[1] ('b'): `owner`"),
    "owner a number": (entry("batch_id: b\nreason: eval\nowner: 7"), 1, "`owner` must be"),
    "no selector": (entry("reason: eval 9"), 1, "holds[1] ('eval 9'): no selector"),
    "two selectors": (
        entry("batch_id: b\nreason: eval\ncreated_after: 2026-01-01T00:00:00Z"),
        1,
        "exactly one selector",
    ),
    "batch_id a number": (entry("batch_id: 123\nreason: eval"), 1, "holds[1] ('eval'): `batch_id`"),
    "batch_id blank": (entry('batch_id: ""\nreason: eval'), 1, "`batch_id` must be"),
    "window backwards": (
        entry(f"reason: legal\n{WINDOW_AFTER}\ncreated_before: 2026-11-01T00:00:00Z"),
        1,
        "holds[1] ('legal'): `created_after` must be earlier",
    ),
    "window empty": (
        entry(f"reason: legal\n{WINDOW_AFTER}\ncreated_before: 2026-11-08T00:00:00Z"),
        1,
        "must be earlier",
    ),
    "until with an offset": (
        entry("batch_id: b\nreason: eval\nuntil: 2027-01-15T00:00:00+02:00"),
        1,
        "`until` must be an RFC 3339 UTC time",
    ),
    "until without a zone": (
        entry("batch_id: b\nreason: eval\nuntil: 2027-01-15T00:00:00"),
        1,
        "`until` must be an RFC 3339 UTC time",
    ),
    "until with a space": (
        entry("batch_id: b\nreason: eval\nuntil: 2027-01-15 00:00:00Z"),
        1,
        "`until` must be",
    ),
    "until a date": (entry("batch_id: b\nreason: eval\nuntil: 2027-01-15"), 1, "`until` must be"),
    "until a number": (entry("batch_id: b\nreason: eval\nuntil: 1800000000"), 1, "`until` must"),
    "until not a day": (
        entry("batch_id: b\nreason: eval\nuntil: 2027-02-30T00:00:00Z"),
        1,
        "`until` is not a real date",
    ),
    "created_after minus zero": (
        entry("reason: legal\ncreated_after: 2026-11-01T00:00:00-00:00"),
        1,
        "`created_after` must be an RFC 3339 UTC time",
    ),
    "created_before malformed": (
        entry("reason: legal\ncreated_before: next week"),
        1,
        "holds[1] ('legal'): `created_before` must be",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_holds_file_is_an_error_naming_the_entry_and_problem(case: str) -> None:
    """Every problem is a HoldsError saying where (file, entry) and what."""
    text, index, expected = BAD_FILES[case]
    with pytest.raises(HoldsError) as caught:
        parse_holds(text, source=SOURCE)
    assert str(caught.value).startswith(f"{SOURCE}: ")
    assert expected in str(caught.value)
    assert caught.value.index == index


def test_a_batch_hold_protects_its_batch_through_until_and_not_after() -> None:
    """Until is the last instant protected; a moment later the hold is spent."""
    until = NOW + HOUR
    holds = Holds((Hold(reason="eval", batch_id="msgbatch_a", until=until),))
    assert holds.protecting(batch(), NOW) == holds.holds[0]
    assert holds.protecting(batch(), until) == holds.holds[0]
    assert holds.protecting(batch(), until + timedelta(microseconds=1)) is None
    assert holds.protecting(batch(batch_id="msgbatch_b"), NOW) is None


def test_a_window_excludes_its_bounds() -> None:
    """Created exactly at a bound is outside; a microsecond inside is held."""
    after, before = NOW - 10 * HOUR, NOW - 5 * HOUR
    holds = Holds((Hold(reason="legal", created_after=after, created_before=before),))
    tick = timedelta(microseconds=1)
    assert holds.protecting(batch(after), NOW) is None
    assert holds.protecting(batch(after + tick), NOW) is not None
    assert holds.protecting(batch(before - tick), NOW) is not None
    assert holds.protecting(batch(before), NOW) is None


def test_a_window_may_be_open_on_either_side() -> None:
    """One bound is enough: everything after, or everything before."""
    since = Holds((Hold(reason="r", created_after=NOW - HOUR),))
    upto = Holds((Hold(reason="r", created_before=NOW - HOUR),))
    assert since.protecting(batch(NOW), NOW) is not None
    assert since.protecting(batch(NOW - 2 * HOUR), NOW) is None
    assert upto.protecting(batch(NOW - 2 * HOUR), NOW) is not None
    assert upto.protecting(batch(NOW), NOW) is None


def test_the_first_matching_active_hold_in_file_order_is_the_one_reported() -> None:
    """A window listed first wins over a later batch hold; a spent one is skipped."""
    spent = Hold(reason="old", batch_id="msgbatch_a", until=NOW - HOUR)
    window = Hold(reason="legal", owner="legal", created_before=NOW)
    by_id = Hold(reason="eval", batch_id="msgbatch_a")
    assert Holds((spent, window, by_id)).protecting(batch(), NOW) is window
    assert Holds((spent, by_id, window)).protecting(batch(), NOW) is by_id


def test_protected_ids_are_permanent_holds_reported_first() -> None:
    """CLEANER_PROTECTED_IDS become holds with that reason, no owner, no end."""
    file_hold = Hold(reason="eval", batch_id="msgbatch_a")
    holds = Holds((file_hold,)).with_protected_ids(["msgbatch_a", "msgbatch_p"])
    assert holds.holds == (file_hold,)
    assert holds.protected_ids == frozenset({"msgbatch_a", "msgbatch_p"})
    protected = holds.protecting(batch(), NOW)
    assert protected == Hold(reason=PROTECTED_IDS_REASON, batch_id="msgbatch_a")
    far_future = NOW + timedelta(days=36500)
    assert holds.protecting(batch(batch_id="msgbatch_p"), far_future) is not None


def test_expiring_lists_holds_ending_within_a_day_and_expired_those_spent() -> None:
    """The shell warns a day ahead; spent and permanent holds are not expiring."""
    soon = Hold(reason="soon", batch_id="a", until=NOW + 23 * HOUR)
    boundary = Hold(reason="boundary", batch_id="b", until=NOW + 24 * HOUR)
    later = Hold(reason="later", batch_id="c", until=NOW + 25 * HOUR)
    spent = Hold(reason="spent", batch_id="d", until=NOW - HOUR)
    forever = Hold(reason="forever", batch_id="e")
    holds = Holds((soon, boundary, later, spent, forever)).with_protected_ids(["p"])
    assert holds.expiring(NOW) == [soon, boundary]
    assert holds.expiring(NOW, within=2 * HOUR) == []
    assert holds.expired(NOW) == [spent]


def test_the_canonical_form_is_the_same_however_times_are_written() -> None:
    """Z, +00:00 and .000 spell one instant; protected ids are sorted."""
    zulu = parse_holds(EXAMPLE, source=SOURCE).with_protected_ids(["b", "a"])
    spelled = EXAMPLE.replace("00:00Z", "00:00.000+00:00")
    offset = parse_holds(spelled, source=SOURCE).with_protected_ids(["a", "b"])
    assert zulu.canonical() == offset.canonical()
    assert zulu.canonical()["protected_ids"] == ["a", "b"]


moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
ids = st.sampled_from([f"msgbatch_{i}" for i in range(6)])


@st.composite
def holds_(draw: st.DrawFn) -> Hold:
    until = draw(st.one_of(st.none(), moments))
    reason = draw(st.sampled_from(["eval", "legal", "debug"]))
    owner = draw(st.one_of(st.none(), st.just("ml-infra")))
    if draw(st.booleans()):
        return Hold(reason=reason, owner=owner, until=until, batch_id=draw(ids))
    after = draw(st.one_of(st.none(), moments))
    before = draw(moments if after is None else st.one_of(st.none(), moments))
    if after is not None and before is not None and not after < before:
        after, before = min(after, before), max(after, before) + HOUR
    return Hold(reason=reason, owner=owner, until=until, created_after=after, created_before=before)


batches = st.builds(batch, moments, batch_id=ids)


@given(st.lists(holds_(), max_size=6), st.lists(holds_(), max_size=6), batches, moments)
def test_holds_add_up(first: list[Hold], second: list[Hold], listed: Batch, now: datetime) -> None:
    """Two sets of holds together protect exactly what either protects."""
    alone = [Holds(tuple(part)).protecting(listed, now) for part in (first, second)]
    together = Holds((*first, *second)).protecting(listed, now)
    assert (together is not None) == any(hold is not None for hold in alone)


@given(st.lists(holds_(), max_size=8), batches, moments)
def test_protecting_is_the_first_active_selecting_hold(
    listed_holds: list[Hold], listed: Batch, now: datetime
) -> None:
    """The indexed lookup agrees with a plain scan in file order."""
    expected = next((h for h in listed_holds if h.active(now) and h.selects(listed)), None)
    assert Holds(tuple(listed_holds)).protecting(listed, now) is expected


@given(st.lists(holds_(), max_size=8), batches, moments)
def test_expired_holds_protect_nothing(
    listed_holds: list[Hold], listed: Batch, now: datetime
) -> None:
    """Once every until has passed, no batch is held."""
    spent = [h for h in listed_holds if h.until is not None and h.until < now]
    assert Holds(tuple(spent)).protecting(listed, now) is None


@settings(max_examples=200)
@given(st.lists(holds_(), max_size=8))
def test_holds_survive_a_round_trip_through_their_canonical_json(listed: list[Hold]) -> None:
    """What canonical() writes, parse_holds reads back as the same holds."""
    entries = [{k: v for k, v in hold.canonical().items() if v is not None} for hold in listed]
    text = json.dumps({"holds": entries})
    assert parse_holds(text, source="h.json").holds == tuple(listed)
