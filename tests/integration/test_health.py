"""The health port over real HTTP on 127.0.0.1: probes, metrics, and who owns SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from cleaner import healthcheck
from cleaner.budget import BudgetTuning
from cleaner.daemon import DaemonState
from cleaner.events import Exchange
from cleaner.health import MIN_STALL_AFTER_S, TICK_GRACE_S, Probes, serve_health, stall_after_s
from cleaner.metrics import Metrics
from cleaner.schedule import Schedule
from cleaner.settings import Settings
from tests.fakes import FrozenClock

T = TypeVar("T")


@asynccontextmanager
async def _served(
    state: DaemonState,
    metrics: Metrics,
    *,
    stall_after_s: float = 60.0,
    schedule: str | None = "15m",
) -> AsyncIterator[httpx.AsyncClient]:
    parsed = None if schedule is None else Schedule.parse(schedule, now=datetime.now(UTC))
    async with (
        serve_health(
            state, metrics, host="127.0.0.1", port=0, stall_after_s=stall_after_s, schedule=parsed
        ) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5) as http,
    ):
        yield http


def _fresh() -> tuple[DaemonState, Metrics]:
    return DaemonState(started_at=time.monotonic()), Metrics(CollectorRegistry())


async def test_a_fresh_daemon_is_alive_but_not_ready() -> None:
    """Before any tick or answer: alive (it just started), not ready (API unheard)."""
    state, metrics = _fresh()
    async with _served(state, metrics) as http:
        live, ready = await http.get("/livez"), await http.get("/readyz")
    assert live.status_code == 200
    assert live.json()["status"] == "ok"
    assert ready.status_code == 503
    assert ready.json()["problems"] == ["the API has not answered yet"]


async def test_readiness_follows_the_first_answer_from_the_api() -> None:
    """A 200 heard mid-cycle makes the daemon ready before the first cycle ends."""
    state, metrics = _fresh()
    async with _served(state, metrics) as http:
        metrics.observe(Exchange("list", 401))
        assert (await http.get("/readyz")).status_code == 503
        metrics.observe(Exchange("list", 200))
        response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["api_answered"] is True


async def test_an_answer_heard_through_the_cycle_events_makes_it_ready() -> None:
    """Readiness is decided in one place: the exchanges the metrics observe."""
    state, metrics = _fresh()
    metrics.observe(Exchange("retrieve", 404))
    async with _served(state, metrics) as http:
        assert (await http.get("/readyz")).status_code == 200


async def test_an_overdue_tick_fails_liveness() -> None:
    """No tick for two periods plus grace on a 15m schedule: the scheduler is wedged."""
    state, metrics = _fresh()
    state.last_tick = time.monotonic() - (2 * 900 + TICK_GRACE_S + 5)
    async with _served(state, metrics) as http:
        response = await http.get("/livez")
    assert response.status_code == 503
    assert "scheduler tick overdue" in response.json()["problems"][0]


async def test_a_tick_late_within_the_grace_is_still_alive() -> None:
    """A tick one and a half periods ago is late, not dead."""
    state, metrics = _fresh()
    state.last_tick = time.monotonic() - 1.5 * 900
    async with _served(state, metrics) as http:
        assert (await http.get("/livez")).status_code == 200


async def test_once_mode_has_no_tick_to_wait_for() -> None:
    """Without a schedule (run --once) an old start time is no reason to die."""
    state, metrics = _fresh()
    state.started_at = time.monotonic() - 86400
    async with _served(state, metrics, schedule=None) as http:
        assert (await http.get("/livez")).status_code == 200


async def test_a_silent_running_cycle_fails_liveness() -> None:
    """A cycle running with no API answer for longer than the bound has stalled."""
    state, metrics = _fresh()
    state.last_tick = state.cycle_started = time.monotonic() - 30
    async with _served(state, metrics, stall_after_s=10) as http:
        response = await http.get("/livez")
    assert response.status_code == 503
    body = response.json()
    assert body["problems"][0].startswith("cycle stalled: no API answer for")
    assert body["cycle_running_s"] >= 30


async def test_a_long_cycle_that_still_talks_to_the_api_is_alive() -> None:
    """Hours of draining are fine while answers keep arriving."""
    state, metrics = _fresh()
    state.last_tick = time.monotonic()
    state.cycle_started = time.monotonic() - 7200
    metrics.observe(Exchange("delete", 200))
    async with _served(state, metrics, stall_after_s=10) as http:
        response = await http.get("/livez")
    assert response.status_code == 200
    assert response.json()["silent_s"] < 10


async def test_metrics_are_served_in_the_prometheus_text_format() -> None:
    """/metrics parses with prometheus_client's parser and carries what was fed in."""
    state, metrics = _fresh()
    metrics.observe(Exchange("list", 200))
    async with _served(state, metrics) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert "cleaner_api_requests" in families
    assert "cleaner_cycle_duration_seconds" in families


async def test_unknown_paths_and_methods_are_refused() -> None:
    """Only GET and HEAD on the three paths."""
    state, metrics = _fresh()
    async with _served(state, metrics) as http:
        missing, posted = await http.get("/"), await http.post("/livez")
    assert missing.status_code == 404
    assert posted.status_code == 405


async def test_the_server_leaves_the_signal_handlers_alone() -> None:
    """uvicorn must not take SIGTERM or SIGINT from the daemon."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    state, metrics = _fresh()
    async with _served(state, metrics) as http:
        during = {sig: signal.getsignal(sig) for sig in before}
        assert (await http.get("/livez")).status_code == 200
    after = {sig: signal.getsignal(sig) for sig in before}
    assert during == before
    assert after == before


async def test_a_busy_port_fails_at_start() -> None:
    """Binding happens before uvicorn starts, so a taken port raises at once."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    state, metrics = _fresh()
    try:
        with pytest.raises(OSError, match="in use"):
            async with serve_health(
                state, metrics, host="127.0.0.1", port=taken.getsockname()[1], stall_after_s=60
            ):
                pass
    finally:
        taken.close()


async def test_the_container_healthcheck_reports_the_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """python -m cleaner.healthcheck exits 0 on a live daemon and 1 on a stalled one."""
    state, metrics = _fresh()
    async with serve_health(
        state,
        metrics,
        host="127.0.0.1",
        port=0,
        stall_after_s=10,
        schedule=Schedule.parse("15m", now=datetime.now(UTC)),
    ) as port:
        monkeypatch.setenv("CLEANER_HTTP_PORT", str(port))
        assert await asyncio.to_thread(healthcheck.main) == 0
        state.cycle_started = time.monotonic() - 60
        assert await asyncio.to_thread(healthcheck.main) == 1
    assert await asyncio.to_thread(healthcheck.main) == 1  # nothing listens any more


def test_a_cron_schedule_forgives_a_tick_until_a_period_after_it_was_due() -> None:
    """Hourly cron: last tick at 10:00, due 11:00, overdue only after 12:00."""
    state, metrics = _fresh()
    state.last_tick = 1000.0
    for hours_since, alive in ((1.9, True), (2.1, False)):
        now = 1000.0 + hours_since * 3600
        wall = datetime(2026, 11, 1, 10, tzinfo=UTC) + timedelta(hours=hours_since)
        probes = Probes(
            state,
            metrics,
            stall_after_s=60,
            schedule=Schedule.parse("0 * * * *", now=wall),
            clock=FrozenClock(wall=wall, monotonic=now),
        )
        assert probes.live()[0] is alive, hours_since


def test_the_stall_bound_grows_only_under_a_tiny_request_budget() -> None:
    """Ten minutes normally; at 1 request a minute, three requests at the budget's floor."""
    base = {"ANTHROPIC_API_KEY": "k", "CLEANER_RETENTION": "30d"}
    normal = Settings.model_validate(base)
    tiny = Settings.model_validate({**base, "CLEANER_REQUESTS_PER_MINUTE": "1"})
    assert stall_after_s(normal.requests_per_minute) == MIN_STALL_AFTER_S
    assert stall_after_s(tiny.requests_per_minute) == 3 * 60 / BudgetTuning().floor
