"""How fast is the emulator? Seeding, listing pages of 1,000 and retrieve throughput.

Run: `.venv/bin/python bench/emulator_speed.py [--batches 1000000] [--seconds 5] [--clients 8]`

It starts `python -m cleaner.emulator --port 0` in its own process (so the clients here do
not share its interpreter), seeded with N ended batches, then:
  1. times startup until the ready line (includes seeding N),
  2. walks the listing with limit=1000 via after_id and reports median and p95 per page,
  3. hammers retrieve with concurrent httpx clients for a few seconds and reports requests/s,
  4. reads the emulator's own request counters and its resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import itertools
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]  # dev deps lack types-psutil

HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "bench"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200, help="list pages of 1000 to time")
    parser.add_argument("--seconds", type=float, default=5.0, help="retrieve load duration")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients per process")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    args = parser.parse_args()

    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cleaner.emulator",
            "--port",
            "0",
            "--api-key",
            "bench",
            "--seed",
            f"{args.batches}:ended:40d:30d",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],  # the repo: `-m cleaner.emulator` resolves
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        ready_s = time.perf_counter() - started
        base_url = line.split()[3]
        print(f"ready with {args.batches:,} batches after {ready_s:.2f} s: {line.strip()}")
        ids = _time_listing(base_url, args.pages)
        server = psutil.Process(process.pid)
        cpu_before, wall_before = sum(server.cpu_times()[:2]), time.perf_counter()
        rate = _retrieve_load(base_url, ids, args.seconds, args.clients, args.processes)
        busy = (sum(server.cpu_times()[:2]) - cpu_before) / (time.perf_counter() - wall_before)
        print(
            f"retrieve: {rate:,.0f} requests/s with {args.processes} x {args.clients} clients"
            f" (emulator process busy {busy:.0%} of one core,"
            f" so ~{rate / max(busy, 1e-9):,.0f} requests per emulator CPU-second)"
        )
        counts = httpx.get(f"{base_url}/_emulator/requests").json()
        print(f"emulator counted {counts['total']:,} requests")
        rss_mb = server.memory_info().rss / 2**20
        print(f"emulator resident memory: {rss_mb:,.0f} MiB")
    finally:
        process.terminate()
        process.wait(timeout=30)
    return 0


def _time_listing(base_url: str, pages: int) -> list[str]:
    """Walk `pages` pages of 1000 newest-first; print median/p95; return the ids seen."""
    timings: list[float] = []
    ids: list[str] = []
    params: dict[str, str | int] = {"limit": 1000}
    with httpx.Client(base_url=base_url, headers=HEADERS, timeout=30) as client:
        for _ in range(pages):
            began = time.perf_counter()
            response = client.get("/v1/messages/batches", params=params)
            timings.append(time.perf_counter() - began)
            page = response.json()
            ids += [batch["id"] for batch in page["data"]]
            if not page["has_more"]:
                break
            params["after_id"] = page["last_id"]
    timings.sort()
    p95 = timings[max(0, round(len(timings) * 0.95) - 1)]
    print(
        f"list limit=1000: {len(timings)} pages, median {statistics.median(timings) * 1000:.1f} ms,"
        f" p95 {p95 * 1000:.1f} ms, max {timings[-1] * 1000:.1f} ms"
    )
    return ids


def _retrieve_load(
    base_url: str, ids: list[str], seconds: float, clients: int, processes: int
) -> float:
    """Retrieve from `processes` x `clients` concurrent connections; total requests/s.

    Clients run in their own processes: one Python process of httpx clients cannot keep
    a uvicorn process busy, so a single-process load would measure the client."""
    with concurrent.futures.ProcessPoolExecutor(processes) as pool:
        jobs = [
            pool.submit(_load_one_process, base_url, ids[i::processes], seconds, clients)
            for i in range(processes)
        ]
        results = [job.result() for job in jobs]
    failures = sum(f for _, f, _ in results)
    if failures:
        print(f"retrieve: {failures} non-200 answers")
    return sum(done / elapsed for done, _, elapsed in results)


def _load_one_process(
    base_url: str, ids: list[str], seconds: float, clients: int
) -> tuple[int, int, float]:
    return asyncio.run(_load(base_url, ids, seconds, clients))


async def _load(
    base_url: str, ids: list[str], seconds: float, clients: int
) -> tuple[int, int, float]:
    deadline = time.perf_counter() + seconds
    done = 0
    failures = 0

    async def worker(offset: int) -> None:
        nonlocal done, failures
        async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=30) as client:
            for batch_id in itertools.islice(itertools.cycle(ids), offset, None):
                if time.perf_counter() >= deadline:
                    return
                response = await client.get(f"/v1/messages/batches/{batch_id}")
                done += 1
                failures += response.status_code != 200

    began = time.perf_counter()
    await asyncio.gather(*(worker(i * 97) for i in range(clients)))
    return done, failures, time.perf_counter() - began


if __name__ == "__main__":
    raise SystemExit(main())
