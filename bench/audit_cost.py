"""What write-ahead receipts cost: throughput, intent latency, and the drain's slowdown.

Run: `.venv/bin/python bench/audit_cost.py [--records 10000] [--writers 32] [--drain 2000]`

For each sink (a local directory with fsync, and moto's S3 in its own process):

  records/s     --records intents written by --writers concurrent writers (group commit)
  one writer    the same sink with a single writer: one write round trip per record
  intent p50/99 how long one ``intend`` waits for its group's write to be durable
  seal          turning the cycle's segments into its one cycle object, and moving HEAD
  drain         --drain actions at 200/s (aiolimiter), 32 in flight, each intend, a 20 ms
                stand-in request, receipt; compared with the same drain on NullTrail
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from aiolimiter import AsyncLimiter

from cleaner.audit import AuditTrail, CycleLog, Intent, NullTrail, Receipt
from cleaner.storage import open_store

REPO = Path(__file__).resolve().parents[1]
POLICY = "ab" * 32
REQUEST_S = 0.020
RATE_PER_S = 200


def clock() -> datetime:
    return datetime.now(UTC)


@contextmanager
def moto_process() -> Iterator[str]:
    """moto's S3 in a child process (so it does not share this process's GIL)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                bucket = f"{endpoint}/bench"
                request = urllib.request.Request(bucket, method="PUT")  # noqa: S310 (loopback)
                urllib.request.urlopen(request, timeout=1).close()  # noqa: S310 (loopback)
                break
            except OSError:
                time.sleep(0.05)
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ALLOW_HTTP="true",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench-secret",  # noqa: S106 (moto accepts anything)
            AWS_REGION="us-east-1",
        )
        yield "s3://bench/audit"
    finally:
        server.terminate()
        server.wait(timeout=10)


async def throughput(url: str, *, records: int, writers: int, run: str) -> dict[str, float]:
    store = open_store(url)
    trail = AuditTrail(store, clock=clock, cleaner_version="bench")
    log = await trail.open_cycle(cycle_id=run, policy_sha256=POLICY, started_at=clock())
    latencies: list[float] = []
    todo = iter(range(records))

    async def writer() -> None:
        for number in todo:
            started = time.perf_counter()
            await log.intend(Intent(action="delete", batch_id=f"msgbatch_{number}", reason="r"))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - started
    segments = len(await store.list(f"pending/{run}"))
    seal_started = time.perf_counter()
    await log.seal()
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "records_per_s": records / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "segments": segments,
        "seal_s": time.perf_counter() - seal_started,
    }


async def drain(log: CycleLog, *, actions: int) -> float:
    limiter = AsyncLimiter(RATE_PER_S / 10, 0.1)
    gate = asyncio.Semaphore(32)

    async def act(number: int) -> None:
        async with gate:
            await limiter.acquire()
            batch = f"msgbatch_{number}"
            await log.intend(Intent(action="delete", batch_id=batch, reason="r"))
            await asyncio.sleep(REQUEST_S)  # the DELETE itself
            await log.receipt(
                Receipt(action="delete", batch_id=batch, reason="r", outcome="deleted")
            )

    started = time.perf_counter()
    await asyncio.gather(*(act(n) for n in range(actions)))
    return time.perf_counter() - started


async def drain_on(url: str | None, *, actions: int, run: str) -> float:
    trail: NullTrail | AuditTrail = NullTrail()
    if url is not None:
        trail = AuditTrail(open_store(url), clock=clock, cleaner_version="bench")
    log = await trail.open_cycle(cycle_id=run, policy_sha256=POLICY, started_at=clock())
    elapsed = await drain(log, actions=actions)
    await log.seal()
    return elapsed


async def bench_sink(name: str, url: str, args: argparse.Namespace) -> None:
    # The baseline runs right before, so both see the same machine load.
    baseline = await drain_on(None, actions=args.drain, run="null")
    many = await throughput(url, records=args.records, writers=args.writers, run="many")
    one = await throughput(url, records=args.records // 10, writers=1, run="one")
    drained = await drain_on(url, actions=args.drain, run="drain")
    print(
        f"{name:<6} {many['records_per_s']:>10,.0f} {one['records_per_s']:>10,.0f}"
        f" {many['p50_ms']:>8.2f} {many['p99_ms']:>8.2f} {many['segments']:>9,.0f}"
        f" {many['seal_s']:>7.2f} {baseline:>7.2f} {drained:>8.2f}"
        f" {100 * (drained / baseline - 1):>+8.1f}%"
    )


async def main_async(args: argparse.Namespace) -> None:
    print(f"{args.records:,} intents, {args.writers} writers; drains of {args.drain:,} actions"
          f" at {RATE_PER_S}/s, on NullTrail ('null s') and on the sink")  # fmt: skip
    print(f"{'sink':<6} {'records/s':>10} {'1 writer':>10} {'p50 ms':>8} {'p99 ms':>8}"
          f" {'segments':>9} {'seal s':>7} {'null s':>7} {'drain s':>8}"
          f" {'vs null':>9}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        await bench_sink("local", Path(tmp).as_uri(), args)
    with moto_process() as url:
        await bench_sink("moto", url, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--drain", type=int, default=2_000)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
