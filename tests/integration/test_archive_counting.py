"""What the archive counts does not depend on how the body arrives in chunks."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cleaner.archive import Archived, archive_batch
from cleaner.storage import open_store

BATCH_ID = "msgbatch_0123456789abcdefghijklmn"


class ChunkedResults:
    """A fake results source: serves one body, split at the given offsets."""

    def __init__(self, body: bytes, cuts: list[int]) -> None:
        points = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
        self.chunks = [body[a:b] for a, b in itertools.pairwise(points) if b > a]

    async def results(
        self, results_url: str, *, deadline_s: float | None = None
    ) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


async def _no_sleep(seconds: float) -> None:
    raise AssertionError("no 404 here, so no pause")


def _batch(lines: int) -> dict[str, object]:
    return {
        "id": BATCH_ID,
        "processing_status": "ended",
        "request_counts": {
            "processing": 0,
            "succeeded": lines,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "results_url": f"/v1/messages/batches/{BATCH_ID}/results",
        "archived_at": None,
    }


_line = st.binary(min_size=1, max_size=30).map(lambda b: b.replace(b"\n", b"x") + b"\n")


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(_line, min_size=1, max_size=50),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=10),
    last_newline=st.booleans(),
)
def test_size_digest_and_lines_are_the_same_for_any_chunking(
    lines: list[bytes], cuts: list[int], last_newline: bool
) -> None:
    """Any split of the body, with or without a final newline: the same verified figures."""
    body = b"".join(lines)
    if not last_newline:
        body = body[:-1]
    with tempfile.TemporaryDirectory() as root:
        store = open_store(Path(root).as_uri())
        done = asyncio.run(
            archive_batch(
                _batch(len(lines)),
                client=ChunkedResults(body, cuts),
                store=store,
                now=datetime(2026, 12, 1, tzinfo=UTC),
                sleep=_no_sleep,
            )
        )
        stored = asyncio.run(store.get(f"{BATCH_ID}/results.jsonl"))
    assert isinstance(done, Archived)
    assert (done.bytes, done.lines) == (len(body), len(lines))
    assert done.sha256 == hashlib.sha256(body).hexdigest()
    assert stored == body
