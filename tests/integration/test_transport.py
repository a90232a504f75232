"""The client's transport: httpx's interface over aiohttp's pool, on real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib

import httpx

from cleaner.network import trust_context
from cleaner.transport import transport


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    """Keep-alive is reused; after the server drops it, the next request opens a new one."""
    peers: list[int] = []
    handlers: list[asyncio.Task[None]] = []
    ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]  # inside a task
        peers.append(writer.get_extra_info("peername")[1])
        first, answered = len(peers) == 1, 0
        try:
            while not (first and answered == 2):  # the first connection: twice, then close
                await reader.readuntil(b"\r\n\r\n")
                writer.write(ok)
                await writer.drain()
                answered += 1
        except asyncio.IncompleteReadError:
            pass  # the client closed the connection
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with server:
        async with httpx.AsyncClient(
            transport=transport(limits=limits, ssl_context=trust_context(environ={}), proxy=None)
        ) as http:
            for _ in range(2):
                assert (await http.get(f"http://127.0.0.1:{port}/")).text == "ok"
            await asyncio.sleep(0.1)  # the server closes the idle connection meanwhile
            assert (await http.get(f"http://127.0.0.1:{port}/")).text == "ok"
        await asyncio.wait_for(asyncio.gather(*handlers), timeout=5)
    assert len(peers) == 2
