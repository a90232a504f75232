"""The Message Batches endpoints cleaner uses, as typed calls: list, retrieve, cancel,
delete, and the results file.

It returns models and raises :mod:`cleaner.errors`, never httpx types. How one call is
paced, gated, sent, translated and retried is :mod:`cleaner.exchange`'s job; reading the
JSON is :mod:`cleaner.wire`'s.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

import httpx

from cleaner import __version__
from cleaner.budget import RequestBudget
from cleaner.clock import SYSTEM
from cleaner.downloads import stream_results
from cleaner.errors import ListingError, NotFoundError
from cleaner.exchange import MAX_BODY_BYTES, Exchanger, RetryPolicy
from cleaner.models import Batch
from cleaner.network import proxy_for, trust_context
from cleaner.transport import NoCookies, transport
from cleaner.wire import (
    ClientStats,
    Deletion,
    Exchange,
    Page,
    checked,
    parse_batch,
    parse_deletion,
    parse_page,
    safe_id,
)

API_VERSION = "2023-06-01"
PAGE_LIMIT = 1000  # the API's maximum: fewest list requests per batch
MAX_PAGES = 100_000  # 100 million batches: a listing longer than this does not end
_PATH = "/v1/messages/batches"


class BatchesClient:
    """Async client for the endpoints cleaner uses: list, retrieve, cancel, delete, results.

    The ``httpx.AsyncClient`` is a constructor argument so tests can point it anywhere;
    :meth:`http_client` builds the production one.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        budget: RequestBudget,
        concurrency: int,
        request_timeout_s: float,
        retry: RetryPolicy | None = None,
        on_exchange: Callable[[Exchange], None] | None = None,
        max_pages: int = MAX_PAGES,
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = SYSTEM.monotonic,
    ) -> None:
        self._max_pages = max_pages
        self._wire = Exchanger(
            http,
            budget=budget,
            concurrency=concurrency,
            request_timeout_s=request_timeout_s,
            retry=retry or RetryPolicy(),
            # Wall-clock "now", for retry-after dates and ratelimit reset times.
            now=now or SYSTEM.wall,
            clock=clock,
            on_exchange=on_exchange,
        )

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
        return self._wire.budget

    @property
    def stats(self) -> ClientStats:
        """Lifetime counters (benchmarks read them); a cycle counts its own, by events."""
        return self._wire.stats

    @contextmanager
    def observed(self, listener: Callable[[Exchange], None]) -> Iterator[None]:
        """Every exchange while inside, also to ``listener`` (one cycle's request tally)."""
        self._wire.listeners.append(listener)
        try:
            yield
        finally:
            self._wire.listeners.remove(listener)

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
            data, _ = await self._wire.call("list", "GET", _PATH, params=params)
            page = parse_page(data)
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
        path = f"{_PATH}/{safe_id(batch_id)}"
        data, _ = await self._wire.call("retrieve", "GET", path)
        return checked(parse_batch(data), batch_id)

    async def cancel(self, batch_id: str) -> Batch:
        path = f"{_PATH}/{safe_id(batch_id)}/cancel"
        data, _ = await self._wire.call("cancel", "POST", path)
        return checked(parse_batch(data), batch_id)

    async def delete(self, batch_id: str) -> Deletion:
        """Delete one batch. A 404 raises NotFoundError: the caller decides it means gone."""
        path = f"{_PATH}/{safe_id(batch_id)}"
        data, request_id = await self._wire.call("delete", "DELETE", path)
        return parse_deletion(data, batch_id, request_id)

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
                data, _ = await self._wire.call("list", "GET", _PATH, params=params)
            except NotFoundError as exc:
                if cursor is None:
                    raise
                raise CursorNotFoundError(
                    f"the listing cursor {key}={cursor} answered 404",
                    status=exc.status,
                    error_type=exc.error_type,
                    request_id=exc.request_id,
                ) from exc
            page = parse_page(data)
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

    async def results(
        self, results_url: str, *, deadline_s: float | None = None
    ) -> AsyncIterator[bytes]:
        """The results file of an ended batch, chunk by chunk (see :mod:`cleaner.downloads`)."""
        async for chunk in stream_results(self._wire, results_url, deadline_s=deadline_s):
            yield chunk


class CursorNotFoundError(NotFoundError):
    """A listing cursor answered 404: its batch is gone and the API forgot its place."""


__all__ = [
    "MAX_BODY_BYTES",
    "BatchesClient",
    "ClientStats",
    "CursorNotFoundError",
    "Deletion",
    "NotFoundError",
    "Page",
    "RetryPolicy",
]
