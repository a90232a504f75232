"""What ``cleaner apply`` and ``cleaner purge`` share: retrieve named batches, act, report.

Both act on batches someone named (a reviewed plan, an erasure request) rather than on a
listing. Each batch is retrieved again first, a pure module decides, and the actions go
through :func:`cleaner.bootstrap.act_on`, the same actor and lifecycle as ``run --once``,
so the log lines, the summary and the exit codes are the same.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from cleaner.actor import Tally
from cleaner.client import BatchesClient
from cleaner.clock import Clock
from cleaner.cycle import RequestTally
from cleaner.errors import ApiError, NotFoundError, ends_cycle
from cleaner.events import CycleAborted, CycleFinished, Observer, RetrieveFailed
from cleaner.models import Action, Batch, CycleReport, ProcessingStatus


@dataclass(frozen=True, slots=True)
class Retrieved:
    """One named batch as the API shows it now: the batch, a 404, or an error."""

    batch_id: str
    batch: Batch | None = None
    not_found: bool = False
    request_id: str | None = None
    error: ApiError | None = None


async def retrieve_each(
    client: BatchesClient, ids: Sequence[str], *, workers: int, stop: asyncio.Event
) -> tuple[list[Retrieved], ApiError | None]:
    """Retrieve every id (at most ``workers`` at once), in the order given.

    Stops taking new ids at the first error that would fail every call alike (a bad key,
    a spend cap) and returns it: nothing is acted on after that. A stop request also ends
    it early; the ids not retrieved are then simply not acted on.
    """
    found: dict[str, Retrieved] = {}
    queue = iter(ids)
    fatal: list[ApiError] = []

    async def work() -> None:
        for batch_id in queue:
            if fatal or stop.is_set():
                return
            try:
                found[batch_id] = Retrieved(batch_id, await client.retrieve(batch_id))
            except NotFoundError as exc:
                found[batch_id] = Retrieved(batch_id, not_found=True, request_id=exc.request_id)
            except ApiError as exc:
                found[batch_id] = Retrieved(batch_id, error=exc)
                if ends_cycle(exc):
                    fatal.append(exc)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, min(workers, len(ids)))):
            group.create_task(work())
    return [found[i] for i in ids if i in found], (fatal[0] if fatal else None)


def report_failures(retrieved: Sequence[Retrieved], fatal: ApiError | None, emit: Observer) -> None:
    """One error line per batch that could not be retrieved, or one for the fatal cause."""
    if fatal is not None:
        failed = next(r for r in retrieved if r.error is fatal)
        emit(CycleAborted(fatal, failed.batch_id, "retrieve"))
        return
    for item in retrieved:
        if item.error is not None:
            emit(RetrieveFailed(item.batch_id, item.error))


def finish(
    *,
    requests: RequestTally,
    clock: Clock,
    started_at: datetime,
    started_mono: float,
    dry_run: bool,
    retrieved: Sequence[Retrieved],
    actions: Sequence[Action],
    tally: Tally,
    error: Exception | None,
    emit: Observer,
) -> CycleReport:
    """The ``cycle_finished`` summary of a command, as ``run --once`` ends with one."""
    seen: Counter[ProcessingStatus | str] = Counter(
        item.batch.processing_status for item in retrieved if item.batch is not None
    )
    report = CycleReport(
        started_at=started_at,
        duration_s=round(clock.monotonic() - started_mono, 3),
        dry_run=dry_run,
        seen=seen,
        kept={},
        planned=Counter(action.kind for action in actions),
        outcomes=tally.outcomes,
        deferred=0,
        cancels_sent=tally.cancels_sent,
        requests=requests.requests,
        retries=requests.retries,
        rate_limited=requests.rate_limited,
        error=None if error is None else f"{type(error).__name__}: {error}",
    )
    emit(CycleFinished(report))
    return report


@contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM or SIGINT: finish what is in flight, start nothing new (as ``run --once``)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
