"""Speed the benchmarks and soak tests rely on, checked cheaply (bench/ has the full run)."""

from __future__ import annotations

import statistics
import time

import httpx

from cleaner.emulator import Emulator, Population

DAY_S = 86400


def test_a_page_of_1000_from_100000_batches_is_served_well_under_100_ms(
    http: httpx.Client, emulator: Emulator
) -> None:
    """Median time for a limit=1000 page over HTTP stays far below 100 ms."""
    started = time.perf_counter()
    emulator.seed(Population(count=100_000, status="ended", age_s=40 * DAY_S, spread_s=30 * DAY_S))
    assert time.perf_counter() - started < 5
    timings: list[float] = []
    params: dict[str, str | int] = {"limit": 1000}
    for _ in range(10):
        began = time.perf_counter()
        page = http.get("/v1/messages/batches", params=params).json()
        timings.append(time.perf_counter() - began)
        assert len(page["data"]) == 1000
        params["after_id"] = page["last_id"]
    assert statistics.median(timings) < 0.1
