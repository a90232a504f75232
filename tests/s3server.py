"""A real S3-compatible server for tests: moto's S3 app served on 127.0.0.1.

moto's ``ThreadedMotoServer`` stops serving on ``stop()`` but leaves its socket listening,
so a client of a "stopped" server hangs until its timeout instead of being refused. This
wrapper serves the same moto application with werkzeug and closes the socket on stop.
"""

from __future__ import annotations

import itertools
import logging
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

#: Fake credentials moto accepts; the suite's guard fails any test whose output shows them.
ACCESS_KEY_ID = "AKIATESTCLEANERAUDIT"
SECRET_ACCESS_KEY = "moto-secret-never-in-logs-42"
REGION = "us-east-1"

_bucket_numbers = itertools.count(1)


@dataclass
class S3Server:
    """A running moto server; ``env`` is what obstore needs to reach it."""

    endpoint: str
    _server: BaseWSGIServer
    _thread: threading.Thread

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
        }

    def create_bucket(self) -> str:
        """A new empty bucket with a unique name."""
        name = f"cleaner-test-{next(_bucket_numbers)}"
        url = f"{self.endpoint}/{name}"
        request = urllib.request.Request(url, method="PUT")  # noqa: S310 (our loopback server)
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (same)
            assert response.status == 200
        return name

    def stop(self) -> None:
        """Stop serving and close the socket: later connections are refused."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """moto's S3 on an ephemeral loopback port, for the duration of the block."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    s3 = S3Server(endpoint=f"http://{host!s}:{port}", _server=server, _thread=thread)
    try:
        yield s3
    finally:
        if thread.is_alive():
            s3.stop()
