"""What archiving results before deletion costs: throughput, requests, memory.

Run: `.venv/bin/python bench/archive.py [--batches 1000] [--batch-mb 1] [--big-mb 500]
[--concurrency 8] [--store file|s3]`

The emulator runs in its own process (`python -m cleaner.emulator`) with padded results
(1,000-byte lines, so a batch of N requests has N lines and N kB of results). This process
lists the batches, archives each (results download, verification, batch.json) into a
store and deletes it, as the cycle would. It prints:

  many   batches/s and MB/s over `--batches` batches of `--batch-mb` MB each, and the
         requests per batch (listing share + results download + delete; target 3)
  big    one batch of `--big-mb` MB: wall time, MB/s and the peak RSS growth of this
         process while archiving it, sampled every 5 ms (target under 20 MB)

Numbers only, no assertions. `--store s3` runs moto's S3 server in another process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]  # dev deps lack types-psutil
from harness import KEY, Emulator

from cleaner.archive import Archived, archive_batch
from cleaner.budget import RequestBudget
from cleaner.client import BatchesClient
from cleaner.models import Batch
from cleaner.storage import Store, open_store

LINE_BYTES = 1000
MB = 1_000_000


def batch_json(batch: Batch) -> dict[str, Any]:
    """The MessageBatch JSON the archive takes, from what the listing parsed.

    The client's Batch model keeps neither results_url nor archived_at, so the relative
    results path (which the contract allows) stands in; every batch here is 2 days old.
    """
    return {
        "id": batch.id,
        "processing_status": str(batch.processing_status),  # a StrEnum or unknown text
        "request_counts": batch.request_counts.as_dict(),
        "results_url": f"/v1/messages/batches/{batch.id}/results",
        "archived_at": None,
    }


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _client(base_url: str, concurrency: int) -> tuple[BatchesClient, Any]:
    http = BatchesClient.http_client(
        base_url=base_url, api_key=KEY, request_timeout_s=300.0, concurrency=concurrency
    )
    client = BatchesClient(
        http,
        budget=RequestBudget(1_000_000),
        concurrency=concurrency,
        request_timeout_s=300.0,
    )
    return client, http


async def archive_many(base_url: str, store: Store, *, lines: int, concurrency: int) -> None:
    """List, archive and delete every batch of `lines` requests; print the figures."""
    client, http = _client(base_url, concurrency)
    async with http:
        start = time.perf_counter()
        due = [
            b
            for page in [p async for p in client.pages()]
            for b in page.batches
            if b.request_counts.succeeded == lines
        ]
        queue = iter(due)
        archived: list[Archived] = []

        async def worker() -> None:
            for batch in queue:
                done = await archive_batch(
                    batch_json(batch),
                    client=client,
                    store=store,
                    now=datetime.now(UTC),
                    sleep=_sleep,
                )
                assert isinstance(done, Archived), done
                archived.append(done)
                await client.delete(batch.id)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    total = sum(a.bytes for a in archived)
    print(
        f"many: {len(archived)} batches x {lines * LINE_BYTES / MB:g} MB in {wall:.2f} s: "
        f"{len(archived) / wall:.1f} batches/s, {total / MB / wall:.1f} MB/s; "
        f"{client.stats.requests} requests = {client.stats.requests / len(archived):.3f} "
        f"per batch (listing + results + delete), {client.stats.retries} retries"
    )


class RssSampler:
    """Peak RSS of this process, sampled from a thread every few milliseconds."""

    def __init__(self, every_s: float = 0.005) -> None:
        self._process = psutil.Process()
        self._every_s = every_s
        self._stop = threading.Event()
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            self.peak = max(self.peak, self._process.memory_info().rss)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[RssSampler]:
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._process.memory_info().rss)


async def archive_big(base_url: str, store: Store, *, lines: int) -> None:
    """Archive the one batch of `lines` requests, measuring RSS growth meanwhile."""
    client, http = _client(base_url, 1)
    async with http:
        big = [
            b
            for page in [p async for p in client.pages()]
            for b in page.batches
            if b.request_counts.succeeded == lines
        ]
        sampler = RssSampler()
        start = time.perf_counter()
        with sampler.sampling():
            done = await archive_batch(
                batch_json(big[0]),
                client=client,
                store=store,
                now=datetime.now(UTC),
                sleep=_sleep,
            )
        wall = time.perf_counter() - start
    assert isinstance(done, Archived), done
    growth = (sampler.peak - sampler.baseline) / 2**20
    print(
        f"big: 1 batch of {done.bytes / MB:.0f} MB ({done.lines} lines) in {wall:.2f} s, "
        f"{done.bytes / MB / wall:.1f} MB/s; peak RSS growth {growth:.1f} MiB "
        f"(baseline {sampler.baseline / 2**20:.0f} MiB)"
    )


@contextlib.contextmanager
def s3_store() -> Iterator[str]:
    """moto's S3 server in its own process, and a bucket on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if moto is None:
        raise SystemExit("moto_server not found in this venv: pip install 'moto[server]'")
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ALLOW_HTTP="true",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106  # moto accepts any key
        AWS_REGION="us-east-1",
    )
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                httpx.put(f"{endpoint}/bench-archive", timeout=5).raise_for_status()
                break
            time.sleep(0.05)
        yield "s3://bench-archive/archive"
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--batch-mb", type=float, default=1.0)
    parser.add_argument("--big-mb", type=float, default=500.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--store", choices=["file", "s3"], default="file")
    args = parser.parse_args()
    many_lines = round(args.batch_mb * MB / LINE_BYTES)
    big_lines = round(args.big_mb * MB / LINE_BYTES)
    seeds = [f"{args.batches}:ended:2d:0:{many_lines}", f"1:ended:2d:0:{big_lines}"]
    with contextlib.ExitStack() as stack:
        if args.store == "s3":
            url = stack.enter_context(s3_store())
        else:
            url = Path(stack.enter_context(tempfile.TemporaryDirectory())).as_uri()
        store = open_store(url)
        emulator = stack.enter_context(Emulator(seeds=seeds))
        config = f"{emulator.base_url}/_emulator/config"
        httpx.patch(config, json={"results_line_bytes": LINE_BYTES}).raise_for_status()
        print(
            f"store: {args.store}; emulator: {emulator.base_url}; python {sys.version.split()[0]}"
        )
        asyncio.run(
            archive_many(emulator.base_url, store, lines=many_lines, concurrency=args.concurrency)
        )
        asyncio.run(archive_big(emulator.base_url, store, lines=big_lines))


if __name__ == "__main__":
    main()
