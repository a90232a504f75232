"""Running the emulator: uvicorn on a pre-bound socket in a daemon thread.

Binding the socket ourselves before uvicorn starts means the port is known (and `port=0`
works) and no client can race the startup: connections queue in the backlog until uvicorn
accepts them. The thread owns its own event loop, so tests and benchmarks keep theirs.
`serve_forever` (the command line) uses the same thread and waits for SIGTERM/SIGINT in the
main thread, which avoids uvicorn re-raising the signal after its graceful shutdown and lets
the process exit 0.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

from cleaner.emulator.app import EmulatorApp
from cleaner.emulator.emulator import Emulator

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0


@contextlib.contextmanager
def serve_in_thread(
    emulator: Emulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
) -> Iterator[str]:
    """Serve `emulator` over HTTP until the block ends; yields the base URL."""
    app = EmulatorApp(emulator)
    with serve_app_in_thread(app, host=host, port=port, log_level=log_level) as base_url:
        yield base_url


@contextlib.contextmanager
def serve_app_in_thread(
    app: EmulatorApp, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> Iterator[str]:
    """Serve an app (whose `.emulator` may be swapped between uses, as test suites do)."""
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it uvicorn's separate header and body writes meet delayed ACKs (40 ms a request).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    bound_port = sock.getsockname()[1]
    display_host = f"[{host}]" if ":" in host else host
    base_url = f"http://{display_host}:{bound_port}"
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
        backlog=1024,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="emulator-server", daemon=True
    )
    app.emulator.base_url = base_url
    thread.start()
    try:
        _wait_started(server, thread)
        yield base_url
    finally:
        app.stopping.set()
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_S)
        sock.close()


def serve_forever(
    emulator: Emulator,
    *,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
) -> None:
    """Serve until SIGTERM or SIGINT; `on_ready(base_url)` once connections are accepted."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with serve_in_thread(emulator, host=host, port=port) as base_url:
            on_ready(base_url)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the emulator server thread died during startup")
        if time.monotonic() > deadline:
            raise RuntimeError("the emulator server did not start in time")
        time.sleep(0.005)
