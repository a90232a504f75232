"""One call to the API, start to finish: pace, gate, send, translate, retry.

Every request :class:`cleaner.client.BatchesClient` makes goes through :class:`Exchanger`:
the request budget (pace), the concurrency gate (in flight), one HTTP exchange under an
overall deadline, translation of the answer into a body or one of :mod:`cleaner.errors`,
and stamina's retry loop around all of it, which honours ``retry-after``,
``retry-after-ms`` and ``x-should-retry``. Each exchange is reported as an
:class:`Exchange` event, typed, for the metrics and health.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import urlencode

import httpx
import orjson
import stamina

from cleaner.budget import RequestBudget
from cleaner.errors import (
    ApiConnectionError,
    ApiError,
    ApiResponseError,
    ApiUnreachableError,
    RateLimitError,
    SpendCapError,
    UntrustedCertificateError,
    status_error,
)
from cleaner.transport import certificate_problem, is_untrusted_certificate
from cleaner.wire import ClientStats, Exchange, error_envelope, exhausted_for_s, retry_after_s

MAX_BODY_BYTES = 32 * 1024 * 1024  # a page of 1,000 batches is under 1 MiB


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How hard one call tries. The defaults follow the SDKs' backoff, with more attempts.

    Ten attempts make a call that fails one time in five fail for good about once in ten
    million; ``total_s`` bounds the time one call may spend, so an unreachable API ends a
    cycle within two minutes.
    """

    attempts: int = 10
    total_s: float = 90.0
    wait_initial_s: float = 0.5
    wait_max_s: float = 8.0
    wait_jitter_s: float = 1.0

    def context(self, *, on: Callable[[Exception], bool | float], timeout_s: float) -> Any:
        """stamina's retry loop with this policy's backoff."""
        return stamina.retry_context(
            on=on,
            attempts=self.attempts,
            timeout=max(timeout_s, 1e-9),  # 0 would mean "no limit"
            wait_initial=self.wait_initial_s,
            wait_max=self.wait_max_s,
            wait_jitter=self.wait_jitter_s,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: httpx.Headers


class Exchanger:
    """Pace, gate, send and translate one request; retry the ones worth retrying."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        budget: RequestBudget,
        concurrency: int,
        request_timeout_s: float,
        retry: RetryPolicy,
        now: Callable[[], datetime],
        clock: Callable[[], float],
        on_exchange: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.http, self.budget, self.retry = http, budget, retry
        self.gate = asyncio.Semaphore(concurrency)
        self.deadline_s = request_timeout_s
        self.now, self.clock = now, clock  # wall time for dates, monotonic for elapsed
        self.on_exchange = on_exchange
        self.listeners: list[Callable[[Exchange], None]] = []  # e.g. one cycle's tally
        self.stats = ClientStats()
        self._base = str(http.base_url).rstrip("/")  # absolute URLs: httpx parses each once
        # stamina would log every retry on its own; the events count them instead.
        stamina.instrumentation.set_on_retry_hooks(())

    async def call(
        self, endpoint: str, method: str, path: str, *, params: dict[str, str | int] | None = None
    ) -> tuple[Any, str | None]:
        """The parsed JSON body of a successful call, and its request id.

        The first attempt runs bare; only a retryable failure enters stamina's loop (most
        calls succeed at once, and building the loop costs more than the rest of a call).
        """
        started = self.clock()
        try:
            answer = await self._exchange(endpoint, method, path, params)
        except ApiError as exc:
            if not self.retry_decision(exc):
                give_up(method, path, exc)
            try:
                answer = await self._retrying(
                    exc, self.clock() - started, endpoint, method, path, params
                )
            except ApiError as last:
                give_up(method, path, last)
        try:
            return orjson.loads(answer.body), answer.headers.get("request-id")
        except orjson.JSONDecodeError as exc:
            raise ApiResponseError(f"{method} {path}: response is not JSON: {exc}") from exc

    async def _retrying(
        self,
        first: ApiError,
        elapsed_s: float,
        endpoint: str,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
    ) -> Answer:
        """stamina's loop after a first failed attempt, exactly as if it had run it.

        Its attempt 1 replays the failure already seen, so attempt numbers, backoff and
        the ``retry-after`` hook are stamina's own; its clock starts after that attempt,
        so the time it already took comes off the total.
        """
        retrying = self.retry.context(
            on=self.retry_decision, timeout_s=self.retry.total_s - elapsed_s
        )
        async for attempt in retrying:
            with attempt:
                if attempt.num == 1:
                    raise first
                self.stats.retries += 1
                return await self._exchange(endpoint, method, path, params, retry=True)
        raise AssertionError("stamina's loop ends by returning or raising")  # pragma: no cover

    def retry_decision(self, exc: Exception) -> bool | float:
        """stamina's hook: False to give up, True for backoff, a float to wait that long."""
        if isinstance(exc, RateLimitError) and exc.retryable:
            return exc.retry_after_s
        return isinstance(exc, ApiError) and exc.retryable

    async def _exchange(
        self,
        endpoint: str,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
        *,
        retry: bool = False,
    ) -> Answer:
        """One HTTP request and its complete body, or one of our errors."""
        await self.budget.acquire()
        async with self.gate:
            self.stats.requests += 1
            try:
                async with asyncio.timeout(self.deadline_s):
                    # The overall deadline also stops a body that trickles in byte by byte.
                    answer = await self._send(method, path, params)
            except TimeoutError as exc:
                self.count(endpoint, None, "timeout", retry=retry)
                raise ApiConnectionError(
                    f"{method} {path}: no complete response within {self.deadline_s:g}s"
                ) from exc
            except httpx.TransportError as exc:
                self.count(endpoint, None, "connection_error", retry=retry)
                raise transport_error(method, path, exc) from exc
            except ApiResponseError:
                self.count(endpoint, None, "oversized_body", retry=retry)
                raise
        self.answered(endpoint, method, path, answer, retry=retry)
        return answer

    def answered(
        self, endpoint: str, method: str, path: str, answer: Answer, *, retry: bool = False
    ) -> None:
        """Account for a response; raise its error when it is one."""
        self.count(endpoint, answer.status, retry=retry)
        if answer.status != 429:
            self.budget.accepted()
        self._note_rate_headers(answer.headers)
        if answer.status >= 400:
            raise self._status_error(method, path, answer)

    async def _send(self, method: str, path: str, params: dict[str, str | int] | None) -> Answer:
        # One absolute URL string: a relative path and params would each be parsed again.
        url = self._base + path + ("?" + urlencode(params) if params else "")
        response = await self.http.send(self.http.build_request(method, url), stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ApiResponseError(
                        f"{method} {path}: response body over {MAX_BODY_BYTES} bytes"
                    )
                chunks.append(chunk)
        finally:
            await response.aclose()
        return Answer(response.status_code, b"".join(chunks), response.headers)

    def _status_error(self, method: str, path: str, answer: Answer) -> ApiError:
        error_type, message, request_id, error_code = error_envelope(answer.body)
        message = message or f"HTTP {answer.status}"
        request_id = answer.headers.get("request-id") or request_id
        retry_after = retry_after_s(answer.headers, now=self.now())
        if answer.status == 429:
            self.stats.rate_limited += 1
            if retry_after is not None and retry_after > self.retry.total_s:
                # A wait longer than a call may take is, for this cycle, a spend cap: stop
                # now rather than sleep (and hold every other request) for up to 10 minutes.
                return SpendCapError(
                    f"{method} {path}: {message}; the API asks to wait {retry_after:g}s, "
                    f"longer than the {self.retry.total_s:g}s a call may take",
                    retry_after_s=retry_after,
                    error_type=error_type,
                    request_id=request_id,
                    error_code=error_code,
                )
            if retry_after is not None:
                self.budget.rate_limited(retry_after)
        should = answer.headers.get("x-should-retry", "").strip().lower()
        return status_error(
            answer.status,
            f"{method} {path}: {message}",
            error_type=error_type,
            request_id=request_id,
            should_retry={"true": True, "false": False}.get(should),
            retry_after_s=retry_after,
            error_code=error_code,
        )

    def _note_rate_headers(self, headers: httpx.Headers) -> None:
        """Use ``anthropic-ratelimit-requests-*`` when the API sends them: none left, pause."""
        wait_s = exhausted_for_s(headers, now=self.now())
        if wait_s is not None:
            self.budget.pause_until_reset(wait_s)

    def count(
        self, endpoint: str, status: int | None, failure: str | None = None, *, retry: bool = False
    ) -> None:
        exchange = Exchange(endpoint, status, failure, retry)
        self.stats.responses[(endpoint, exchange.label)] += 1
        if self.on_exchange is not None:
            self.on_exchange(exchange)
        for listener in self.listeners:
            listener(exchange)


def transport_error(method: str, path: str, exc: httpx.TransportError) -> ApiConnectionError:
    """Our error for a transport failure; an untrusted certificate is its own kind."""
    if is_untrusted_certificate(exc):
        return UntrustedCertificateError(
            f"{method} {path}: the server's TLS certificate was not trusted "
            f"({certificate_problem(exc)}); if a proxy or private CA signs it, "
            "name its CA bundle in SSL_CERT_FILE or SSL_CERT_DIR"
        )
    return ApiConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}")


def give_up(method: str, path: str, exc: ApiError) -> NoReturn:
    """End a call with ``exc``; a connection error is, by now, the API being unreachable."""
    if isinstance(exc, ApiConnectionError) and not isinstance(exc, UntrustedCertificateError):
        raise ApiUnreachableError(f"{method} {path}: no response after retries: {exc}") from exc
    raise exc
