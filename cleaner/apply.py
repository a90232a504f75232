"""``cleaner apply FILE``: carry out a reviewed plan, and nothing outside it.

The thin shell around :mod:`cleaner.planfile`: read and check the file (exit 2 and no
request for a malformed or expired plan or other retention rules), retrieve each planned
batch again, let :func:`cleaner.planfile.choose` decide, act through
:func:`cleaner.bootstrap.act_on` like ``run --once``, and end with ``cycle_finished``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from cleaner.bootstrap import act_on, open_client, retention_policy
from cleaner.clock import SYSTEM, Clock
from cleaner.cycle import RequestTally
from cleaner.events import ApplySkipped, ApplyStarted, CommandRefused, Observer
from cleaner.holds import HoldsError
from cleaner.logs import Logger, get_logger
from cleaner.logsink import LogSink
from cleaner.models import Action
from cleaner.oneshot import Retrieved, finish, report_failures, retrieve_each, stop_on_signals
from cleaner.planfile import PlanFileError, ReviewedPlan, Skip, check_plan, choose, parse_plan
from cleaner.policy import RetentionPolicy, policy_sha256
from cleaner.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
#: A plan file larger than this is refused unread: a million actions is about 200 MB.
MAX_PLAN_BYTES = 256 * 1024 * 1024


async def apply_plan(
    settings: Settings, path: Path, *, clock: Clock = SYSTEM, log: Logger | None = None
) -> int:
    """Apply the plan in ``path``; the exit code (0, 1 as ``run --once``; 2 refused)."""
    wait_s = settings.wait_timeout.total_seconds()
    emit: Observer = LogSink(log or get_logger(), wait_timeout_s=wait_s)
    accepted = _accept(settings, path, now=clock.wall(), emit=emit)
    if accepted is None:
        return EXIT_REFUSED
    plan, policy = accepted
    stop = asyncio.Event()
    with stop_on_signals(stop):
        return await _apply(settings, plan, policy, clock=clock, emit=emit, stop=stop)


def _accept(
    settings: Settings, path: Path, *, now: datetime, emit: Observer
) -> tuple[ReviewedPlan, RetentionPolicy] | None:
    """The plan and the policy in force, or None after one ``apply_refused`` line."""
    try:
        policy = retention_policy(settings)
    except HoldsError as exc:
        emit(CommandRefused("apply", "holds_invalid", str(exc)))
        return None
    try:
        plan = parse_plan(_read(path))
        holds_changed = check_plan(plan, now=now, policy=policy)
    except PlanFileError as exc:
        emit(CommandRefused("apply", exc.why, f"{path}: {exc.problem}"))
        return None
    emit(ApplyStarted(str(path), plan, policy_sha256(policy), holds_changed))
    return plan, policy


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanFileError("malformed", f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_PLAN_BYTES:
        raise PlanFileError("malformed", f"larger than {MAX_PLAN_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanFileError("malformed", "not UTF-8 text") from None


async def _apply(
    settings: Settings,
    plan: ReviewedPlan,
    policy: RetentionPolicy,
    *,
    clock: Clock,
    emit: Observer,
    stop: asyncio.Event,
) -> int:
    started_at, started_mono = clock.wall(), clock.monotonic()
    requests = RequestTally()
    async with open_client(settings, clock=clock) as client:
        with client.observed(requests):
            ids = [entry.batch_id for entry in plan.entries]
            retrieved, fatal = await retrieve_each(
                client, ids, workers=settings.concurrency, stop=stop
            )
            report_failures(retrieved, fatal, emit)
            actions = [] if fatal else _chosen(plan, retrieved, policy, clock.wall(), emit)
            tally = await act_on(
                settings, client, tuple(actions), clock=clock, emit=emit, stop=stop
            )
            failed = next((item.error for item in retrieved if item.error is not None), None)
            report = finish(
                requests=requests,
                clock=clock,
                started_at=started_at,
                started_mono=started_mono,
                dry_run=settings.dry_run,
                retrieved=retrieved,
                actions=actions,
                tally=tally,
                error=fatal or tally.fatal or failed,
                emit=emit,
            )
    return EXIT_OK if report.ok else EXIT_FAILED


def _chosen(
    plan: ReviewedPlan,
    retrieved: list[Retrieved],
    policy: RetentionPolicy,
    now: datetime,
    emit: Observer,
) -> list[Action]:
    """The planned batches still due as reviewed; an ``apply_skipped`` line for the rest."""
    by_id = {item.batch_id: item for item in retrieved}
    actions: list[Action] = []
    for entry in plan.entries:
        item = by_id.get(entry.batch_id)
        if item is None or item.error is not None:
            continue  # a stop came first, or said by report_failures: left alone
        choice = choose(entry, item.batch, policy, now)
        if isinstance(choice, Skip):
            emit(ApplySkipped(choice))
        else:
            actions.append(choice)
    return actions
