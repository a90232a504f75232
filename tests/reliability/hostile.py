"""A hostile API for tests: the emulator, with chosen endpoints answered by a script.

The emulator answers only the way the contract says (plus its fault kinds). A broken or
hostile server says other things: unknown statuses, cursors that never end, a body of 40
MiB, a body that trickles in a byte at a time. :class:`HostileApp` serves a real emulator
over real HTTP, but lets a test take over any request: the script sees the endpoint and
the emulator, and either answers itself or lets the emulator answer. Whatever the script
does not take is journaled and applied by the emulator as usual, so the invariant checker
still sees the truth.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from cleaner.emulator import Emulator
from cleaner.emulator.app import EmulatorApp, route
from cleaner.emulator.asgi import Receive, Scope, Send
from cleaner.emulator.server import serve_app_in_thread


@dataclass(frozen=True, slots=True)
class Request:
    """What a script is told about one request."""

    method: str
    path: str
    endpoint: str  # list | retrieve | cancel | delete | ...
    batch_id: str | None
    query: str
    number: int  # how many requests to this endpoint came before, this one excluded


#: A script answers a request (True) or lets the emulator do it (False).
Script = Callable[[Request, "Wire"], Awaitable[bool]]


class Wire:
    """What a script can send: whole JSON answers, raw chunks, slow trickles."""

    def __init__(self, send: Send) -> None:
        self._send = send

    async def json(self, body: object, *, status: int = 200, headers: Iterable[Any] = ()) -> None:
        await self.raw(orjson.dumps(body), status=status, headers=headers)

    async def raw(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: bytes = b"application/json",
        headers: Iterable[Any] = (),
    ) -> None:
        await self.start(status, content_type=content_type, headers=headers, length=len(body))
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    async def start(
        self,
        status: int,
        *,
        content_type: bytes = b"application/json",
        headers: Iterable[Any] = (),
        length: int | None = None,
    ) -> None:
        sized = [] if length is None else [(b"content-length", str(length).encode())]
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type), *sized, *headers],
            }
        )

    async def chunks(self, parts: Iterator[bytes], *, every_s: float = 0.0) -> None:
        """Send a body in parts (after :meth:`start`), pausing between them; stops if the
        client has gone."""
        for part in parts:
            await self._send({"type": "http.response.body", "body": part, "more_body": True})
            if every_s:
                await asyncio.sleep(every_s)
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


class HostileApp(EmulatorApp):
    """The emulator's ASGI app with a script in front of its /v1 endpoints."""

    def __init__(self, emulator: Emulator, script: Script) -> None:
        super().__init__(emulator)
        self.script = script
        self.seen: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope.get("type") == "http" and path.startswith("/v1/"):
            method = str(scope.get("method", "GET"))
            where = route(method, path)
            raw_query = scope.get("query_string", b"")
            request = Request(
                method=method,
                path=path,
                endpoint=where.endpoint,
                batch_id=where.batch_id,
                query=raw_query.decode("latin-1") if isinstance(raw_query, bytes) else "",
                number=self.seen.get(where.endpoint, 0),
            )
            self.seen[where.endpoint] = request.number + 1
            if await self.script(request, Wire(send)):
                return
        await super().__call__(scope, receive, send)


@contextmanager
def serve_hostile(emulator: Emulator, script: Script) -> Iterator[tuple[str, HostileApp]]:
    """Serve ``emulator`` behind ``script`` on loopback; yields the base URL and the app."""
    app = HostileApp(emulator, script)
    with serve_app_in_thread(app) as base_url:
        yield base_url, app


def page(batches: list[dict[str, Any]], *, has_more: bool = False) -> dict[str, Any]:
    """A listing page in the documented shape around ``batches``."""
    return {
        "data": batches,
        "has_more": has_more,
        "first_id": batches[0]["id"] if batches else None,
        "last_id": batches[-1]["id"] if batches else None,
    }
