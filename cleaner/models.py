"""The nouns of cleaner: batches as the API shows them, and what a cycle decides and does.

Plain frozen values with no I/O, shared by the pure policy and the async shell.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from cleaner.errors import ApiResponseError


class ProcessingStatus(StrEnum):
    """The three states the API documents for a batch."""

    IN_PROGRESS = "in_progress"
    CANCELING = "canceling"
    ENDED = "ended"


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
    """The fields of a MessageBatch that cleaner decides on; the rest is ignored."""

    id: str
    processing_status: ProcessingStatus
    created_at: datetime
    ended_at: datetime | None = None
    cancel_initiated_at: datetime | None = None
    request_counts: RequestCounts = field(default_factory=RequestCounts)

    @property
    def ended(self) -> bool:
        return self.processing_status is ProcessingStatus.ENDED

    @classmethod
    def from_api(cls, data: object) -> Batch:
        """Parse one MessageBatch object, tolerating unknown extra keys.

        Raises :class:`ApiResponseError` for anything that is not a well-formed batch, so a
        hostile or broken response can never be mistaken for an ended, expired batch.
        """
        if not isinstance(data, Mapping):
            raise ApiResponseError(f"batch is not an object: {type(data).__name__}")
        batch_id = data.get("id")
        if not isinstance(batch_id, str) or not batch_id:
            raise ApiResponseError(f"batch has no string id: {batch_id!r}")
        try:
            status = ProcessingStatus(str(data.get("processing_status")))
        except ValueError:
            raise ApiResponseError(
                f"batch {batch_id} has unknown processing_status {data.get('processing_status')!r}"
            ) from None
        created_at = _timestamp(batch_id, "created_at", data.get("created_at"))
        if created_at is None:
            raise ApiResponseError(f"batch {batch_id} has no created_at")
        ended_at = _timestamp(batch_id, "ended_at", data.get("ended_at"))
        canceled_at = _timestamp(batch_id, "cancel_initiated_at", data.get("cancel_initiated_at"))
        return cls(
            id=batch_id,
            processing_status=status,
            created_at=created_at,
            ended_at=ended_at,
            cancel_initiated_at=canceled_at,
            request_counts=_counts(batch_id, data.get("request_counts")),
        )


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


class KeepReason(StrEnum):
    """Why a batch was left alone."""

    PROTECTED = "protected"
    WITHIN_RETENTION = "within_retention"
    RUNNING_WITHIN_RETENTION = "running_within_retention"
    NO_END_TIME = "no_end_time"  # ended_at basis, but the batch has no ended_at


@dataclass(frozen=True, slots=True)
class Action:
    """One planned action on one batch, with the rule that chose it."""

    kind: ActionKind
    batch: Batch
    reason: Reason
    age_s: float

    @property
    def batch_id(self) -> str:
        return self.batch.id


@dataclass(frozen=True, slots=True)
class Plan:
    """What a cycle will do, and a count of everything it will not.

    ``deferred`` counts actions dropped by the per-run cap; later cycles take them.
    """

    actions: tuple[Action, ...] = ()
    seen: Mapping[ProcessingStatus, int] = field(default_factory=dict)
    kept: Mapping[KeepReason, int] = field(default_factory=dict)
    deferred: int = 0

    def count(self, kind: ActionKind) -> int:
        return sum(1 for action in self.actions if action.kind is kind)


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
    seen: Mapping[ProcessingStatus, int]
    kept: Mapping[KeepReason, int]
    planned: Mapping[ActionKind, int]
    outcomes: Counter[tuple[ActionKind, Outcome]]
    deferred: int
    cancels_sent: int
    requests: int
    retries: int
    rate_limited: int
    error: str | None = None  # the fatal error that ended the cycle early, if any

    @property
    def ok(self) -> bool:
        """True when nothing failed: the exit code of ``run --once`` is 0."""
        if self.error is not None:
            return False
        return not any(outcome in FAILING_OUTCOMES for _, outcome in self.outcomes)

    def outcome_count(self, outcome: Outcome) -> int:
        return sum(n for (_, o), n in self.outcomes.items() if o is outcome)
