"""The log observer: every cycle event becomes its one JSON line here, and only here.

The event names and fields are an interface operators script against (README "Log lines");
this module is where they are spelled.
"""

from __future__ import annotations

from typing import Any

from cleaner.commands import Finish
from cleaner.errors import ApiStatusError
from cleaner.events import (
    ActionFinished,
    ApplySkipped,
    ApplyStarted,
    AuditUnavailable,
    BatchNotFound,
    BlastRadiusExceeded,
    CancelRefused,
    CancelRequested,
    CommandRefused,
    CycleAborted,
    CycleFinished,
    CyclePlanned,
    DryRunAction,
    Event,
    HoldExpiring,
    HoldsInvalid,
    ListingFailed,
    ListingInterrupted,
    PlanWritten,
    ProgressReported,
    PurgeBlocked,
    PurgeUnknownStatus,
    RetrieveFailed,
    UnknownStatuses,
)
from cleaner.logs import Logger
from cleaner.logsink_review import review_line
from cleaner.models import Action, ActionKind, CycleReport, Outcome


class LogSink:
    """Renders cycle events as log lines on ``log``."""

    def __init__(self, log: Logger, *, wait_timeout_s: float = 0.0) -> None:
        self.log = log
        self.wait_timeout_s = wait_timeout_s

    def __call__(self, event: Event) -> None:
        match event:
            case CyclePlanned():
                self._planned(event)
            case DryRunAction(action=action):
                self.log.info("dry_run_action", **action_fields(action))
            case CancelRequested(action=action, batch=batch):
                self.log.info(
                    "batch_cancel_requested",
                    **action_fields(action),
                    request_counts=batch.request_counts.as_dict(),
                    processing_status=str(batch.processing_status),
                )
            case CancelRefused(action=action, error=error):
                self.log.info("cancel_refused", batch_id=action.batch_id, error=str(error))
            case ActionFinished(action=action, finish=finish):
                self._finished(action, finish)
            case ListingFailed(error=error):
                self.log.error("listing_failed", **error_fields(error))
            case ListingInterrupted():
                self.log.info("listing_interrupted", note="stop requested; nothing was acted on")
            case CycleAborted(error=error, batch_id=batch_id, step=step):
                self.log.error("cycle_aborted", **error_fields(error), batch_id=batch_id, step=step)
            case AuditUnavailable(error=error, batch_id=batch_id, step=step):
                self.log.error(
                    "audit_unavailable",
                    **error_fields(error),
                    batch_id=batch_id,
                    step=step,
                    note="nothing more is canceled or deleted this cycle",
                )
            case ProgressReported(progress=p, budget_per_minute=budget, final=False):
                self.log.info(
                    "cycle_progress",
                    done=p.done,
                    planned=p.planned,
                    waiting_on_cancel=p.waiting_on_cancel,
                    rate_per_s=p.rate_per_s,
                    eta_s=p.eta_s,
                    budget_per_minute=round(budget, 1),
                )
            case HoldsInvalid(error=error):
                self.log.error(
                    "holds_invalid",
                    **error_fields(error),
                    note="this cycle acts on nothing; the next one reads the file again",
                )
            case BlastRadiusExceeded(stop=stop):
                self.log.error(
                    "blast_radius_exceeded",
                    planned=stop.planned,
                    listed=stop.listed,
                    fraction=round(stop.fraction, 4),
                    max_delete_fraction=stop.max_fraction,
                    note="nothing was canceled or deleted; check the policy, then raise "
                    "CLEANER_MAX_DELETE_FRACTION deliberately if the plan is right",
                )
            case HoldExpiring(hold=hold, batch_ids=ids):
                self.log.warning(
                    "hold_expiring",
                    **{k: v for k, v in hold.canonical().items() if v is not None},
                    batches=list(ids[:100]),
                    batch_count=len(ids),
                    note="after until, the hold protects nothing and the policy applies",
                )
            case UnknownStatuses(counts=counts):
                self.log.warning(
                    "unknown_processing_status",
                    statuses=dict(counts),
                    count=sum(counts.values()),
                    note="kept (reason unknown_status); update cleaner to act on them",
                )
            case CycleFinished(report=report):
                self._summary(report)
            case (
                PlanWritten()
                | ApplyStarted()
                | CommandRefused()
                | ApplySkipped()
                | PurgeBlocked()
                | PurgeUnknownStatus()
                | BatchNotFound()
            ):
                review_line(self.log, event)
            case RetrieveFailed(batch_id=batch_id, error=error):
                self.log.error(
                    "retrieve_failed", **error_fields(error), batch_id=batch_id, step="retrieve"
                )
            case _:
                pass  # exchanges are the metrics' business

    def _planned(self, event: CyclePlanned) -> None:
        plan, listing = event.plan, event.listing
        extra: dict[str, object] = {}
        if listing is not None:
            extra = {
                "listing": listing.mode,
                "listing_reason": listing.reason,
                "pages": listing.pages,
                "retrieves": listing.retrieves,
            }
        self.log.info(
            "cycle_planned",
            seen={str(k): v for k, v in plan.seen.items()},
            kept={k.value: v for k, v in plan.kept.items()},
            planned={kind.value: plan.count(kind) for kind in ActionKind},
            dry_run=event.dry_run,
            **extra,
        )
        if plan.deferred:
            self.log.warning(
                "deletion_cap_reached",
                max_deletions_per_run=event.max_actions,
                deferred=plan.deferred,
                note="the oldest batches go first; the rest wait for later cycles",
            )

    def _finished(self, action: Action, finish: Finish) -> None:
        step = None if finish.step is None else finish.step.value
        match finish.outcome:
            case Outcome.DELETED:
                ended = None if finish.ended is None else finish.ended.batch.ended_at
                extra: dict[str, Any] = {}
                if finish.archive is not None:
                    extra.update({f"archive_{k}": v for k, v in finish.archive.items()})
                if finish.results_unavailable:
                    extra["results_unavailable"] = True
                if finish.verified_absent is not None:
                    extra["verified_absent"] = finish.verified_absent
                self.log.info(
                    "batch_deleted",
                    **action_fields(action),
                    confirmation=finish.confirmation,
                    request_id=finish.request_id,
                    ended_at=None if ended is None else ended.isoformat(),
                    **extra,
                )
            case Outcome.ALREADY_GONE if step == "delete":
                self.log.info(
                    "batch_already_gone",
                    **action_fields(action),
                    step=step,
                    request_id=finish.request_id,
                )
            case Outcome.ALREADY_GONE:
                self.log.info("batch_already_gone", batch_id=action.batch_id, step=step)
            case Outcome.WAIT_TIMEOUT:
                self.log.warning(
                    "batch_wait_timeout",
                    batch_id=action.batch_id,
                    wait_timeout_s=self.wait_timeout_s,
                    note="the next cycle picks it up",
                )
            case Outcome.FAILED | Outcome.ARCHIVE_FAILED if finish.error is not None:
                event = "action_failed" if finish.outcome is Outcome.FAILED else "archive_failed"
                self.log.error(
                    event,
                    **error_fields(finish.error),
                    batch_id=action.batch_id,
                    action=action.kind.value,
                    step=step,
                )
            case _:
                pass  # not attempted, dry run, audit_unavailable: said once for the cycle

    def _summary(self, report: CycleReport) -> None:
        outcomes: dict[str, dict[str, int]] = {}
        for (kind, outcome), count in sorted(report.outcomes.items()):
            outcomes.setdefault(kind.value, {})[outcome.value] = count
        fields: dict[str, object] = {
            "ok": report.ok,
            "dry_run": report.dry_run,
            "duration_s": report.duration_s,
            "seen": {str(k): v for k, v in report.seen.items()},
            "planned": {k.value: v for k, v in report.planned.items()},
            "outcomes": outcomes,
            "deleted": report.outcome_count(Outcome.DELETED),
            "already_gone": report.outcome_count(Outcome.ALREADY_GONE),
            "failed": report.outcome_count(Outcome.FAILED),
            "deferred": report.deferred,
            "cancels_sent": report.cancels_sent,
            "requests": report.requests,
            "retries": report.retries,
            "rate_limited": report.rate_limited,
        }
        if report.ok:
            self.log.info("cycle_finished", **fields)
        else:
            # The cause was already logged once at level error; the summary only says so.
            self.log.warning("cycle_finished", error=report.error, **fields)


def action_fields(action: Action) -> dict[str, object]:
    """The fields every line about one planned action carries."""
    fields: dict[str, object] = {
        "batch_id": action.batch_id,
        "action": action.kind.value,
        "reason": action.reason.value,
        "created_at": action.batch.created_at.isoformat(),
        "age_s": action.age_s,
    }
    if action.purge_reason is not None:
        fields["purge_reason"] = action.purge_reason
    return fields


def error_fields(exc: BaseException) -> dict[str, object]:
    """What an error line says about its cause; never a credential (errors hold none)."""
    fields: dict[str, object] = {"error": str(exc), "error_class": type(exc).__name__}
    if isinstance(exc, ApiStatusError):
        fields.update(status=exc.status, error_type=exc.error_type, request_id=exc.request_id)
        code = getattr(exc, "error_code", None)
        if code:
            fields["error_code"] = code
    return fields
