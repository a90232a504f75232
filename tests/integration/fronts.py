"""ASGI fronts for the emulator: answers the real API may give that the emulator does not.

Each wraps the emulator's app and is served by uvicorn on 127.0.0.1 like the emulator
itself, so the client under test speaks real HTTP to it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


async def _answer(send: Send, status: int, body: dict[str, Any], headers: Headers) -> None:
    raw = orjson.dumps(body)
    start_headers = [(b"content-type", b"application/json"), *headers]
    start_headers.append((b"content-length", str(len(raw)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": raw})


def error_body(status: int, error_type: str, message: str, code: str | None = None) -> Any:
    """The documented error envelope, with ``error.details.error_code`` when given."""
    error: dict[str, Any] = {"type": error_type, "message": message}
    if code is not None:
        error["details"] = {"error_code": code}
    return {"type": "error", "error": error, "request_id": f"req_front_{status}"}


class RateLimitedFront:
    """A requests-per-minute token bucket (one second's worth) that answers ``retry-after``."""

    def __init__(self, inner: App, *, rpm: float, retry_after: str) -> None:
        self.inner = inner
        self.rate_per_s = rpm / 60.0
        self.tokens = self.capacity = max(1.0, self.rate_per_s)
        self.retry_after = retry_after.encode()
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def _take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate_per_s)
            self.last = now
            if self.tokens < 1.0:
                return False
            self.tokens -= 1.0
            return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._take():
            await self.inner(scope, receive, send)
            return
        body = error_body(429, "rate_limit_error", "rate limited by the front")
        await _answer(send, 429, body, [(b"retry-after", self.retry_after)])


class ScriptedFront:
    """Answers the first requests from a script; adds headers to the ones it lets through.

    ``script`` holds (status, JSON body, headers) answers, used one per request in order;
    once it is empty, requests reach the emulator and ``extra_headers`` join its answer.
    """

    def __init__(
        self,
        inner: App,
        *,
        script: list[tuple[int, Any, Headers]] | None = None,
        extra_headers: Headers | None = None,
    ) -> None:
        self.inner = inner
        self.script = list(script or [])
        self.extra_headers = list(extra_headers or [])
        self.seen = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        self.seen += 1
        if self.script:
            status, body, headers = self.script.pop(0)
            await _answer(send, status, body, headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], *self.extra_headers]}
            await send(message)

        await self.inner(scope, receive, send_with_headers)


@contextlib.contextmanager
def serve(app: App) -> Iterator[str]:
    """Serve ``app`` on an ephemeral 127.0.0.1 port until the block ends; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:  # startup takes milliseconds; the test timeout bounds it
            if not thread.is_alive():
                raise RuntimeError("the front's server died during startup")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
