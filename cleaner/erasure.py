"""Erasure requests (``cleaner purge``): which ids, and what to do with each batch. Pure.

The shell (:mod:`cleaner.purge`) reads the ids file, retrieves each batch and carries out
what is decided here. Age does not matter; holds do: a held batch is never touched, and
the requester is told so loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cleaner.errors import CleanerError
from cleaner.models import Action, ActionKind, Batch, Hold, ProcessingStatus, Reason
from cleaner.planfile import BATCH_ID
from cleaner.policy import RetentionPolicy

#: The longest ``--reason`` accepted: a ticket reference and a sentence, not a document.
MAX_PURGE_REASON = 1000


class PurgeRequestError(CleanerError):
    """The request cannot be carried out as given; nothing is sent."""


def parse_ids(text: str) -> tuple[str, ...]:
    """The batch ids of an ids file, one per line, duplicates collapsed, in first order.

    Blank lines and lines starting with ``#`` are ignored. Every other line must be one
    batch id; all malformed lines are named at once, so one edit fixes the file.
    """
    ids: dict[str, None] = {}
    bad: list[str] = []
    # Lines end at "\n" only: another separator inside a line makes it malformed, not two ids.
    for number, line in enumerate(text.split("\n"), start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if BATCH_ID.fullmatch(value):
            ids.setdefault(value, None)
        else:
            bad.append(f"line {number}: {value!r:.80}")
    if bad:
        shown = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise PurgeRequestError(f"malformed batch id(s), want msgbatch_ and base62: {shown}")
    if not ids:
        raise PurgeRequestError("the ids file names no batch")
    return tuple(ids)


def check_reason(text: str) -> str:
    """The ``--reason`` text, stripped; it must say something, and not too much."""
    reason = " ".join(text.split())
    if not reason:
        raise PurgeRequestError("--reason must not be empty: say whose request this is")
    if len(reason) > MAX_PURGE_REASON:
        raise PurgeRequestError(f"--reason is longer than {MAX_PURGE_REASON} characters")
    return reason


@dataclass(frozen=True, slots=True)
class Blocked:
    """A requested batch a hold keeps: not touched, reported at level error."""

    batch: Batch
    hold: Hold


@dataclass(frozen=True, slots=True)
class UnknownStatus:
    """A requested batch in a status this version does not know: not touched."""

    batch: Batch


def purge_action(
    batch: Batch, policy: RetentionPolicy, now: datetime, *, purge_reason: str
) -> Action | Blocked | UnknownStatus:
    """What an erasure request does to ``batch``: cancel, wait on or delete it, unless held."""
    hold = policy.holds.protecting(batch, now)
    if hold is not None:
        return Blocked(batch, hold)
    status = batch.processing_status
    if not isinstance(status, ProcessingStatus):
        return UnknownStatus(batch)
    kind = {
        ProcessingStatus.ENDED: ActionKind.DELETE,
        ProcessingStatus.IN_PROGRESS: ActionKind.CANCEL,
        ProcessingStatus.CANCELING: ActionKind.AWAIT,
    }[status]
    age_s = round((now - batch.created_at).total_seconds(), 3)
    return Action(kind, batch, Reason.ERASURE_REQUEST, age_s, purge_reason=purge_reason)
