"""The nouns of cleaner: batches as the API shows them, and what a cycle decides and does.

Plain frozen values with no I/O, shared by the pure policy and the async shell.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class ProcessingStatus(StrEnum):
    """The three states the API documents for a batch."""

    IN_PROGRESS = "in_progress"
    CANCELING = "canceling"
    ENDED = "ended"


def parse_processing_status(value: str) -> ProcessingStatus | str:
    """The member for a documented status; any other string unchanged, meaning unknown.

    The API may add statuses within a version, so an unknown one is kept, never refused.
    """
    try:
        return ProcessingStatus(value)
    except ValueError:
        return value


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """How the batch's requests stand; final only once the batch has ended."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as the API spells them, for log lines."""
        return {
            "processing": self.processing,
            "succeeded": self.succeeded,
            "errored": self.errored,
            "canceled": self.canceled,
            "expired": self.expired,
        }


@dataclass(frozen=True, slots=True)
class Batch:
    """The fields of a MessageBatch that cleaner decides on; the rest is ignored.

    ``processing_status`` is a plain ``str`` (not a member) when the API sent a status
    this version does not know; the policy keeps such a batch.
    """

    id: str
    processing_status: ProcessingStatus | str
    created_at: datetime
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    request_counts: RequestCounts = field(default_factory=RequestCounts)
    archived_at: datetime | None = None
    results_url: str | None = None

    def __post_init__(self) -> None:
        # A documented status given as a plain string becomes its member, so the
        # policy's identity checks (``is ProcessingStatus.ENDED``) hold for it too.
        if isinstance(self.processing_status, ProcessingStatus):
            return
        status = parse_processing_status(self.processing_status)
        if status is not self.processing_status:
            object.__setattr__(self, "processing_status", status)

    @property
    def ended(self) -> bool:
        return self.processing_status is ProcessingStatus.ENDED

    @property
    def status_known(self) -> bool:
        return isinstance(self.processing_status, ProcessingStatus)


class AgeBasis(StrEnum):
    """Which timestamp an ended batch's age is measured from."""

    CREATED_AT = "created_at"  # the API's own retention clock; the default
    ENDED_AT = "ended_at"


class ActionKind(StrEnum):
    """What a cycle does to one batch. Every action ends in a delete."""

    DELETE = "delete"  # ended and expired: delete now
    CANCEL = "cancel"  # running and expired: cancel, wait until ended, delete
    AWAIT = "await"  # canceling (by someone else) and expired: wait until ended, delete


class Reason(StrEnum):
    """Which rule of the policy chose an action."""

    ENDED_PAST_RETENTION = "ended_past_retention"
    #: ended, but only because it was canceled while running past the processing retention
    #: (by an earlier cycle that could not wait for it, or by someone else)
    CANCELED_PAST_PROCESSING_RETENTION = "canceled_past_processing_retention"
    RUNNING_PAST_PROCESSING_RETENTION = "running_past_processing_retention"
    CANCELING_PAST_PROCESSING_RETENTION = "canceling_past_processing_retention"
    #: not the policy: an operator asked for it (``cleaner purge``), whatever the age
    ERASURE_REQUEST = "erasure_request"


class KeepReason(StrEnum):
    """Why a batch was left alone."""

    PROTECTED = "protected"
    WITHIN_RETENTION = "within_retention"
    RUNNING_WITHIN_RETENTION = "running_within_retention"
    NO_END_TIME = "no_end_time"  # ended_at basis, but the batch has no ended_at
    HELD = "held"  # an active hold from the holds file covers it
    UNKNOWN_STATUS = "unknown_status"  # a processing_status this version does not know


#: The reason of the permanent holds made from ``CLEANER_PROTECTED_IDS``.
PROTECTED_IDS_REASON = "CLEANER_PROTECTED_IDS"


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """A reason to leave batches alone: one batch id, or a window of creation times.

    The window's bounds are exclusive; ``until`` is the last instant it protects.
    """

    reason: str
    owner: str | None = None
    until: datetime | None = None
    batch_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def __post_init__(self) -> None:
        window = self.created_after is not None or self.created_before is not None
        if (self.batch_id is not None) == window:
            raise ValueError("a hold selects by batch_id or by a created window, not both")

    def active(self, now: datetime) -> bool:
        return self.until is None or now <= self.until

    def selects(self, batch: Batch) -> bool:
        if self.batch_id is not None:
            return batch.id == self.batch_id
        after, before = self.created_after, self.created_before
        return (after is None or batch.created_at > after) and (
            before is None or batch.created_at < before
        )

    def canonical(self) -> dict[str, str | None]:
        """Every field as text with UTC times normalised, for fingerprints and logs."""
        return {
            "reason": self.reason,
            "owner": self.owner,
            "until": _utc_text(self.until),
            "batch_id": self.batch_id,
            "created_after": _utc_text(self.created_after),
            "created_before": _utc_text(self.created_before),
        }


def _utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class HeldBatch:
    """A batch a hold kept, with the hold, so ``cleaner plan`` can say whose and why."""

    batch: Batch
    hold: Hold

    @property
    def batch_id(self) -> str:
        return self.batch.id


@dataclass(frozen=True, slots=True)
class Action:
    """One planned action on one batch, with the rule that chose it.

    ``purge_reason`` is the operator's text for an erasure request (``cleaner purge
    --reason``); every log line about the action carries it.
    """

    kind: ActionKind
    batch: Batch
    reason: Reason
    age_s: float
    purge_reason: str | None = None

    @property
    def batch_id(self) -> str:
        return self.batch.id


@dataclass(frozen=True, slots=True)
class Plan:
    """What a cycle will do, and a count of everything it will not.

    ``deferred`` counts actions dropped by the per-run cap; later cycles take them.
    ``seen`` counts unknown statuses under their raw string. ``held`` lists only the
    batches a hold kept (protected ids included), so a large listing stays small here.
    """

    actions: tuple[Action, ...] = ()
    seen: Mapping[ProcessingStatus | str, int] = field(default_factory=dict)
    kept: Mapping[KeepReason, int] = field(default_factory=dict)
    deferred: int = 0
    held: tuple[HeldBatch, ...] = ()

    def count(self, kind: ActionKind) -> int:
        return sum(1 for action in self.actions if action.kind is kind)

    @property
    def unknown_statuses(self) -> dict[str, int]:
        """Each status this version does not know, with how many batches had it."""
        return {
            str(status): n
            for status, n in sorted(self.seen.items())
            if not isinstance(status, ProcessingStatus)
        }


class Outcome(StrEnum):
    """How one action ended."""

    DELETED = "deleted"  # the API confirmed the deletion
    ALREADY_GONE = "already_gone"  # 404 on delete: someone (or a lost response) got there first
    FAILED = "failed"  # gave up; the next cycle tries again
    WAIT_TIMEOUT = "wait_timeout"  # canceled, but not ended within the wait timeout
    DRY_RUN = "dry_run"  # would have acted
    NOT_ATTEMPTED = "not_attempted"  # the cycle stopped (shutdown or fatal error) first
    AUDIT_UNAVAILABLE = "audit_unavailable"  # the intent could not be written: nothing sent
    ARCHIVE_FAILED = "archive_failed"  # no verified copy of the results: not deleted


#: Outcomes that make a cycle unsuccessful (exit code 1 for ``run --once``). A shutdown
#: leaves actions not attempted without failing; a fatal error fails through ``error``.
FAILING_OUTCOMES = frozenset({Outcome.FAILED, Outcome.AUDIT_UNAVAILABLE, Outcome.ARCHIVE_FAILED})


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a running cycle, logged and exported while a long drain goes on."""

    done: int
    planned: int
    waiting_on_cancel: int
    rate_per_s: float
    eta_s: float | None


@dataclass(frozen=True, slots=True)
class CycleReport:
    """Everything one cycle did; the summary log line and the metrics both read it."""

    started_at: datetime
    duration_s: float
    dry_run: bool
    seen: Mapping[ProcessingStatus | str, int]
    kept: Mapping[KeepReason, int]
    planned: Mapping[ActionKind, int]
    outcomes: Counter[tuple[ActionKind, Outcome]]
    deferred: int
    cancels_sent: int
    requests: int
    retries: int
    rate_limited: int
    error: str | None = None  # the fatal error that ended the cycle early, if any

    @classmethod
    def refused(cls, *, started_at: datetime, dry_run: bool, error: str) -> CycleReport:
        """A cycle that did nothing at all, and why (a crash, a broken holds file)."""
        return cls(
            started_at=started_at,
            duration_s=0.0,
            dry_run=dry_run,
            seen={},
            kept={},
            planned={},
            outcomes=Counter(),
            deferred=0,
            cancels_sent=0,
            requests=0,
            retries=0,
            rate_limited=0,
            error=error,
        )

    @property
    def ok(self) -> bool:
        """True when nothing failed: the exit code of ``run --once`` is 0."""
        if self.error is not None:
            return False
        return not any(outcome in FAILING_OUTCOMES for _, outcome in self.outcomes)

    def outcome_count(self, outcome: Outcome) -> int:
        return sum(n for (_, o), n in self.outcomes.items() if o is outcome)
