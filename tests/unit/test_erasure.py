"""Erasure requests: the ids file and what purge does to each batch. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleaner.erasure import (
    MAX_PURGE_REASON,
    Blocked,
    PurgeRequestError,
    UnknownStatus,
    check_reason,
    parse_ids,
    purge_action,
)
from cleaner.holds import Hold, Holds
from cleaner.models import Action, ActionKind, Batch, ProcessingStatus, Reason
from cleaner.planfile import BATCH_ID
from cleaner.policy import RetentionPolicy

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(retention=timedelta(days=30), processing_retention=timedelta(hours=2))
good_ids = st.text("abcdefXYZ0123456789", min_size=1, max_size=24).map(lambda s: "msgbatch_" + s)


@given(st.lists(good_ids, min_size=1, max_size=30))
def test_ids_come_back_once_each_in_first_seen_order(ids: list[str]) -> None:
    """Duplicates collapse; the order is the order of first appearance."""
    text = "\n".join(ids + ids[::-1])
    assert parse_ids(text) == tuple(dict.fromkeys(ids))


@given(st.lists(good_ids, max_size=5), st.text(min_size=1, max_size=40))
def test_any_line_that_is_not_a_batch_id_refuses_the_whole_file(ids: list[str], bad: str) -> None:
    """One malformed line among good ones: the request is refused, naming the line."""
    line = bad.strip()
    if not line or line.startswith("#") or BATCH_ID.fullmatch(line) or "\n" in bad:
        return  # not a malformed line (blank, comment, an id, or several lines)
    with pytest.raises(PurgeRequestError, match=f"line {len(ids) + 1}"):
        parse_ids("\n".join([*ids, bad]))


@pytest.mark.parametrize(
    "line",
    ["msgbatch_", "msgbatch_a/b", "msgbatch_a b", "MSGBATCH_abc", "batch_abc", "msgbatch_a-b"],
)
def test_near_misses_are_malformed(line: str) -> None:
    """Path characters, spaces, the wrong prefix or no id after it."""
    with pytest.raises(PurgeRequestError, match="malformed"):
        parse_ids(line)


def test_a_file_of_only_comments_names_no_batch() -> None:
    """An empty request is refused rather than succeeding at nothing."""
    with pytest.raises(PurgeRequestError, match="no batch"):
        parse_ids("# nothing\n\n")


def test_the_reason_must_say_something_and_not_too_much() -> None:
    """Blank is refused, whitespace is collapsed, a novel is refused."""
    assert check_reason("  GDPR   ticket 42 \n") == "GDPR ticket 42"
    with pytest.raises(PurgeRequestError):
        check_reason(" \t ")
    with pytest.raises(PurgeRequestError):
        check_reason("x" * (MAX_PURGE_REASON + 1))


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (ProcessingStatus.ENDED, ActionKind.DELETE),
        (ProcessingStatus.IN_PROGRESS, ActionKind.CANCEL),
        (ProcessingStatus.CANCELING, ActionKind.AWAIT),
    ],
)
def test_every_status_is_erased_whatever_the_age(
    status: ProcessingStatus, kind: ActionKind
) -> None:
    """A batch one second old still goes, with reason erasure_request and the text."""
    batch = Batch("msgbatch_a", status, created_at=NOW - timedelta(seconds=1))
    action = purge_action(batch, POLICY, NOW, purge_reason="ticket 42")
    assert action == Action(kind, batch, Reason.ERASURE_REQUEST, 1.0, purge_reason="ticket 42")


def test_a_held_batch_is_blocked_with_its_hold() -> None:
    """Holds beat erasure requests: the batch is reported, with the hold that keeps it."""
    batch = Batch("msgbatch_a", ProcessingStatus.ENDED, created_at=NOW - timedelta(days=1))
    hold = Hold(reason="litigation", owner="legal", created_before=NOW)
    policy = RetentionPolicy(
        retention=POLICY.retention,
        processing_retention=POLICY.processing_retention,
        holds=Holds((hold,)),
    )
    assert purge_action(batch, policy, NOW, purge_reason="x") == Blocked(batch, hold)


def test_an_unknown_status_is_not_touched() -> None:
    """No rule can say a status this version does not know is safe to cancel or delete."""
    batch = Batch("msgbatch_a", "archiving", created_at=NOW - timedelta(days=1))
    assert purge_action(batch, POLICY, NOW, purge_reason="x") == UnknownStatus(batch)
