"""Archiving results before deletion: real HTTP to the emulator, real file and S3 stores."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cleaner.archive import (
    Archived,
    ArchiveError,
    ArchiveOptions,
    ResultsUnavailable,
    archive_batch,
)
from cleaner.client import BatchesClient
from cleaner.emulator import Emulator, FaultRule
from cleaner.errors import ApiResponseError
from cleaner.storage import Store, open_store
from tests.integration.conftest import KEY, open_test_client
from tests.storage_fixtures import file_url, s3_server, s3_url, store_url

__all__ = ["file_url", "s3_server", "s3_url", "store_url"]  # fixtures used by name

RESULTS = frozenset({"results"})
DAY = timedelta(days=1)


class Sleeps:
    """A sleep that only records how long it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def store(store_url: str) -> Store:
    """An empty store: once a local directory, once a bucket on moto's S3."""
    return open_store(store_url)


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[BatchesClient]:
    """A production-shaped client for the emulator, with quick retries."""
    async with open_test_client(base_url) as built:
        yield built


def _ended(emulator: Emulator, requests: int = 40, **options: Any) -> dict[str, Any]:
    batch = emulator.add_batch(
        status="ended", request_count=requests, created_at=datetime.now(UTC) - 2 * DAY, **options
    )
    return dict(batch)


def _download(base_url: str, batch: dict[str, Any]) -> bytes:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    response = httpx.get(batch["results_url"], headers=headers, timeout=10)
    assert response.status_code == 200
    return response.content


async def _archive(
    batch: dict[str, Any],
    client: BatchesClient,
    store: Store,
    *,
    sleep: Sleeps | None = None,
    **options: Any,
) -> Archived | ResultsUnavailable:
    return await archive_batch(
        batch,
        client=client,
        store=store,
        now=datetime.now(UTC),
        sleep=sleep or Sleeps(),
        options=ArchiveOptions(**options),
    )


def _results_requests(emulator: Emulator) -> int:
    return sum(n for (endpoint, _), n in emulator.request_counts.items() if endpoint == "results")


async def test_an_ended_batch_is_archived_and_verified(
    emulator: Emulator, base_url: str, client: BatchesClient, store: Store
) -> None:
    """results.jsonl holds the exact bytes; batch.json holds the batch and their checksum."""
    emulator.configure(results_line_bytes=900)
    batch = _ended(emulator, 500, errored_fraction=0.2)
    expected = _download(base_url, batch)
    emulator.clear_request_counts()
    done = await _archive(batch, client, store)
    assert isinstance(done, Archived)
    assert (done.bytes, done.lines, done.reused) == (len(expected), 500, False)
    assert done.sha256 == hashlib.sha256(expected).hexdigest()
    assert done.uri == f"{store.describe()}/{batch['id']}/results.jsonl"
    assert await store.get(f"{batch['id']}/results.jsonl") == expected
    marker = orjson.loads(await store.get(f"{batch['id']}/batch.json"))
    assert marker["batch"] == batch
    assert marker["results"] == {
        "path": "results.jsonl",
        "bytes": len(expected),
        "sha256": done.sha256,
        "lines": 500,
    }
    assert (_results_requests(emulator), client.stats.requests) == (1, 1)


async def test_a_canceled_batch_is_archived_with_its_partial_results(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """Canceled requests are lines too: the count still matches the final request_counts."""
    batch = _ended(emulator, 60, ended_by="cancel")
    assert batch["request_counts"]["canceled"] > 0
    done = await _archive(batch, client, store)
    assert isinstance(done, Archived)
    assert done.lines == 60


async def test_a_workspace_name_adds_a_level_above_the_batch(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """<workspace>/<batch_id>/results.jsonl and batch.json."""
    batch = _ended(emulator, 3)
    await _archive(batch, client, store, workspace="wrkspc_team")
    assert await store.list("wrkspc_team") == [
        f"wrkspc_team/{batch['id']}/batch.json",
        f"wrkspc_team/{batch['id']}/results.jsonl",
    ]


async def test_a_second_archive_neither_downloads_nor_rewrites(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """A complete archive is found by its marker: same values back, no results request."""
    batch = _ended(emulator, 20)
    first = await _archive(batch, client, store)
    before = [await store.head(f"{batch['id']}/{name}") for name in ("results.jsonl", "batch.json")]
    requests = _results_requests(emulator)
    again = await _archive(batch, client, store)
    after = [await store.head(f"{batch['id']}/{name}") for name in ("results.jsonl", "batch.json")]
    assert isinstance(first, Archived)
    assert isinstance(again, Archived)
    assert again.reused
    assert (again.uri, again.bytes, again.sha256, again.lines) == (
        first.uri,
        first.bytes,
        first.sha256,
        first.lines,
    )
    assert _results_requests(emulator) == requests
    assert after == before


async def test_results_without_their_marker_are_archived_again(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """A results file alone is not an archive: it is downloaded and overwritten."""
    batch = _ended(emulator, 10)
    await store.put(f"{batch['id']}/results.jsonl", b"half a file")
    done = await _archive(batch, client, store)
    assert isinstance(done, Archived)
    assert not done.reused
    assert _results_requests(emulator) == 1


async def test_a_marker_whose_results_differ_in_size_is_archived_again(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """The marker counts only with a results object of the size it names."""
    batch = _ended(emulator, 10)
    await _archive(batch, client, store)
    await store.put(f"{batch['id']}/results.jsonl", b"truncated")
    done = await _archive(batch, client, store)
    assert isinstance(done, Archived)
    assert not done.reused
    assert _results_requests(emulator) == 2


async def test_a_results_error_fails_the_archive_as_a_download_failure(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """500s through every retry: ArchiveError(download), and the store is left untouched."""
    batch = _ended(emulator, 5)
    emulator.configure(faults=[FaultRule("server_error", endpoints=RESULTS)])
    with pytest.raises(ArchiveError) as caught:
        await _archive(batch, client, store)
    assert caught.value.cause == "download"
    assert await store.list(batch["id"]) == []


async def test_a_results_error_before_the_body_is_retried(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """Two 529s, then the file: archived, with one retry per failure."""
    batch = _ended(emulator, 5)
    emulator.configure(faults=[FaultRule("overloaded", endpoints=RESULTS, times=2)])
    assert isinstance(await _archive(batch, client, store), Archived)
    assert (_results_requests(emulator), client.stats.retries) == (3, 2)


async def test_a_body_cut_short_fails_without_a_completion_marker(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """Dropped mid-body: ArchiveError(download) at once (no retry), no batch.json."""
    emulator.configure(results_line_bytes=2000)
    batch = _ended(emulator, 2000)
    emulator.configure(faults=[FaultRule("cut_body", endpoints=RESULTS)])
    with pytest.raises(ArchiveError) as caught:
        await _archive(batch, client, store)
    assert caught.value.cause == "download"
    assert await store.head(f"{batch['id']}/batch.json") is None
    assert _results_requests(emulator) == 1


async def test_the_next_attempt_after_a_cut_body_completes_the_archive(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """Whatever the cut left behind, the next try writes a whole, verified archive."""
    batch = _ended(emulator, 300)
    emulator.configure(faults=[FaultRule("cut_body", endpoints=RESULTS, times=1)])
    with pytest.raises(ArchiveError):
        await _archive(batch, client, store)
    done = await _archive(batch, client, store)
    assert isinstance(done, Archived)
    assert done.lines == 300


async def test_a_body_that_trickles_is_cut_by_the_download_deadline(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """A body that keeps coming too slowly ends at the deadline: ArchiveError(download)."""
    batch = _ended(emulator, 400)
    emulator.configure(faults=[FaultRule("trickle", endpoints=RESULTS, seconds=0.02)])
    with pytest.raises(ArchiveError) as caught:
        await _archive(batch, client, store, download_deadline_s=0.3)
    assert caught.value.cause == "download"
    assert await store.head(f"{batch['id']}/batch.json") is None


async def test_a_body_that_stalls_is_cut_by_the_read_timeout(
    emulator: Emulator, base_url: str, store: Store
) -> None:
    """A body that stops coming is cut after the client's request timeout."""
    batch = _ended(emulator, 400)
    emulator.configure(faults=[FaultRule("trickle", endpoints=RESULTS, seconds=30)])
    async with open_test_client(base_url, timeout_s=0.3) as slow:
        with pytest.raises(ArchiveError) as caught:
            await _archive(batch, slow, store, download_deadline_s=20)
    assert caught.value.cause == "download"


async def test_a_store_that_refuses_writes_fails_with_cause_store(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """The local store cannot create the batch's folder: ArchiveError(store), slot freed."""
    batch = _ended(emulator, 50)
    root = tmp_path / "store"
    root.mkdir()
    (root / batch["id"]).write_bytes(b"a file where the folder should be")
    async with open_test_client(base_url, concurrency=1) as client:
        with pytest.raises(ArchiveError) as caught:
            await _archive(batch, client, open_store(root.as_uri()))
        assert caught.value.cause == "store"
        # The download was closed: with one slot, another call still gets through.
        assert (await client.retrieve(batch["id"])).id == batch["id"]


async def test_a_missing_bucket_fails_with_cause_store(
    emulator: Emulator, client: BatchesClient, s3_url: str
) -> None:
    """S3 answers the writes with an error: ArchiveError(store)."""
    batch = _ended(emulator, 5)
    missing = open_store("s3://no-such-bucket-for-cleaner/archive")
    with pytest.raises(ArchiveError) as caught:
        await _archive(batch, client, missing)
    assert caught.value.cause == "store"
    assert s3_url  # the fixture points the AWS_* environment at moto


async def test_a_provider_archived_batch_is_results_unavailable(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """archived_at in the past: results_unavailable, without a results request."""
    created = datetime.now(UTC) - timedelta(days=30)
    batch: dict[str, Any] = dict(emulator.add_batch(status="ended", created_at=created))
    assert batch["archived_at"] is not None
    outcome = await _archive(batch, client, store)
    assert outcome == ResultsUnavailable(batch_id=batch["id"], reason="archived")
    assert _results_requests(emulator) == 0


async def test_a_batch_without_results_url_is_results_unavailable(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """No results_url: nothing to fetch, the batch may go."""
    batch = {**_ended(emulator, 5), "results_url": None}
    outcome = await _archive(batch, client, store)
    assert outcome == ResultsUnavailable(batch_id=batch["id"], reason="no_results_url")


async def test_results_answering_404_are_unavailable_once_confirmed(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """404, asked twice more after a pause each: results_unavailable; nothing stored."""
    batch = _ended(emulator, 5)
    emulator.configure(faults=[FaultRule("not_found", endpoints=RESULTS)])
    sleeps = Sleeps()
    outcome = await _archive(batch, client, store, sleep=sleeps)
    assert outcome == ResultsUnavailable(batch_id=batch["id"], reason="not_found")
    assert (_results_requests(emulator), sleeps.waits) == (3, [1.0, 1.0])
    assert await store.list(batch["id"]) == []


async def test_a_transient_404_on_results_does_not_count_as_gone(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """One 404, then the file: archived, not declared unavailable."""
    batch = _ended(emulator, 5)
    emulator.configure(faults=[FaultRule("not_found", endpoints=RESULTS, times=1)])
    assert isinstance(await _archive(batch, client, store), Archived)


async def test_a_count_mismatch_fails_and_leaves_no_marker(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """More requests counted than lines received: ArchiveError(mismatch), no batch.json."""
    batch = _ended(emulator, 8)
    counts = {**batch["request_counts"], "succeeded": batch["request_counts"]["succeeded"] + 1}
    with pytest.raises(ArchiveError) as caught:
        await _archive({**batch, "request_counts": counts}, client, store)
    assert caught.value.cause == "mismatch"
    assert await store.head(f"{batch['id']}/batch.json") is None


async def test_a_relative_results_url_is_fetched_from_the_base_url(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """results_url may be a path: it resolves against the configured base URL."""
    batch = _ended(emulator, 4)
    relative = httpx.URL(batch["results_url"]).raw_path.decode()
    done = await _archive({**batch, "results_url": relative}, client, store)
    assert isinstance(done, Archived)
    assert done.lines == 4


async def test_a_results_url_on_another_host_is_refused_before_any_request(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """Our key goes only to the API host: another host is a download failure, unsent."""
    batch = _ended(emulator, 4)
    elsewhere = {**batch, "results_url": f"https://elsewhere.example/{batch['id']}/results"}
    with pytest.raises(ArchiveError) as caught:
        await _archive(elsewhere, client, store)
    assert caught.value.cause == "download"
    assert isinstance(caught.value.__cause__, ApiResponseError)
    assert client.stats.requests == 0


async def test_a_batch_that_has_not_ended_is_refused(
    emulator: Emulator, client: BatchesClient, store: Store
) -> None:
    """Counts are final only once ended: ArchiveError(not_ended), nothing requested."""
    batch: dict[str, Any] = dict(emulator.add_batch(status="in_progress"))
    with pytest.raises(ArchiveError) as caught:
        await _archive(batch, client, store)
    assert caught.value.cause == "not_ended"
    assert client.stats.requests == 0
