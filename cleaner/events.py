"""What happens during a cycle, as frozen events; logs, metrics and health observe them.

The cycle and the actor emit these and nothing else: :mod:`cleaner.logsink` turns each into
its log line, :mod:`cleaner.metrics` into series, in one place each, so a log field and the
metric that counts the same thing can never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cleaner.commands import Finish
from cleaner.erasure import Blocked
from cleaner.lister import ListingSummary
from cleaner.models import Action, Batch, CycleReport, Hold, Plan, Progress
from cleaner.planfile import ReviewedPlan, Skip
from cleaner.policy import BlastRadius
from cleaner.wire import Exchange as Exchange  # an event too: observers take it from here


@dataclass(frozen=True, slots=True)
class CyclePlanned:
    plan: Plan
    dry_run: bool
    max_actions: int | None
    listing: ListingSummary | None = None


@dataclass(frozen=True, slots=True)
class DryRunAction:
    action: Action


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """The API accepted a cancel; ``batch`` is how it looked right after."""

    action: Action
    batch: Batch


@dataclass(frozen=True, slots=True)
class CancelRefused:
    action: Action
    error: Exception


@dataclass(frozen=True, slots=True)
class ActionFinished:
    action: Action
    finish: Finish


@dataclass(frozen=True, slots=True)
class ListingFailed:
    error: Exception


@dataclass(frozen=True, slots=True)
class ListingInterrupted:
    """A stop was requested while listing: nothing was acted on."""


@dataclass(frozen=True, slots=True)
class CycleAborted:
    """A fatal error ended the cycle while it acted (logged once, whatever was in flight)."""

    error: Exception
    batch_id: str
    step: str | None


@dataclass(frozen=True, slots=True)
class ProgressReported:
    """A snapshot of a running cycle; ``final`` for the one taken when acting ended."""

    progress: Progress
    budget_per_minute: float
    final: bool = False


@dataclass(frozen=True, slots=True)
class AuditUnavailable:
    """The receipts sink could not be written: nothing more is canceled or deleted."""

    error: Exception
    batch_id: str
    step: str


@dataclass(frozen=True, slots=True)
class HoldsInvalid:
    """The holds file broke while the daemon runs: this cycle acts on nothing."""

    error: Exception


@dataclass(frozen=True, slots=True)
class BlastRadiusExceeded:
    """The plan acts on too large a share of the listing: this cycle acts on nothing."""

    stop: BlastRadius


@dataclass(frozen=True, slots=True)
class HoldExpiring:
    """A hold ends within a day; ``batch_ids`` are the batches it keeps now."""

    hold: Hold
    batch_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnknownStatuses:
    """Batches with statuses this version does not know, kept; status -> count."""

    counts: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class CycleFinished:
    report: CycleReport


@dataclass(frozen=True, slots=True)
class PlanWritten:
    """``cleaner plan --out`` wrote a plan file for review."""

    path: str
    actions: int
    listed_at: datetime
    expires_at: datetime
    policy_sha256: str


@dataclass(frozen=True, slots=True)
class ApplyStarted:
    """``cleaner apply`` accepted a plan; ``holds_changed``: the holds differ from the plan's."""

    path: str
    plan: ReviewedPlan
    policy_sha256: str
    holds_changed: bool


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """``apply`` or ``purge`` refused its input before sending anything (exit 2)."""

    command: str
    why: str
    error: str


@dataclass(frozen=True, slots=True)
class ApplySkipped:
    """A planned batch ``apply`` left alone: gone, held, no longer due, or changed."""

    skip: Skip


@dataclass(frozen=True, slots=True)
class PurgeBlocked:
    """An erasure request for a held batch: not touched, and the requester must know."""

    blocked: Blocked
    purge_reason: str


@dataclass(frozen=True, slots=True)
class PurgeUnknownStatus:
    """An erasure request for a batch in a status this version does not know: not touched."""

    batch: Batch
    purge_reason: str


@dataclass(frozen=True, slots=True)
class BatchNotFound:
    """The API answered 404 for a batch someone asked cleaner to act on: not deleted by us."""

    batch_id: str
    command: str
    request_id: str | None


@dataclass(frozen=True, slots=True)
class RetrieveFailed:
    """A batch could not be retrieved again before acting on it: left alone."""

    batch_id: str
    error: Exception


Event = (
    Exchange
    | CyclePlanned
    | DryRunAction
    | CancelRequested
    | CancelRefused
    | ActionFinished
    | ListingFailed
    | ListingInterrupted
    | CycleAborted
    | AuditUnavailable
    | HoldsInvalid
    | BlastRadiusExceeded
    | HoldExpiring
    | UnknownStatuses
    | ProgressReported
    | CycleFinished
    | PlanWritten
    | ApplyStarted
    | CommandRefused
    | ApplySkipped
    | PurgeBlocked
    | PurgeUnknownStatus
    | BatchNotFound
    | RetrieveFailed
)

Observer = Callable[[Event], None]


def fan_out(*observers: Observer) -> Observer:
    """One observer that hands every event to each of ``observers`` in turn."""

    def emit(event: Event) -> None:
        for observe in observers:
            observe(event)

    return emit
