"""Reliability harness: a small mixed population, cycles over real HTTP, and the checker.

Every test here ends with :func:`tests.reliability.invariants.check_invariants`. Times are
scaled down (fast retries, short timeouts, cancels that settle in a fraction of a second)
so that the whole directory stays within a few minutes on two cores.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cleaner.budget import RequestBudget
from cleaner.client import BatchesClient, RetryPolicy
from cleaner.clock import SystemClock
from cleaner.cycle import CycleOptions, run_cycle
from cleaner.emulator import Emulator, EmulatorConfig, Population, serve_in_thread
from cleaner.models import CycleReport
from cleaner.policy import RetentionPolicy
from tests.fakes import EventLog
from tests.reliability.invariants import check_invariants, snapshot

KEY = "sk-ant-reliability-secret-4c1d-do-not-print"
DAY = 86400.0
HOUR = 3600.0

#: Production's retry shape, a hundred times faster; a call gives up within a few seconds.
FAST_RETRY = RetryPolicy(
    attempts=6, total_s=8.0, wait_initial_s=0.005, wait_max_s=0.05, wait_jitter_s=0.005
)
#: Cycle options scaled down: waits of a few seconds, polls every few tens of ms.
FAST_CYCLE = CycleOptions(wait_timeout_s=5.0, poll_initial_s=0.03, poll_max_s=0.1)


@dataclass
class World:
    """A small population covering every rule of the policy, and the policy protecting some."""

    groups: dict[str, set[str]]
    policy: RetentionPolicy
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def expired(self) -> set[str]:
        """Every batch the policy wants gone."""
        return self.groups["old"] | self.groups["stale_running"] | self.groups["canceling"]

    @property
    def kept(self) -> set[str]:
        """Every batch that must survive any number of cycles."""
        return self.groups["young"] | self.groups["running"] | self.groups["protected"]


def seed_world(
    emulator: Emulator, *, old: int = 6, stale_running: int = 3, canceling: int = 0
) -> World:
    """Old ended, young ended, stale running, fresh running, canceling, and protected ones.

    Batches seeded canceling (by someone else) settle a second later, so that the cycle
    surely lists them canceling: one that ended first would be kept as young.
    """

    def make(count: int, status: Any, age_s: float) -> set[str]:
        return set(emulator.seed(Population(count=count, status=status, age_s=age_s)))

    settle_s = emulator.config.cancel_settle_s
    emulator.configure(cancel_settle_s=1.0)
    canceled_elsewhere = make(canceling, "canceling", 3 * HOUR)
    emulator.configure(cancel_settle_s=settle_s)

    groups = {
        "old": make(old, "ended", 40 * DAY),
        "young": make(3, "ended", 1 * DAY),
        "stale_running": make(stale_running, "in_progress", 3 * HOUR),
        "running": make(2, "in_progress", 0.5 * HOUR),
        "canceling": canceled_elsewhere,
        "protected": make(2, "ended", 40 * DAY) | make(1, "in_progress", 3 * HOUR),
    }
    policy = RetentionPolicy(
        retention=timedelta(days=30),
        processing_retention=timedelta(hours=2),
        protected_ids=frozenset(groups["protected"]),
    )
    return World(groups=groups, policy=policy, seen=snapshot(emulator))


def reliability_emulator(**config: Any) -> Emulator:
    """An emulator requiring KEY; batches run for hours, cancels settle in 0.15 s."""
    values: dict[str, Any] = {
        "api_key": KEY,
        "processing_time_s": 20 * HOUR,
        "cancel_settle_s": 0.15,
        **config,
    }
    return Emulator(EmulatorConfig(**values))


@pytest.fixture
def emulator() -> Emulator:
    """A fresh emulator for one test."""
    return reliability_emulator()


@pytest.fixture
def base_url(emulator: Emulator) -> Iterator[str]:
    """The emulator over real HTTP on an ephemeral loopback port."""
    with serve_in_thread(emulator) as url:
        yield url


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port bound but not listening: connecting to it is refused by the kernel."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def endpoint_of(request: httpx.Request) -> str:
    """Which Batches endpoint a request is for, as the emulator names them."""
    parts = request.url.path.removeprefix("/v1/messages/batches").strip("/").split("/")
    if parts == [""]:
        return "list" if request.method == "GET" else "create"
    if len(parts) == 2:
        return parts[1]  # cancel or results
    return "delete" if request.method == "DELETE" else "retrieve"


class RefusingTransport(httpx.AsyncBaseTransport):
    """A real transport that sends the first ``times`` requests to ``endpoint`` to a dead port.

    Not a mock: the connection is really attempted and really refused by the kernel.
    """

    def __init__(self, *, endpoint: str, times: int, dead_port: int) -> None:
        self._real = httpx.AsyncHTTPTransport()
        self.endpoint, self.left, self.dead_port = endpoint, times, dead_port
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.left > 0 and endpoint_of(request) == self.endpoint:
            self.left -= 1
            self.refused += 1
            request.url = request.url.copy_with(port=self.dead_port)
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


@asynccontextmanager
async def open_client(
    base_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout_s: float = 2.0,
    retry: RetryPolicy = FAST_RETRY,
    concurrency: int = 8,
    max_pages: int | None = None,
) -> AsyncIterator[BatchesClient]:
    """A client built like production's (same headers), optionally over ``transport``."""
    http = BatchesClient.http_client(
        base_url=base_url, api_key=KEY, request_timeout_s=timeout_s, concurrency=concurrency
    )
    if transport is not None:
        production = http
        http = httpx.AsyncClient(
            base_url=production.base_url,
            headers=production.headers,
            timeout=production.timeout,
            transport=transport,
            follow_redirects=False,
        )
        await production.aclose()
    extra: dict[str, Any] = {} if max_pages is None else {"max_pages": max_pages}
    async with http:
        yield BatchesClient(
            http,
            budget=RequestBudget(600_000),
            concurrency=concurrency,
            request_timeout_s=timeout_s,
            retry=retry,
            **extra,
        )


async def one_cycle(
    base_url: str,
    emulator: Emulator,
    policy: RetentionPolicy,
    *,
    log: EventLog | None = None,
    options: CycleOptions = FAST_CYCLE,
    **client_options: Any,
) -> tuple[CycleReport, EventLog]:
    """One real cycle at the emulator's "now"; returns its report and the events it logged."""
    log = log or EventLog()
    async with open_client(base_url, **client_options) as client:
        report = await run_cycle(
            client, policy, options, log=log, clock=SystemClock(wall=emulator.now)
        )
    return report, log


async def checked_cycle(
    base_url: str,
    emulator: Emulator,
    policy: RetentionPolicy,
    *,
    log: EventLog | None = None,
    **cycle_options: Any,
) -> tuple[CycleReport, EventLog]:
    """One cycle, then the invariants over what that cycle did (and every event so far)."""
    seen = snapshot(emulator)
    mark = len(emulator.journal)
    report, log = await one_cycle(base_url, emulator, policy, log=log, **cycle_options)
    check_invariants(
        emulator,
        policy=policy,
        seen=seen,
        events=log.events,
        journal=emulator.journal[mark:],
        secrets=[KEY],
        outputs=[repr(report), str(report.error)],
    )
    return report, log
