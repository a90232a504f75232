"""Workload Identity Federation: an identity token exchanged for short-lived access tokens.

The wire format is the official SDK's (RFC 7523 ``jwt-bearer`` grant)::

    POST /v1/oauth/token
    anthropic-beta: oauth-2025-04-20,oidc-federation-2026-04-01
    {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": <identity
     token>, "federation_rule_id": ..., "organization_id": ..., ["workspace_id": ...,]
     ["service_account_id": ...]}
    -> {"access_token": ..., "expires_in": <seconds>, "token_type": "Bearer"}

and API requests then carry ``Authorization: Bearer <access token>`` and the
``oauth-2025-04-20`` beta. The identity token is read again for every exchange: the kubelet
rewrites a projected service-account token in place long before it expires.

:class:`FederationAuth` renews the access token ``renew_margin_s`` before it expires (at
half its lifetime for short ones), and once more after a 401, retrying that request once.
Concurrent requests share one exchange behind a lock. A renewal that fails while the token
still has time left keeps using it, trying again after ``retry_after_failure_s``.

The exchange goes out through the ``send`` function it is given: :func:`send_through` makes
it the API client's own (same transport, proxy and TLS settings) without its auth.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import httpx
import orjson

from cleaner import __version__
from cleaner.errors import ConfigError, FederationError

TOKEN_PATH = "/v1/oauth/token"  # noqa: S105  # nosec B105  # a path
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
OAUTH_BETA = "oauth-2025-04-20"  # on every API request that carries an access token
FEDERATION_BETA = "oidc-federation-2026-04-01"  # on the exchange only
MAX_ASSERTION_BYTES = 16 * 1024  # a JWT is a few KiB; more is a key or a certificate
MAX_RESPONSE_BYTES = 1 << 20

Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


def send_through(client: httpx.AsyncClient) -> Send:
    """Send through ``client``'s transport (pool, proxy, TLS) but without its auth."""

    async def send(request: httpx.Request) -> httpx.Response:
        return await client.send(request, auth=None, stream=True)

    return send


class IdentityTokenFile:
    """The identity token from a file, read afresh at every call (kubelet rotation)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"IdentityTokenFile({str(self.path)!r})"

    def __call__(self) -> str:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise FederationError(
                f"cannot read the identity token file {self.path}: {type(exc).__name__}",
                retryable=False,
            ) from None
        if not token:
            raise FederationError(f"the identity token file {self.path} is empty", retryable=False)
        return token


class IdentityTokenValue:
    """An identity token given directly (``ANTHROPIC_IDENTITY_TOKEN``)."""

    def __init__(self, token: str) -> None:
        self._token = token.strip()
        if not self._token:
            raise FederationError("the identity token is empty", retryable=False)

    def __repr__(self) -> str:
        return "IdentityTokenValue(<hidden>)"

    def __call__(self) -> str:
        return self._token


class FederationAuth(httpx.Auth):
    """``Authorization: Bearer`` with access tokens obtained for an identity token."""

    def __init__(
        self,
        *,
        identity: Callable[[], str],
        federation_rule_id: str,
        organization_id: str,
        base_url: str,
        send: Send,
        workspace_id: str | None = None,
        service_account_id: str | None = None,
        renew_margin_s: float = 120.0,
        retry_after_failure_s: float = 5.0,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        url = httpx.URL(base_url.rstrip("/") + TOKEN_PATH)
        if url.scheme != "https" and url.host not in ("localhost", "127.0.0.1", "::1"):
            raise ConfigError(
                {"ANTHROPIC_BASE_URL": "federation sends the identity token: use https"}
            )
        self.token_url = url
        self._identity = identity
        self._fields = {
            "federation_rule_id": federation_rule_id,
            "organization_id": organization_id,
        }
        if workspace_id:
            self._fields["workspace_id"] = workspace_id
        if service_account_id:
            self._fields["service_account_id"] = service_account_id
        self._send = send
        self._margin_s = renew_margin_s
        self._retry_after_failure_s = retry_after_failure_s
        self._timeout = httpx.Timeout(timeout_s).as_dict()
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = self._expires_at = self._quiet_until = float("-inf")
        self.exchanges = 0  # exchange attempts (for tests and metrics)

    def __repr__(self) -> str:
        return f"FederationAuth(token_url={str(self.token_url)!r}, **{self._fields!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise TypeError("FederationAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._current()
        _authorize(request, token)
        response = yield request
        if response.status_code != 401:
            return
        # Read the (small) 401 body first: that releases its connection to the pool, which
        # the exchange may need (with every connection held by a 401 it would never get one).
        await response.aread()
        _authorize(request, await self._renewed(rejected=token))
        yield request

    async def _current(self) -> str:
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        async with self._lock:
            now = self._clock()
            if self._token is not None and (
                now < self._renew_at or (now < self._quiet_until and now < self._expires_at)
            ):
                return self._token  # renewed while this request waited, or failing quietly
            try:
                return await self._exchange()
            except FederationError:
                if self._token is None or self._clock() >= self._expires_at:
                    raise
                # Still valid: keep it, and do not hammer a failing endpoint meanwhile.
                self._quiet_until = self._clock() + self._retry_after_failure_s
                return self._token

    async def _renewed(self, *, rejected: str) -> str:
        async with self._lock:
            if self._token is not None and self._token != rejected:
                return self._token  # another request already replaced the rejected token
            self._token = None
            return await self._exchange()

    async def _exchange(self) -> str:
        """One exchange; stores and returns the access token, or raises FederationError."""
        self.exchanges += 1
        assertion = self._identity()
        if len(assertion.encode()) > MAX_ASSERTION_BYTES:
            raise FederationError(
                f"the identity token is over {MAX_ASSERTION_BYTES} bytes: not a JWT",
                retryable=False,
            )
        started = self._clock()
        status, body, request_id = await self._post({"assertion": assertion, **self._fields})
        if status >= 400:
            raise _endpoint_error(status, body, request_id, assertion)
        token, lifetime = _parse_grant(body, request_id)
        self._token = token
        self._expires_at = started + lifetime
        self._renew_at = self._expires_at - min(self._margin_s, lifetime / 2)
        self._quiet_until = float("-inf")
        return token

    async def _post(self, fields: dict[str, str]) -> tuple[int, bytes, str | None]:
        request = httpx.Request(
            "POST",
            self.token_url,
            content=orjson.dumps({"grant_type": GRANT_TYPE, **fields}),
            headers={
                "anthropic-beta": f"{OAUTH_BETA},{FEDERATION_BETA}",
                "content-type": "application/json",
                "accept": "application/json",
                "user-agent": f"cleaner/{__version__}",
            },
            extensions={"timeout": self._timeout},
        )
        try:
            response = await self._send(request)
            try:
                body = await _read_capped(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            # from None: the exception holds the request, and the request the identity token.
            raise FederationError(
                f"token exchange at {self.token_url} failed: {type(exc).__name__}: {exc}"
            ) from None
        return response.status_code, body, response.headers.get("request-id")


def _authorize(request: httpx.Request, token: str) -> None:
    request.headers["authorization"] = f"Bearer {token}"
    flags = [f.strip() for v in request.headers.get_list("anthropic-beta") for f in v.split(",")]
    if OAUTH_BETA not in flags:
        request.headers["anthropic-beta"] = ",".join([*filter(None, flags), OAUTH_BETA])


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise FederationError(
                f"the token endpoint's answer is over {MAX_RESPONSE_BYTES} bytes",
                status=response.status_code,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint_error(
    status: int, body: bytes, request_id: str | None, assertion: str
) -> FederationError:
    """The endpoint's refusal, with its OAuth (or API envelope) error, redacted and short."""
    data = _json_object(body) or {}
    error: Any = data.get("error")
    if isinstance(error, dict):  # the API's own envelope: {"error": {"type", "message"}}
        code, text = error.get("type"), error.get("message")
    else:  # RFC 6749 section 5.2: {"error": code, "error_description": text}
        code, text = error, data.get("error_description")
    code = code if isinstance(code, str) else ""
    text = (text if isinstance(text, str) else "").replace(assertion, "<identity token>")
    return FederationError(
        f"token exchange refused (HTTP {status}) {code}: {text[:200]}".rstrip(": "),
        status=status,
        error=code,
        request_id=request_id,
    )


def _parse_grant(body: bytes, request_id: str | None) -> tuple[str, float]:
    data = _json_object(body)
    token = None if data is None else data.get("access_token")
    expires_in = None if data is None else data.get("expires_in")
    token_type = "bearer" if data is None else str(data.get("token_type", "bearer")).lower()
    if (
        not isinstance(token, str)
        or not token
        or not isinstance(expires_in, int | float)
        or isinstance(expires_in, bool)
        or not expires_in > 0
        or token_type != "bearer"  # noqa: S105  # nosec B105  # the OAuth token type
    ):
        raise FederationError(
            "the token endpoint's answer lacks a bearer access_token with a positive expires_in",
            status=200,
            request_id=request_id,
            retryable=False,
        )
    return token, float(expires_in)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


__all__ = [
    "FederationAuth",
    "IdentityTokenFile",
    "IdentityTokenValue",
    "Send",
    "send_through",
]
