"""The ASGI application: headers, checks, faults and the error envelope.

Every /v1 request goes through the same gate, in the order a real front end would apply it:
route -> body -> key (-> workspace) -> anthropic-version -> anthropic-workspace-id ->
rate limits (organisation and workspace) -> fault rules -> operation in that workspace.
Whatever happens, the answer carries a `request-id` (and, once the credentials resolved, an
`anthropic-workspace-id`, plus the rate-limit headers when switched on); errors use the
documented envelope;
each request is counted by endpoint and status, and mutating ones are journaled (status 0
when the connection was dropped before any answer). Paths under /_emulator/ go to the
operator endpoints (`admin.py`), which need no key and are never rate limited or faulted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson

from cleaner.emulator import admin, oauth
from cleaner.emulator.asgi import (
    BodyTooLarge,
    Header,
    Receive,
    Scope,
    Send,
    abort_connection,
    header_values,
    lifespan,
    read_body,
    respond,
    send_partial_then_abort,
)
from cleaner.emulator.emulator import Emulator
from cleaner.emulator.faults import (
    ERROR_KINDS,
    FaultRule,
    fault_error,
    fault_headers,
    retry_after_headers,
)
from cleaner.emulator.ratelimit import Admission
from cleaner.emulator.results import BODY_FAULTS, cut_midway, stream_body
from cleaner.emulator.routing import Route, route
from cleaner.emulator.validation import parse_create, parse_list_query
from cleaner.emulator.wire import ApiError, JsonObject, error_json, invalid, request_id
from cleaner.emulator.workspaces import (
    WORKSPACE_HEADER,
    Presented,
    WorkspaceSpec,
    check_workspace_header,
)

__all__ = ["API_VERSIONS", "EmulatorApp", "Route", "route"]

API_VERSIONS = frozenset({"2023-06-01", "2026-10-21"})
DEFAULT_HANG_S = 120.0


class EmulatorApp:
    """The ASGI callable serving one `Emulator`."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.stopping = threading.Event()  # set by the server: hanging requests give up

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await lifespan(receive, send)
            return
        if kind != "http":
            return
        path = str(scope.get("path", ""))
        if path.startswith("/_emulator"):
            await admin.handle(self.emulator, scope, receive, send)
            return
        if path == oauth.TOKEN_PATH:
            await oauth.handle(self.emulator.oauth, scope, receive, send)
            return
        await self._api(scope, receive, send, path)

    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        method = str(scope.get("method", "GET"))
        req = _Request(self, scope, send, method, path, route(method, path), request_id())
        try:
            body = await read_body(receive)
            await req.serve(body, receive)
        except BodyTooLarge:
            await req.fail(ApiError(413, "request_too_large", "request body too large"))


@dataclass(slots=True)
class _Request:
    """One /v1 request on its way through the gate."""

    app: EmulatorApp
    scope: Scope
    send: Send
    method: str
    path: str
    route: Route
    req_id: str
    chunks: Iterator[bytes] | None = None
    workspace: WorkspaceSpec | None = None  # what the credentials resolved to
    limit_headers: list[Header] = field(default_factory=list)
    receive: Receive | None = None  # the results stream watches it for a disconnect
    body_fault: tuple[str, FaultRule] | None = None  # a results body fault (results.py)

    async def serve(self, body: bytes, receive: Receive) -> None:
        emulator = self.app.emulator
        self.receive = receive
        self.workspace = emulator.resolve(Presented.from_scope(self.scope))
        if self.route.error is not None and self.route.endpoint == "other":
            await self.fail(self.route.error)
            return
        problem = self._check_headers()
        if problem is not None:
            await self.fail(problem)
            return
        admission = emulator.admit(self._workspace_id)
        self.limit_headers = emulator.ratelimit_headers(admission)
        if admission.wait_s is not None:
            await self._rate_limited(admission)
            return
        firing = emulator.decide_fault(self.route.endpoint)
        if firing.delay_s > 0:
            await asyncio.sleep(firing.delay_s)
        fault, rule = firing.kind, firing.rule
        if fault is not None and rule is not None and await self._inject(fault, rule, receive):
            return
        try:
            status, payload, changed = self._operate(body)
        except ApiError as error:
            await self.fail(error)
            return
        if firing.kind == "drop_after":
            body = orjson.dumps(payload) if payload is not None else b"".join(self.chunks or ())
            self._record(status, _batch_id_of(payload, self.route), "drop_after", changed)
            await send_partial_then_abort(self.send, status, body)
            return
        await self._answer(status, payload, changed)

    async def fail(
        self, error: ApiError, *, headers: Iterable[Header] = (), fault: str | None = None
    ) -> None:
        """Answer with the error envelope."""
        body = orjson.dumps(error_json(error.error_type, error.message, self.req_id, error.details))
        self._record(error.status, self.route.batch_id, fault, changed=False)
        await respond(self.send, error.status, body, headers=[*self._headers(), *headers])

    def _check_headers(self) -> ApiError | None:
        """The credentials, the anthropic-version header, the path's batch id and the
        anthropic-workspace-id header, in that order."""
        emulator = self.app.emulator
        open_default = emulator.resolve(Presented()) is not None  # no key configured anywhere
        refused = emulator.oauth.authenticate(self.scope, open_default=open_default)
        if refused is not None:
            return refused
        if self.workspace is None:
            return ApiError(401, "authentication_error", "invalid x-api-key")
        versions = header_values(self.scope, b"anthropic-version")
        if not versions:
            return invalid("anthropic-version: header is required")
        if versions[-1].strip() not in API_VERSIONS:
            return invalid(f"anthropic-version: unsupported version {versions[-1]!r}")
        if self.route.error is not None:
            return self.route.error
        mode = self.app.emulator.config.workspace_mismatch
        return check_workspace_header(self.scope, self.workspace, mode)

    async def _rate_limited(self, admission: Admission) -> None:
        which = "your organization's" if admission.scope == "organization" else "this workspace's"
        message = f"rate limit exceeded: {which} requests per minute; slow down"
        wait_s = admission.wait_s or 0.0
        error = ApiError(429, "rate_limit_error", message)
        await self.fail(error, headers=retry_after_headers(wait_s), fault="rate_limited")

    @property
    def _workspace_id(self) -> str:
        if self.workspace is None:  # _check_headers answered 401 before any operation
            raise RuntimeError("no workspace resolved")
        return self.workspace.id

    async def _inject(self, kind: str, rule: FaultRule, receive: Receive) -> bool:
        """Carry out a terminal fault; False when the request should still be served."""
        extra: list[Header] = []
        if rule.should_retry is not None:
            extra.append((b"x-should-retry", b"true" if rule.should_retry else b"false"))
        if kind in ERROR_KINDS:
            await self.fail(
                fault_error(kind, self.route.batch_id),
                headers=[*extra, *fault_headers(kind, rule)],
                fault=kind,
            )
            return True
        if kind == "malformed":
            self._record(200, self.route.batch_id, kind, changed=False)
            await respond(self.send, 200, b'{"id": "msgbatch_', headers=[*self._headers(), *extra])
            return True
        if kind == "reset_before":
            self._record(0, self.route.batch_id, kind, changed=False)
            await abort_connection(self.send, reset=True)
            return True
        if kind == "hang":
            self._record(0, self.route.batch_id, kind, changed=False)
            await self._hang(receive, DEFAULT_HANG_S if rule.seconds is None else rule.seconds)
            return True
        if kind in BODY_FAULTS:
            self.body_fault = (kind, rule)
        return False  # drop_after: act first, then drop (in serve); body faults: in _answer

    async def _hang(self, receive: Receive, seconds: float) -> None:
        """Say nothing until the client gives up, `seconds` pass, or the server stops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and not self.app.stopping.is_set():
            try:
                message = await asyncio.wait_for(receive(), timeout=0.1)
            except TimeoutError:
                continue
            if message.get("type") == "http.disconnect":
                return
        await abort_connection(self.send, reset=False)

    def _operate(self, body: bytes) -> tuple[int, JsonObject | None, bool]:
        """Do the operation: (status, JSON payload or None for results, whether state changed)."""
        emulator, endpoint, batch_id = self.app.emulator, self.route.endpoint, self.route.batch_id
        base_url, ws = self._base_url(), self._workspace_id
        if endpoint == "create":
            return 200, emulator.create(parse_create(body), base_url, workspace=ws), True
        if endpoint == "list":
            limit, after_id, before_id = parse_list_query(self._query())
            page, created = emulator.list_page(
                limit=limit, after_id=after_id, before_id=before_id, base_url=base_url, workspace=ws
            )
            return 200, page, created > 0
        if batch_id is None:  # route() gives every per-batch endpoint an id
            raise ApiError(404, "not_found_error", f"no route for {self.path}")
        if endpoint == "retrieve":
            return 200, emulator.retrieve(batch_id, base_url, workspace=ws), False
        if endpoint == "cancel":
            return 200, emulator.cancel(batch_id, base_url, workspace=ws), True
        if endpoint == "delete":
            return 200, emulator.delete(batch_id, workspace=ws), True
        self.chunks = emulator.results(batch_id, workspace=ws)
        if self.body_fault is not None and self.body_fault[0] == "cut_body":
            total = emulator.results_total(batch_id, workspace=ws)
            self.chunks = cut_midway(self.chunks, total)
        return 200, None, False  # results: streamed by _answer

    async def _answer(self, status: int, payload: JsonObject | None, changed: bool) -> None:
        if payload is None:
            fault, rule = self.body_fault or (None, None)
            self._record(status, self.route.batch_id, fault, changed)
            await stream_body(
                self.send,
                self.receive,
                self.chunks or iter(()),
                headers=self._headers(),
                fault=fault,
                fault_seconds=None if rule is None else rule.seconds,
                stopping=self.app.stopping,
            )
            return
        self._record(status, _batch_id_of(payload, self.route), None, changed)
        await respond(self.send, status, orjson.dumps(payload), headers=self._headers())

    def _record(self, status: int, batch_id: str | None, fault: str | None, changed: bool) -> None:
        """Count and journal the request; always before answering, so a client that has its
        answer can rely on the journal already showing it."""
        self.app.emulator.record(
            method=self.method,
            path=self.path,
            endpoint=self.route.endpoint,
            batch_id=batch_id,
            status=status,
            fault=fault,
            changed_state=changed,
            workspace_id=None if self.workspace is None else self.workspace.id,
        )

    def _headers(self) -> list[Header]:
        headers = [(b"request-id", self.req_id.encode())]
        if self.workspace is not None:
            headers.append((WORKSPACE_HEADER, self.workspace.id.encode()))
        return [*headers, *self.limit_headers]

    def _query(self) -> list[tuple[str, str]]:
        raw = self.scope.get("query_string", b"")
        text = raw.decode("latin-1") if isinstance(raw, bytes) else ""
        return parse_qsl(text, keep_blank_values=True)

    def _base_url(self) -> str:
        """Where this client reached us: results_url must point back here."""
        hosts = header_values(self.scope, b"host")
        if not hosts:
            return self.app.emulator.base_url
        return f"{self.scope.get('scheme', 'http')}://{hosts[0]}"


def _batch_id_of(payload: JsonObject | None, route_: Route) -> str | None:
    if route_.batch_id is not None:
        return route_.batch_id
    if route_.endpoint == "create" and payload is not None:
        found = payload.get("id")
        return found if isinstance(found, str) else None
    return None
