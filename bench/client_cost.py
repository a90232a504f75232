"""What one DELETE costs the client's CPU, layer by layer, and against the official SDK.

Run: `.venv/bin/python bench/client_cost.py [--requests 3000] [--concurrency 32] [--rounds 2]`

Starts the emulator in its own process (no latency, no rate limit) and, in this process,
deletes batches through each stack below, N requests in flight, reporting CPU microseconds
per request (``time.process_time`` of this process only, so the emulator's work is not
counted):

  asyncio-raw     hand-written HTTP/1.1 over asyncio streams: what Python itself costs
  aiohttp         aiohttp.ClientSession alone
  httpx-aiohttp   httpx.AsyncClient over httpx-aiohttp's transport: cleaner's HTTP stack
  httpx-pool      httpx.AsyncClient over its own httpcore pool (cleaner's stack until now)
  sdk-default     the official SDK, ``AsyncAnthropic().messages.batches.delete``, its client
  sdk-aiohttp     the same over ``DefaultAioHttpClient`` (``anthropic[aiohttp]``)
  client          cleaner's BatchesClient.delete (budget, gate, retries, checks)
  client+log      the same plus the batch_deleted JSON log line, as `cleaner run` writes it

and the ratio of cleaner's client to the SDK's cheaper client. The variants run in turn,
``--rounds`` times, and each reports its lowest round: on a shared machine, load only ever
adds CPU. Numbers only: the run asserts nothing about speed.
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

import aiohttp
import anthropic
import httpx
from httpx_aiohttp import AiohttpTransport

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


async def aiohttp_alone(base_url: str, ids: list[str], concurrency: int) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector, headers=HEADERS) as http:

        async def one(batch_id: str) -> None:
            async with http.delete(f"/v1/messages/batches/{batch_id}") as response:
                response.raise_for_status()
                await response.read()

        await _pool(ids, concurrency, one)


async def httpx_pool(base_url: str, ids: list[str], concurrency: int, *, over: str) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport = AiohttpTransport(limits=limits) if over == "aiohttp" else None
    async with httpx.AsyncClient(
        base_url=base_url, headers=HEADERS, limits=limits, transport=transport
    ) as http:

        async def one(batch_id: str) -> None:
            (await http.delete(f"/v1/messages/batches/{batch_id}")).raise_for_status()

        await _pool(ids, concurrency, one)


async def sdk(base_url: str, ids: list[str], concurrency: int, *, over: str) -> None:
    http = anthropic.DefaultAioHttpClient() if over == "aiohttp" else None
    async with anthropic.AsyncAnthropic(
        api_key=KEY, base_url=base_url, http_client=http, max_retries=2
    ) as api:

        async def one(batch_id: str) -> None:
            await api.messages.batches.delete(batch_id)

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


Variant = tuple[str, Callable[[str, list[str]], Coroutine[None, None, None]]]


def _variants(c: int) -> list[Variant]:
    return [
        ("asyncio-raw", lambda url, ids: asyncio_raw(url, ids, c)),
        ("aiohttp", lambda url, ids: aiohttp_alone(url, ids, c)),
        ("httpx-aiohttp", lambda url, ids: httpx_pool(url, ids, c, over="aiohttp")),
        ("httpx-pool", lambda url, ids: httpx_pool(url, ids, c, over="httpcore")),
        ("sdk-default", lambda url, ids: sdk(url, ids, c, over="default")),
        ("sdk-aiohttp", lambda url, ids: sdk(url, ids, c, over="aiohttp")),
        ("client", lambda url, ids: client(url, ids, c, log=False)),
        ("client+log", lambda url, ids: client(url, ids, c, log=True)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="deletes per variant")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="runs per variant; the lowest counts")
    args = parser.parse_args()
    n, c, rounds = args.requests, args.concurrency, args.rounds
    variants = _variants(c)
    total = n * len(variants) * rounds
    seed = f"{total}:ended:40d"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "cleaner.emulator", "--port", "0", "--api-key", KEY, "--seed", seed],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    cpu_us: dict[str, float] = {}
    rate: dict[str, float] = {}
    try:
        if emulator.stdout is None:
            raise RuntimeError("emulator has no stdout")
        base_url = emulator.stdout.readline().split()[3]
        page = httpx.get(f"{base_url}/_emulator/batches", params={"limit": total})
        ids = iter([batch["id"] for batch in page.json()["data"]])
        configure_logging("info", stream=io.StringIO())  # rendered, then thrown away
        for _ in range(rounds):
            for name, run in variants:
                chunk = [next(ids) for _ in range(n)]
                cpu, wall = time.process_time(), time.perf_counter()
                asyncio.run(run(base_url, chunk))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if 1e6 * cpu / n < cpu_us.get(name, float("inf")):
                    cpu_us[name], rate[name] = 1e6 * cpu / n, n / wall
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    print(
        f"CPU per DELETE, {n:,} requests per variant, {c} in flight, lowest of {rounds}"
        " rounds, emulator in another process"
    )
    for name, _ in variants:
        print(f"  {name:<14} {cpu_us[name]:7.0f} us CPU/request  {rate[name]:7.0f} requests/s")
    sdk_best = min(cpu_us["sdk-default"], cpu_us["sdk-aiohttp"])
    print(
        f"cleaner client {cpu_us['client'] / 1000:.3f} ms CPU per deleted batch;"
        f" SDK best {sdk_best / 1000:.3f} ms; ratio cleaner/SDK best"
        f" {cpu_us['client'] / sdk_best:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
