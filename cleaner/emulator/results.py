"""The results endpoint's body: large files made on the fly, and faults in mid-body.

Large results: with ``results_line_bytes`` set, every line is padded with spaces before its
closing brace to exactly that many bytes (``\\n`` included; a longer line is left as is), so
a batch of N requests yields N lines and about N x results_line_bytes bytes, generated chunk
by chunk and never held whole. Padded files are deterministic (the same batch gives the same
bytes on every download), which lets tests compare checksums.

Body faults (``cut_body``, ``trickle``) fire through the usual rule walk; they only make
sense for results, whose body is a stream:

* ``cut_body`` sends half the lines and half of the next one, then drops the connection:
  the client sees an incomplete body, never a clean end on a line boundary.
* ``trickle`` sends the body in 256-byte pieces, ``rule.seconds`` (default 1) apart.

Streaming stops as soon as the client disconnects or the server stops, so a client that
gives up on a huge or slow body does not keep the emulator busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import orjson

from cleaner.emulator.asgi import Header, Receive, Send, abort_connection
from cleaner.emulator.store import BatchRecord, ResultType
from cleaner.emulator.wire import JsonObject, error_json, result_lines, result_plan

BODY_FAULTS = frozenset({"cut_body", "trickle"})
CHUNK_BYTES = 64 * 1024
TRICKLE_BYTES = 256
DEFAULT_TRICKLE_S = 1.0


def result_chunks(record: BatchRecord, now_us: int, *, line_bytes: int) -> Iterator[bytes]:
    """The results file of `record` in chunks; padded lines when `line_bytes` > 0."""
    if line_bytes <= 0:
        return result_lines(record, now_us)
    return _padded(record, now_us, line_bytes)


def _padded(record: BatchRecord, now_us: int, line_bytes: int) -> Iterator[bytes]:
    plan = result_plan(record, now_us)
    parts: list[bytes] = []
    size = 0
    index = 0
    for kind, count in plan:
        for _ in range(count):
            line = {"custom_id": record.custom_id(index), "result": _result(kind, record, index)}
            raw = orjson.dumps(line)
            pad = line_bytes - len(raw) - 1
            parts.append(raw[:-1] + b" " * pad + b"}\n" if pad > 0 else raw + b"\n")
            size += len(parts[-1])
            index += 1
            if size >= CHUNK_BYTES:
                yield b"".join(parts)
                parts, size = [], 0
    if parts:
        yield b"".join(parts)


def _result(kind: ResultType, record: BatchRecord, index: int) -> JsonObject:
    """One result, with nothing random in it (the request id derives from the index)."""
    if kind == "succeeded":
        return {
            "type": "succeeded",
            "message": {
                "id": f"msg_{record.id[-16:]}{index:08d}",
                "type": "message",
                "role": "assistant",
                "model": "claude-emulated",
                "content": [{"type": "text", "text": "ok"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 1},
            },
        }
    if kind == "errored":
        error = error_json("invalid_request_error", "emulated request error", f"req_{index:024x}")
        return {"type": "errored", "error": error}
    return {"type": kind}


def cut_midway(chunks: Iterator[bytes], total_lines: int) -> Iterator[bytes]:
    """The first half of the lines and half of the next line: never a whole file."""
    keep = total_lines // 2
    for chunk in chunks:
        start = 0
        while keep > 0:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            start, keep = end + 1, keep - 1
        if keep > 0 or start == len(chunk):  # the next line starts in a later chunk
            yield chunk
            continue
        rest = chunk.find(b"\n", start)
        line_end = len(chunk) if rest < 0 else rest + 1
        yield chunk[: start + max(1, (line_end - start) // 2)]
        return


async def stream_body(
    send: Send,
    receive: Receive | None,
    chunks: Iterator[bytes],
    *,
    headers: list[Header],
    fault: str | None,
    fault_seconds: float | None,
    stopping: threading.Event,
) -> None:
    """Answer 200 with the results as a chunked body, applying a body fault if one fired."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/x-jsonl"), *headers],
        }
    )
    gone = asyncio.Event()
    watcher = asyncio.create_task(_watch_disconnect(receive, gone))
    try:
        pieces = _trickled(chunks) if fault == "trickle" else chunks
        pause_s = (DEFAULT_TRICKLE_S if fault_seconds is None else fault_seconds) * (
            fault == "trickle"
        )
        for piece in pieces:
            if gone.is_set() or stopping.is_set():
                await abort_connection(send, reset=False)
                return
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            # Yield to the loop after every piece: a disconnected send returns at once.
            await _pause(pause_s, gone, stopping)
        if fault == "cut_body":
            await abort_connection(send, reset=False)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _pause(seconds: float, gone: asyncio.Event, stopping: threading.Event) -> None:
    """Sleep, but wake for a disconnect at once and for a server stop within 0.1 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        left = deadline - loop.time()
        if left <= 0 or gone.is_set() or stopping.is_set():
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.wait(), timeout=min(left, 0.1))


def _trickled(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        for start in range(0, len(chunk), TRICKLE_BYTES):
            yield chunk[start : start + TRICKLE_BYTES]


async def _watch_disconnect(receive: Receive | None, gone: asyncio.Event) -> None:
    """Set `gone` when the client disconnects (the request body has been read already)."""
    if receive is None:
        return
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            gone.set()
            return
