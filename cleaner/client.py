"""The wire: the only module that speaks HTTP to the Message Batches API.

It returns models and raises :mod:`cleaner.errors`, never httpx types. Every call goes
through the same path: the request budget (pace), the concurrency gate (in flight),
one HTTP exchange under an overall deadline, translation of the answer, and stamina's
retry loop around all of it, which honours ``retry-after``, ``retry-after-ms`` and
``x-should-retry``.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn
from urllib.parse import urlencode

import httpx
import orjson
import stamina

from cleaner import __version__
from cleaner.budget import RequestBudget
from cleaner.errors import (
    ApiConnectionError,
    ApiError,
    ApiResponseError,
    ApiUnreachableError,
    ListingError,
    NotFoundError,
    RateLimitError,
    SpendCapError,
    UntrustedCertificateError,
    status_error,
)
from cleaner.models import Batch
from cleaner.network import proxy_for, trust_context
from cleaner.transport import NoCookies, certificate_problem, is_untrusted_certificate, transport

API_VERSION = "2023-06-01"
PAGE_LIMIT = 1000  # the API's maximum: fewest list requests per batch
MAX_BODY_BYTES = 32 * 1024 * 1024  # a page of 1,000 batches is under 1 MiB
MAX_PAGES = 100_000  # 100 million batches: a listing longer than this does not end
_PATH = "/v1/messages/batches"


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


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the listing, newest batch first."""

    batches: list[Batch]
    has_more: bool
    first_id: str | None
    last_id: str | None


@dataclass(frozen=True, slots=True)
class Deletion:
    """The API's confirmation of one deletion, verbatim, and the request that got it."""

    confirmation: dict[str, Any]
    request_id: str | None


@dataclass(slots=True)
class ClientStats:
    """What the client did, for the cycle report and the metrics."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    responses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, status)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    headers: httpx.Headers


class BatchesClient:
    """Async client for the endpoints cleaner uses: list, retrieve, cancel, delete.

    The ``httpx.AsyncClient`` is a constructor argument so tests can point it anywhere;
    :meth:`open` builds the production one.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        budget: RequestBudget,
        concurrency: int,
        request_timeout_s: float,
        retry: RetryPolicy | None = None,
        on_response: Callable[[str, str], None] | None = None,
        max_pages: int = MAX_PAGES,
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        # Wall-clock "now", for retry-after dates and ratelimit reset times.
        self._now = now or functools.partial(datetime.now, UTC)
        self._clock = clock
        self._base = str(http.base_url).rstrip("/")  # absolute URLs: httpx parses each once
        self._max_pages = max_pages
        self._budget = budget
        self._gate = asyncio.Semaphore(concurrency)
        self._deadline_s = request_timeout_s
        self._retry = retry or RetryPolicy()
        self._on_response = on_response
        self.stats = ClientStats()
        # stamina would log every retry on its own; the cycle report counts them instead.
        stamina.instrumentation.set_on_retry_hooks(())

    @staticmethod
    def http_client(
        *,
        base_url: str,
        api_key: str,
        request_timeout_s: float,
        concurrency: int,
        environ: Mapping[str, str] | None = None,
    ) -> httpx.AsyncClient:
        """The production HTTP client: keep-alive pool sized to the concurrency, no redirects.

        The proxy (HTTPS_PROXY, NO_PROXY, ...) and the trust store (SSL_CERT_FILE,
        SSL_CERT_DIR) come from ``environ``, the process environment by default, decided
        here once for the base URL. Raises ConfigError naming a variable that is unusable.
        """
        env = os.environ if environ is None else environ
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        return httpx.AsyncClient(
            base_url=base_url,
            headers={
                "x-api-key": api_key,
                "anthropic-version": API_VERSION,
                "user-agent": f"cleaner/{__version__}",
                "accept": "application/json",
            },
            timeout=httpx.Timeout(request_timeout_s, connect=min(10.0, request_timeout_s)),
            # The limits go on the transport: a client given one ignores its own.
            transport=transport(
                limits=limits,
                ssl_context=trust_context(environ=env),
                proxy=proxy_for(base_url, environ=env),
            ),
            follow_redirects=False,
            trust_env=False,  # decided above, once, from ``environ``
            cookies=NoCookies(),  # the jar itself: httpx would copy a Cookies into a new jar
        )

    @property
    def budget(self) -> RequestBudget:
        return self._budget

    # --- the endpoints

    async def pages(self, *, limit: int = PAGE_LIMIT) -> AsyncIterator[Page]:
        """Every page of the listing, newest first, each fetched only when asked for.

        Guards against a listing that never ends: a cursor seen before, a page that is
        empty yet claims more, or more than ``max_pages`` pages raise ListingError.
        """
        max_pages = self._max_pages
        cursors: set[str] = set()
        after: str | None = None
        for _ in range(max_pages):
            params: dict[str, str | int] = {"limit": limit}
            if after is not None:
                params["after_id"] = after
            data, _ = await self._call("list", "GET", _PATH, params=params)
            page = _parse_page(data)
            yield page
            if not page.has_more:
                return
            if not page.batches or page.last_id is None:
                raise ListingError("a listing page claims more pages but names no cursor")
            if page.last_id in cursors:
                raise ListingError(f"the listing repeats cursor {page.last_id}")
            cursors.add(page.last_id)
            after = page.last_id
        raise ListingError(f"the listing did not end within {max_pages} pages")

    async def retrieve(self, batch_id: str) -> Batch:
        data, _ = await self._call("retrieve", "GET", f"{_PATH}/{_safe_id(batch_id)}")
        return _checked(Batch.from_api(data), batch_id)

    async def cancel(self, batch_id: str) -> Batch:
        data, _ = await self._call("cancel", "POST", f"{_PATH}/{_safe_id(batch_id)}/cancel")
        return _checked(Batch.from_api(data), batch_id)

    async def delete(self, batch_id: str) -> Deletion:
        """Delete one batch. A 404 raises NotFoundError: the caller decides it means gone."""
        data, request_id = await self._call("delete", "DELETE", f"{_PATH}/{_safe_id(batch_id)}")
        if (
            not isinstance(data, dict)
            or data.get("id") != batch_id
            or data.get("type") != "message_batch_deleted"
        ):
            raise ApiResponseError(f"delete of {batch_id} was not confirmed: {data!r:.200}")
        return Deletion(confirmation=data, request_id=request_id)

    async def results(
        self, results_url: str, *, deadline_s: float | None = None
    ) -> AsyncIterator[bytes]:
        """The results file of an ended batch, chunk by chunk, in constant memory.

        One request, paced and gated like every other call (the gate is held until the
        body is done, so close the iterator: ``contextlib.aclosing``). ``results_url`` may
        be relative to the base URL or absolute on the same host; any other host is refused
        (it would receive our key). A failure before the body starts is retried like any
        call; one midway raises ApiConnectionError at once: the caller has consumed part of
        the body. ``deadline_s`` bounds the whole exchange (default: the request timeout);
        a body idle longer than the client's read timeout is cut too.
        """
        url = self._results_target(results_url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._deadline_s if deadline_s is None else deadline_s)
        response = await self._open_results(url, deadline)
        chunks = response.aiter_bytes()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(chunks, None)
                except TimeoutError as exc:
                    raise ApiConnectionError(
                        f"GET {url.path}: results body not complete in time"
                    ) from exc
                except httpx.TransportError as exc:
                    raise ApiConnectionError(
                        f"GET {url.path}: results body cut: {type(exc).__name__}: {exc}"
                    ) from exc
                if chunk is None:
                    return
                yield chunk
        finally:
            close = getattr(chunks, "aclose", None)  # httpx's iterator is a generator
            if close is not None:
                await close()
            await response.aclose()
            self._gate.release()

    async def _open_results(self, url: httpx.URL, deadline: float) -> httpx.Response:
        """A 2xx results response whose body is still unread, holding the gate."""
        retrying = stamina.retry_context(
            on=self._retry_decision,
            attempts=self._retry.attempts,
            timeout=self._retry.total_s,
            wait_initial=self._retry.wait_initial_s,
            wait_max=self._retry.wait_max_s,
            wait_jitter=self._retry.wait_jitter_s,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.num > 1:
                        self.stats.retries += 1
                    return await self._results_head(url, deadline)
        except ApiConnectionError as exc:
            raise ApiUnreachableError(f"GET {url.path}: no response after retries: {exc}") from exc
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    async def _results_head(self, url: httpx.URL, deadline: float) -> httpx.Response:
        """One attempt: the status and headers; an error status raises (gate released)."""
        await self._budget.acquire()
        await self._gate.acquire()
        try:
            self.stats.requests += 1
            try:
                async with asyncio.timeout_at(deadline):
                    response = await self._http.send(
                        self._http.build_request("GET", url), stream=True
                    )
                    if response.status_code // 100 != 2:
                        body = await _bounded_body(response)
            except TimeoutError as exc:
                self._count("results", "timeout")
                raise ApiConnectionError(f"GET {url.path}: no response in time") from exc
            except httpx.TransportError as exc:
                self._count("results", "connection_error")
                raise ApiConnectionError(f"GET {url.path}: {type(exc).__name__}: {exc}") from exc
            self._count("results", str(response.status_code))
            if response.status_code != 429:
                self._budget.accepted()
            self._note_rate_headers(response.headers)
            if response.status_code // 100 != 2:
                answer = _Answer(response.status_code, body, response.headers)
                raise self._status_error("GET", url.path, answer)
        except BaseException:
            self._gate.release()
            raise
        return response

    def _results_target(self, results_url: str) -> httpx.URL:
        """Where to fetch results: refuses any host but the configured API's."""
        base = self._http.base_url
        try:
            given = httpx.URL(results_url)
        except httpx.InvalidURL as exc:
            raise ApiResponseError(f"results_url is not a URL: {exc}") from exc
        if not given.is_absolute_url:
            return given  # relative: build_request puts it under the base URL, like calls
        if _origin(given) != _origin(base):
            raise ApiResponseError(
                f"refusing results_url on {given.host!r}: only the API host {base.host!r} "
                "may receive our credentials"
            )
        return given

    # --- one call, with retries

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: dict[str, str | int] | None = None,
    ) -> tuple[Any, str | None]:
        """The parsed JSON body of a successful call, and its request id.

        The first attempt runs bare; only a retryable failure enters stamina's loop (most
        calls succeed at once, and building the loop costs more than the rest of a call).
        """
        started = self._clock()
        try:
            answer = await self._exchange(endpoint, method, path, params)
        except ApiError as exc:
            if not self._retry_decision(exc):
                _give_up(method, path, exc)
            try:
                answer = await self._retrying(
                    exc, self._clock() - started, endpoint, method, path, params
                )
            except ApiError as last:
                _give_up(method, path, last)
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
    ) -> _Answer:
        """stamina's loop after a first failed attempt, exactly as if it had run it.

        Its attempt 1 replays the failure already seen, so attempt numbers, backoff and
        the ``retry-after`` hook are stamina's own; its clock starts after that attempt,
        so the time it already took comes off the total.
        """
        retrying = stamina.retry_context(
            on=self._retry_decision,
            attempts=self._retry.attempts,
            timeout=max(self._retry.total_s - elapsed_s, 1e-9),  # 0 would mean "no limit"
            wait_initial=self._retry.wait_initial_s,
            wait_max=self._retry.wait_max_s,
            wait_jitter=self._retry.wait_jitter_s,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.num == 1:
                    raise first
                self.stats.retries += 1
                return await self._exchange(endpoint, method, path, params)
        raise AssertionError("stamina's loop ends by returning or raising")  # pragma: no cover

    def _retry_decision(self, exc: Exception) -> bool | float:
        """stamina's hook: False to give up, True for backoff, a float to wait that long."""
        if isinstance(exc, RateLimitError) and exc.retryable:
            return exc.retry_after_s
        return isinstance(exc, ApiError) and exc.retryable

    async def _exchange(
        self, endpoint: str, method: str, path: str, params: dict[str, str | int] | None
    ) -> _Answer:
        """One HTTP request and its complete body, or one of our errors."""
        await self._budget.acquire()
        async with self._gate:
            self.stats.requests += 1
            try:
                async with asyncio.timeout(self._deadline_s):
                    # The overall deadline also stops a body that trickles in byte by byte.
                    answer = await self._send(method, path, params)
            except TimeoutError as exc:
                self._count(endpoint, "timeout")
                raise ApiConnectionError(
                    f"{method} {path}: no complete response within {self._deadline_s:g}s"
                ) from exc
            except httpx.TransportError as exc:
                self._count(endpoint, "connection_error")
                if is_untrusted_certificate(exc):
                    raise UntrustedCertificateError(
                        f"{method} {path}: the server's TLS certificate was not trusted "
                        f"({certificate_problem(exc)}); if a proxy or private CA signs it, "
                        "name its CA bundle in SSL_CERT_FILE or SSL_CERT_DIR"
                    ) from exc
                raise ApiConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        self._count(endpoint, str(answer.status))
        if answer.status != 429:
            self._budget.accepted()
        self._note_rate_headers(answer.headers)
        if answer.status >= 400:
            raise self._status_error(method, path, answer)
        return answer

    async def _send(self, method: str, path: str, params: dict[str, str | int] | None) -> _Answer:
        # One absolute URL string: a relative path and params would each be parsed again.
        url = self._base + path + ("?" + urlencode(params) if params else "")
        request = self._http.build_request(method, url)
        response = await self._http.send(request, stream=True)
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
        return _Answer(response.status_code, b"".join(chunks), response.headers)

    def _status_error(self, method: str, path: str, answer: _Answer) -> ApiError:
        error_type, message, request_id, error_code = _error_envelope(answer.body)
        message = message or f"HTTP {answer.status}"
        request_id = answer.headers.get("request-id") or request_id
        retry_after = _retry_after_s(answer.headers, now=self._now())
        if answer.status == 429:
            self.stats.rate_limited += 1
            if retry_after is not None and retry_after > self._retry.total_s:
                # A wait longer than a call may take is, for this cycle, a spend cap: stop
                # now rather than sleep (and hold every other request) for up to 10 minutes.
                return SpendCapError(
                    f"{method} {path}: {message}; the API asks to wait {retry_after:g}s, "
                    f"longer than the {self._retry.total_s:g}s a call may take",
                    retry_after_s=retry_after,
                    error_type=error_type,
                    request_id=request_id,
                    error_code=error_code,
                )
            if retry_after is not None:
                self._budget.rate_limited(retry_after)
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
        remaining = headers.get("anthropic-ratelimit-requests-remaining")
        reset = headers.get("anthropic-ratelimit-requests-reset")
        if remaining is None or reset is None:
            return
        try:
            if int(remaining) > 0:
                return
            reset_at = datetime.fromisoformat(reset.strip().replace("Z", "+00:00"))
        except ValueError:
            return
        if reset_at.tzinfo is None:
            reset_at = reset_at.replace(tzinfo=UTC)
        wait_s = (reset_at - self._now()).total_seconds()
        self._budget.pause_until_reset(min(wait_s, _MAX_WAIT_S))

    def _count(self, endpoint: str, status: str) -> None:
        self.stats.responses[(endpoint, status)] += 1
        if self._on_response is not None:
            self._on_response(endpoint, status)

    # --- one segment of the listing (cleaner.listing decides which)

    async def page_range(
        self, *, after_id: str | None = None, before_id: str | None = None, limit: int = PAGE_LIMIT
    ) -> AsyncIterator[Page]:
        """Pages of one segment of the listing, each fetched only when asked for.

        Older from ``after_id`` (from the top when neither cursor is given), or newer from
        ``before_id``, following each page's ``first_id``; every page is newest first. The
        guards of :meth:`pages` apply. A cursor that answers 404 (a deleted batch, on an
        API that forgets deleted cursors) raises :class:`CursorNotFoundError`: the
        listing's memory is then in doubt, and the caller lists in full.
        """
        if after_id is not None and before_id is not None:
            raise ValueError("page_range takes after_id or before_id, not both")
        newer = before_id is not None
        key = "before_id" if newer else "after_id"
        cursor = before_id if newer else after_id
        seen = {cursor} if cursor is not None else set()
        for _ in range(self._max_pages):
            params: dict[str, str | int] = {"limit": limit}
            if cursor is not None:
                params[key] = cursor
            try:
                data, _ = await self._call("list", "GET", _PATH, params=params)
            except NotFoundError as exc:
                if cursor is None:
                    raise
                raise CursorNotFoundError(
                    f"the listing cursor {key}={cursor} answered 404",
                    status=exc.status,
                    error_type=exc.error_type,
                    request_id=exc.request_id,
                ) from exc
            page = _parse_page(data)
            yield page
            if not page.has_more:
                return
            cursor = page.first_id if newer else page.last_id
            if not page.batches or cursor is None:
                raise ListingError("a listing page claims more pages but names no cursor")
            if cursor in seen:
                raise ListingError(f"the listing repeats cursor {cursor}")
            seen.add(cursor)
        raise ListingError(f"the listing did not end within {self._max_pages} pages")


class CursorNotFoundError(NotFoundError):
    """A listing cursor answered 404: its batch is gone and the API forgot its place."""


def _give_up(method: str, path: str, exc: ApiError) -> NoReturn:
    """End a call with ``exc``; a connection error is, by now, the API being unreachable."""
    if isinstance(exc, ApiConnectionError) and not isinstance(exc, UntrustedCertificateError):
        raise ApiUnreachableError(f"{method} {path}: no response after retries: {exc}") from exc
    raise exc


def _retry_after_s(headers: Mapping[str, str], *, now: datetime) -> float | None:
    """How long the server asks to wait, or None when it does not say.

    ``retry-after-ms`` wins over ``retry-after``, like the SDKs read them; ``retry-after`` is
    seconds or an HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime
    forms), a date being read against ``now``. A date already past means "now" (0 s).
    """
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            value = _seconds_until(raw, now) if scale == 1.0 else math.nan
        if math.isfinite(value) and value >= 0:
            return min(value, _MAX_WAIT_S)  # an absurd wait is a bug upstream; cap it
    return None


_MAX_WAIT_S = 600.0


def _seconds_until(http_date: str, now: datetime) -> float:
    """Seconds from ``now`` until an HTTP date (NaN when it is not one)."""
    try:
        moment = parsedate_to_datetime(http_date.strip())
    except (ValueError, TypeError, IndexError):
        return math.nan
    if moment.tzinfo is None:  # asctime carries no zone; HTTP dates are always GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def _error_envelope(body: bytes) -> tuple[str, str, str | None, str | None]:
    """(error.type, error.message, request_id, error.details.error_code) from an error body.

    Anything missing or of the wrong type reads as empty: an error without the envelope
    (e.g. from a proxy) keeps only its status.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", "", None, None
    if not isinstance(data, dict):
        return "", "", None, None
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    request_id = data.get("request_id")
    return (
        str(error.get("type") or ""),
        str(error.get("message") or ""),
        request_id if isinstance(request_id, str) and request_id else None,
        code if isinstance(code, str) and code else None,
    )


def _parse_page(data: Any) -> Page:
    if not isinstance(data, dict):
        raise ApiResponseError("a listing page is not a JSON object")
    items, has_more = data.get("data"), data.get("has_more")
    if not isinstance(items, list) or not isinstance(has_more, bool):
        raise ApiResponseError("a listing page lacks a data list or a boolean has_more")
    first_id, last_id = data.get("first_id"), data.get("last_id")
    if not (first_id is None or isinstance(first_id, str)) or not (
        last_id is None or isinstance(last_id, str)
    ):
        raise ApiResponseError("a listing page has non-string cursors")
    batches = [Batch.from_api(item) for item in items]
    if batches and last_id != batches[-1].id:
        raise ApiResponseError("a listing page's last_id is not its last batch")
    return Page(batches=batches, has_more=has_more, first_id=first_id, last_id=last_id)


def _checked(batch: Batch, batch_id: str) -> Batch:
    if batch.id != batch_id:
        raise ApiResponseError(f"asked for {batch_id}, the API answered with {batch.id}")
    return batch


def _safe_id(batch_id: str) -> str:
    """Ids are opaque, but one must never be able to change the path it is put in."""
    if not batch_id or any(ch in batch_id for ch in "/?#%\\ ") or batch_id in {".", ".."}:
        raise ApiResponseError(f"refusing to use a malformed batch id: {batch_id!r}")
    return batch_id


async def _bounded_body(response: httpx.Response, limit: int = 64 * 1024) -> bytes:
    """Up to ``limit`` bytes of an error body: enough for the envelope, never a whole file."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    await response.aclose()
    return b"".join(chunks)[:limit]


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


__all__ = ["BatchesClient", "ClientStats", "Deletion", "NotFoundError", "Page", "RetryPolicy"]
