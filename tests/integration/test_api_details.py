"""Over HTTP: retry-after dates, error codes, ratelimit headers, and a 429 pause that holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import stamina

from cleaner.budget import RequestBudget
from cleaner.client import BatchesClient
from cleaner.emulator import Emulator, EmulatorConfig, ManualClock, serve_in_thread
from cleaner.emulator.app import EmulatorApp
from cleaner.errors import BadRequestError, SpendCapError
from tests.integration.conftest import FAST_RETRY
from tests.integration.fronts import (
    App,
    Headers,
    RateLimitedFront,
    ScriptedFront,
    error_body,
    serve,
)

DETAILS_KEY = "sk-ant-api-details-test-key-9"
NOW = datetime(2026, 12, 2, 18, 0, 0, tzinfo=UTC)
RETRY_1S = (b"retry-after", b"1")


class FakeClock:
    """The budget's monotonic clock; sleeping on it moves it, instantly."""

    def __init__(self) -> None:
        self.now = 500.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@contextmanager
def fronted(front: type[Any], **options: Any) -> Iterator[tuple[Any, Emulator, str]]:
    """An emulator with a few ended batches behind ``front``, served over HTTP."""
    emulator = Emulator(EmulatorConfig(api_key=DETAILS_KEY))
    for _ in range(4):
        emulator.add_batch(status="ended")
    app: App = front(EmulatorApp(emulator), **options)
    with serve(app) as url:
        emulator.base_url = url
        yield app, emulator, url


@asynccontextmanager
async def client_for(url: str, budget: RequestBudget, **options: Any) -> Any:
    http = BatchesClient.http_client(
        base_url=url, api_key=DETAILS_KEY, request_timeout_s=5, concurrency=32
    )
    async with http:
        yield BatchesClient(
            http, budget=budget, concurrency=32, request_timeout_s=5, retry=FAST_RETRY, **options
        )


def _first_id(emulator: Emulator) -> str:
    return str(emulator.batches()[0]["id"])


async def test_a_retry_after_http_date_is_waited_out_not_taken_for_a_spend_cap() -> None:
    """429 with retry-after as an IMF-fixdate three seconds ahead: pause 3 s, then success."""
    clock = FakeClock()
    date: Headers = [(b"retry-after", b"Wed, 02 Dec 2026 18:00:03 GMT")]
    script = [(429, error_body(429, "rate_limit_error", "slow down"), date)]
    with fronted(ScriptedFront, script=script) as (front, emulator, url):
        budget = RequestBudget(60_000, clock=clock, sleep=clock.sleep)
        async with client_for(url, budget, now=lambda: NOW) as client:
            with stamina.set_testing(True, attempts=3):
                batch = await client.retrieve(_first_id(emulator))
    assert batch.id == _first_id(emulator)
    assert clock.slept == [pytest.approx(3.0)]
    assert (client.stats.rate_limited, front.seen) == (1, 2)


@pytest.mark.parametrize(
    ("status", "error_type", "code", "headers", "cls"),
    [
        (400, "invalid_request_error", "organization_on_hold", [], BadRequestError),
        (
            429,
            "rate_limit_error",
            "enforced_spend_limit_reached",
            [(b"retry-after", b"1")],
            SpendCapError,
        ),
    ],
)
async def test_an_error_code_that_dooms_every_call_is_fatal_and_not_retried(
    status: int, error_type: str, code: str, headers: Headers, cls: type[Exception]
) -> None:
    """The account on hold, or its spend limit reached: one request, a fatal error with the code."""
    script = [(status, error_body(status, error_type, "stop", code), headers)]
    with fronted(ScriptedFront, script=script) as (front, emulator, url):
        async with client_for(url, RequestBudget(60_000)) as client:
            with pytest.raises(cls) as caught:
                await client.retrieve(_first_id(emulator))
    error: Any = caught.value
    assert (error.error_code, error.fatal, error.request_id) == (code, True, f"req_front_{status}")
    assert code in str(error)
    assert front.seen == 1


async def test_an_unknown_error_code_is_handled_as_its_bare_error_type() -> None:
    """A 500 api_error with a code nobody knows is retried like any 500."""
    no_headers: Headers = []
    script = [(500, error_body(500, "api_error", "oops", "brand_new_code"), no_headers)]
    with fronted(ScriptedFront, script=script) as (front, emulator, url):
        async with client_for(url, RequestBudget(60_000)) as client:
            batch = await client.retrieve(_first_id(emulator))
    assert batch.id == _first_id(emulator)
    assert (front.seen, client.stats.retries) == (2, 1)


@pytest.mark.parametrize(("remaining", "slept"), [(b"0", [pytest.approx(5.0)]), (b"7", [])])
async def test_ratelimit_headers_with_nothing_remaining_pause_until_the_reset(
    remaining: bytes, slept: list[float]
) -> None:
    """remaining 0 and a reset five seconds ahead hold the next request for five seconds."""
    clock = FakeClock()
    extra = [
        (b"anthropic-ratelimit-requests-remaining", remaining),
        (b"anthropic-ratelimit-requests-reset", b"2026-12-02T18:00:05Z"),
    ]
    with fronted(ScriptedFront, extra_headers=extra) as (_, emulator, url):
        budget = RequestBudget(60_000, clock=clock, sleep=clock.sleep)
        async with client_for(url, budget, now=lambda: NOW) as client:
            await client.retrieve(_first_id(emulator))
            await client.retrieve(_first_id(emulator))
    assert clock.slept == slept


@pytest.mark.slow
async def test_after_a_429_the_requests_queued_in_the_pacer_wait_out_the_retry_after() -> None:
    """Server at 600 RPM, budget 1,200 RPM, retry-after 2: the window after a 429 stays quiet.

    Before queued requests were held, the requests waiting in the pacer kept leaving one
    every 50 ms into the exhausted window: 12 to 13 429s there (0 now).
    """
    answers: list[tuple[float, str]] = []
    with fronted(RateLimitedFront, rpm=600, retry_after="2") as (_, emulator, url):
        ids = [str(b["id"]) for b in emulator.batches()]
        async with client_for(
            url,
            RequestBudget(1200),
            on_exchange=lambda e: answers.append((time.monotonic(), e.label)),
        ) as client:
            await asyncio.gather(*(client.retrieve(ids[i % len(ids)]) for i in range(30)))
    first = min(t for t, status in answers if status == "429")
    in_window = [s for t, s in answers if first < t < first + 1.9 and s == "429"]
    assert len(in_window) <= 2, f"{len(in_window)} 429s in the pause after the first"


async def test_the_emulators_ratelimit_headers_hold_each_request_until_the_reset() -> None:
    """At 60 RPM with headers on, every answer says none left: the client waits, never a 429."""
    clock = FakeClock()  # the budget's clock is the emulator's bucket clock too
    config = EmulatorConfig(api_key=DETAILS_KEY, rate_limit_rpm=60, ratelimit_headers=True)
    emulator = Emulator(config, clock=ManualClock(NOW), monotonic=clock)
    batch_id = str(emulator.add_batch(status="ended")["id"])
    with serve_in_thread(emulator) as url:
        budget = RequestBudget(60_000, clock=clock, sleep=clock.sleep)
        async with client_for(url, budget, now=emulator.now) as client:
            for _ in range(3):
                await client.retrieve(batch_id)
    assert clock.slept == [pytest.approx(1.0)] * 2
    assert emulator.request_counts[("retrieve", 429)] == 0
