"""Verifying sealed cycle objects and the links between them (see :mod:`cleaner.chain`).

Each problem names the object and the line (1-based). After a problem the check resyncs
on the offending record, so one tampered line reports once rather than cascading.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import orjson

from cleaner.chain import JSON, ChainError, Link, decode
from cleaner.sealing import Head
from cleaner.storage import Store


@dataclass(frozen=True, slots=True)
class Problem:
    """One break in the chain."""

    object: str
    line: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.object} line {self.line}" if self.line else self.object
        return f"{where}: {self.problem}"

    def as_json(self) -> dict[str, JSON]:
        return {"object": self.object, "line": self.line, "problem": self.problem}


@dataclass
class ObjectSummary:
    """What linking needs to know about one cycle object."""

    path: str
    prev_object: str | None = None
    first_prev: str | None = None
    last_hash: str | None = None  # the seal's hash; None if unsealed
    records: int = 0
    problems: list[Problem] = field(default_factory=list)
    open_intents: set[tuple[str, str]] = field(default_factory=set)


async def read_object(
    store: Store, path: str, *, on_record: Callable[[dict[str, JSON]], None]
) -> ObjectSummary:
    """Verify one cycle object line by line; ``on_record`` sees every readable record."""
    summary = ObjectSummary(path)
    link: Link | None = None
    last: dict[str, JSON] = {}
    number = 0
    async for number, line in _lines(store.stream(path)):
        record, problem = _parse(line)
        if record is None:
            summary.problems.append(Problem(path, number, problem or "unreadable"))
            if link is not None:
                link.seq += 1
            continue
        if link is None:
            link = _start(summary, record, number)
        elif (broke := link.follow(record)) is not None:
            summary.problems.append(Problem(path, number, broke))
            link.seq, link.prev = _resync(record)
        if problem:
            summary.problems.append(Problem(path, number, problem))
        _track(summary, record)
        on_record(record)
        summary.records += 1
        last = record
    if last.get("kind") == "seal" and last.get("records") == last.get("seq"):
        summary.last_hash = str(last["hash"])
    else:
        summary.problems.append(Problem(path, number, "not sealed: the object ends early"))
    return summary


def link_objects(
    summaries: Sequence[ObjectSummary], head: Head | None, *, head_path: str
) -> list[Problem]:
    """Each object must continue from the one it names, nothing may fork, HEAD ends it."""
    problems: list[Problem] = []
    known = {s.path: s for s in summaries}
    successors: dict[str | None, list[ObjectSummary]] = {}
    for summary in summaries:
        successors.setdefault(summary.prev_object, []).append(summary)
    starts = [s for s in summaries if s.prev_object is None or s.prev_object not in known]
    for extra in [s for s in starts if s.prev_object is None][1:]:
        problems.append(Problem(extra.path, 1, "a second chain begins here"))
    reached: set[str] = set()
    for start in starts:
        if start.prev_object is not None:
            problems.append(
                Problem(start.path, 1, f"previous object {start.prev_object} is missing")
            )
        current: ObjectSummary | None = start
        while current is not None and current.path not in reached:
            reached.add(current.path)
            nexts = successors.get(current.path, [])
            if len(nexts) > 1:
                names = ", ".join(n.path for n in nexts)
                problems.append(Problem(current.path, None, f"the chain forks after it: {names}"))
            for following in nexts:
                if current.last_hash is not None and following.first_prev != current.last_hash:
                    problems.append(
                        Problem(following.path, 1, f"does not continue from {current.path}")
                    )
            current = nexts[0] if nexts else None
    problems.extend(
        Problem(s.path, 1, "not linked into the chain") for s in summaries if s.path not in reached
    )
    problems.extend(_check_head(head, head_path, known, successors))
    return problems


def _check_head(
    head: Head | None,
    head_path: str,
    known: dict[str, ObjectSummary],
    successors: dict[str | None, list[ObjectSummary]],
) -> list[Problem]:
    if head is None:
        return [Problem(head_path, None, "HEAD is missing")] if known else []
    tail = known.get(head.object)
    if tail is None:
        return [Problem(head_path, None, f"names {head.object}, which is missing")]
    if successors.get(head.object):
        later = successors[head.object][0].path
        return [Problem(head_path, None, f"names {head.object}, but {later} follows it")]
    if head.hash != tail.last_hash:
        return [Problem(head_path, None, f"hash differs from the seal of {head.object}")]
    return []


def _parse(line: bytes) -> tuple[dict[str, JSON] | None, str | None]:
    """The record and, if its hash is wrong, that problem (the record is still counted)."""
    try:
        return decode(line), None
    except ChainError as exc:
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None, str(exc)
        return (raw, str(exc)) if isinstance(raw, dict) else (None, str(exc))


def _start(summary: ObjectSummary, record: dict[str, JSON], number: int) -> Link:
    if record.get("kind") != "cycle" or record.get("seq") != 0:
        summary.problems.append(Problem(summary.path, number, "does not start with a header"))
    prev_object = record.get("prev_object")
    summary.prev_object = prev_object if isinstance(prev_object, str) else None
    first_prev = record.get("prev")
    summary.first_prev = first_prev if isinstance(first_prev, str) else None
    seq, prev = _resync(record)
    return Link(seq=seq, prev=prev)


def _resync(record: dict[str, JSON]) -> tuple[int, str | None]:
    seq = record.get("seq")
    digest = record.get("hash")
    return (seq + 1 if isinstance(seq, int) else 0), (digest if isinstance(digest, str) else None)


def _track(summary: ObjectSummary, record: dict[str, JSON]) -> None:
    key = (str(record.get("action")), str(record.get("batch_id")))
    if record.get("kind") == "intent":
        summary.open_intents.add(key)
    elif record.get("kind") == "receipt":
        summary.open_intents.discard(key)


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Numbered lines of a streamed object."""
    number, rest = 0, b""
    async for chunk in chunks:
        *complete, rest = (rest + chunk).split(b"\n")
        for line in complete:
            number += 1
            yield number, line
    if rest:
        yield number + 1, rest
