"""Integration fixtures: the emulator served over real HTTP on 127.0.0.1, and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from cleaner.budget import BudgetTuning, RequestBudget
from cleaner.client import BatchesClient, RetryPolicy
from cleaner.cycle import CycleOptions, run_cycle
from cleaner.emulator import Emulator, EmulatorConfig, serve_in_thread
from cleaner.models import CycleReport
from cleaner.policy import RetentionPolicy
from tests.fakes import EventLog

KEY = "sk-ant-integration-test-key-42"
DAY = 86400.0

#: Fast retries: the same schedule shape as production, scaled down a hundredfold.
FAST_RETRY = RetryPolicy(
    attempts=10, total_s=20.0, wait_initial_s=0.005, wait_max_s=0.08, wait_jitter_s=0.005
)
POLICY = RetentionPolicy(retention=timedelta(days=30), processing_retention=timedelta(hours=2))


@pytest.fixture
def emulator() -> Emulator:
    """A fresh emulator with the key set and quick lifecycles."""
    return Emulator(EmulatorConfig(api_key=KEY, processing_time_s=20 * 3600, cancel_settle_s=0.3))


@pytest.fixture
def base_url(emulator: Emulator) -> Iterator[str]:
    """The emulator served on an ephemeral loopback port."""
    with serve_in_thread(emulator) as url:
        yield url


@asynccontextmanager
async def open_test_client(
    base_url: str,
    *,
    requests_per_minute: float = 600_000,
    concurrency: int = 16,
    retry: RetryPolicy = FAST_RETRY,
    timeout_s: float = 5.0,
    tuning: BudgetTuning | None = None,
) -> AsyncIterator[BatchesClient]:
    """A client as production builds it, with test-sized retries and timeouts."""
    http = BatchesClient.http_client(
        base_url=base_url, api_key=KEY, request_timeout_s=timeout_s, concurrency=concurrency
    )
    async with http:
        yield BatchesClient(
            http,
            budget=RequestBudget(requests_per_minute, tuning=tuning),
            concurrency=concurrency,
            request_timeout_s=timeout_s,
            retry=retry,
        )


async def cycle(
    base_url: str,
    *,
    policy: RetentionPolicy = POLICY,
    options: CycleOptions | None = None,
    log: EventLog | None = None,
    **client_options: object,
) -> tuple[CycleReport, EventLog]:
    """Run one real cycle against the emulator; returns the report and the events logged."""
    log = log or EventLog()
    opts = options or CycleOptions(wait_timeout_s=10.0, poll_initial_s=0.05, poll_max_s=0.2)
    async with open_test_client(base_url, **client_options) as client:  # type: ignore[arg-type]
        report = await run_cycle(client, policy, opts, log=log)
    return report, log
