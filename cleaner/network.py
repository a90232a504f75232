"""What the environment says about reaching the API: proxy, trust store, and a DNS pre-check.

Behind an enterprise network the API is reached through an egress proxy and a TLS
interception CA, configured the way curl, OpenSSL and the official SDKs read them:

* ``https_proxy`` / ``HTTPS_PROXY`` for an https URL, ``http_proxy`` / ``HTTP_PROXY`` for an
  http one, ``all_proxy`` / ``ALL_PROXY`` for either; the lower-case name wins, an empty
  value counts as unset, a value without a scheme means ``http://``.
* ``no_proxy`` / ``NO_PROXY``: comma- or space-separated entries, each one of ``*`` (no proxy
  at all), a host name (that host and every subdomain; a leading ``.`` or ``*.`` changes
  nothing), an IP address, a CIDR block, any of these with ``:port`` (only that port).
* ``SSL_CERT_FILE`` (a PEM bundle) and ``SSL_CERT_DIR`` (a hashed directory, ``:``-separated
  list allowed) replace the default CA store, which is certifi's, as in httpx.

Everything here is a pure function of the environment mapping it is given (no httpx, no
I/O but reading the named CA files and one DNS lookup), decided once when the client is
built, so the same rule serves the client and the pre-check.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

import certifi

from cleaner.errors import ConfigError

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PROXY_SCHEMES = {"http", "https"}  # what the aiohttp transport can speak to a proxy


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of ``names`` set to a non-empty value, and that value."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def proxy_for(url: str, *, environ: Mapping[str, str]) -> str | None:
    """The proxy URL requests to ``url`` go through, or None for a direct connection.

    Raises ConfigError naming the variable when the proxy it names cannot be used (a SOCKS
    proxy, no host); the message never repeats the value, which may carry credentials.
    """
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    found = _first(environ, f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
    if found is None:
        return None
    no_proxy = _first(environ, "no_proxy", "NO_PROXY")
    if no_proxy and bypasses(no_proxy[1], host=host, port=parts.port or _DEFAULT_PORTS[scheme]):
        return None
    name, value = found
    proxy = value if "://" in value else f"http://{value}"
    proxy_parts = urlsplit(proxy)
    if proxy_parts.scheme.lower() not in _PROXY_SCHEMES:
        raise ConfigError({name: f"a {proxy_parts.scheme} proxy is not supported (http or https)"})
    try:
        proxy_parts.port  # noqa: B018  # raises on a port that is not a number
    except ValueError:
        raise ConfigError({name: "the proxy URL has an invalid port"}) from None
    if not proxy_parts.hostname:
        raise ConfigError({name: "the proxy URL names no host"})
    return proxy


def bypasses(no_proxy: str, *, host: str, port: int) -> bool:
    """Whether a ``NO_PROXY`` value exempts ``host:port`` from the proxy."""
    host = host.lower().rstrip(".").strip("[]")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.replace(",", " ").split():
        if entry == "*":
            return True
        name, entry_port = _split_entry(entry.lower())
        if entry_port is not None and entry_port != port:
            continue
        if _entry_matches(name, host=host, address=address):
            return True
    return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port``, a bare IPv6 or CIDR: the name and its port."""
    entry = entry.split("://", 1)[-1]
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        name, _, port = entry.partition(":")
    else:
        name, port = entry, ""
    return name, int(port) if port.isdigit() else None


def _entry_matches(
    name: str, *, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
) -> bool:
    if "/" in name:
        try:
            return address is not None and address in ipaddress.ip_network(name, strict=False)
        except ValueError:
            return False
    try:
        literal = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None:
        return address == literal
    name = name.removeprefix("*").lstrip(".").rstrip(".")
    return bool(name) and address is None and (host == name or host.endswith("." + name))


def trust_context(*, environ: Mapping[str, str]) -> ssl.SSLContext:
    """The TLS context that verifies the API: SSL_CERT_FILE / SSL_CERT_DIR, else certifi.

    Both variables may be set (OpenSSL then consults both). A file that cannot be read is
    a configuration error naming the variable.
    """
    cafile = environ.get("SSL_CERT_FILE", "").strip() or None
    capath = environ.get("SSL_CERT_DIR", "").strip() or None
    if cafile is None and capath is None:
        cafile = certifi.where()
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        name = "SSL_CERT_FILE" if cafile and "SSL_CERT_FILE" in environ else "SSL_CERT_DIR"
        raise ConfigError(
            {name: f"cannot load the CA certificates it names ({type(exc).__name__})"}
        ) from exc


#: getaddrinfo answers meaning "this name does not exist", as opposed to "DNS is down now".
_NO_SUCH_HOST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
DNS_CHECK_S = 5.0


def check_host_resolves(
    base_url: str, *, timeout_s: float = DNS_CHECK_S, environ: Mapping[str, str] | None = None
) -> None:
    """Raise ConfigError naming ANTHROPIC_BASE_URL when its host certainly does not exist.

    A typo in the host is a configuration error (exit 2), not an outage to retry for two
    minutes. Only a definite "no such name" counts: a DNS server that is slow or down
    (EAI_AGAIN, no answer within ``timeout_s``) is left to the client's retries. When a
    proxy applies to the host (NO_PROXY considered), resolving is the proxy's business.
    ``environ`` defaults to the process environment.
    """
    parts = urlsplit(base_url)
    host = parts.hostname
    if host is None:
        return
    if proxy_for(base_url, environ=os.environ if environ is None else environ) is not None:
        return
    failure: list[socket.gaierror] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            failure.append(exc)

    # A daemon thread: a resolver that hangs must not hold the process at exit.
    thread = threading.Thread(target=lookup, name="dns-check", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if failure and failure[0].errno in _NO_SUCH_HOST:
        raise ConfigError(
            {"ANTHROPIC_BASE_URL": f"host {host!r} does not resolve ({failure[0].strerror})"}
        )
