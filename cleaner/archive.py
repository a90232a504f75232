"""Archive an ended batch's results to storage the team owns, before the batch is deleted.

Layout under the store's prefix: ``[<workspace>/]<batch_id>/results.jsonl`` and, written
LAST as the completion marker, ``[<workspace>/]<batch_id>/batch.json``: the batch object
as last seen plus the results' size, SHA-256 and line count. A results file without its
marker is by definition incomplete, whatever it holds; a marker whose results file is
present with the marker's size is a finished archive, which is never downloaded again.

Verification before success: the bytes the store holds (its own size, by ``head``) equal
the bytes read, whose size and SHA-256 were computed while streaming; the number of JSON
Lines equals the batch's final count (succeeded + errored + canceled + expired).

Outcomes: :class:`Archived`; :class:`ResultsUnavailable` when the provider no longer has
the results (``archived_at`` passed, no ``results_url``, or the results answer 404; then
the batch may be deleted); or :class:`ArchiveError` with a ``cause``, after which the
batch must be kept (the next cycle tries again).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import orjson

from cleaner.errors import ApiError, CleanerError, NotFoundError
from cleaner.storage import ObjectNotFoundError, StorageError, Store

RESULTS_NAME = "results.jsonl"
MARKER_NAME = "batch.json"
MARKER_FORMAT = "cleaner.archive/1"

ArchiveCause = Literal["download", "store", "mismatch", "not_ended"]
UnavailableReason = Literal["archived", "no_results_url", "not_found"]


class ArchiveError(CleanerError):
    """The archive of one batch failed; keep the batch. ``cause`` says which step failed.

    ``download``: the results could not be read (the API error is the ``__cause__``);
    ``store``: the store refused or failed; ``mismatch``: what was stored does not verify;
    ``not_ended``: the batch has no final counts yet.
    """

    def __init__(self, message: str, *, cause: ArchiveCause, batch_id: str) -> None:
        super().__init__(f"archive of {batch_id}: {message}")
        self.cause: ArchiveCause = cause
        self.batch_id = batch_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Archived:
    """A verified archive; ``reused`` when it was already complete and nothing was done."""

    batch_id: str
    uri: str
    bytes: int
    sha256: str
    lines: int
    reused: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultsUnavailable:
    """The provider no longer serves these results: nothing to archive, deleting is fine."""

    batch_id: str
    reason: UnavailableReason


class ResultsSource(Protocol):
    """What the archive needs of the client: :meth:`BatchesClient.results`."""

    def results(
        self, results_url: str, *, deadline_s: float | None = None
    ) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveOptions:
    """How one archive runs. A 404 is asked again before it counts as "gone": the API has
    been seen to answer 404 transiently, and a wrong "gone" means deleting unarchived data.
    """

    workspace: str | None = None
    download_deadline_s: float | None = None  # None: the client's request timeout
    not_found_confirmations: int = 2  # further requests after a first 404
    not_found_wait_s: float = 1.0


async def archive_batch(
    batch: Mapping[str, Any],
    *,
    client: ResultsSource,
    store: Store,
    now: datetime,
    sleep: Callable[[float], Awaitable[None]],
    options: ArchiveOptions | None = None,
) -> Archived | ResultsUnavailable:
    """Archive one ended batch (its MessageBatch JSON as last seen) into ``store``."""
    opts = options or ArchiveOptions()
    batch_id = _component(batch.get("id"), "batch id", batch_id="?")
    prefix = batch_id
    if opts.workspace is not None:
        prefix = f"{_component(opts.workspace, 'workspace', batch_id=batch_id)}/{batch_id}"
    expected = _final_total(batch, batch_id)
    place = _Place(store=store, prefix=prefix, batch_id=batch_id)
    existing = await _existing(place)
    if existing is not None:
        return existing
    url = batch.get("results_url")
    if not isinstance(url, str) or not url:
        return ResultsUnavailable(batch_id=batch_id, reason="no_results_url")
    if _archived_before(batch.get("archived_at"), now):
        return ResultsUnavailable(batch_id=batch_id, reason="archived")
    for attempt in range(opts.not_found_confirmations + 1):
        try:
            tally = await _download(place, client.results(url, deadline_s=opts.download_deadline_s))
            break
        except NotFoundError:
            if attempt == opts.not_found_confirmations:
                return ResultsUnavailable(batch_id=batch_id, reason="not_found")
            await sleep(opts.not_found_wait_s)
    await _verify(place, tally, expected)
    await _mark_complete(place, batch, tally, now)
    return Archived(
        batch_id=batch_id,
        uri=place.uri(RESULTS_NAME),
        bytes=tally.size,
        sha256=tally.sha256.hexdigest(),
        lines=tally.lines,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Place:
    store: Store
    prefix: str
    batch_id: str

    def path(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def uri(self, name: str) -> str:
        return f"{self.store.describe().rstrip('/')}/{self.path(name)}"

    def failed(self, message: str, cause: ArchiveCause) -> ArchiveError:
        return ArchiveError(message, cause=cause, batch_id=self.batch_id)


@dataclass(slots=True)
class _Tally:
    """Size, digest and line count of the bytes read, computed as they stream past."""

    size: int = 0
    lines: int = 0
    ends_with_newline: bool = True
    sha256: Any = field(default_factory=hashlib.sha256)
    error: BaseException | None = None

    def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        self.lines += chunk.count(b"\n")
        self.ends_with_newline = chunk.endswith(b"\n")
        self.sha256.update(chunk)

    def finish(self) -> None:
        """Count a last line that lacks its newline."""
        if not self.ends_with_newline:
            self.lines += 1
            self.ends_with_newline = True


async def _download(place: _Place, source: AsyncIterator[bytes]) -> _Tally:
    """Stream the results into the store; a NotFoundError before any byte passes through.

    The first chunk is read before the store is touched, so an answer that is an error
    (the client has retried it already) leaves no trace in the store at all.
    """
    tally = _Tally()
    try:
        try:
            first = await anext(source, None)
        except NotFoundError:
            raise
        except ApiError as exc:
            raise place.failed(f"results download failed: {exc}", "download") from exc
        path = place.path(RESULTS_NAME)
        if first is None:
            await _store_call(place, place.store.put(path, b""), tally)
            return tally
        tally.add(first)
        counted = _counted(first, source, tally)
        try:
            await _store_call(place, place.store.put_stream(path, counted), tally)
        finally:
            await _close(counted)
    finally:
        await _close(source)
    tally.finish()
    return tally


async def _counted(
    first: bytes, source: AsyncIterator[bytes], tally: _Tally
) -> AsyncIterator[bytes]:
    yield first
    try:
        async for chunk in source:
            tally.add(chunk)
            yield chunk
    except Exception as exc:
        tally.error = exc  # the store sees only "its source failed": remember why
        raise


async def _store_call(place: _Place, call: Awaitable[None], tally: _Tally | None = None) -> None:
    """Await a write; its failure is the store's unless the download failed under it."""
    try:
        await call
    except Exception as exc:
        if tally is not None and tally.error is not None:
            failure = tally.error
            raise place.failed(f"results download failed: {failure}", "download") from failure
        detail = str(exc) if isinstance(exc, StorageError) else type(exc).__name__
        raise place.failed(f"store failed: {detail}", "store") from exc


async def _verify(place: _Place, tally: _Tally, expected: int) -> None:
    if tally.error is not None:  # the source failed but the store still completed the write
        raise place.failed(f"results download failed: {tally.error}", "download")
    try:
        info = await place.store.head(place.path(RESULTS_NAME))
    except StorageError as exc:
        raise place.failed(f"store failed reading back the size: {exc}", "store") from exc
    stored = None if info is None else info.size
    if stored != tally.size:
        raise place.failed(f"stored {stored} bytes, read {tally.size}", "mismatch")
    if tally.lines != expected:
        raise place.failed(
            f"results have {tally.lines} lines, the batch's final counts total {expected}",
            "mismatch",
        )


async def _mark_complete(
    place: _Place, batch: Mapping[str, Any], tally: _Tally, now: datetime
) -> None:
    marker = {
        "format": MARKER_FORMAT,
        "archived_at": now.isoformat(),
        "results": {
            "path": RESULTS_NAME,
            "bytes": tally.size,
            "sha256": tally.sha256.hexdigest(),
            "lines": tally.lines,
        },
        "batch": dict(batch),
    }
    data = orjson.dumps(marker, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    await _store_call(place, place.store.put(place.path(MARKER_NAME), data))


async def _existing(place: _Place) -> Archived | None:
    """The archive already complete in the store, or None (absent, partial or unreadable)."""
    try:
        raw = await place.store.get(place.path(MARKER_NAME))
    except ObjectNotFoundError:
        return None
    except StorageError as exc:
        raise place.failed(f"store failed reading the marker: {exc}", "store") from exc
    try:
        results = orjson.loads(raw)["results"]
        size, digest, lines = int(results["bytes"]), str(results["sha256"]), int(results["lines"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # not ours or damaged: archive again, overwriting it
    try:
        info = await place.store.head(place.path(RESULTS_NAME))
    except StorageError as exc:
        raise place.failed(f"store failed reading back the size: {exc}", "store") from exc
    if info is None or info.size != size:
        return None
    return Archived(
        batch_id=place.batch_id,
        uri=place.uri(RESULTS_NAME),
        bytes=size,
        sha256=digest,
        lines=lines,
        reused=True,
    )


def _final_total(batch: Mapping[str, Any], batch_id: str) -> int:
    if batch.get("processing_status") != "ended":
        raise ArchiveError("the batch has not ended", cause="not_ended", batch_id=batch_id)
    counts = batch.get("request_counts")
    names = ("succeeded", "errored", "canceled", "expired")
    if not isinstance(counts, Mapping) or not all(
        isinstance(counts.get(n), int) and counts[n] >= 0 for n in names
    ):
        raise ArchiveError(
            "the batch has no valid request_counts", cause="mismatch", batch_id=batch_id
        )
    return sum(int(counts[n]) for n in names)


def _archived_before(value: object, now: datetime) -> bool:
    """Whether ``archived_at`` is set and not in the future."""
    if value is None:
        return False
    try:
        return datetime.fromisoformat(str(value)) <= now
    except (ValueError, TypeError):
        return False  # unreadable: try the download; results that are gone answer 404


def _component(value: object, what: str, *, batch_id: str) -> str:
    """A value safe as one path component: it may not climb out of or into other folders."""
    if (
        not isinstance(value, str)
        or not value
        or value in {".", ".."}
        or any(ch in value for ch in "/\\")
        or not value.isprintable()
    ):
        raise ArchiveError(f"refusing {what} {value!r} as a path", cause="store", batch_id=batch_id)
    return value


async def _close(source: AsyncIterator[bytes]) -> None:
    """Close the download (it holds a connection and a concurrency slot until closed)."""
    close = getattr(source, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


__all__ = [
    "ArchiveError",
    "ArchiveOptions",
    "Archived",
    "ResultsSource",
    "ResultsUnavailable",
    "archive_batch",
]
