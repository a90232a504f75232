"""``cleaner purge --ids-file FILE --reason TEXT``: erase named batches now, whatever their age.

The thin shell around :mod:`cleaner.erasure`: malformed ids or an empty reason are refused
before any request (exit 2); each batch is retrieved, and a 404 (``not_found``) or a hold
(``purge_blocked_by_hold``) is reported at level error and makes the exit code 1, since the
requester must learn that cleaner did not delete it. The rest are canceled if running,
waited on and deleted through :func:`cleaner.bootstrap.act_on`, as ``run --once`` would.
A batch not deleted by the end (wait timeout, a stop) also makes the exit code 1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cleaner.bootstrap import act_on, open_client, retention_policy
from cleaner.clock import SYSTEM, Clock
from cleaner.cycle import RequestTally
from cleaner.erasure import (
    Blocked,
    PurgeRequestError,
    UnknownStatus,
    check_reason,
    parse_ids,
    purge_action,
)
from cleaner.events import BatchNotFound, CommandRefused, Observer, PurgeBlocked, PurgeUnknownStatus
from cleaner.holds import HoldsError
from cleaner.logs import Logger, get_logger
from cleaner.logsink import LogSink
from cleaner.models import Action, Outcome
from cleaner.oneshot import (
    Retrieved,
    finish,
    report_failures,
    retrieve_each,
    stop_on_signals,
)
from cleaner.policy import RetentionPolicy
from cleaner.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
#: Outcomes after which the batch still exists, or may: the request was not met.
_NOT_ERASED = frozenset(
    {
        Outcome.FAILED,
        Outcome.WAIT_TIMEOUT,
        Outcome.NOT_ATTEMPTED,
        Outcome.AUDIT_UNAVAILABLE,
        Outcome.ARCHIVE_FAILED,
    }
)


def refuse(emit: Observer, error: Exception, *, why: str) -> int:
    """One ``purge_refused`` line; the exit code for a request refused before sending."""
    emit(CommandRefused("purge", why, str(error)))
    return EXIT_REFUSED


async def purge(
    settings: Settings,
    ids: Sequence[str],
    *,
    purge_reason: str,
    clock: Clock = SYSTEM,
    log: Logger | None = None,
) -> int:
    """Erase ``ids`` (already parsed and checked); the exit code."""
    wait_s = settings.wait_timeout.total_seconds()
    emit: Observer = LogSink(log or get_logger(), wait_timeout_s=wait_s)
    try:
        policy = retention_policy(settings)
    except HoldsError as exc:
        return refuse(emit, exc, why="holds_invalid")
    stop = asyncio.Event()
    with stop_on_signals(stop):
        return await _purge(settings, ids, policy, purge_reason, clock=clock, emit=emit, stop=stop)


async def _purge(
    settings: Settings,
    ids: Sequence[str],
    policy: RetentionPolicy,
    purge_reason: str,
    *,
    clock: Clock,
    emit: Observer,
    stop: asyncio.Event,
) -> int:
    started_at, started_mono = clock.wall(), clock.monotonic()
    requests = RequestTally()
    async with open_client(settings, clock=clock) as client:
        with client.observed(requests):
            retrieved, fatal = await retrieve_each(
                client, ids, workers=settings.concurrency, stop=stop
            )
            report_failures(retrieved, fatal, emit)
            actions: list[Action] = []
            # Not retrieved (a stop came first) or not retrievable: not erased either.
            unmet = (
                len(ids) - len(retrieved) + sum(1 for item in retrieved if item.error is not None)
            )
            if fatal is None:
                chosen, refused = _choose(retrieved, policy, purge_reason, clock=clock, emit=emit)
                actions, unmet = chosen, unmet + refused
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
    unmet += sum(n for (_, outcome), n in tally.outcomes.items() if outcome in _NOT_ERASED)
    return EXIT_OK if report.ok and unmet == 0 and fatal is None else EXIT_FAILED


def _choose(
    retrieved: Sequence[Retrieved],
    policy: RetentionPolicy,
    purge_reason: str,
    *,
    clock: Clock,
    emit: Observer,
) -> tuple[list[Action], int]:
    """The actions to carry out, and how many requested batches will not be erased."""
    now = clock.wall()
    actions: list[Action] = []
    refused = 0
    for item in retrieved:
        if item.not_found:
            emit(BatchNotFound(item.batch_id, "purge", item.request_id))
            refused += 1
        if item.batch is None:
            continue
        choice = purge_action(item.batch, policy, now, purge_reason=purge_reason)
        if isinstance(choice, Blocked):
            emit(PurgeBlocked(choice, purge_reason))
            refused += 1
        elif isinstance(choice, UnknownStatus):
            emit(PurgeUnknownStatus(choice.batch, purge_reason))
            refused += 1
        else:
            actions.append(choice)
    return actions, refused


def run_purge(
    settings: Settings, *, ids_file: str, reason: str, stdin: TextIO | None = None
) -> int:
    """``cleaner purge``: read and check the request, then erase; the exit code."""
    emit: Observer = LogSink(get_logger())
    try:
        purge_reason = check_reason(reason)
        ids = parse_ids(_read_ids(ids_file, stdin or sys.stdin))
    except PurgeRequestError as exc:
        return refuse(emit, exc, why="malformed_request")
    return asyncio.run(purge(settings, ids, purge_reason=purge_reason))


def _read_ids(ids_file: str, stdin: TextIO) -> str:
    if ids_file == "-":
        return stdin.read()
    try:
        return Path(ids_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PurgeRequestError(f"{ids_file}: cannot be read: {exc}") from None
