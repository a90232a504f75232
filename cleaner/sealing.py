"""Sealing a cycle's write-ahead segments into one cycle object, and reading HEAD.

Used at the end of a cycle and, for segments a killed process left, at the next start.
Both run the same steps, each safe to repeat after a crash between any two of them:
read the segments in order, verifying the chain; stream them and a seal record into the
cycle object (skipped if a previous attempt already wrote it); move HEAD to it; remove
the segments.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from cleaner.chain import (
    JSON,
    ChainError,
    Layout,
    Link,
    decode,
    encode,
    parse_timestamp,
    timestamp,
)
from cleaner.errors import CleanerError
from cleaner.storage import Store

#: How many segments are fetched at once while sealing.
_READ_AHEAD = 16


class SealError(CleanerError):
    """The stored trail is inconsistent: HEAD lost or moved, or a cycle's header unreadable."""


@dataclass(frozen=True, slots=True)
class Head:
    """The newest sealed cycle object and its seal's hash."""

    object: str
    hash: str
    records: int


async def read_head(store: Store, layout: Layout) -> Head | None:
    """HEAD, or None for a trail never written; a lost HEAD is a :class:`SealError`."""
    if await store.head(layout.head) is None:
        if await store.list(layout.cycles):
            raise SealError(f"{layout.head} is missing but cycle objects exist")
        return None
    try:
        data = orjson.loads(await store.get(layout.head))
        return Head(object=data["object"], hash=data["hash"], records=int(data["records"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SealError(f"{layout.head} is not readable") from exc


async def seal_pending(
    store: Store,
    layout: Layout,
    cycle_id: str,
    clock: Callable[[], datetime],
    *,
    recovered: bool = False,
) -> None:
    """Seal ``cycle_id``'s segments into its cycle object and point HEAD at it."""
    segments = await store.list(layout.pending_cycle(cycle_id))
    if not segments:
        return
    first = (await store.get(segments[0])).splitlines()
    try:
        header = decode(first[0]) if first else {}
    except ChainError as exc:
        raise SealError(f"{segments[0]} line 1: {exc}") from exc
    if header.get("kind") != "cycle" or header.get("seq") != 0:
        raise SealError(f"{segments[0]} does not start with its cycle's header")
    target = layout.cycle_object(parse_timestamp(str(header["started_at"])), cycle_id)
    done = await store.head(target)
    try:
        head = await read_head(store, layout)
    except SealError:
        if done is None or header.get("prev_object") is not None:
            raise
        head = None  # the very first cycle stopped between its object and HEAD
    if head is not None and head.object == target:
        seal = None  # sealed and HEAD moved: only the segments are left to remove
    elif (header.get("prev_object"), header.get("prev")) != (
        (head.object, head.hash) if head else (None, None)
    ):
        raise SealError(f"cycle {cycle_id} does not continue from {layout.head}")
    elif done is not None:
        seal = decode((await store.get(target)).splitlines()[-1])
    elif len(segments) == 1 and len(first) == 1:
        seal = None  # nothing happened in this cycle: no object for it
    else:
        start = Link(seq=0, prev=head.hash if head else None)
        writer = _SealWriter(
            store, segments, cycle_id=cycle_id, start=start, clock=clock, recovered=recovered
        )
        await store.put_stream(target, writer.lines())
        seal = writer.seal
    if seal is not None:
        records = int(str(seal["seq"])) + 1
        body = {"object": target, "hash": seal["hash"], "records": records}
        await store.put(layout.head, orjson.dumps(body) + b"\n")
    await store.delete_many(segments)


class _SealWriter:
    """Streams verified segment lines, then a seal; stops at the first broken segment."""

    def __init__(
        self,
        store: Store,
        segments: Sequence[str],
        *,
        cycle_id: str,
        start: Link,
        clock: Callable[[], datetime],
        recovered: bool,
    ) -> None:
        self._store = store
        self._segments = segments
        self._start = start
        self._cycle_id = cycle_id
        self._clock = clock
        self._recovered = recovered
        self.seal: dict[str, JSON] | None = None

    async def lines(self) -> AsyncIterator[bytes]:
        link = self._start
        dropped: list[str] = []
        async for path, data in self._fetch():
            if dropped:
                dropped.append(path)
                continue
            records = _verified(data, link)
            if records is None:
                dropped.append(path)
                continue
            link, body = records
            yield body
        seal: dict[str, JSON] = {
            "kind": "seal",
            "cycle_id": self._cycle_id,
            "seq": link.seq,
            "prev": link.prev,
            "records": link.seq,
            "at": timestamp(self._clock()),
            "recovered": self._recovered,
            "dropped_segments": [p.rsplit("/", 1)[-1] for p in dropped],
        }
        line, digest = encode(seal)
        self.seal = {**seal, "hash": digest}
        yield line

    async def _fetch(self) -> AsyncIterator[tuple[str, bytes]]:
        for start in range(0, len(self._segments), _READ_AHEAD):
            window = self._segments[start : start + _READ_AHEAD]
            for path, data in zip(
                window, await asyncio.gather(*(self._store.get(p) for p in window)), strict=True
            ):
                yield path, data


def _verified(data: bytes, link: Link) -> tuple[Link, bytes] | None:
    """The segment's lines if every one follows the chain (and the Link after), else None."""
    lines = data.splitlines(keepends=True)
    moved = Link(seq=link.seq, prev=link.prev)
    for line in lines:
        try:
            if moved.follow(decode(line)) is not None:
                return None
        except ChainError:
            return None
    return moved, data if data.endswith(b"\n") else data + b"\n"
