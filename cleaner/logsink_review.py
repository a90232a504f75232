"""The log lines of ``plan --out``, ``apply`` and ``purge``; :class:`LogSink` hands them here.

Kept beside :mod:`cleaner.logsink` (the one other place log lines are spelled) so that file
stays about cycles. README "Review, then apply" and "Erasure requests" list these lines.
"""

from __future__ import annotations

from cleaner.events import (
    ApplySkipped,
    ApplyStarted,
    BatchNotFound,
    CommandRefused,
    PlanWritten,
    PurgeBlocked,
    PurgeUnknownStatus,
)
from cleaner.logs import Logger
from cleaner.planfile import utc_text

ReviewEvent = (
    PlanWritten
    | ApplyStarted
    | CommandRefused
    | ApplySkipped
    | PurgeBlocked
    | PurgeUnknownStatus
    | BatchNotFound
)


def review_line(log: Logger, event: ReviewEvent) -> None:
    """The line for one event of ``plan --out``, ``apply`` or ``purge``."""
    match event:
        case PlanWritten():
            log.info(
                "plan_written",
                path=event.path,
                actions=event.actions,
                listed_at=utc_text(event.listed_at),
                expires_at=utc_text(event.expires_at),
                policy_sha256=event.policy_sha256,
            )
        case ApplyStarted(plan=plan):
            line = log.warning if event.holds_changed else log.info
            line(
                "apply_started",
                path=event.path,
                planned=len(plan.entries),
                listed_at=utc_text(plan.listed_at),
                expires_at=utc_text(plan.expires_at),
                plan_policy_sha256=plan.policy_sha256,
                policy_sha256=event.policy_sha256,
                holds_changed=event.holds_changed,
                **(
                    {
                        "note": "the holds changed since the plan: each batch is checked against "
                        "the holds in force now"
                    }
                    if event.holds_changed
                    else {}
                ),
            )
        case CommandRefused(command=command, why=why, error=error):
            log.error(f"{command}_refused", why=why, error=error, note="nothing was sent")
        case ApplySkipped(skip=skip):
            fields: dict[str, object] = {
                "batch_id": skip.entry.batch_id,
                "why": skip.why,
                "planned_action": skip.entry.action.value,
            }
            if skip.hold is not None:
                fields.update(hold_reason=skip.hold.reason, hold_owner=skip.hold.owner)
            if skip.kept is not None:
                fields["kept"] = skip.kept.value
            if skip.now_action is not None:
                fields["now_action"] = skip.now_action.value
            log.info("apply_skipped", **fields)
        case PurgeBlocked(blocked=blocked, purge_reason=purge_reason):
            hold = blocked.hold
            log.error(
                "purge_blocked_by_hold",
                batch_id=blocked.batch.id,
                hold_reason=hold.reason,
                hold_owner=hold.owner,
                hold_until=None if hold.until is None else utc_text(hold.until),
                purge_reason=purge_reason,
                note="not canceled or deleted: release the hold first if the erasure must go on",
            )
        case PurgeUnknownStatus(batch=batch, purge_reason=purge_reason):
            log.error(
                "purge_unknown_status",
                batch_id=batch.id,
                processing_status=str(batch.processing_status),
                purge_reason=purge_reason,
                note="not touched: this version does not know that status",
            )
        case BatchNotFound(batch_id=batch_id, command=command, request_id=request_id):
            log.error(
                "not_found",
                batch_id=batch_id,
                command=command,
                request_id=request_id,
                note="the API answered 404: cleaner did not delete this batch",
            )
