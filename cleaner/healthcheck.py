"""A container health check that needs no curl: ``python -m cleaner.healthcheck``.

GETs ``http://127.0.0.1:$CLEANER_HTTP_PORT/livez`` (port 8080 when unset, as for
``cleaner run``) with the standard library and exits 0 when it answers 200, 1 otherwise,
printing one line either way. Reads no other setting, so it works even where the full
configuration is not in its environment.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = 8080
TIMEOUT_S = 3.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def main() -> int:
    """Probe the local liveness endpoint; 0 when alive, 1 when not."""
    raw = os.environ.get("CLEANER_HTTP_PORT", "").strip()
    if raw.lower() in {"off", "none"}:
        print("healthcheck: the health port is off (CLEANER_HTTP_PORT)", file=sys.stderr)
        return 1
    try:
        port = int(raw) if raw else DEFAULT_PORT
    except ValueError:
        print(f"healthcheck: CLEANER_HTTP_PORT={raw!r} is not a port", file=sys.stderr)
        return 1
    if not 0 < port < 65536:
        print(f"healthcheck: no health port to probe (CLEANER_HTTP_PORT={raw!r})", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port}/livez"
    try:
        # A fixed http:// URL on loopback (no file: or other scheme can sneak in), and never
        # through a proxy the environment may name.
        with _OPENER.open(url, timeout=TIMEOUT_S) as response:  # nosec B310
            body = response.read(4096).decode(errors="replace").strip()
            print(f"healthcheck: {response.status} {body}")
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        body = exc.read(4096).decode(errors="replace").strip()
        print(f"healthcheck: {exc.code} {body}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {url} unreachable: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
