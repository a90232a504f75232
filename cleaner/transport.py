"""The HTTP transport under :mod:`cleaner.client`: httpx's interface over aiohttp's engine.

Only the client imports this module. Why aiohttp: httpcore's pool spent 1.4 ms of CPU per
simple request on this project's 2-core benchmark, aiohttp under httpx-aiohttp 0.3 ms (the
same transport the official SDK ships as ``DefaultAioHttpClient``). The client keeps
speaking ``httpx.AsyncClient`` / ``Request`` / ``Response``; this module hands it a
transport that

* holds one aiohttp session, its pool sized by the ``httpx.Limits`` given, keep-alive on,
  no redirects, no cookie jar (the API sets none), no environment lookups of its own;
* sends each request once: aiohttp silently resends a GET or DELETE whose connection
  dropped, which would bypass the client's rate budget and retry accounting (and repeat a
  DELETE the server may have acted on), so a middleware turns that drop into an error
  the client's own retry loop sees;
* sends every request through the proxy decided once at build (see
  :func:`cleaner.network.proxy_for`; CONNECT for an https origin), verifying TLS with the
  context given (see :func:`cleaner.network.trust_context`);
* raises only ``httpx.TransportError`` subclasses, each chained to aiohttp's error, for
  every failure aiohttp reports, including the malformed responses httpx-aiohttp lets
  through unmapped.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar
from typing import Any, NoReturn

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


class ConnectionDropped(aiohttp.ClientConnectionError):
    """The server closed or reset the connection before its response was complete."""


#: aiohttp's failures and the httpx error each becomes; the first match wins, so a
#: subclass comes before its base.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (ConnectionDropped, httpx.RemoteProtocolError),
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),  # the proxy is unreachable
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),  # the proxy refused the CONNECT
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, no such host, TLS
    (aiohttp.ClientPayloadError, httpx.ReadError),  # the body broke off
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # not a valid HTTP response
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.NetworkError),
    (OSError, httpx.NetworkError),
)


def transport(
    *, limits: httpx.Limits, ssl_context: ssl.SSLContext, proxy: str | None
) -> httpx.AsyncBaseTransport:
    """The aiohttp transport: this pool, this trust store, this proxy (None: direct)."""
    return _Transport(
        verify=ssl_context,
        trust_env=False,
        limits=limits,
        proxy=_proxy(proxy) if proxy else None,
        client=lambda: _session(limits=limits, ssl_context=ssl_context),
    )


class NoCookies(CookieJar):
    """A cookie jar that keeps nothing: the API sets no cookies, and httpx files every
    response's headers through its jar (a tenth of the client's CPU per request)."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        """Nothing to keep."""

    def add_cookie_header(self, request: Any) -> None:
        """Nothing to send."""


def _proxy(url: str) -> httpx.Proxy:
    """The proxy, its ``user:password@`` (if any) moved into a Proxy-Authorization header.

    httpx-aiohttp would pass credentials as aiohttp's ``BasicAuth``, deprecated in aiohttp
    3.14; a header is what aiohttp recommends instead, and it never appears in the URL.
    """
    parsed = httpx.URL(url)
    if not (parsed.username or parsed.password):
        return httpx.Proxy(parsed)
    token = base64.b64encode(f"{parsed.username}:{parsed.password}".encode()).decode("ascii")
    return httpx.Proxy(
        parsed.copy_with(username=None, password=None),
        headers={"proxy-authorization": f"Basic {token}"},
    )


def _session(*, limits: httpx.Limits, ssl_context: ssl.SSLContext) -> aiohttp.ClientSession:
    """Built on the first request, inside the running loop, as aiohttp requires."""
    connector = aiohttp.TCPConnector(
        limit=limits.max_connections or 0,  # 0: aiohttp's "no limit"
        keepalive_timeout=limits.keepalive_expiry or 5.0,
        ssl=ssl_context,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        middlewares=(_send_once,),
    )


async def _send_once(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Raise the drops aiohttp would otherwise retry on its own as :class:`ConnectionDropped`.

    Connect failures pass unchanged: aiohttp never retries those, and they mean "nothing
    was sent", which the client's error message should keep saying.
    """
    try:
        return await handler(request)
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
        raise
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise ConnectionDropped(f"{type(exc).__name__}: {exc}") from exc


def is_untrusted_certificate(exc: BaseException) -> bool:
    """Whether a transport error was the server's certificate failing verification."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def certificate_problem(exc: BaseException) -> str:
    """OpenSSL's reason for rejecting the certificate, for the error message."""
    current: BaseException | None = exc
    while current is not None and not isinstance(current, ssl.SSLCertVerificationError):
        current = current.__cause__ or current.__context__
    return str(getattr(current, "verify_message", "") or "verification failed")


def _translated(exc: Exception) -> tuple[httpx.TransportError, BaseException] | None:
    """aiohttp's error (raw, or wrapped by httpx-aiohttp) as the matching httpx error."""
    root = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
    if root is not None:
        for source, target in _ERRORS:
            if isinstance(root, source):
                return target(f"{type(root).__name__}: {root}"), root
    return None


def _reraise(exc: Exception) -> NoReturn:
    """Raise ``exc`` as its httpx error, chained to aiohttp's; anything else unchanged."""
    mapped = _translated(exc)
    if mapped is None:
        raise exc
    raise mapped[0] from mapped[1]


class _Transport(AiohttpTransport):
    """httpx-aiohttp's transport, with every aiohttp failure mapped to an httpx error."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except Exception as exc:
            _reraise(exc)
        response.stream = _Body(response.stream)
        return response


class _Body(httpx.AsyncByteStream):
    """The response body, with a failure while reading it mapped like the request's."""

    __slots__ = ("_inner",)

    def __init__(self, inner: httpx.AsyncByteStream | httpx.SyncByteStream) -> None:
        if not isinstance(inner, httpx.AsyncByteStream):
            raise TypeError("an async transport answered with a sync body")  # never, per type
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except Exception as exc:
            _reraise(exc)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except Exception as exc:
            _reraise(exc)
