"""The storage layer, on a local directory and on a real S3 server (moto)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cleaner.storage import (
    ObjectExistsError,
    ObjectNotFoundError,
    StorageUnavailableError,
    describe_url,
    open_store,
)
from tests import storage_fixtures
from tests.s3server import SECRET_ACCESS_KEY, S3Server, running_s3_server

# The shared storage fixtures, made visible to this module.
file_url, s3_url, store_url = (
    storage_fixtures.file_url,
    storage_fixtures.s3_url,
    storage_fixtures.store_url,
)
s3_server = storage_fixtures.s3_server

MIB = 1024 * 1024


async def test_put_then_get_returns_the_same_bytes(store_url: str) -> None:
    """What is put is what is read back."""
    store = open_store(store_url)
    await store.put("a/b.jsonl", b"one\ntwo\n")
    assert await store.get("a/b.jsonl") == b"one\ntwo\n"


async def test_put_overwrites_by_default(store_url: str) -> None:
    """A plain put replaces the object."""
    store = open_store(store_url)
    await store.put("k", b"old")
    await store.put("k", b"new")
    assert await store.get("k") == b"new"


async def test_create_only_put_refuses_an_existing_object_and_keeps_it(store_url: str) -> None:
    """A create-only put of an existing path raises ObjectExistsError; the object is unchanged."""
    store = open_store(store_url)
    await store.put("k", b"first", create_only=True)
    with pytest.raises(ObjectExistsError, match="k"):
        await store.put("k", b"second", create_only=True)
    assert await store.get("k") == b"first"


async def test_put_stream_uploads_many_parts_that_read_back_whole(store_url: str) -> None:
    """A streamed upload larger than one part reads back byte for byte, also streamed."""
    store = open_store(store_url)
    parts = [bytes([i]) * (5 * MIB + 7) for i in range(3)]

    async def chunks() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    await store.put_stream("big/results.jsonl", chunks(), chunk_size=5 * MIB)
    pieces = [piece async for piece in store.stream("big/results.jsonl")]
    assert len(pieces) > 1
    assert b"".join(pieces) == b"".join(parts)
    info = await store.head("big/results.jsonl")
    assert info is not None
    assert info.size == sum(map(len, parts))


async def test_a_failing_source_propagates_unchanged_and_leaves_no_object(store_url: str) -> None:
    """The source's own exception reaches the caller, and nothing appears at the path."""
    store = open_store(store_url)

    class SourceFailed(Exception):
        pass

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * (5 * MIB + 1)
        raise SourceFailed

    with pytest.raises(SourceFailed):
        await store.put_stream("partial", chunks(), chunk_size=5 * MIB)
    assert await store.head("partial") is None


async def test_head_gives_size_or_none(store_url: str) -> None:
    """head reports the size of an object and None for a missing one."""
    store = open_store(store_url)
    await store.put("h", b"12345")
    info = await store.head("h")
    assert info is not None
    assert (info.path, info.size) == ("h", 5)
    assert await store.head("missing") is None


async def test_list_returns_the_sorted_paths_under_a_prefix_only(store_url: str) -> None:
    """Listing a prefix shows its objects, sorted, and nothing beside it."""
    store = open_store(store_url)
    for path in ["p/2", "p/1", "p/sub/3", "q/4"]:
        await store.put(path, b"x")
    assert await store.list("p") == ["p/1", "p/2", "p/sub/3"]
    assert await store.list("nothing-here") == []
    assert await store.list() == ["p/1", "p/2", "p/sub/3", "q/4"]


async def test_delete_removes_and_deleting_a_missing_object_is_fine(store_url: str) -> None:
    """delete removes an object; deleting it again is not an error."""
    store = open_store(store_url)
    await store.put("d", b"x")
    await store.delete("d")
    await store.delete("d")
    assert await store.head("d") is None


async def test_get_of_a_missing_object_names_the_store_and_path(store_url: str) -> None:
    """ObjectNotFoundError says which store and which path."""
    store = open_store(store_url)
    with pytest.raises(ObjectNotFoundError) as caught:
        await store.get("no/such")
    assert str(caught.value).endswith(f"{store.describe()}/no/such")
    with pytest.raises(ObjectNotFoundError):
        [piece async for piece in store.stream("no/such")]


async def test_a_stopped_server_is_unavailable_and_no_secret_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against a server that is gone, every call raises StorageUnavailableError, secret-free."""
    with running_s3_server() as server:
        bucket = server.create_bucket()
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        store = open_store(f"s3://{bucket}/x", retry_timeout_s=1.0, max_retries=1)
        await store.put("before", b"ok")
        server.stop()
        with pytest.raises(StorageUnavailableError) as caught:
            await store.put("after", b"lost")
    message = f"{caught.value} {caught.value.__cause__}"
    assert f"s3://{bucket}/x/after" in message
    assert SECRET_ACCESS_KEY not in message


async def test_a_local_store_whose_directory_is_blocked_is_unavailable(tmp_path: Path) -> None:
    """A file where a directory must go makes puts fail with StorageUnavailableError."""
    store = open_store((tmp_path / "root").as_uri())
    (tmp_path / "root" / "cycles").write_bytes(b"in the way")
    with pytest.raises(StorageUnavailableError, match="cycles/2026"):
        await store.put("cycles/2026/x.jsonl", b"x")


def test_a_local_root_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    """open_store fails when the local directory cannot be made."""
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageUnavailableError, match="cannot open store"):
        open_store((tmp_path / "file" / "root").as_uri())


@pytest.mark.parametrize("url", ["ftp://host/x", "relative/dir", "file://relative"])
def test_an_unsupported_url_is_a_storage_error(url: str) -> None:
    """Only the known schemes, and absolute local paths, open."""
    with pytest.raises(StorageUnavailableError):
        open_store(url)


def test_describe_drops_user_info_query_and_fragment() -> None:
    """The described url carries no credentials of any kind."""
    url = "s3://AKIA:secret@bucket/prefix?token=abc#frag"
    assert describe_url(url) == "s3://bucket/prefix"
    assert repr(open_store("memory:///")) == "Store('memory:///')"


async def test_the_s3_fixture_really_talks_to_moto(s3_server: S3Server, s3_url: str) -> None:
    """The s3 variant is served by the test server, not by some local fallback."""
    store = open_store(s3_url)
    assert store.describe().startswith("s3://cleaner-test-")
    await store.put("probe", b"1")
    assert s3_server.endpoint.startswith("http://127.0.0.1:")


async def test_delete_many_removes_several_missing_ones_included(store_url: str) -> None:
    """delete_many removes every named object and ignores names that do not exist."""
    store = open_store(store_url)
    for path in ["m/1", "m/2", "m/3", "m/4"]:
        await store.put(path, b"x")
    await store.delete_many(["m/1", "m/missing", "m/3"])
    assert await store.list("m") == ["m/2", "m/4"]
    await store.delete_many([])
