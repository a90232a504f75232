"""Minimal raw-ASGI plumbing: types, reading a body, answering, and dropping a connection.

No framework: the emulator needs full control over the wire (incomplete responses, resets,
exact headers) and speed, and a few dozen lines do it.

Dropping a connection with uvicorn 0.54: ASGI has no "abort" message. If an app returns after
`http.response.start` without finishing the body, uvicorn closes the socket (the client sees
an incomplete message) but logs "ASGI callable returned without completing response"; if it
returns before starting, uvicorn answers 500 itself. So `abort_connection` reaches the
transport behind uvicorn's `send` (a bound method of its RequestResponseCycle, which has a
`.transport`), sets SO_LINGER 0 when a reset is wanted (the client sees ECONNRESET, not a
clean EOF) and aborts it; uvicorn's connection_lost marks the cycle disconnected, so it
neither logs nor answers. Without such a transport it falls back to the incomplete response.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Protocol

Scope = MutableMapping[str, object]
Message = Mapping[str, object]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Header = tuple[bytes, bytes]

MAX_BODY_BYTES = 32 * 1024 * 1024


class BodyTooLarge(Exception):
    """The request body exceeded MAX_BODY_BYTES."""


class _Transport(Protocol):
    def abort(self) -> None: ...
    def get_extra_info(self, name: str, default: object = None) -> object: ...


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole request body; raises BodyTooLarge past `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        if isinstance(chunk, bytes) and chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def header_values(scope: Scope, name: bytes) -> list[str]:
    """All values of a request header (lower-case name), decoded as latin-1."""
    raw = scope.get("headers", [])
    if not isinstance(raw, Iterable):
        return []
    return [value.decode("latin-1") for key, value in raw if key == name]


async def respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"application/json",
    headers: Iterable[Header] = (),
) -> None:
    """A complete response with Content-Length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def respond_stream(
    send: Send,
    status: int,
    chunks: Iterable[bytes],
    *,
    content_type: bytes,
    headers: Iterable[Header] = (),
) -> None:
    """A chunked response, one ASGI body message per chunk."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), *headers],
        }
    )
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def abort_connection(send: Send, *, reset: bool) -> None:
    """Close the client's connection at once, without a (complete) response."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        await _incomplete_response(send)
        return
    aborting: _Transport = transport
    if reset:
        sock = aborting.get_extra_info("socket")
        setsockopt = getattr(sock, "setsockopt", None)
        if setsockopt is not None:
            setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    aborting.abort()
    await asyncio.sleep(0)  # let connection_lost mark uvicorn's cycle as disconnected


async def send_partial_then_abort(send: Send, status: int, body: bytes) -> None:
    """Start a response, send half its body, then drop the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    await abort_connection(send, reset=False)


async def _incomplete_response(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        }
    )
    await send({"type": "http.response.body", "body": b"{", "more_body": True})


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI lifespan protocol: nothing to start or stop."""
    while True:
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
