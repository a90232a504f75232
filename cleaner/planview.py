"""``cleaner plan``: what one cycle would do and why, without doing any of it.

Only list requests are sent. A terminal gets a table; anything else gets one JSON
object per action and a final summary object, for scripts and audits.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TextIO

import orjson

from cleaner.bootstrap import open_client, retention_policy
from cleaner.clock import SYSTEM, Clock
from cleaner.cycle import plan_cycle
from cleaner.errors import ApiError
from cleaner.logs import get_logger
from cleaner.models import ActionKind, Plan
from cleaner.settings import Settings


async def show_plan(
    settings: Settings, *, fmt: str = "auto", out: TextIO | None = None, clock: Clock = SYSTEM
) -> int:
    """Print the plan; exit code 0, or 1 when the listing failed."""
    out = out or sys.stdout
    now = clock.wall()
    try:
        async with open_client(settings, clock=clock) as client:
            plan = await plan_cycle(
                client,
                retention_policy(settings),
                now=now,
                max_actions=settings.max_deletions_per_run,
            )
    except ApiError as exc:
        get_logger().error("listing_failed", error=str(exc), error_class=type(exc).__name__)
        return 1
    table = fmt == "table" or (fmt == "auto" and out.isatty())
    (_table if table else _json_lines)(plan, out, now)
    return 0


def _json_lines(plan: Plan, out: TextIO, now: datetime) -> None:
    for action in plan.actions:
        out.write(
            orjson.dumps(
                {
                    "action": action.kind.value,
                    "batch_id": action.batch_id,
                    "processing_status": str(action.batch.processing_status),
                    "reason": action.reason.value,
                    "created_at": action.batch.created_at.isoformat(),
                    "age_s": action.age_s,
                }
            ).decode()
            + "\n"
        )
    out.write(orjson.dumps(_summary(plan, now)).decode() + "\n")


def _table(plan: Plan, out: TextIO, now: datetime) -> None:
    header = f"{'ACTION':<8} {'BATCH':<34} {'STATUS':<12} {'AGE':>10}  REASON"
    out.write(header + "\n")
    for action in plan.actions:
        out.write(
            f"{action.kind.value:<8} {action.batch_id:<34} "
            f"{action.batch.processing_status!s:<12} {_age(action.age_s):>10}  "
            f"{action.reason.value}\n"
        )
    summary = _summary(plan, now)
    out.write(
        f"\n{len(plan.actions)} planned ({summary['planned']}); kept {summary['kept']}; "
        f"deferred by the cap: {plan.deferred}; seen {summary['seen']}\n"
    )


def _summary(plan: Plan, now: datetime) -> dict[str, object]:
    return {
        "event": "plan_summary",
        "at": now.isoformat(),
        "planned": {kind.value: plan.count(kind) for kind in ActionKind},
        "kept": {k.value: v for k, v in plan.kept.items()},
        "seen": {str(k): v for k, v in plan.seen.items()},
        "deferred": plan.deferred,
    }


def _age(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d{hours:02d}h" if days else f"{hours}h{rest // 60:02d}m"
