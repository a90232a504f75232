"""FederationAuth against a fake token endpoint: wire format, renewal, sharing, errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cleaner.errors import ConfigError, FederationError
from cleaner.federation import FederationAuth, IdentityTokenFile, IdentityTokenValue

IDENTITY_KEY = "eyJhbGciOiJSUzI1NiJ9.unit-identity-token.sig"
NEXT_IDENTITY_KEY = "eyJhbGciOiJSUzI1NiJ9.unit-identity-token-rotated.sig"
BASE = "https://api.example.test"
API_URL = f"{BASE}/v1/messages/batches"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeTokenEndpoint:
    """Answers exchanges with fresh tokens, or with what a test queued (answer or exception)."""

    def __init__(self, *, expires_in: float = 600) -> None:
        self.expires_in = expires_in
        self.requests: list[httpx.Request] = []
        self.queued: list[tuple[int, Any] | Exception] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if self.queued:
            answer = self.queued.pop(0)
            if isinstance(answer, Exception):
                raise answer
            status, body = answer
        else:
            token = f"sk-ant-oat01-fake-{len(self.requests)}"
            status, body = 200, {"access_token": token, "expires_in": self.expires_in}
        return httpx.Response(status, json=body, request=request, headers={"request-id": "req_1"})

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(r.content) for r in self.requests]


def _auth(
    endpoint: FakeTokenEndpoint, clock: FakeClock, identity: Any = None, **options: Any
) -> FederationAuth:
    return FederationAuth(
        identity=identity or IdentityTokenValue(IDENTITY_KEY),
        federation_rule_id="fdrl_unit",
        organization_id="org-uuid",
        base_url=BASE,
        send=endpoint,
        clock=clock,
        **options,
    )


async def _send(auth: FederationAuth, *statuses: int) -> list[httpx.Headers]:
    """Drive one request through the flow, answering its tries with ``statuses``.

    Returns the headers of each try as they were sent (the flow reuses the request).
    """
    flow = auth.async_auth_flow(httpx.Request("GET", API_URL))
    request = await flow.__anext__()
    sent = [httpx.Headers(request.headers)]
    for status in statuses:
        try:
            request = await flow.asend(httpx.Response(status, request=request))
        except StopAsyncIteration:
            break
        sent.append(httpx.Headers(request.headers))
    return sent


def _bearer(sent: httpx.Request | httpx.Headers) -> str:
    headers = sent.headers if isinstance(sent, httpx.Request) else sent
    return headers["authorization"].removeprefix("Bearer ")


async def test_the_exchange_speaks_the_sdk_wire_format_and_requests_carry_the_bearer() -> None:
    """jwt-bearer grant, rule and organisation in JSON, both betas; then Bearer plus the beta."""
    endpoint = FakeTokenEndpoint()
    (sent,) = await _send(_auth(endpoint, FakeClock(), workspace_id="wrkspc_x"), 200)
    (exchange,) = endpoint.requests
    assert str(exchange.url) == f"{BASE}/v1/oauth/token"
    assert exchange.method == "POST"
    assert exchange.headers["anthropic-beta"] == "oauth-2025-04-20,oidc-federation-2026-04-01"
    assert exchange.headers["content-type"] == "application/json"
    assert endpoint.bodies() == [
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": IDENTITY_KEY,
            "federation_rule_id": "fdrl_unit",
            "organization_id": "org-uuid",
            "workspace_id": "wrkspc_x",
        }
    ]
    assert sent["authorization"] == "Bearer sk-ant-oat01-fake-1"
    assert sent["anthropic-beta"] == "oauth-2025-04-20"


async def test_the_oauth_beta_joins_betas_the_request_already_names() -> None:
    """An existing anthropic-beta keeps its values; the OAuth one is added once."""
    auth = _auth(FakeTokenEndpoint(), FakeClock())
    request = httpx.Request("GET", API_URL, headers={"anthropic-beta": "a-1, b-2"})
    sent = await auth.async_auth_flow(request).__anext__()
    assert sent.headers["anthropic-beta"] == "a-1,b-2,oauth-2025-04-20"


async def test_a_token_serves_until_the_margin_before_expiry_then_is_renewed() -> None:
    """A 600 s token is renewed 120 s early: no request ever carries an expired token."""
    endpoint, clock = FakeTokenEndpoint(expires_in=600), FakeClock()
    auth = _auth(endpoint, clock)
    first = _bearer((await _send(auth, 200))[0])
    clock.now += 479
    assert _bearer((await _send(auth, 200))[0]) == first
    clock.now += 1
    assert _bearer((await _send(auth, 200))[0]) != first
    assert auth.exchanges == 2


async def test_a_short_lived_token_is_renewed_at_half_its_lifetime() -> None:
    """A 60 s token cannot wait for a 120 s margin: it is renewed after 30 s."""
    endpoint, clock = FakeTokenEndpoint(expires_in=60), FakeClock()
    auth = _auth(endpoint, clock)
    await _send(auth, 200)
    clock.now += 29.9
    await _send(auth, 200)
    clock.now += 0.1
    await _send(auth, 200)
    assert auth.exchanges == 2


async def test_32_concurrent_requests_share_one_exchange() -> None:
    """Requests arriving while an exchange is in flight wait for it, not for their own."""
    endpoint = FakeTokenEndpoint()
    endpoint.gate = asyncio.Event()
    auth = _auth(endpoint, FakeClock())
    flows = [auth.async_auth_flow(httpx.Request("GET", API_URL)) for _ in range(32)]
    pending = [asyncio.ensure_future(flow.__anext__()) for flow in flows]
    await asyncio.sleep(0)
    endpoint.gate.set()
    sent = await asyncio.gather(*pending)
    assert len(endpoint.requests) == 1
    assert {_bearer(request) for request in sent} == {"sk-ant-oat01-fake-1"}


async def test_a_401_renews_once_and_resends_once() -> None:
    """Revoked early: one new exchange, the request again with the new token, and no more."""
    endpoint = FakeTokenEndpoint()
    auth = _auth(endpoint, FakeClock())
    sent = await _send(auth, 401, 401, 401)
    assert [_bearer(r) for r in sent] == ["sk-ant-oat01-fake-1", "sk-ant-oat01-fake-2"]
    assert auth.exchanges == 2


async def test_concurrent_401s_for_one_token_cause_one_renewal() -> None:
    """Every request that saw the old token rejected takes the one replacement."""
    endpoint = FakeTokenEndpoint()
    auth = _auth(endpoint, FakeClock())
    flows = [auth.async_auth_flow(httpx.Request("GET", API_URL)) for _ in range(8)]
    first = [await flow.__anext__() for flow in flows]
    pairs = zip(flows, first, strict=True)
    again = await asyncio.gather(*(f.asend(httpx.Response(401, request=r)) for f, r in pairs))
    assert {_bearer(request) for request in again} == {"sk-ant-oat01-fake-2"}
    assert auth.exchanges == 2


async def test_a_failed_renewal_keeps_the_valid_token_and_waits_before_trying_again() -> None:
    """In the margin a 503 does not stop requests; after expiry the failure surfaces."""
    endpoint, clock = FakeTokenEndpoint(expires_in=600), FakeClock()
    auth = _auth(endpoint, clock, retry_after_failure_s=5.0)
    token = _bearer((await _send(auth, 200))[0])
    clock.now += 500
    endpoint.queued = [(503, {"error": "temporarily_unavailable"})] * 3
    assert _bearer((await _send(auth, 200))[0]) == token
    clock.now += 4
    assert _bearer((await _send(auth, 200))[0]) == token
    assert auth.exchanges == 2  # quiet for 5 s after the failure
    clock.now += 96  # past the expiry
    with pytest.raises(FederationError) as caught:
        await _send(auth, 200)
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (401, False), (403, False), (429, True), (503, True)]
)
async def test_an_exchange_refused_is_typed_retryable_only_when_it_may_heal(
    status: int, retryable: bool
) -> None:
    """4xx is not retried, 429 and 5xx are; either ends the cycle; no token in the message."""
    endpoint = FakeTokenEndpoint()
    echo = f"assertion {IDENTITY_KEY} does not match"
    endpoint.queued = [(status, {"error": "invalid_grant", "error_description": echo})]
    with pytest.raises(FederationError) as caught:
        await _send(_auth(endpoint, FakeClock()), 200)
    error = caught.value
    assert (error.status, error.error, error.request_id) == (status, "invalid_grant", "req_1")
    assert (error.retryable, error.fatal) == (retryable, True)
    assert IDENTITY_KEY not in str(error)
    assert "<identity token>" in str(error)


async def test_an_unreachable_token_endpoint_is_a_retryable_error_without_the_request() -> None:
    """A connection failure is retried; the error does not keep the request (and its token)."""
    endpoint = FakeTokenEndpoint()
    endpoint.queued = [httpx.ConnectError("connection refused")]
    with pytest.raises(FederationError) as caught:
        await _send(_auth(endpoint, FakeClock()), 200)
    assert caught.value.retryable
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "t", "expires_in": 0},
        {"access_token": "", "expires_in": 60},
        {"expires_in": 60},
        {"access_token": "t", "expires_in": "60"},
        {"access_token": "t", "expires_in": 60, "token_type": "mac"},
        ["not", "an", "object"],
    ],
)
async def test_a_grant_without_a_usable_bearer_token_is_refused(body: Any) -> None:
    """Missing, empty or mistyped fields are an error, not a request with a bad token."""
    endpoint = FakeTokenEndpoint()
    endpoint.queued = [(200, body)]
    with pytest.raises(FederationError, match="access_token"):
        await _send(_auth(endpoint, FakeClock()), 200)


async def test_the_identity_token_file_is_read_again_for_every_exchange(tmp_path: Path) -> None:
    """The kubelet rewrites the projected token: the next exchange sends the new one."""
    path, endpoint, clock = tmp_path / "token", FakeTokenEndpoint(expires_in=600), FakeClock()
    path.write_text(IDENTITY_KEY + "\n")
    auth = _auth(endpoint, clock, identity=IdentityTokenFile(path))
    await _send(auth, 200)
    path.write_text(NEXT_IDENTITY_KEY)
    clock.now += 600
    await _send(auth, 200)
    assert [b["assertion"] for b in endpoint.bodies()] == [IDENTITY_KEY, NEXT_IDENTITY_KEY]


async def test_an_unreadable_identity_token_file_is_fatal_and_names_only_the_path(
    tmp_path: Path,
) -> None:
    """A missing or empty token file will not heal by retrying the same exchange."""
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path in (tmp_path / "absent", empty):
        with pytest.raises(FederationError) as caught:
            await _send(_auth(FakeTokenEndpoint(), FakeClock(), identity=IdentityTokenFile(path)))
        assert caught.value.fatal
        assert str(path) in str(caught.value)


async def test_an_identity_token_too_large_for_a_jwt_is_not_sent() -> None:
    """A certificate or key file given by mistake never leaves the process."""
    endpoint = FakeTokenEndpoint()
    with pytest.raises(FederationError, match="not a JWT"):
        await _send(_auth(endpoint, FakeClock(), identity=IdentityTokenValue("x" * 20_000)))
    assert endpoint.requests == []


def test_federation_over_plain_http_is_refused_except_on_loopback() -> None:
    """The identity token must not cross a network in the clear."""
    with pytest.raises(ConfigError):
        FederationAuth(
            identity=IdentityTokenValue(IDENTITY_KEY),
            federation_rule_id="r",
            organization_id="o",
            base_url="http://api.example.test",
            send=FakeTokenEndpoint(),
        )
    assert _auth(FakeTokenEndpoint(), FakeClock()).token_url.scheme == "https"


def test_reprs_show_where_the_token_comes_from_but_not_the_token(tmp_path: Path) -> None:
    """The auth, a literal identity token and a token file never print a secret."""
    auth = _auth(FakeTokenEndpoint(), FakeClock())
    shown = repr(auth) + repr(IdentityTokenValue(IDENTITY_KEY)) + repr(IdentityTokenFile(tmp_path))
    assert IDENTITY_KEY not in shown
    assert "fdrl_unit" in shown
