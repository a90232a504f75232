"""``cleaner plan``: what one cycle would do and why, without doing any of it.

Only list requests are sent. A terminal gets a table; anything else gets one JSON
object per action and a final summary object, for scripts and audits. With ``--out FILE``
the same plan is also written as a plan file for review and ``cleaner apply``
(:mod:`cleaner.planfile`); stdout is unchanged.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import orjson

from cleaner.bootstrap import open_client, retention_policy
from cleaner.clock import SYSTEM, Clock
from cleaner.cycle import plan_cycle
from cleaner.errors import ApiError
from cleaner.events import PlanWritten
from cleaner.logs import get_logger
from cleaner.logsink import LogSink
from cleaner.models import ActionKind, Plan
from cleaner.planfile import render_plan
from cleaner.policy import downloadable, policy_sha256, results_downloadable
from cleaner.settings import Settings


async def show_plan(
    settings: Settings,
    *,
    fmt: str = "auto",
    out: TextIO | None = None,
    clock: Clock = SYSTEM,
    write_to: Path | None = None,
    ttl: timedelta = timedelta(hours=24),
) -> int:
    """Print the plan (and write it to ``write_to``); exit code 0, 1 when the listing
    failed, 2 when ``write_to`` cannot be written (found out before any request)."""
    out = out or sys.stdout
    temp: Path | None = None
    if write_to is not None:
        try:  # a plan we cannot write is found out before listing a large workspace
            temp = _reserve(write_to)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            print(f"cleaner: cannot write the plan to {write_to}: {reason}", file=sys.stderr)
            return 2
    try:
        now = clock.wall()
        policy = retention_policy(settings)
        try:
            async with open_client(settings, clock=clock) as client:
                plan, _ = await plan_cycle(
                    client, policy, now=now, max_actions=settings.max_deletions_per_run
                )
        except ApiError as exc:
            get_logger().error("listing_failed", error=str(exc), error_class=type(exc).__name__)
            return 1
        if temp is not None and write_to is not None:
            _write(temp, write_to, render_plan(plan, listed_at=now, ttl=ttl, policy=policy))
            temp = None
            written = PlanWritten(
                str(write_to), len(plan.actions), now, now + ttl, policy_sha256(policy)
            )
            LogSink(get_logger())(written)
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    table = fmt == "table" or (fmt == "auto" and out.isatty())
    (_table if table else _json_lines)(plan, out, now)
    return 0


def _reserve(path: Path) -> Path:
    """A temporary file beside ``path``, proving its directory writable before listing."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    return Path(name)


def _write(temp: Path, path: Path, text: str) -> None:
    """Write, flush to disk, then rename over ``path``: a reader never sees half a plan."""
    with temp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temp.chmod(0o644)
    temp.replace(path)


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
                    "results_downloadable": results_downloadable(action.batch, now),
                }
            ).decode()
            + "\n"
        )
    for held in plan.held:
        out.write(
            orjson.dumps(
                {
                    "action": "keep",
                    "batch_id": held.batch_id,
                    "processing_status": str(held.batch.processing_status),
                    "reason": "held",
                    "created_at": held.batch.created_at.isoformat(),
                    "hold_reason": held.hold.reason,
                    "hold_owner": held.hold.owner,
                    "hold_until": None if held.hold.until is None else held.hold.until.isoformat(),
                }
            ).decode()
            + "\n"
        )
    out.write(orjson.dumps(_summary(plan, now)).decode() + "\n")


def _table(plan: Plan, out: TextIO, now: datetime) -> None:
    header = f"{'ACTION':<8} {'BATCH':<34} {'STATUS':<12} {'AGE':>10}  {'DATA':<4}  REASON"
    out.write(header + "\n")
    for action in plan.actions:
        data = "yes" if results_downloadable(action.batch, now) else "no"
        out.write(
            f"{action.kind.value:<8} {action.batch_id:<34} "
            f"{action.batch.processing_status!s:<12} {_age(action.age_s):>10}  {data:<4}  "
            f"{action.reason.value}\n"
        )
    if plan.held:
        out.write(f"\n{'HELD':<8} {'BATCH':<34} {'OWNER':<12} REASON\n")
        for held in plan.held:
            owner = held.hold.owner or "-"
            out.write(f"{'keep':<8} {held.batch_id:<34} {owner:<12} {held.hold.reason}\n")
    summary = _summary(plan, now)
    out.write(
        f"\n{len(plan.actions)} planned ({summary['planned']}); results still downloadable "
        f"(the data deleting removes): {summary['results_downloadable']}; kept "
        f"{summary['kept']}; deferred by the cap: {plan.deferred}; seen {summary['seen']}\n"
    )


def _summary(plan: Plan, now: datetime) -> dict[str, object]:
    return {
        "event": "plan_summary",
        "at": now.isoformat(),
        "planned": {kind.value: plan.count(kind) for kind in ActionKind},
        "kept": {k.value: v for k, v in plan.kept.items()},
        "seen": {str(k): v for k, v in plan.seen.items()},
        "deferred": plan.deferred,
        "results_downloadable": {k.value: v for k, v in downloadable(plan, now).items()},
        "held": len(plan.held),
    }


def _age(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d{hours:02d}h" if days else f"{hours}h{rest // 60:02d}m"
