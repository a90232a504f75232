"""One small object-storage layer: local directories and S3, GCS or Azure buckets.

Built on obstore (the Rust ``object_store`` crate): async, one wheel for every backend,
atomic puts, create-only puts, and multipart uploads streamed from async iterators.
Credentials and endpoints come from the backend's standard environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP`` ...) as obstore reads
them; this module never sees them, and :meth:`Store.describe` never shows any.

Durability: a cloud PUT is durable when acknowledged. obstore's local store writes a
staging file and renames (or, create-only, hard-links) it into place but never fsyncs,
so on ``file://`` every write here is followed by an fsync of the file and of the
directories that name it before the call returns.

Every failure is a :class:`StorageError`, chained with ``from``::

    StorageError                 names the store (described url) and the path
    ├── ObjectNotFoundError      get/stream/head of a path that does not exist
    ├── ObjectExistsError        create-only put of a path that already exists
    └── StorageUnavailableError  anything else: refused, denied, timed out, bad config
"""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import obstore
from obstore import exceptions as obx
from obstore.store import LocalStore, from_url

from cleaner.errors import CleanerError

if TYPE_CHECKING:
    from obstore.store import ObjectStore, RetryConfig

__all__ = [
    "ObjectExistsError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "StorageError",
    "StorageUnavailableError",
    "Store",
    "describe_url",
    "open_store",
]

_SCHEMES = frozenset({"file", "memory", "s3", "s3a", "gs", "az", "azure", "abfs", "abfss"})
_STREAM_CHUNK = 1 << 20


class StorageError(CleanerError):
    """A storage operation failed; ``store`` is the described url, never credentials."""

    def __init__(self, message: str, *, store: str, path: str = "") -> None:
        where = f"{store.rstrip('/')}/{path}" if path else store
        super().__init__(f"{message}: {where}")
        self.store = store
        self.path = path


class ObjectNotFoundError(StorageError):
    """The object does not exist."""


class ObjectExistsError(StorageError):
    """A create-only put found the object already there."""


class StorageUnavailableError(StorageError):
    """The store could not be reached, refused access, or is misconfigured."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a head or listing says about one object."""

    path: str
    size: int
    etag: str | None
    last_modified: datetime


def describe_url(url: str) -> str:
    """The url without user info, query or fragment: safe for log lines."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def open_store(
    url: str,
    *,
    retry_timeout_s: float = 60.0,
    max_retries: int = 3,
) -> Store:
    """A store for ``url`` (``file:///abs/dir``, ``s3://bucket/prefix``, ``gs://``, ``az://``).

    ``retry_timeout_s`` and ``max_retries`` bound obstore's own retries of a failing
    request, so an unreachable store fails within about ``retry_timeout_s``.
    A local directory is created if missing. Nothing is contacted here: the first
    operation is the first request. Raises :class:`StorageUnavailableError` for a url
    that names no supported backend or a directory that cannot be created.
    """
    described = describe_url(url)
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise StorageUnavailableError(f"unsupported storage url scheme {scheme!r}", store=described)
    try:
        if scheme == "file":
            root = Path(urlsplit(url).path)
            if not root.is_absolute():
                raise StorageUnavailableError(
                    "a file:// url needs an absolute path", store=described
                )
            root.mkdir(parents=True, exist_ok=True)
            return Store(LocalStore(root), described=described, local_root=root.resolve())
        if scheme == "memory":
            return Store(from_url(url), described=described)
        # No client options: passing any replaces those obstore read from the environment
        # (AWS_ALLOW_HTTP among them). Its defaults: 5 s to connect, 30 s per request.
        retry: RetryConfig = {
            "max_retries": max_retries,
            "retry_timeout": timedelta(seconds=retry_timeout_s),
        }
        return Store(from_url(url, retry_config=retry), described=described)
    except StorageError:
        raise
    except (obx.BaseError, OSError, ValueError) as exc:
        raise StorageUnavailableError(
            f"cannot open store ({type(exc).__name__})", store=described
        ) from exc


class Store:
    """Async get/put/list/delete on one store; paths are ``/``-separated, relative."""

    def __init__(
        self, inner: ObjectStore, *, described: str, local_root: Path | None = None
    ) -> None:
        self._inner = inner
        self._described = described
        self._local_root = local_root
        self._durable_dirs: set[Path] = set()

    def __repr__(self) -> str:
        return f"Store({self._described!r})"

    def describe(self) -> str:
        """The store's url without any credentials."""
        return self._described

    async def put(self, path: str, data: bytes, *, create_only: bool = False) -> None:
        """Write ``data`` atomically; with ``create_only``, fail if ``path`` exists."""
        try:
            await obstore.put_async(
                self._inner,
                path,
                data,
                mode="create" if create_only else "overwrite",
                use_multipart=False,
            )
        except Exception as exc:
            raise self._translate(exc, "put", path) from exc
        await self._make_durable(path)

    async def put_stream(
        self,
        path: str,
        chunks: AsyncIterator[bytes],
        *,
        chunk_size: int = 5 * 1024 * 1024,
        max_concurrency: int = 2,
    ) -> None:
        """Write an object from an async iterator, multipart; it appears only when complete.

        An exception raised by ``chunks`` itself propagates unchanged: it is the
        source's failure, not the store's.
        """
        source = _Watched(chunks)
        try:
            await obstore.put_async(
                self._inner,
                path,
                source,
                use_multipart=True,
                chunk_size=chunk_size,
                max_concurrency=max_concurrency,  # bounds memory: obstore's default is 12
            )
        except Exception as exc:
            if exc is source.failure:
                raise
            raise self._translate(exc, "put", path) from exc
        await self._make_durable(path)

    async def get(self, path: str) -> bytes:
        """The whole object."""
        try:
            result = await obstore.get_async(self._inner, path)
            return bytes(await result.bytes_async())
        except Exception as exc:
            raise self._translate(exc, "get", path) from exc

    async def stream(self, path: str) -> AsyncIterator[bytes]:
        """The object in chunks of about 1 MiB, without holding it all in memory."""
        try:
            result = await obstore.get_async(self._inner, path)
            async for chunk in result.stream(min_chunk_size=_STREAM_CHUNK):
                yield bytes(chunk)
        except Exception as exc:
            raise self._translate(exc, "get", path) from exc

    async def head(self, path: str) -> ObjectInfo | None:
        """Size, etag and time of the object, or None when it does not exist."""
        try:
            meta = await obstore.head_async(self._inner, path)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._translate(exc, "head", path) from exc
        return _info(meta)

    async def list(self, prefix: str = "") -> list[str]:
        """Every path under ``prefix`` (a directory-like path, no trailing ``/``), sorted."""
        return [info.path for info in await self.list_info(prefix)]

    async def list_info(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        """Every object under ``prefix`` with its size and etag, sorted by path."""
        try:
            metas = await obstore.list(self._inner, prefix=prefix or None).collect_async()
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._translate(exc, "list", prefix) from exc
        return sorted((_info(m) for m in metas), key=lambda info: info.path)

    async def delete(self, path: str) -> None:
        """Remove the object; removing one that does not exist is not an error."""
        await self.delete_many([path])

    async def delete_many(self, paths: Sequence[str]) -> None:
        """Remove objects (S3 batches them, up to 1,000 a request); missing ones are fine.

        Removal is not fsynced on ``file://``: nothing here relies on a deletion
        surviving a crash.
        """
        if not paths:
            return
        try:
            await obstore.delete_async(self._inner, list(paths))
        except FileNotFoundError:
            # The local store stops at the first missing path: go one by one.
            for path in paths:
                try:
                    await obstore.delete_async(self._inner, path)
                except FileNotFoundError:
                    continue
                except Exception as exc:
                    raise self._translate(exc, "delete", path) from exc
        except Exception as exc:
            raise self._translate(exc, "delete", paths[0]) from exc

    async def _make_durable(self, path: str) -> None:
        if self._local_root is None:
            return
        try:
            await self._fsync_dirs(self._local_root, self._local_root / path)
        except OSError as exc:
            raise self._translate(exc, "fsync", path) from exc

    async def _fsync_dirs(self, root: Path, file: Path) -> None:
        # The file's data, its entry in its directory, and the entry of every directory
        # the put may have created (once durable, a directory's own entry stays so).
        todo = [file, file.parent]
        for directory in file.parents:
            if (
                directory == root
                or directory in self._durable_dirs
                or root not in directory.parents
            ):
                break
            todo.append(directory.parent)
            self._durable_dirs.add(directory)
        await asyncio.to_thread(_fsync_all, todo)

    def _translate(self, exc: BaseException, op: str, path: str) -> StorageError:
        kind = type(exc).__name__
        if isinstance(exc, FileNotFoundError | obx.NotFoundError):
            return ObjectNotFoundError(f"{op}: no such object", store=self._described, path=path)
        if isinstance(exc, obx.AlreadyExistsError | FileExistsError):
            return ObjectExistsError(
                f"{op}: object already exists", store=self._described, path=path
            )
        return StorageUnavailableError(f"{op} failed ({kind})", store=self._described, path=path)


class _Watched:
    """An async iterator that remembers the exception its source raised, if any."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self.failure: BaseException | None = None

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._source)
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            self.failure = exc
            raise


def _fsync_all(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _info(meta: Any) -> ObjectInfo:
    return ObjectInfo(
        path=str(meta["path"]),
        size=int(meta["size"]),
        etag=meta.get("e_tag"),
        last_modified=meta["last_modified"],
    )
