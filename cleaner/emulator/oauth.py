"""Workload Identity Federation in the emulator: `POST /v1/oauth/token` and the tokens it issues.

The endpoint takes exactly what the official SDK sends (RFC 7523 `jwt-bearer` grant, JSON
body with `assertion`, `federation_rule_id`, `organization_id`, optionally `workspace_id`
and `service_account_id`; `anthropic-beta` naming `oidc-federation-2026-04-01`) and answers
`{"access_token", "token_type": "Bearer", "expires_in"}`, or an RFC 6749 error
(`{"error", "error_description"}`: 400 for a malformed request, 401 `invalid_grant` for an
identity token the rule does not accept).

Which identity tokens a rule accepts is configured, not verified cryptographically: a
`FederationRule` lists them (`--federation-rule` on the command line). Access tokens are
random, expire on the emulator's clock, and are valid only as `Authorization: Bearer` on
requests that also carry `anthropic-beta: oauth-2025-04-20`; once expired or revoked they
answer 401 `authentication_error`, whatever else the emulator accepts. A live token reaches
its rule's workspace: `TokenIssuer.resolve` is one of the emulator's `token_resolvers`.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from cleaner.emulator.asgi import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    header_values,
    read_body,
    respond,
)
from cleaner.emulator.clock import Clock, system_clock
from cleaner.emulator.wire import ApiError, JsonObject, request_id

TOKEN_PATH = "/v1/oauth/token"  # noqa: S105  # nosec B105  # a path, not a secret
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FEDERATION_BETA = "oidc-federation-2026-04-01"
OAUTH_BETA = "oauth-2025-04-20"
DEFAULT_TTL_S = 600.0
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class FederationRule:
    """A federation rule: which identity tokens it accepts, for which workspace."""

    rule_id: str
    organization_id: str
    identity_tokens: frozenset[str] = field(repr=False)
    workspace_id: str = "wrkspc_default"

    @classmethod
    def from_cli(cls, spec: str) -> FederationRule:
        """`RULE_ID:ORGANIZATION_ID:WORKSPACE_ID:TOKEN[,TOKEN...]`."""
        parts = spec.split(":", 3)
        if len(parts) != 4 or not all(parts[:2]) or not parts[3]:
            raise ValueError(
                "federation rule: use RULE_ID:ORGANIZATION_ID:WORKSPACE_ID:TOKEN[,TOKEN...]"
            )
        tokens = frozenset(t for t in parts[3].split(",") if t)
        return cls(parts[0], parts[1], tokens, parts[2] or "wrkspc_default")


@dataclass(frozen=True, slots=True)
class Grant:
    """One issued access token's facts (never the token itself)."""

    rule_id: str
    workspace_id: str
    expires_at: datetime
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Exchange:
    """One call of the token endpoint, for tests to assert on (no secret in it)."""

    at: datetime
    status: int
    rule_id: str | None
    error: str | None = None


def _random_token() -> str:
    return "sk-ant-oat01-emu-" + secrets.token_urlsafe(32)


class TokenIssuer:
    """The token endpoint's state: rules, issued tokens, and a journal of exchanges."""

    def __init__(
        self,
        *,
        rules: Iterable[FederationRule] = (),
        clock: Clock = system_clock,
        ttl_s: float = DEFAULT_TTL_S,
        new_token: Callable[[], str] = _random_token,
    ) -> None:
        self._lock = threading.Lock()
        self._rules = {rule.rule_id: rule for rule in rules}
        self._clock = clock
        self.ttl_s = ttl_s
        self._new_token = new_token
        self._grants: dict[str, Grant] = {}
        self._failures: list[int] = []  # statuses to answer the next exchanges with
        self.exchanges: list[Exchange] = []

    @property
    def enabled(self) -> bool:
        """Whether any rule is configured: then bearer credentials must be issued tokens."""
        return bool(self._rules)

    def add_rule(self, rule: FederationRule) -> None:
        with self._lock:
            self._rules[rule.rule_id] = rule

    def fail_next(self, status: int, *, times: int = 1) -> None:
        """Answer the next `times` exchanges with `status` (e.g. 503), whatever they ask."""
        with self._lock:
            self._failures.extend([status] * times)

    def revoke_all(self) -> int:
        """Revoke every token issued so far (as an operator or a key rotation would)."""
        with self._lock:
            for token, grant in self._grants.items():
                self._grants[token] = dataclasses.replace(grant, revoked=True)
            return len(self._grants)

    def resolve(self, token: str) -> str | None:
        """The workspace id of a live token this issuer issued, else None."""
        with self._lock:
            grant = self._grants.get(token)
            if grant is None or grant.revoked:
                return None
            return grant.workspace_id if self._clock() < grant.expires_at else None

    def issued(self, token: str) -> bool:
        """Whether this issuer ever issued `token` (live, expired or revoked)."""
        with self._lock:
            return token in self._grants

    def authenticate(self, scope: Scope, *, open_default: bool) -> ApiError | None:
        """A 401 for an API request this issuer must refuse, else None (keys decide).

        A live issued token needs the OAuth beta; an expired or revoked one is refused
        whatever else would accept it; and with federation on, an emulator with no key
        configured (whose default workspace takes any credential) admits issued tokens only.
        Which workspace a live token reaches is `resolve`'s answer, via `token_resolvers`.
        """
        tokens = _bearer_tokens(scope)
        if any(self.resolve(token) is not None for token in tokens):
            if OAUTH_BETA not in _flags(scope):
                return _unauthenticated(f"an OAuth access token needs anthropic-beta: {OAUTH_BETA}")
            return None
        if any(self.issued(token) for token in tokens):
            return _unauthenticated("the access token has expired or was revoked")
        if self.enabled and open_default:
            return _unauthenticated("federation is on: send an access token from /v1/oauth/token")
        return None

    def exchange(self, body: bytes, beta_flags: set[str]) -> tuple[int, JsonObject]:
        """Answer one token request: (status, JSON body)."""
        with self._lock:
            status, answer, rule_id = self._answer(body, beta_flags)
            error = answer.get("error")
            self.exchanges.append(
                Exchange(self._clock(), status, rule_id, error if isinstance(error, str) else None)
            )
            return status, answer

    def _answer(self, body: bytes, beta_flags: set[str]) -> tuple[int, JsonObject, str | None]:
        if self._failures:
            return self._failures.pop(0), _oauth_error("server_error", "emulated failure"), None
        if FEDERATION_BETA not in beta_flags:
            return 400, _oauth_error("invalid_request", f"anthropic-beta: {FEDERATION_BETA}"), None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return 400, _oauth_error("invalid_request", "the body must be a JSON object"), None
        if data.get("grant_type") != GRANT_TYPE:
            return 400, _oauth_error("unsupported_grant_type", f"use {GRANT_TYPE}"), None
        fields = [data.get(name) for name in ("assertion", "federation_rule_id", "organization_id")]
        if not all(isinstance(value, str) and value for value in fields):
            missing = "assertion, federation_rule_id and organization_id are required strings"
            return 400, _oauth_error("invalid_request", missing), None
        assertion, rule_id, organization_id = (str(value) for value in fields)
        rule = self._rules.get(rule_id)
        workspace = data.get("workspace_id")
        if (
            rule is None
            or rule.organization_id != organization_id
            or assertion not in rule.identity_tokens
            or (workspace is not None and workspace not in (rule.workspace_id, "default"))
        ):
            refused = "the identity token does not match the federation rule"
            return 401, _oauth_error("invalid_grant", refused), rule_id
        token = self._new_token()
        expires_at = self._clock() + timedelta(seconds=self.ttl_s)
        self._grants[token] = Grant(rule_id, rule.workspace_id, expires_at)
        grant: JsonObject = {
            "access_token": token,
            "token_type": "Bearer",  # nosec B105  # the OAuth token type, not a secret
            "expires_in": int(self.ttl_s),
        }
        return 200, grant, rule_id


async def handle(issuer: TokenIssuer, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve `POST /v1/oauth/token` (no key, no anthropic-version: the SDK sends neither)."""
    headers = [(b"request-id", request_id().encode()), (b"cache-control", b"no-store")]
    if scope.get("method") != "POST":
        body = orjson.dumps(_oauth_error("invalid_request", "use POST"))
        await respond(send, 405, body, headers=headers)
        return
    try:
        raw = await read_body(receive, MAX_BODY_BYTES)
    except BodyTooLarge:
        await respond(send, 413, orjson.dumps(_oauth_error("invalid_request", "too large")))
        return
    status, answer = issuer.exchange(raw, _flags(scope))
    await respond(send, status, orjson.dumps(answer), headers=headers)


def _flags(scope: Scope) -> set[str]:
    """The anthropic-beta values, comma-separated or the header repeated."""
    return {f.strip() for v in header_values(scope, b"anthropic-beta") for f in v.split(",")}


def _bearer_tokens(scope: Scope) -> set[str]:
    tokens: set[str] = set()
    for value in header_values(scope, b"authorization"):
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            tokens.add(token.strip())
    return tokens


def _oauth_error(code: str, description: str) -> JsonObject:
    return {"error": code, "error_description": description}


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, "authentication_error", message)
