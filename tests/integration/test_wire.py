"""The production transport against small scripted servers: what reaches the wire, and when.

Each server is a real asyncio server on 127.0.0.1 that counts the requests it read, so the
tests can tell the client's own attempts from any resend hidden inside the HTTP library.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import orjson
import pytest

from cleaner.errors import ApiUnreachableError, BadRequestError, ServerError
from tests.integration.netkit import production_client

BATCH = "msgbatch_0123456789abcdefghijklmn"
Reply = Callable[[asyncio.StreamWriter, int], Awaitable[bool]]  # False: close, no answer


def _response(status: int, body: object, *headers: str) -> bytes:
    payload = orjson.dumps(body)
    head = [f"HTTP/1.1 {status} X", f"content-length: {len(payload)}", *headers, "", ""]
    return "\r\n".join(head).encode() + payload


@asynccontextmanager
async def scripted(reply: Reply) -> AsyncIterator[tuple[str, list[str]]]:
    """A server answering each request with ``reply(writer, n)``; yields its URL and log."""
    seen: list[str] = []
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen.append(head.split(b"\r\n", 1)[0].decode())
                if not await reply(writer, len(seen)):
                    return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen
        for writer in writers:
            writer.close()


async def test_a_connection_dropped_before_the_answer_is_sent_once_per_attempt() -> None:
    """No resend hidden in the library: the server sees exactly the client's attempts."""

    async def drop(writer: asyncio.StreamWriter, n: int) -> bool:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        return False

    async with scripted(drop) as (url, seen), production_client(url, {}) as client:
        with pytest.raises(ApiUnreachableError):
            await client.delete(BATCH)
        assert client.stats.requests == 4
    assert seen == [f"DELETE /v1/messages/batches/{BATCH} HTTP/1.1"] * 4


async def test_a_refused_connection_is_retried_then_the_api_is_unreachable() -> None:
    """Nothing listens: every attempt is refused, then one typed error names the failure."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the kernel refuses
        async with production_client(f"http://127.0.0.1:{port}", {}) as client:
            with pytest.raises(ApiUnreachableError) as raised:
                await client.retrieve(BATCH)
            assert client.stats.requests == 4
    assert "ConnectError" in str(raised.value)


async def test_a_reply_that_is_not_http_is_a_connection_error_not_a_library_one() -> None:
    """Garbage instead of a status line is retried like a drop, and ends typed."""

    async def garbage(writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        return False

    async with scripted(garbage) as (url, seen), production_client(url, {}) as client:
        with pytest.raises(ApiUnreachableError):
            await client.retrieve(BATCH)
    assert len(seen) == 4


async def test_a_server_that_never_answers_is_cut_by_the_request_deadline() -> None:
    """Each attempt ends at the deadline; the call ends unreachable."""
    never = asyncio.Event()

    async def silent(writer: asyncio.StreamWriter, n: int) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(never.wait(), timeout=5)
        return False

    async with scripted(silent) as (url, seen):
        async with production_client(url, {}, timeout_s=0.2) as client:
            with pytest.raises(ApiUnreachableError) as raised:
                await client.retrieve(BATCH)
        never.set()
    assert "no complete response within 0.2s" in str(raised.value)
    assert len(seen) == 4


@pytest.mark.parametrize(
    ("status", "should_retry", "error", "attempts"),
    [
        (500, "false", ServerError, 1),
        (400, "true", BadRequestError, 4),
        (500, None, ServerError, 4),
    ],
)
async def test_x_should_retry_overrides_the_status_rule(
    status: int, should_retry: str | None, error: type[Exception], attempts: int
) -> None:
    """x-should-retry: false stops a 500 at once; true retries a 400; absent, status rules."""
    extra = () if should_retry is None else (f"x-should-retry: {should_retry}",)
    body = {"type": "error", "error": {"type": "api_error", "message": "no"}}

    async def answer(writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(_response(status, body, *extra))
        return True

    async with scripted(answer) as (url, seen), production_client(url, {}) as client:
        with pytest.raises(error):
            await client.retrieve(BATCH)
        assert client.stats.retries == attempts - 1
    assert len(seen) == attempts


async def test_the_request_id_header_and_the_confirmation_come_back_verbatim() -> None:
    """A 200 delete: the confirmation body and the request-id header, on a kept-alive link."""
    confirmation = {"id": BATCH, "type": "message_batch_deleted"}

    async def answer(writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(_response(200, confirmation, f"request-id: req_{n:04d}"))
        return True

    async with scripted(answer) as (url, seen), production_client(url, {}) as client:
        first = await client.delete(BATCH)
        second = await client.delete(BATCH)
        assert client.stats.retries == 0
    assert first.confirmation == confirmation
    assert (first.request_id, second.request_id) == ("req_0001", "req_0002")
    assert len(seen) == 2


async def test_one_failure_then_success_costs_one_retry_and_returns_the_answer() -> None:
    """The retry loop starts only after a failure, and then behaves as stamina's own."""
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    confirmation = {"id": BATCH, "type": "message_batch_deleted"}

    async def flaky(writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(_response(529, body) if n == 1 else _response(200, confirmation))
        return True

    async with scripted(flaky) as (url, seen), production_client(url, {}) as client:
        deletion = await client.delete(BATCH)
        assert (client.stats.requests, client.stats.retries) == (2, 1)
    assert len(seen) == 2
    assert deletion.confirmation == confirmation
    assert client.stats.responses[("delete", "529")] == 1
    assert client.stats.responses[("delete", "200")] == 1
