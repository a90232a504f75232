"""The results file of an ended batch, streamed in constant memory under the same limits.

One request, paced and gated like every other (:mod:`cleaner.exchange`); the gate is held
until the body is done. Only the configured API's host may serve it: the request carries
our credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from cleaner.errors import ApiConnectionError, ApiResponseError, ApiUnreachableError
from cleaner.exchange import Answer, Exchanger, transport_error


async def stream_results(
    wire: Exchanger, results_url: str, *, deadline_s: float | None = None
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
    url = _results_target(wire, results_url)
    loop = asyncio.get_running_loop()  # timeout_at() reads the loop's own clock
    deadline = loop.time() + (wire.deadline_s if deadline_s is None else deadline_s)
    response = await _open_results(wire, url, deadline)
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
        wire.gate.release()


async def _open_results(wire: Exchanger, url: httpx.URL, deadline: float) -> httpx.Response:
    """A 2xx results response whose body is still unread, holding the gate."""
    retrying = wire.retry.context(on=wire.retry_decision, timeout_s=wire.retry.total_s)
    try:
        async for attempt in retrying:
            with attempt:
                if attempt.num > 1:
                    wire.stats.retries += 1
                return await _results_head(wire, url, deadline, retry=attempt.num > 1)
    except ApiConnectionError as exc:
        raise ApiUnreachableError(f"GET {url.path}: no response after retries: {exc}") from exc
    raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover


async def _results_head(
    wire: Exchanger, url: httpx.URL, deadline: float, *, retry: bool
) -> httpx.Response:
    """One attempt: the status and headers; an error status raises (gate released)."""
    await wire.budget.acquire()
    await wire.gate.acquire()
    try:
        wire.stats.requests += 1
        try:
            async with asyncio.timeout_at(deadline):
                request = wire.http.build_request("GET", url)
                response = await wire.http.send(request, stream=True)
                body = b""
                if response.status_code // 100 != 2:
                    body = await _bounded_body(response)
        except TimeoutError as exc:
            wire.count("results", None, "timeout", retry=retry)
            raise ApiConnectionError(f"GET {url.path}: no response in time") from exc
        except httpx.TransportError as exc:
            wire.count("results", None, "connection_error", retry=retry)
            raise transport_error("GET", url.path, exc) from exc
        answer = Answer(response.status_code, body, response.headers)
        wire.answered("results", "GET", url.path, answer, retry=retry)
        if response.status_code // 100 != 2:  # no redirects are followed: a 3xx is no file
            raise ApiResponseError(f"GET {url.path}: unexpected HTTP {response.status_code}")
    except BaseException:
        wire.gate.release()
        raise
    return response


def _results_target(wire: Exchanger, results_url: str) -> httpx.URL:
    """Where to fetch results: refuses any host but the configured API's."""
    base = wire.http.base_url
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
