"""The retention policy: which batch gets which action. Pure, so tested exhaustively."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cleaner.models import (
    Action,
    ActionKind,
    AgeBasis,
    Batch,
    KeepReason,
    ProcessingStatus,
    Reason,
)
from cleaner.policy import RetentionPolicy, cap, decide, merge, plan

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def batch(
    age: timedelta,
    status: ProcessingStatus = ProcessingStatus.ENDED,
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


statuses = st.sampled_from(list(ProcessingStatus))
ages = st.timedeltas(min_value=-10 * DAY, max_value=100 * DAY)


def _any_batch(
    i: int,
    status: ProcessingStatus,
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
policies = st.builds(
    RetentionPolicy,
    retention=st.timedeltas(min_value=timedelta(seconds=1), max_value=60 * DAY),
    processing_retention=st.timedeltas(min_value=timedelta(seconds=1), max_value=60 * DAY),
    protected_ids=st.frozensets(st.builds(lambda i: f"msgbatch_{i}", st.integers(0, 50))),
    age_basis=st.sampled_from(list(AgeBasis)),
)


@settings(max_examples=300)
@given(st.lists(batches, max_size=40), policies, st.one_of(st.none(), st.integers(0, 10)))
def test_no_plan_ever_touches_a_young_protected_or_unended_batch_wrongly(
    listed: list[Batch], rules: RetentionPolicy, limit: int | None
) -> None:
    """Invariants: deletes only ended+old+unprotected; cancels only running; one per id."""
    result = cap(merge([plan(listed, rules, NOW)]), limit)
    ids = [a.batch_id for a in result.actions]
    assert len(ids) == len(set(ids))
    if limit is not None:
        assert len(ids) <= limit
    for action in result.actions:
        b = action.batch
        assert b.id not in rules.protected_ids
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
