"""What one DELETE costs the client's CPU, layer by layer: where is the floor?

Run: `.venv/bin/python bench/client_cost.py [--requests 3000] [--concurrency 32]`

Starts the emulator in its own process (no latency, no rate limit) and, in this process,
deletes batches through ever thicker stacks, reporting CPU microseconds per request
(``time.process_time`` of this process only, so the emulator's work is not counted):

  asyncio-raw     hand-written HTTP/1.1 over asyncio streams: what Python itself costs
  httpx-1         httpx.AsyncClient, one connection, one request at a time
  httpx-N         httpx.AsyncClient, a pool of N connections, N requests in flight
  client          cleaner's BatchesClient.delete (budget, gate, retries, checks), N in flight
  client+log      the same plus the batch_deleted JSON log line, as `cleaner run` writes it
"""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path

import httpx

from cleaner.budget import RequestBudget
from cleaner.client import BatchesClient
from cleaner.logs import configure_logging, get_logger

KEY = "bench"
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": KEY}
REPO = Path(__file__).resolve().parents[1]


async def _pool(ids: list[str], concurrency: int, one: Callable[[str], Awaitable[None]]) -> None:
    queue = iter(ids)

    async def worker() -> None:
        for batch_id in queue:
            await one(batch_id)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def asyncio_raw(base_url: str, ids: list[str], concurrency: int) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    queue = iter(ids)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for batch_id in queue:
            writer.write(
                f"DELETE /v1/messages/batches/{batch_id} HTTP/1.1\r\nhost: {host}\r\n"
                f"x-api-key: {KEY}\r\nanthropic-version: 2023-06-01\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def httpx_pool(base_url: str, ids: list[str], concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, limits=limits) as http:

        async def one(batch_id: str) -> None:
            (await http.delete(f"/v1/messages/batches/{batch_id}")).raise_for_status()

        await _pool(ids, concurrency, one)


async def client(base_url: str, ids: list[str], concurrency: int, *, log: bool) -> None:
    http = BatchesClient.http_client(
        base_url=base_url, api_key=KEY, request_timeout_s=30.0, concurrency=concurrency
    )
    logger = get_logger()
    async with http:
        api = BatchesClient(
            http,
            budget=RequestBudget(1_000_000),
            concurrency=concurrency,
            request_timeout_s=30.0,
        )

        async def one(batch_id: str) -> None:
            deletion = await api.delete(batch_id)
            if log:
                logger.info(
                    "batch_deleted",
                    batch_id=batch_id,
                    action="delete",
                    reason="ended_past_retention",
                    created_at="2026-10-01T00:00:00+00:00",
                    age_s=3456000.0,
                    confirmation=deletion.confirmation,
                    request_id=deletion.request_id,
                    ended_at="2026-10-01T00:05:00+00:00",
                )

        await _pool(ids, concurrency, one)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="deletes per variant")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    n, c = args.requests, args.concurrency
    variants: list[tuple[str, int, Callable[[str, list[str]], Coroutine[None, None, None]]]] = [
        ("asyncio-raw", c, lambda url, ids: asyncio_raw(url, ids, c)),
        ("httpx-1", 1, lambda url, ids: httpx_pool(url, ids, 1)),
        (f"httpx-{c}", c, lambda url, ids: httpx_pool(url, ids, c)),
        ("client", c, lambda url, ids: client(url, ids, c, log=False)),
        ("client+log", c, lambda url, ids: client(url, ids, c, log=True)),
    ]
    seed = f"{n * len(variants)}:ended:40d"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "cleaner.emulator", "--port", "0", "--api-key", KEY, "--seed", seed],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        if emulator.stdout is None:
            raise RuntimeError("emulator has no stdout")
        base_url = emulator.stdout.readline().split()[3]
        page = httpx.get(f"{base_url}/_emulator/batches", params={"limit": n * len(variants)})
        all_ids = [batch["id"] for batch in page.json()["data"]]
        configure_logging("info", stream=io.StringIO())  # rendered, then thrown away
        print(f"CPU per DELETE, {n:,} requests each, emulator in another process")
        for index, (name, in_flight, run) in enumerate(variants):
            ids = all_ids[index * n : (index + 1) * n]
            cpu, wall = time.process_time(), time.perf_counter()
            asyncio.run(run(base_url, ids))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"  {name:<12} {in_flight:>3} in flight  {1e6 * cpu / n:7.0f} us CPU/request"
                f"  {n / wall:7.0f} requests/s"
            )
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
