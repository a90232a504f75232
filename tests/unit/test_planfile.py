"""The plan file and the per-batch choice of ``cleaner apply``. Pure, so tested by property."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleaner.holds import Hold, Holds
from cleaner.models import Action, ActionKind, Batch, KeepReason, Plan, ProcessingStatus, Reason
from cleaner.planfile import (
    PlanFileError,
    PlannedEntry,
    Skip,
    check_plan,
    choose,
    parse_plan,
    render_plan,
    rules_sha256,
)
from cleaner.policy import RetentionPolicy, decide, plan, policy_sha256

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(retention=timedelta(days=30), processing_retention=timedelta(hours=2))
DAY = timedelta(days=1)


def ended(batch_id: str, age: timedelta) -> Batch:
    return Batch(batch_id, ProcessingStatus.ENDED, created_at=NOW - age, ended_at=NOW - age)


def running(batch_id: str, age: timedelta) -> Batch:
    return Batch(batch_id, ProcessingStatus.IN_PROGRESS, created_at=NOW - age)


def a_plan(*batches: Batch, policy: RetentionPolicy = POLICY) -> Plan:
    return plan(batches, policy, NOW)


def rendered(*batches: Batch, policy: RetentionPolicy = POLICY) -> dict[str, Any]:
    text = render_plan(a_plan(*batches, policy=policy), listed_at=NOW, ttl=DAY, policy=policy)
    document: dict[str, Any] = json.loads(text)
    return document


def entry_of(action: Action) -> PlannedEntry:
    return PlannedEntry(action.batch_id, action.kind, action.reason, action.batch.created_at)


ids = st.text("abcXYZ019", min_size=1, max_size=24).map(lambda s: "msgbatch_" + s)
ages = st.integers(min_value=0, max_value=60 * 24).map(lambda h: timedelta(hours=h))


@st.composite
def batches(draw: st.DrawFn) -> list[Batch]:
    chosen = draw(st.lists(ids, unique=True, max_size=20))
    out = []
    for batch_id in chosen:
        age = draw(ages)
        out.append(ended(batch_id, age) if draw(st.booleans()) else running(batch_id, age % DAY))
    return out


@settings(max_examples=200)
@given(batches())
def test_a_rendered_plan_parses_back_to_the_same_actions(listed: list[Batch]) -> None:
    """render then parse: every action's batch_id, action, reason and created_at survive."""
    full = a_plan(*listed)
    text = render_plan(full, listed_at=NOW, ttl=DAY, policy=POLICY)
    parsed = parse_plan(text)
    assert parsed.entries == tuple(entry_of(action) for action in full.actions)
    assert parsed.policy_sha256 == policy_sha256(POLICY)
    assert parsed.rules_sha256 == rules_sha256(POLICY)
    assert parsed.expires_at - parsed.listed_at == DAY


@settings(max_examples=200)
@given(batches())
def test_choose_acts_on_an_unchanged_batch_exactly_as_the_policy_plans(listed: list[Batch]) -> None:
    """Nothing changed since the plan: apply acts on every planned batch with the same action."""
    full = a_plan(*listed)
    for action in full.actions:
        assert choose(entry_of(action), action.batch, POLICY, NOW) == action


@settings(max_examples=200)
@given(batches(), ages)
def test_choose_never_returns_an_action_the_current_policy_would_not_take(
    listed: list[Batch], later: timedelta
) -> None:
    """Whatever the batch is now, an action is returned only when decide() gives that action."""
    full = a_plan(*listed)
    stricter = RetentionPolicy(
        retention=timedelta(days=45), processing_retention=timedelta(hours=5)
    )
    for action in full.actions:
        created = action.batch.created_at
        now_batches = (
            action.batch,
            Batch(action.batch_id, ProcessingStatus.ENDED, created, ended_at=created + later),
            Batch(action.batch_id, ProcessingStatus.CANCELING, created),
            Batch(action.batch_id, ProcessingStatus.IN_PROGRESS, created),
        )
        for now_batch in now_batches:
            chosen = choose(entry_of(action), now_batch, stricter, NOW)
            if isinstance(chosen, Action):
                assert chosen == decide(now_batch, stricter, NOW)
                assert chosen.kind is action.kind


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_arbitrary_text_is_a_malformed_plan_or_a_valid_one_never_a_crash(text: str) -> None:
    """Any input either parses or raises PlanFileError: no other exception escapes."""
    with contextlib.suppress(PlanFileError):
        parse_plan(text)


@settings(max_examples=300)
@given(st.data())
def test_a_plan_with_any_field_mangled_is_refused_as_malformed(data: st.DataObject) -> None:
    """Replace any one field with a value of the wrong shape: refused, never half-read."""
    document = rendered(ended("msgbatch_a", 40 * DAY), ended("msgbatch_b", 50 * DAY))
    junk = st.one_of(
        st.none(),
        st.integers(),
        st.booleans(),
        st.text(max_size=5),
        st.lists(st.integers(), min_size=1),
    ).filter(lambda value: value != 1 or isinstance(value, bool))  # 1 is the valid version
    if data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(set(document) - {"summary"})))
        document[key] = data.draw(junk)
    else:
        action = document["actions"][data.draw(st.integers(0, 1))]
        key = data.draw(st.sampled_from(["batch_id", "action", "reason", "created_at"]))
        action[key] = data.draw(junk)
    with pytest.raises(PlanFileError) as raised:
        parse_plan(json.dumps(document))
    assert raised.value.why == "malformed"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d.update(extra=1),
        lambda d: d["actions"][0].update(typo=1),
        lambda d: d["actions"].append(dict(d["actions"][0])),
        lambda d: d["actions"][0].update(created_at="2026-01-01T00:00:00+02:00"),
        lambda d: d["actions"][0].update(reason="erasure_request"),
        lambda d: d.update(expires_at=d["listed_at"]),
        lambda d: d.pop("rules_sha256"),
        lambda d: d.update(version=True),
    ],
    ids=[
        "unknown-key",
        "unknown-action-key",
        "duplicate-batch",
        "not-utc",
        "erasure-in-plan",
        "no-validity",
        "missing-rules",
        "bool-version",
    ],
)
def test_structural_mistakes_are_malformed(mangle: Any) -> None:
    """Typos, duplicates, local times and an empty validity window are all refused."""
    document = rendered(ended("msgbatch_a", 40 * DAY))
    mangle(document)
    with pytest.raises(PlanFileError, match="malformed"):
        parse_plan(json.dumps(document))


def test_duplicate_json_keys_are_malformed() -> None:
    """A key given twice (which one would win?) is refused."""
    text = json.dumps(rendered(ended("msgbatch_a", 40 * DAY)))
    with pytest.raises(PlanFileError, match="duplicate key"):
        parse_plan(text[:-1] + ', "version": 1}')


def test_check_refuses_an_expired_plan_at_the_expiry_instant() -> None:
    """At expires_at the plan is already expired (half-open validity)."""
    parsed = parse_plan(json.dumps(rendered(ended("msgbatch_a", 40 * DAY))))
    assert check_plan(parsed, now=NOW + DAY - timedelta(microseconds=1), policy=POLICY) is False
    with pytest.raises(PlanFileError, match="expired"):
        check_plan(parsed, now=NOW + DAY, policy=POLICY)


def test_check_refuses_other_retention_rules_and_accepts_other_holds() -> None:
    """A new retention refuses the plan; new holds only flag it, batches are rechecked."""
    parsed = parse_plan(json.dumps(rendered(ended("msgbatch_a", 40 * DAY))))
    shorter = RetentionPolicy(retention=timedelta(days=7), processing_retention=timedelta(hours=2))
    with pytest.raises(PlanFileError, match="policy_changed"):
        check_plan(parsed, now=NOW, policy=shorter)
    held = RetentionPolicy(
        retention=POLICY.retention,
        processing_retention=POLICY.processing_retention,
        protected_ids=frozenset({"msgbatch_a"}),
    )
    assert check_plan(parsed, now=NOW, policy=held) is True


def test_choose_says_why_it_skips() -> None:
    """Gone, held (with the hold), not due (with the keep reason), another action, another batch."""
    batch = ended("msgbatch_a", 40 * DAY)
    (action,) = a_plan(batch).actions
    entry = entry_of(action)
    hold = Hold(reason="legal", owner="legal-team", batch_id="msgbatch_a")
    held = RetentionPolicy(
        retention=POLICY.retention,
        processing_retention=POLICY.processing_retention,
        holds=Holds((hold,)),
    )
    longer = RetentionPolicy(retention=timedelta(days=60), processing_retention=timedelta(hours=2))
    assert choose(entry, None, POLICY, NOW) == Skip(entry=entry, why="gone")
    assert choose(entry, batch, held, NOW) == Skip(entry=entry, why="held", hold=hold)
    assert choose(entry, batch, longer, NOW) == Skip(
        entry=entry, why="not_due", kept=KeepReason.WITHIN_RETENTION
    )
    recreated = ended("msgbatch_a", 35 * DAY)
    assert choose(entry, recreated, POLICY, NOW) == Skip(entry=entry, why="different_batch")
    cancel = PlannedEntry(
        "msgbatch_a", ActionKind.CANCEL, Reason.RUNNING_PAST_PROCESSING_RETENTION, batch.created_at
    )
    assert choose(cancel, batch, POLICY, NOW) == Skip(
        entry=cancel, why="different_action", now_action=ActionKind.DELETE
    )
