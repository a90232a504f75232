"""Fixtures: a ManualClock, an emulator on it, served on 127.0.0.1, and clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import anthropic
import httpx
import pytest

from cleaner.emulator import Emulator, EmulatorConfig, ManualClock
from cleaner.emulator.app import EmulatorApp
from cleaner.emulator.server import serve_app_in_thread

KEY = "sk-test-key"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PARAMS = {"model": "claude-test", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


class FakeMonotonic:
    """A monotonic clock for the rate limiter that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    """The lifecycle clock; tests move it instead of sleeping."""
    return ManualClock(START)


@pytest.fixture
def monotonic() -> FakeMonotonic:
    """The rate limiter's clock."""
    return FakeMonotonic()


@pytest.fixture
def emulator(clock: ManualClock, monotonic: FakeMonotonic) -> Emulator:
    """An empty emulator requiring KEY, 5 min processing and 30 s cancel settling."""
    config = EmulatorConfig(api_key=KEY, processing_time_s=300, cancel_settle_s=30)
    return Emulator(config, clock=clock, monotonic=monotonic)


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[EmulatorApp, str]]:
    """One uvicorn for the session (starting one per test costs ~0.2 s); tests swap emulators."""
    app = EmulatorApp(Emulator())
    with serve_app_in_thread(app) as url:
        yield app, url


@pytest.fixture
def base_url(server: tuple[EmulatorApp, str], emulator: Emulator) -> str:
    """The test's emulator, served on an ephemeral 127.0.0.1 port."""
    app, url = server
    app.emulator = emulator
    emulator.base_url = url
    return url


@pytest.fixture
def sdk(base_url: str) -> Iterator[anthropic.Anthropic]:
    """The official SDK, no retries, strict response validation."""
    with anthropic.Anthropic(
        api_key=KEY, base_url=base_url, max_retries=0, _strict_response_validation=True
    ) as client:
        yield client


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    """Raw httpx with the 0.x/1.x header style: x-api-key and 2023-06-01."""
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def create_batch(http: httpx.Client) -> Callable[..., dict[str, object]]:
    """Create a batch of `n` requests over HTTP; returns its JSON."""

    def create(n: int = 1) -> dict[str, object]:
        requests = [{"custom_id": f"r{i}", "params": PARAMS} for i in range(n)]
        response = http.post("/v1/messages/batches", json={"requests": requests})
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    return create
