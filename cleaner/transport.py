"""The HTTP transport under :mod:`cleaner.client`: httpx's own, with a cheaper idle check.

Only the client imports this module. Why it exists, from the profile (py-spy, `cleaner run
--once` deleting 10,000 batches at 50 ms latency through 32 connections): 55 % of the
daemon's CPU went to httpcore's connection pool, and a fifth of *all* CPU to one question.
Before each request and after each response the pool asks every idle connection whether
the server has closed it (``get_extra_info("is_readable")``); httpcore's anyio stream answers
by building anyio's dict of socket attributes, which calls ``getpeername()``, then polls the
socket. The stream here keeps its socket from the start and only polls: the same answer,
from the same ``poll(2)``, at a fraction of the cost (2.3 -> 1.5 ms CPU per deletion, and a
CPU-bound drain 1.5 times as fast).

Everything else (TLS, proxies from the environment, timeouts, error mapping) stays
httpx's: :func:`transport` builds the standard ``httpx.AsyncHTTPTransport`` and only wraps the
network backend of its connection pool. If a future httpx lays its pool out differently,
the wrapping is skipped and the standard transport is returned unchanged.
"""

# ruff: noqa: ASYNC109  # httpcore's stream and backend interface takes timeouts as arguments
from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


def transport(*, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's standard transport with these pool limits, and the cheaper idle check."""
    standard = httpx.AsyncHTTPTransport(limits=limits)
    pool = getattr(standard, "_pool", None)  # httpx 0.28: an httpcore.AsyncConnectionPool
    backend = getattr(pool, "_network_backend", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and isinstance(
        backend, httpcore.AsyncNetworkBackend
    ):
        pool._network_backend = _Backend(backend)  # httpx offers no seam for it
    return standard


def is_readable(sock: socket.socket | None) -> bool:
    """Whether a read would not block: on an idle connection, the server has closed it.

    A socket that is gone (or closed: ``fileno()`` is -1) counts as readable, as in httpcore,
    so the pool discards the connection instead of sending a request into it.
    """
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """Delegates everything to httpcore's stream but answers "is_readable" itself."""

    __slots__ = ("_inner", "_socket")

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_readable(self._socket)
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's backend, handing out :class:`_Stream` wrappers."""

    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(
            await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
