"""Enterprise-network pieces for tests: a throwaway CA, the emulator over TLS, a CONNECT proxy.

All real sockets on 127.0.0.1. The proxy resolves names from its own table, so a base URL
such as ``https://api.internal.test`` works only through it, as behind a corporate egress.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trustme
import uvicorn

from cleaner.budget import RequestBudget
from cleaner.client import BatchesClient, RetryPolicy
from cleaner.emulator import Emulator
from cleaner.emulator.app import EmulatorApp

INTERNAL_HOST = "api.internal.test"  # .test never resolves (RFC 2606): only the proxy knows it
KEY = "sk-ant-netkit-test-key-7"
QUICK_RETRY = RetryPolicy(
    attempts=4, total_s=10.0, wait_initial_s=0.005, wait_max_s=0.02, wait_jitter_s=0.005
)


@dataclass(frozen=True)
class Pki:
    """A test CA, the PEM file holding it, and a server certificate it signed."""

    ca: trustme.CA
    ca_file: Path
    server_pem: Path  # key and certificate chain, as uvicorn reads them


def make_pki(directory: Path, name: str = "ca") -> Pki:
    """A fresh CA and a certificate for the internal name, localhost and 127.0.0.1."""
    ca = trustme.CA()
    ca_file = directory / f"{name}.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ca.issue_cert(INTERNAL_HOST, "localhost", "127.0.0.1")
    server_pem = directory / f"{name}-server.pem"
    server.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    return Pki(ca=ca, ca_file=ca_file, server_pem=server_pem)


@contextlib.contextmanager
def serve_tls(emulator: Emulator, pki: Pki) -> Iterator[int]:
    """The emulator over HTTPS (uvicorn's TLS) on a loopback port, yielded."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = int(sock.getsockname()[1])
    app = EmulatorApp(emulator)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
        ssl_certfile=str(pki.server_pem),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # startup, not logic: the server thread reports when it listens
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the TLS emulator did not start")
        time.sleep(0.005)
    try:
        yield port
    finally:
        app.stopping.set()
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class ConnectProxy:
    """An HTTP proxy that tunnels CONNECT and refuses every other method with 405.

    ``hosts`` is its name table; ``tunnels`` records each ``host:port`` tunnelled,
    ``refused`` each request line it turned away, ``auth`` each Proxy-Authorization seen.
    """

    hosts: Mapping[str, str]
    tunnels: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """Serve on an ephemeral loopback port; yields the proxy URL."""
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with server:
                yield f"http://127.0.0.1:{port}"
        finally:
            for writer in self._writers:
                writer.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        try:
            await self._tunnel(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # a client or upstream gone mid-tunnel: the test decides what that means
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
        headers = {name.strip().lower(): value.strip() for name, value in fields.items()}
        host, _, port = target.rpartition(":")
        address = self.hosts.get(host)
        if method != "CONNECT" or address is None:
            self.refused.append(head[0])
            status = b"405 Method Not Allowed" if method != "CONNECT" else b"502 Bad Gateway"
            writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection(address, int(port))
        self._writers.append(up_writer)
        self.tunnels.append(target)
        self.auth.append(headers.get("proxy-authorization"))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    finally:
        sink.close()


@asynccontextmanager
async def production_client(
    base_url: str,
    environ: Mapping[str, str],
    *,
    retry: RetryPolicy = QUICK_RETRY,
    timeout_s: float = 5.0,
) -> AsyncIterator[BatchesClient]:
    """The client exactly as production builds it, reading only ``environ``."""
    http = BatchesClient.http_client(
        base_url=base_url, api_key=KEY, request_timeout_s=timeout_s, concurrency=4, environ=environ
    )
    async with http:
        yield BatchesClient(
            http,
            budget=RequestBudget(600_000),
            concurrency=4,
            request_timeout_s=timeout_s,
            retry=retry,
        )
