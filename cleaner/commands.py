"""The words of a batch's life: the commands the core gives and the observations it takes.

:mod:`cleaner.lifecycle` decides; :mod:`cleaner.actor` carries out. Both speak in these
frozen values, and nothing else passes between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cleaner.models import Batch, Outcome, ProcessingStatus


class NotEndedError(ValueError):
    """An :class:`EndedBatch` was asked for a batch that has not ended."""


@dataclass(frozen=True, slots=True)
class EndedBatch:
    """A batch as the API showed it once it had ended: the only thing a delete accepts."""

    batch: Batch

    def __post_init__(self) -> None:
        if self.batch.processing_status is not ProcessingStatus.ENDED:
            raise NotEndedError(f"{self.batch.id} is {self.batch.processing_status}, not ended")

    @classmethod
    def of(cls, batch: Batch) -> EndedBatch | None:
        """The batch as ended, or None while it is not."""
        return cls(batch) if batch.processing_status is ProcessingStatus.ENDED else None


class Step(StrEnum):
    """Where in its life an action finished (the ``step`` field of log lines)."""

    CANCEL = "cancel"
    WAIT = "wait"
    ARCHIVE = "archive"
    DELETE = "delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class LifeConfig:
    """The steps a cycle takes and its waiting parameters; one value per cycle."""

    deadline: float  # monotonic time when waiting for canceled batches gives up
    poll_initial_s: float = 1.0
    poll_max_s: float = 30.0
    not_found_limit: int = 3  # consecutive 404s while waiting before a batch counts as gone
    audit: bool = False  # write an intent before every cancel and delete
    archive: bool = False  # keep the results before deleting
    verify: bool = False  # retrieve after a confirmed delete, expecting 404


@dataclass(frozen=True, slots=True, kw_only=True)
class SettleEstimate:
    """Shared by a cycle's waiters: how many probes are out, and the quickest settle seen."""

    probes_allowed: int = 3
    probes_taken: int = 0
    settle_s: float | None = None

    def take_probe(self) -> tuple[SettleEstimate, bool]:
        """A new waiter asks whether it is a probe; returns the estimate after asking."""
        if self.probes_taken < self.probes_allowed:
            return replace(self, probes_taken=self.probes_taken + 1), True
        return self, False

    def learn(self, settle_s: float) -> SettleEstimate:
        """A waiter saw its batch end ``settle_s`` after its cancel."""
        if self.settle_s is None or settle_s < self.settle_s:
            return replace(self, settle_s=max(0.0, settle_s))
        return self


# --- commands: what the shell is asked to do next


@dataclass(frozen=True, slots=True)
class WriteIntent:
    """Durably record that ``step`` is about to be sent (the write-ahead receipt)."""

    step: Step


@dataclass(frozen=True, slots=True)
class Cancel:
    """Send the cancel request."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Sleep until monotonic time ``until``; wake early when the settle estimate is learned."""

    until: float
    wake_on_settle: bool = False


@dataclass(frozen=True, slots=True)
class Poll:
    """Retrieve the batch to see whether it has ended."""


@dataclass(frozen=True, slots=True)
class Archive:
    """Copy the ended batch's results to the archive and verify the copy."""

    ended: EndedBatch


@dataclass(frozen=True, slots=True)
class Delete:
    """Send the DELETE. Only ever built from an observation of the batch ended."""

    ended: EndedBatch


@dataclass(frozen=True, slots=True)
class Verify:
    """Retrieve after a confirmed delete, expecting 404."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finish:
    """The life is over; everything the logs, receipts and metrics need to say so."""

    outcome: Outcome
    step: Step | None = None
    ended: EndedBatch | None = None
    confirmation: Mapping[str, Any] | None = None
    request_id: str | None = None
    archive: Mapping[str, Any] | None = None  # uri, bytes, sha256 of a verified copy
    results_unavailable: bool = False  # nothing left to archive: the provider dropped it
    verified_absent: bool | None = None
    error: Exception | None = None


Command = WriteIntent | Cancel | Sleep | Poll | Archive | Delete | Verify | Finish


# --- observations: what the shell saw when it carried out a command


@dataclass(frozen=True, slots=True)
class Done:
    """The command finished with nothing to report (an intent written, a sleep over)."""


@dataclass(frozen=True, slots=True)
class Seen:
    """The API answered with the batch (to a cancel or a poll)."""

    batch: Batch


@dataclass(frozen=True, slots=True)
class Refused:
    """The API refused a cancel (400): most likely the batch ended meanwhile; look."""


@dataclass(frozen=True, slots=True)
class Gone:
    """404. On delete: already gone. While waiting: perhaps transient; asked again."""

    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The API confirmed the deletion."""

    confirmation: Mapping[str, Any]
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Archived:
    """A verified copy of the results exists (``info`` has uri, bytes, sha256)."""

    info: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NothingToArchive:
    """The results are no longer downloadable: nothing to keep, the delete may go ahead."""


@dataclass(frozen=True, slots=True)
class Absent:
    """The verifying retrieve answered: True for 404, False when the batch is still there."""

    verified: bool | None


@dataclass(frozen=True, slots=True)
class Failed:
    """The command failed for good. ``ends_cycle``: the cause will fail every call alike."""

    error: Exception
    ends_cycle: bool = False


@dataclass(frozen=True, slots=True)
class Halted:
    """The cycle is stopping (shutdown, or a fatal error elsewhere): do no more."""


Observation = (
    Done
    | Seen
    | Refused
    | Gone
    | Confirmed
    | Archived
    | NothingToArchive
    | Absent
    | Failed
    | Halted
)
