"""The retention policy: which batch gets which action. Pure, so tested exhaustively."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleaner.holds import Hold, Holds, parse_holds
from cleaner.models import (
    PROTECTED_IDS_REASON,
    Action,
    ActionKind,
    AgeBasis,
    Batch,
    HeldBatch,
    KeepReason,
    Plan,
    ProcessingStatus,
    Reason,
)
from cleaner.policy import (
    BlastRadius,
    RetentionPolicy,
    blast_radius,
    cap,
    decide,
    downloadable,
    merge,
    plan,
    policy_sha256,
    results_downloadable,
    retention_after_provider_archive,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def batch(
    age: timedelta,
    status: ProcessingStatus | str = ProcessingStatus.ENDED,
    *,
    batch_id: str = "msgbatch_a",
    ended_age: timedelta | None = None,
) -> Batch:
    ended = status is ProcessingStatus.ENDED
    return Batch(
        id=batch_id,
        processing_status=status,
        created_at=NOW - age,
        ended_at=(NOW - (ended_age if ended_age is not None else age)) if ended else None,
    )


def policy(**overrides: object) -> RetentionPolicy:
    values: dict[str, object] = {
        "retention": 30 * DAY,
        "processing_retention": timedelta(hours=6),
    }
    values.update(overrides)
    return RetentionPolicy(**values)  # type: ignore[arg-type]


def test_an_ended_batch_older_than_retention_is_deleted() -> None:
    """Ended and past retention: delete, with the rule that chose it."""
    decision = decide(batch(31 * DAY), policy(), NOW)
    assert isinstance(decision, Action)
    assert decision.kind is ActionKind.DELETE
    assert decision.reason is Reason.ENDED_PAST_RETENTION
    assert decision.age_s == 31 * 86400


def test_an_ended_batch_exactly_at_retention_is_kept() -> None:
    """Only strictly older batches go: the boundary is kept."""
    assert decide(batch(30 * DAY), policy(), NOW) is KeepReason.WITHIN_RETENTION


def test_a_running_batch_past_processing_retention_is_canceled() -> None:
    """In progress and too old: cancel (then wait and delete)."""
    decision = decide(batch(timedelta(hours=7), ProcessingStatus.IN_PROGRESS), policy(), NOW)
    assert isinstance(decision, Action)
    assert decision.kind is ActionKind.CANCEL


def test_a_canceling_batch_is_awaited_not_canceled_again() -> None:
    """Someone else already canceled it: wait for it, never cancel twice."""
    decision = decide(batch(timedelta(hours=7), ProcessingStatus.CANCELING), policy(), NOW)
    assert isinstance(decision, Action)
    assert decision.kind is ActionKind.AWAIT


def test_a_young_running_batch_is_kept() -> None:
    """Running within its processing retention: left alone."""
    decision = decide(batch(timedelta(hours=1), ProcessingStatus.IN_PROGRESS), policy(), NOW)
    assert decision is KeepReason.RUNNING_WITHIN_RETENTION


def test_a_protected_batch_is_kept_however_old() -> None:
    """Protected ids are never acted on."""
    decision = decide(batch(400 * DAY), policy(protected_ids=frozenset({"msgbatch_a"})), NOW)
    assert decision is KeepReason.PROTECTED


def test_a_batch_from_the_future_is_kept() -> None:
    """Clock skew gives a negative age, which is never past retention."""
    assert decide(batch(-DAY), policy(), NOW) is KeepReason.WITHIN_RETENTION


def test_the_ended_at_basis_measures_age_from_the_end() -> None:
    """Old but recently ended batches are kept under the ended_at basis."""
    old_recently_ended = batch(40 * DAY, ended_age=10 * DAY)
    assert isinstance(decide(old_recently_ended, policy(), NOW), Action)
    ended_basis = policy(age_basis=AgeBasis.ENDED_AT)
    assert decide(old_recently_ended, ended_basis, NOW) is KeepReason.WITHIN_RETENTION


def test_the_ended_at_basis_keeps_an_ended_batch_without_an_end_time() -> None:
    """Missing data never turns into a deletion."""
    broken = Batch(id="b", processing_status=ProcessingStatus.ENDED, created_at=NOW - 90 * DAY)
    assert decide(broken, policy(age_basis=AgeBasis.ENDED_AT), NOW) is KeepReason.NO_END_TIME


def test_a_batch_canceled_late_is_deleted_once_ended_without_waiting_for_retention() -> None:
    """Canceled while running past the processing retention: deleted when it has ended."""
    created = NOW - timedelta(hours=9)
    late = Batch(
        id="b",
        processing_status=ProcessingStatus.ENDED,
        created_at=created,
        ended_at=NOW - timedelta(hours=1),
        cancel_initiated_at=created + timedelta(hours=7),
    )
    decision = decide(late, policy(), NOW)
    assert isinstance(decision, Action)
    assert decision.reason is Reason.CANCELED_PAST_PROCESSING_RETENTION


def test_a_batch_canceled_early_keeps_the_normal_retention() -> None:
    """A user's cancel within the processing retention does not shorten the retention."""
    created = NOW - timedelta(hours=9)
    early = Batch(
        id="b",
        processing_status=ProcessingStatus.ENDED,
        created_at=created,
        ended_at=NOW - timedelta(hours=8),
        cancel_initiated_at=created + timedelta(minutes=30),
    )
    assert decide(early, policy(), NOW) is KeepReason.WITHIN_RETENTION


def test_merge_keeps_one_action_per_batch_and_adds_up_counts() -> None:
    """A batch listed twice is acted on once; what was seen is summed."""
    page = plan([batch(40 * DAY), batch(40 * DAY)], policy(), NOW)
    joined = merge([page, page])
    assert [a.batch_id for a in joined.actions] == ["msgbatch_a"]
    assert joined.seen[ProcessingStatus.ENDED] == 4


def test_the_cap_keeps_the_oldest_batches_and_counts_the_rest_deferred() -> None:
    """Over the cap, the oldest go first; the remainder waits."""
    batches = [batch((31 + n) * DAY, batch_id=f"b{n}") for n in range(5)]
    capped = cap(plan(batches, policy(), NOW), 2)
    assert [a.batch_id for a in capped.actions] == ["b4", "b3"]
    assert capped.deferred == 3


def test_no_cap_means_every_action() -> None:
    """Without a cap the plan is unchanged."""
    full = plan([batch(40 * DAY)], policy(), NOW)
    assert cap(full, None) is full


statuses = st.sampled_from([*ProcessingStatus, "archiving", "paused"])
ages = st.timedeltas(min_value=-10 * DAY, max_value=100 * DAY)


def _any_batch(
    i: int,
    status: ProcessingStatus | str,
    age: timedelta,
    end: timedelta | None,
    cancel_after: timedelta | None,
) -> Batch:
    made = batch(age, status, batch_id=f"msgbatch_{i}", ended_age=end)
    if cancel_after is None or status is ProcessingStatus.IN_PROGRESS:
        return made
    return Batch(
        id=made.id,
        processing_status=made.processing_status,
        created_at=made.created_at,
        ended_at=made.ended_at,
        cancel_initiated_at=made.created_at + cancel_after,
    )


batches = st.builds(
    _any_batch,
    st.integers(0, 50),
    statuses,
    ages,
    st.one_of(st.none(), ages),
    st.one_of(st.none(), st.timedeltas(min_value=timedelta(0), max_value=DAY)),
)
hold_times = st.datetimes(
    min_value=(NOW - 100 * DAY).replace(tzinfo=None),
    max_value=(NOW + 10 * DAY).replace(tzinfo=None),
    timezones=st.just(UTC),
)


def _hold(i: int, window: bool, a: datetime, b: datetime, until: datetime | None) -> Hold:
    if not window:
        return Hold(reason=f"hold {i}", batch_id=f"msgbatch_{i}", until=until)
    if a == b:
        return Hold(reason="window", created_after=a, until=until)
    return Hold(reason="window", created_after=min(a, b), created_before=max(a, b), until=until)


file_holds = st.builds(
    Holds,
    st.lists(
        st.builds(
            _hold,
            st.integers(0, 50),
            st.booleans(),
            hold_times,
            hold_times,
            st.one_of(st.none(), hold_times),
        ),
        max_size=5,
    ).map(tuple),
)
policies = st.builds(
    RetentionPolicy,
    retention=st.timedeltas(min_value=timedelta(seconds=1), max_value=60 * DAY),
    processing_retention=st.timedeltas(min_value=timedelta(seconds=1), max_value=60 * DAY),
    protected_ids=st.frozensets(st.builds(lambda i: f"msgbatch_{i}", st.integers(0, 50))),
    age_basis=st.sampled_from(list(AgeBasis)),
    holds=file_holds,
)


@settings(max_examples=300)
@given(st.lists(batches, max_size=40), policies, st.one_of(st.none(), st.integers(0, 10)))
def test_no_plan_ever_touches_a_young_protected_or_unended_batch_wrongly(
    listed: list[Batch], rules: RetentionPolicy, limit: int | None
) -> None:
    """Invariants: deletes only ended+old+unheld; cancels only running; one per id."""
    result = cap(merge([plan(listed, rules, NOW)]), limit)
    ids = [a.batch_id for a in result.actions]
    assert len(ids) == len(set(ids))
    if limit is not None:
        assert len(ids) <= limit
    for action in result.actions:
        b = action.batch
        assert b.id not in rules.protected_ids
        assert rules.holds.protecting(b, NOW) is None
        assert isinstance(b.processing_status, ProcessingStatus)
        if action.kind is ActionKind.DELETE:
            assert b.processing_status is ProcessingStatus.ENDED
            if action.reason is Reason.CANCELED_PAST_PROCESSING_RETENTION:
                # Deleted early only if it was still running past the processing retention.
                assert b.cancel_initiated_at is not None
                assert b.cancel_initiated_at - b.created_at > rules.processing_retention
                continue
            start = b.ended_at if rules.age_basis is AgeBasis.ENDED_AT else b.created_at
            assert start is not None
            assert NOW - start > rules.retention
        elif action.kind is ActionKind.CANCEL:
            assert b.processing_status is ProcessingStatus.IN_PROGRESS
            assert NOW - b.created_at > rules.processing_retention
        else:
            assert b.processing_status is ProcessingStatus.CANCELING
            assert NOW - b.created_at > rules.processing_retention


@given(st.lists(batches, max_size=40), policies)
def test_every_listed_batch_is_either_acted_on_or_kept(
    listed: list[Batch], rules: RetentionPolicy
) -> None:
    """Nothing falls through the cracks: actions plus kept equals seen."""
    result = plan(listed, rules, NOW)
    assert len(result.actions) + sum(result.kept.values()) == len(listed)
    assert sum(result.seen.values()) == len(listed)


# --- holds ---------------------------------------------------------------------------

EVAL = Hold(reason="debugging eval run 42", owner="ml-infra", batch_id="msgbatch_a")


def held(*listed: Hold) -> RetentionPolicy:
    return policy(holds=Holds(listed))


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (400 * DAY, ProcessingStatus.ENDED),
        (2 * DAY, ProcessingStatus.IN_PROGRESS),
        (2 * DAY, ProcessingStatus.CANCELING),
    ],
)
def test_a_held_batch_is_kept_whatever_its_age_or_state(
    age: timedelta, status: ProcessingStatus
) -> None:
    """Past every retention, a held batch is neither deleted, canceled nor awaited."""
    assert decide(batch(age, status), held(EVAL), NOW) is KeepReason.HELD


def test_the_plan_records_each_held_batch_with_its_hold() -> None:
    """`cleaner plan` can show reason and owner; unheld batches are not recorded."""
    listed = [batch(400 * DAY), batch(400 * DAY, batch_id="msgbatch_b")]
    result = plan(listed, held(EVAL), NOW)
    assert result.held == (HeldBatch(listed[0], EVAL),)
    assert result.kept == {KeepReason.HELD: 1}
    assert [a.batch_id for a in result.actions] == ["msgbatch_b"]


def test_an_expired_hold_no_longer_keeps_its_batch() -> None:
    """After until, the batch is treated as if the hold never existed."""
    spent = Hold(reason="eval", batch_id="msgbatch_a", until=NOW - timedelta(seconds=1))
    decision = decide(batch(400 * DAY), held(spent), NOW)
    assert isinstance(decision, Action)
    assert decision.kind is ActionKind.DELETE


def test_a_window_hold_keeps_every_batch_created_inside_it() -> None:
    """A legal hold on a week keeps that week's batches only."""
    legal = Hold(reason="legal", created_after=NOW - 50 * DAY, created_before=NOW - 40 * DAY)
    listed = [batch((39 + n) * DAY, batch_id=f"b{n}") for n in range(13)]
    result = plan(listed, held(legal), NOW)
    assert [h.batch_id for h in result.held] == [f"b{n}" for n in range(2, 11)]
    assert [a.batch_id for a in result.actions] == ["b0", "b1", "b11", "b12"]


def test_protected_ids_keep_their_reason_and_are_recorded_with_a_permanent_hold() -> None:
    """CLEANER_PROTECTED_IDS still say `protected`; the plan shows their hold too."""
    rules = policy(protected_ids=frozenset({"msgbatch_a"}), holds=Holds((EVAL,)))
    assert rules.holds.protected_ids == frozenset({"msgbatch_a"})
    result = plan([batch(400 * DAY)], rules, NOW)
    assert result.kept == {KeepReason.PROTECTED: 1}
    (record,) = result.held
    assert (record.hold.reason, record.hold.owner) == (PROTECTED_IDS_REASON, None)


def test_protected_ids_given_either_way_make_the_same_policy() -> None:
    """The protected_ids shorthand and Holds.with_protected_ids are one thing."""
    ids = frozenset({"msgbatch_a", "msgbatch_b"})
    shorthand = policy(protected_ids=ids)
    explicit = policy(holds=Holds().with_protected_ids(ids))
    assert shorthand == explicit
    assert explicit.protected_ids == ids


def test_merge_records_a_batch_held_on_two_pages_once_and_cap_keeps_the_record() -> None:
    """A repeated listing does not grow the held list; the cap leaves it alone."""
    page = plan([batch(400 * DAY), batch(400 * DAY, batch_id="b")], held(EVAL), NOW)
    joined = merge([page, page])
    assert [h.batch_id for h in joined.held] == ["msgbatch_a"]
    assert cap(joined, 0).held == joined.held


# --- unknown statuses ----------------------------------------------------------------


@pytest.mark.parametrize("age", [-DAY, timedelta(hours=1), 400 * DAY])
def test_a_batch_in_an_unknown_status_is_kept_whatever_its_age(age: timedelta) -> None:
    """No rule knows what a new status means, so none acts on it."""
    assert decide(batch(age, "archiving"), policy(), NOW) is KeepReason.UNKNOWN_STATUS


def test_the_plan_counts_unknown_statuses_by_their_raw_name() -> None:
    """seen and kept count them; unknown_statuses lists each for one warning per cycle."""
    listed = [
        batch(400 * DAY, "archiving", batch_id="x1"),
        batch(400 * DAY, "archiving", batch_id="x2"),
        batch(DAY, "paused", batch_id="x3"),
        batch(400 * DAY, batch_id="x4"),
    ]
    result = merge([plan(listed[:2], policy(), NOW), plan(listed[2:], policy(), NOW)])
    assert result.seen == {"archiving": 2, "paused": 1, ProcessingStatus.ENDED: 1}
    assert result.kept == {KeepReason.UNKNOWN_STATUS: 3}
    assert result.unknown_statuses == {"archiving": 2, "paused": 1}
    assert [a.batch_id for a in result.actions] == ["x4"]


def test_a_held_batch_in_an_unknown_status_says_held_and_still_counts_as_unknown() -> None:
    """The hold is the reason given; the unknown status is still reported."""
    result = plan([batch(400 * DAY, "archiving")], held(EVAL), NOW)
    assert result.kept == {KeepReason.HELD: 1}
    assert result.unknown_statuses == {"archiving": 1}


def test_a_plan_of_known_statuses_reports_no_unknown_ones() -> None:
    """The warning stays silent when every status is documented."""
    assert plan([batch(400 * DAY)], policy(), NOW).unknown_statuses == {}


@given(st.lists(batches, max_size=40), policies, st.sampled_from(["archiving", "", "ENDED"]))
def test_an_unknown_status_never_gets_an_action(
    listed: list[Batch], rules: RetentionPolicy, status: str
) -> None:
    """Whatever else is listed and whatever the policy, unknown statuses are kept."""
    odd = [
        Batch(id=f"odd_{n}", processing_status=status, created_at=b.created_at)
        for n, b in enumerate(listed)
    ]
    result = plan([*listed, *odd], rules, NOW)
    assert not any(a.batch_id.startswith("odd_") for a in result.actions)
    everything = [*listed, *odd]
    unknown = Counter(str(b.processing_status) for b in everything if not b.status_known)
    assert result.unknown_statuses == dict(unknown)
    assert result.kept.get(KeepReason.UNKNOWN_STATUS, 0) <= sum(unknown.values())


@given(st.lists(batches, max_size=40), policies)
def test_a_held_batch_never_gets_an_action(listed: list[Batch], rules: RetentionPolicy) -> None:
    """Holding every listed batch by id leaves the plan empty, whatever ages and states."""
    holds = Holds(
        (*rules.holds.holds, *(Hold(reason="all", batch_id=b.id) for b in listed)),
        rules.protected_ids,
    )
    rules = RetentionPolicy(
        retention=rules.retention,
        processing_retention=rules.processing_retention,
        age_basis=rules.age_basis,
        holds=holds,
    )
    result = plan(listed, rules, NOW)
    assert result.actions == ()
    assert {h.batch_id for h in result.held} == {b.id for b in listed}
    assert result.kept.get(KeepReason.HELD, 0) + result.kept.get(KeepReason.PROTECTED, 0) == len(
        listed
    )


# --- the blast-radius stop -----------------------------------------------------------


def listing(*, planned: int, listed: int) -> Plan:
    """A plan of ``planned`` deletions among ``listed`` batches."""
    old = [batch(40 * DAY, batch_id=f"old{n}") for n in range(planned)]
    young = [batch(DAY, batch_id=f"young{n}") for n in range(listed - planned)]
    result = plan([*old, *young], policy(), NOW)
    assert len(result.actions) == planned
    return result


@pytest.mark.parametrize(
    ("planned", "listed", "max_fraction", "stops"),
    [
        (30, 100, 0.3, False),  # exactly at the fraction: allowed (0.3 compared exactly)
        (29, 100, 0.3, False),  # just under
        (31, 100, 0.3, True),  # just over
        (50, 200, 0.25, False),
        (51, 200, 0.25, True),
        (11, 11, 1.0, False),  # everything, with 1.0 allowed: never stops
        (10, 10, 0.1, False),  # over the fraction but only 10 actions: the floor
        (11, 12, 0.1, True),  # 11 actions are over the floor
        (11, 110, 0.1, False),  # 11 of 110 is exactly 0.1
        (12, 110, 0.1, True),
        (0, 0, 0.5, False),  # nothing listed
    ],
)
def test_the_blast_radius_stop_fires_strictly_above_the_fraction_and_the_floor(
    planned: int, listed: int, max_fraction: float, stops: bool
) -> None:
    """At the fraction or at 10 actions the cycle goes ahead; beyond both it stops."""
    stop = blast_radius(listing(planned=planned, listed=listed), max_fraction)
    assert (stop is not None) is stops
    if stop is not None:
        assert stop == BlastRadius(
            planned=planned,
            listed=listed,
            fraction=planned / listed,
            max_fraction=max_fraction,
        )


def test_without_a_fraction_there_is_no_stop() -> None:
    """CLEANER_MAX_DELETE_FRACTION unset: every plan goes ahead."""
    assert blast_radius(listing(planned=20, listed=20), None) is None


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01, float("nan")])
def test_a_fraction_outside_zero_to_one_is_refused(bad: float) -> None:
    """Settings validate it; a wrong one reaching here is a bug, not a policy."""
    with pytest.raises(ValueError, match="max_fraction"):
        blast_radius(listing(planned=1, listed=1), bad)


def test_the_stop_counts_actions_the_cap_deferred() -> None:
    """Capped to 5 of 40, the plan still stops: the stop looks at the plan before the cap."""
    full = listing(planned=40, listed=50)
    capped = cap(full, 5)
    assert blast_radius(capped, 0.5) == blast_radius(full, 0.5) is not None


def test_cancels_and_awaits_count_toward_the_blast_radius() -> None:
    """Every action ends in a delete, so each kind counts."""
    listed = [
        *(batch(2 * DAY, ProcessingStatus.IN_PROGRESS, batch_id=f"run{n}") for n in range(6)),
        *(batch(2 * DAY, ProcessingStatus.CANCELING, batch_id=f"cxl{n}") for n in range(6)),
        *(batch(DAY / 24, batch_id=f"young{n}") for n in range(8)),
    ]
    stop = blast_radius(plan(listed, policy(), NOW), 0.5)
    assert stop is not None
    assert (stop.planned, stop.listed) == (12, 20)


@given(
    st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from([0.05, 0.1, 0.25, 1 / 3, 0.5, 0.7, 1.0]),
    st.one_of(st.none(), st.integers(0, 20)),
)
def test_the_stop_agrees_with_exact_arithmetic_before_and_after_the_cap(
    planned: int, young: int, max_fraction: float, limit: int | None
) -> None:
    """It fires iff more than 10 actions and planned/listed > max_fraction, cap or not."""
    full = listing(planned=planned, listed=planned + young)
    expected = planned > 10 and Fraction(planned, planned + young) > Fraction(repr(max_fraction))
    assert (blast_radius(full, max_fraction) is not None) is expected
    assert blast_radius(cap(full, limit), max_fraction) == blast_radius(full, max_fraction)


# --- the provider's timeline ---------------------------------------------------------


def with_results(archived_at: datetime | None, url: str | None = "https://r") -> Batch:
    return Batch(
        id="b",
        processing_status=ProcessingStatus.ENDED,
        created_at=NOW - 40 * DAY,
        ended_at=NOW - 40 * DAY,
        archived_at=archived_at,
        results_url=url,
    )


@pytest.mark.parametrize(
    ("archived_at", "url", "downloadable"),
    [
        (None, "https://r", True),
        (NOW + timedelta(seconds=1), "https://r", True),
        (NOW, "https://r", False),
        (NOW - DAY, "https://r", False),
        (None, None, False),
    ],
)
def test_results_are_downloadable_until_archived_and_only_with_a_url(
    archived_at: datetime | None, url: str | None, downloadable: bool
) -> None:
    """A results_url, and archived_at unset or still ahead."""
    assert results_downloadable(with_results(archived_at, url), NOW) is downloadable


def test_the_plan_counts_per_kind_how_many_batches_still_had_results() -> None:
    """The data a deletion removes: archived ones and running ones count as none."""
    listed = [
        Batch(
            id=f"d{n}",
            processing_status=ProcessingStatus.ENDED,
            created_at=NOW - 31 * DAY,
            results_url="https://r",
            archived_at=None if n < 2 else NOW - 2 * DAY,
        )
        for n in range(5)
    ]
    listed.append(batch(2 * DAY, ProcessingStatus.IN_PROGRESS, batch_id="run"))
    counts = downloadable(plan(listed, policy(), NOW), NOW)
    assert counts == {ActionKind.DELETE: 2, ActionKind.CANCEL: 0, ActionKind.AWAIT: 0}


@pytest.mark.parametrize(
    ("retention", "processing", "metadata_only"),
    [
        (29 * DAY, 29 * DAY, True),
        (90 * DAY, 30 * DAY, True),
        (29 * DAY - timedelta(seconds=1), 29 * DAY, False),
        (30 * DAY, timedelta(hours=6), False),  # canceled batches go with their results
    ],
)
def test_a_policy_removes_only_metadata_when_both_retentions_reach_29_days(
    retention: timedelta, processing: timedelta, metadata_only: bool
) -> None:
    """At 29 days the provider has archived the results already."""
    rules = policy(retention=retention, processing_retention=processing)
    assert retention_after_provider_archive(rules) is metadata_only


# --- the policy fingerprint ----------------------------------------------------------

FINGERPRINTED = """\
holds:
  - batch_id: msgbatch_013Zva2CMHLNnXjNJJKqJ2EF
    reason: debugging eval run 42
    owner: ml-infra
    until: 2027-01-15T00:00:00Z
  - created_after: 2026-11-01T00:00:00Z
    created_before: 2026-11-08T00:00:00Z
    reason: legal matter 2026-117
    owner: legal
"""


def fingerprinted(
    text: str = FINGERPRINTED, changes: dict[str, object] | None = None
) -> RetentionPolicy:
    values: dict[str, object] = {
        "protected_ids": frozenset({"msgbatch_p", "msgbatch_q", "msgbatch_r"}),
        "holds": parse_holds(text, source="holds.yaml"),
    }
    values.update(changes or {})
    return policy(**values)


def test_the_fingerprint_of_a_known_policy_never_changes() -> None:
    """Pinned: receipts and saved plans from earlier runs and versions still verify."""
    assert policy_sha256(fingerprinted()) == (
        "aaf3f0bab7ad7130deb6698167d0498c07727c93871be5022f2e5ed823bec8f2"
    )


def test_the_fingerprint_ignores_how_the_holds_file_spells_the_same_holds() -> None:
    """Key order, JSON or YAML, Z or +00:00, protected id order: one fingerprint."""
    reordered = (
        '{"holds": [{"owner": "ml-infra", "until": "2027-01-15T00:00:00.000000+00:00",'
        ' "reason": "debugging eval run 42", "batch_id": "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF"},'
        ' {"reason": "legal matter 2026-117", "owner": "legal",'
        ' "created_before": "2026-11-08T00:00:00Z", "created_after": "2026-11-01T00:00:00Z"}]}'
    )
    ids = frozenset(["msgbatch_r", "msgbatch_q", "msgbatch_p"])
    assert policy_sha256(fingerprinted(reordered, {"protected_ids": ids})) == policy_sha256(
        fingerprinted()
    )


@pytest.mark.parametrize(
    "change",
    [
        {"retention": 31 * DAY},
        {"retention": 30 * DAY + timedelta(microseconds=1)},
        {"processing_retention": timedelta(hours=7)},
        {"age_basis": AgeBasis.ENDED_AT},
        {"protected_ids": frozenset({"msgbatch_p", "msgbatch_q"})},
        {"holds": Holds()},
    ],
)
def test_the_fingerprint_changes_with_any_part_of_the_policy(change: dict[str, object]) -> None:
    """Each retention, the basis, the protected ids and the holds are all in it."""
    assert policy_sha256(fingerprinted(changes=change)) != policy_sha256(fingerprinted())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("reason: debugging eval run 42", "reason: debugging eval run 43"),
        ("owner: legal", "owner: compliance"),
        ("until: 2027-01-15T00:00:00Z", "until: 2027-01-15T00:00:01Z"),
        ("created_before: 2026-11-08T00:00:00Z", "created_before: 2026-11-09T00:00:00Z"),
        ("msgbatch_013Zva2CMHLNnXjNJJKqJ2EF", "msgbatch_013Zva2CMHLNnXjNJJKqJ2EG"),
    ],
)
def test_the_fingerprint_changes_with_any_field_of_any_hold(old: str, new: str) -> None:
    """A hold's reason, owner, until, window or batch id all count."""
    assert FINGERPRINTED.count(old) == 1
    changed = fingerprinted(FINGERPRINTED.replace(old, new))
    assert policy_sha256(changed) != policy_sha256(fingerprinted())


@settings(max_examples=200)
@given(policies, policies)
def test_two_policies_share_a_fingerprint_exactly_when_they_are_equal(
    first: RetentionPolicy, second: RetentionPolicy
) -> None:
    """Equal policies hash alike (across runs too); different ones do not."""
    assert (policy_sha256(first) == policy_sha256(second)) is (first == second)
