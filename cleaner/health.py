"""The health port: `/livez`, `/readyz` and `/metrics`, served by uvicorn in the daemon's loop.

Liveness (``/livez``, 200 or 503) fails when either of these holds:

* **the scheduler stopped ticking**: no tick since the one the schedule expected, plus a
  grace of one more period (at least :data:`TICK_GRACE_S`). Ticks keep coming while a long
  cycle runs (the job only marks a cycle due), so a late tick means the scheduler or the
  event loop is wedged. Off when there is no schedule (``run --once``).
* **the running cycle stalled**: a cycle has been running and neither it started nor the
  API answered anything (any status, a timeout or a connection error all count) for more
  than ``stall_after_s``. A healthy cycle talks to the API at least every 30 s (it polls
  canceled batches that often, and one call gives up within two minutes); a drain of a
  million batches legitimately runs for hours, so the bound is on silence, not on the
  cycle's length. If nothing feeds :meth:`Metrics.on_response`, silence is measured from
  the cycle's start, which makes the bound one on the cycle's length.

Readiness (``/readyz``): the configuration is valid (the process would not be running
otherwise) and the API answered at least once with a status other than 401 or 403.

uvicorn's ``Server.serve`` installs its own SIGTERM and SIGINT handlers (and re-raises the
signal on exit); :class:`_QuietServer` turns that off, so signals stay the daemon's.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson
import uvicorn
from prometheus_client import make_asgi_app

from cleaner.budget import BudgetTuning
from cleaner.clock import SYSTEM, Clock
from cleaner.metrics import Metrics
from cleaner.schedule import Schedule

if TYPE_CHECKING:  # the daemon wires us in; importing it here would be circular
    from cleaner.daemon import DaemonState

#: Where the health port listens: every interface, since probes and scrapes come from
#: outside the pod (the NetworkPolicy and the Service decide who may connect).
DEFAULT_HOST = "0.0.0.0"  # noqa: S104  # nosec B104
#: The least time a late tick is forgiven, however short the schedule's period.
TICK_GRACE_S = 60.0
#: The least silence a running cycle is allowed before it counts as stalled.
MIN_STALL_AFTER_S = 600.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_TINY = timedelta(microseconds=1)


def stall_after_s(requests_per_minute: float) -> float:
    """A stall bound for this budget: ten minutes, longer under a very low request budget.

    At the budget's floor (a 429 storm) one request may wait ``60 / (rpm * floor)`` seconds;
    three of those in a row are still not a stall.
    """
    slowest_request_s = 60.0 / (requests_per_minute * BudgetTuning().floor)
    return max(MIN_STALL_AFTER_S, 3 * slowest_request_s)


class Probes:
    """Decides liveness and readiness from the daemon's state and the metrics' feed."""

    def __init__(
        self,
        state: DaemonState,
        metrics: Metrics,
        *,
        stall_after_s: float,
        schedule: Schedule | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.state, self.metrics, self.stall_after_s = state, metrics, stall_after_s
        self._schedule = schedule
        self._clock, self._wall = clock.monotonic, clock.wall

    def live(self) -> tuple[bool, dict[str, object]]:
        """Alive unless the scheduler stopped ticking or the running cycle went silent."""
        now = self._clock()
        problems: list[str] = []
        detail: dict[str, object] = {}
        if self._schedule is not None:
            last = (
                self.state.last_tick if self.state.last_tick is not None else self.state.started_at
            )
            overdue_s = self._overdue_s(last, now)
            detail["since_tick_s"] = round(now - last, 1)
            if overdue_s > 0:
                problems.append(f"scheduler tick overdue by {overdue_s:.0f}s")
        if self.state.cycle_started is not None:
            heard = self.metrics.last_response_at
            active = max(self.state.cycle_started, heard if heard is not None else -math.inf)
            silent_s = now - active
            detail["cycle_running_s"] = round(now - self.state.cycle_started, 1)
            detail["silent_s"] = round(silent_s, 1)
            if silent_s > self.stall_after_s:
                problems.append(
                    f"cycle stalled: no API answer for {silent_s:.0f}s "
                    f"(bound {self.stall_after_s:.0f}s)"
                )
        if problems:
            detail["problems"] = problems
        return not problems, detail

    def ready(self) -> tuple[bool, dict[str, object]]:
        """Ready once the API has answered (the configuration was valid at start)."""
        answered = self.metrics.api_answered
        detail: dict[str, object] = {"api_answered": answered, "cycles": self.state.cycles}
        if not answered:
            detail["problems"] = ["the API has not answered yet"]
        return answered, detail

    def _overdue_s(self, last_tick: float, now: float) -> float:
        """How far past its grace the next tick after ``last_tick`` is (<= 0: not overdue)."""
        if self._schedule is None:
            return 0.0
        last_wall = self._wall() - timedelta(seconds=now - last_tick)
        tick = self._schedule.next_tick(last_wall)
        if tick is None:  # settings refuse a cron that never fires; be safe anyway
            return 0.0
        expected, period_s = tick
        due_s = (expected - last_wall).total_seconds()
        return now - last_tick - due_s - max(TICK_GRACE_S, period_s)


class HealthApp:
    """A tiny ASGI app: two JSON probes and the Prometheus exposition."""

    def __init__(self, probes: Probes, metrics: Metrics) -> None:
        self.probes = probes
        self._metrics_app = make_asgi_app(metrics.registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; nothing else is served
        path, method = scope["path"], scope["method"]
        if method not in {"GET", "HEAD"}:
            await _json(send, 405, {"status": "method not allowed"})
        elif path == "/metrics":
            await self._metrics_app(scope, receive, send)
        elif path == "/livez":
            await _probe(send, *self.probes.live())
        elif path == "/readyz":
            await _probe(send, *self.probes.ready())
        else:
            await _json(
                send, 404, {"status": "not found", "paths": ["/livez", "/readyz", "/metrics"]}
            )


async def _probe(send: Send, ok: bool, detail: dict[str, object]) -> None:
    await _json(send, 200 if ok else 503, {"status": "ok" if ok else "failing", **detail})


async def _json(send: Send, status: int, body: dict[str, object]) -> None:
    payload = orjson.dumps(body) + b"\n"
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: SIGTERM belongs to the daemon."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serve_health(
    state: DaemonState,
    metrics: Metrics,
    *,
    host: str,
    port: int,
    stall_after_s: float,
    schedule: Schedule | None = None,
    clock: Clock = SYSTEM,
) -> AsyncIterator[int]:
    """Serve the probes and metrics on ``host:port`` in this event loop; yields the bound port.

    The socket is bound before uvicorn starts, so a busy port fails here (``OSError``) and
    ``port=0`` works. ``schedule`` turns on the tick check (pass ``None`` for ``--once``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        sock.setblocking(False)
        probes = Probes(state, metrics, stall_after_s=stall_after_s, schedule=schedule, clock=clock)
        config = uvicorn.Config(
            HealthApp(probes, metrics),
            lifespan="off",
            access_log=False,  # probes every few seconds would drown the JSON log
            log_config=None,  # keep our JSON logging; uvicorn's records propagate to it
            timeout_graceful_shutdown=1,
        )
        server = _QuietServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="health-server")
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("the health server stopped during startup")
            await SYSTEM.sleep(0.01)
        try:
            yield sock.getsockname()[1]
        finally:
            server.should_exit = True
            await task
    finally:
        sock.close()
