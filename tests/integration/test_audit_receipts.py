"""Receipts written ahead of every action, chained, sealed per cycle: local and S3."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from cleaner.audit import AuditIntegrityError, AuditUnavailableError, NullTrail
from cleaner.chain import Layout
from cleaner.storage import Store, open_store
from tests import storage_fixtures
from tests.audit_helpers import (
    POLICY_SHA,
    T0,
    VERSION,
    FailingStore,
    StallingStore,
    TickingClock,
    intent,
    receipt,
    record_cycle,
    trail_on,
)
from tests.s3server import running_s3_server

# The shared storage fixtures, made visible to this module.
file_url, s3_url, store_url = (
    storage_fixtures.file_url,
    storage_fixtures.s3_url,
    storage_fixtures.store_url,
)
s3_server = storage_fixtures.s3_server

RECEIPT_KEYS = {
    "batch_id", "action", "reason", "outcome", "created_at", "ended_at", "archived_at",
    "request_counts", "confirmation", "request_id", "deleted_at", "cycle_id",
    "policy_sha256", "cleaner_version", "verified_absent", "deadline", "at",
}  # fmt: skip


async def records(store: Store, path: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in (await store.get(path)).splitlines()]


async def test_every_outcome_gets_a_receipt_in_one_sealed_cycle_object(store_url: str) -> None:
    """Deleted, already-gone and failed actions each leave an intent and a receipt."""
    store = open_store(store_url)
    await record_cycle(trail_on(store), "c1", ["deleted", "already_gone", "failed"])
    objects = await store.list("cycles")
    assert len(objects) == 1
    assert objects[0].startswith("cycles/2026/12/01/20261201T120000.000000Z-c1")
    lines = await records(store, objects[0])
    kinds = [str(line["kind"]) for line in lines]
    assert kinds[0] == "cycle"
    assert kinds[-1] == "seal"
    assert sorted(kinds[1:-1]) == ["intent"] * 3 + ["receipt"] * 3
    outcomes = sorted(str(line["outcome"]) for line in lines if line["kind"] == "receipt")
    assert outcomes == ["already_gone", "deleted", "failed"]
    assert await store.list("pending") == []


async def test_a_receipt_carries_every_field_and_the_callers_extras(store_url: str) -> None:
    """A receipt holds the batch facts, the cycle's identity and whatever the caller adds."""
    store = open_store(store_url)
    log = await trail_on(store).open_cycle(cycle_id="c1", policy_sha256=POLICY_SHA, started_at=T0)
    await log.intend(intent("msgbatch_1"))
    await log.receipt(
        receipt("msgbatch_1", "deleted", deleted_at=T0, archive_uri="s3://a/b", archive_bytes=7)
    )
    await log.seal()
    (path,) = await store.list("cycles")
    (line,) = [r for r in await records(store, path) if r["kind"] == "receipt"]
    assert set(line) >= RECEIPT_KEYS | {"archive_uri", "archive_bytes", "seq", "prev", "hash"}
    assert (line["cycle_id"], line["policy_sha256"], line["cleaner_version"]) == (
        "c1",
        POLICY_SHA,
        VERSION,
    )
    assert line["confirmation"] == {"id": "msgbatch_1", "type": "message_batch_deleted"}
    assert line["deleted_at"] == "2026-12-01T12:00:00.000000Z"


async def test_each_cycle_object_continues_from_the_previous_and_head_names_the_last(
    store_url: str,
) -> None:
    """The second cycle's header names the first object and its seal's hash; HEAD the second."""
    store = open_store(store_url)
    trail = trail_on(store)
    await record_cycle(trail, "c1", ["deleted"], started_at=T0)
    await record_cycle(trail, "c2", ["deleted"], started_at=T0.replace(hour=13))
    first, second = await store.list("cycles")
    first_seal = (await records(store, first))[-1]
    header = (await records(store, second))[0]
    assert (header["prev_object"], header["prev"]) == (first, first_seal["hash"])
    head = orjson.loads(await store.get("HEAD"))
    assert (head["object"], head["hash"]) == (second, (await records(store, second))[-1]["hash"])


async def test_a_cycle_that_did_nothing_leaves_no_object(store_url: str) -> None:
    """Opening and sealing a cycle with no actions writes no cycle object and no HEAD."""
    store = open_store(store_url)
    await record_cycle(trail_on(store), "idle", [])
    assert await store.list() == []


async def test_the_workspace_layout_puts_everything_under_the_workspace(store_url: str) -> None:
    """With a workspace, HEAD, cycles and pending all live under ``<workspace>/``."""
    store = open_store(store_url)
    await record_cycle(trail_on(store, workspace="wrkspc_a"), "c1", ["deleted"])
    paths = await store.list()
    assert paths[0] == "wrkspc_a/HEAD"
    assert all(path.startswith("wrkspc_a/") for path in paths)
    (path,) = [p for p in paths if "/cycles/" in p]
    assert all(r.get("workspace") == "wrkspc_a" for r in (await records(store, path))[:-1])


async def test_an_unwritable_directory_fails_the_cycle_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    """open_cycle raises AuditUnavailableError when the pending directory cannot be made."""
    store = open_store((tmp_path / "audit").as_uri())
    (tmp_path / "audit" / "pending").write_bytes(b"a file where a directory must go")
    with pytest.raises(AuditUnavailableError, match="audit sink unavailable"):
        await trail_on(store).open_cycle(cycle_id="c1", policy_sha256=POLICY_SHA, started_at=T0)


async def test_a_stopped_server_fails_the_cycle_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """open_cycle raises AuditUnavailableError when the S3 server is gone."""
    with running_s3_server() as server:
        bucket = server.create_bucket()
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        store = open_store(f"s3://{bucket}/audit", retry_timeout_s=1.0, max_retries=1)
        server.stop()
        with pytest.raises(AuditUnavailableError, match=f"s3://{bucket}/audit"):
            await trail_on(store).open_cycle(cycle_id="c1", policy_sha256=POLICY_SHA, started_at=T0)


async def test_a_server_lost_mid_cycle_fails_the_next_intent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the S3 server stops, intend raises AuditUnavailableError."""
    with running_s3_server() as server:
        bucket = server.create_bucket()
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        store = open_store(f"s3://{bucket}/audit", retry_timeout_s=1.0, max_retries=1)
        log = await trail_on(store).open_cycle(
            cycle_id="c1", policy_sha256=POLICY_SHA, started_at=T0
        )
        await log.intend(intent("msgbatch_1"))
        server.stop()
        with pytest.raises(AuditUnavailableError):
            await log.intend(intent("msgbatch_2"))


async def test_after_one_failed_write_every_later_record_fails_without_a_write() -> None:
    """Fail closed for the rest of the cycle: no further write is even attempted."""
    store = FailingStore()
    log = await trail_on(store).open_cycle(cycle_id="c1", policy_sha256=POLICY_SHA, started_at=T0)
    await log.intend(intent("msgbatch_1"))
    store.broken = True
    with pytest.raises(AuditUnavailableError):
        await log.intend(intent("msgbatch_2"))
    store.broken = False
    with pytest.raises(AuditUnavailableError):
        await log.receipt(receipt("msgbatch_1", "deleted"))
    assert len(await store.list("pending/c1")) == 2  # the header and the first intent


async def test_records_arriving_during_a_write_share_the_next_write() -> None:
    """Group commit: 31 intents queued behind one in-flight write go out in one more write."""
    store = StallingStore()
    log = await trail_on(store).open_cycle(cycle_id="c1", policy_sha256=POLICY_SHA, started_at=T0)
    store.puts.clear()
    store.put_started.clear()
    store.stall = True
    first = asyncio.create_task(log.intend(intent("msgbatch_0")))
    await store.put_started.wait()
    rest = [asyncio.create_task(log.intend(intent(f"msgbatch_{n}"))) for n in range(1, 32)]
    await asyncio.sleep(0)  # one turn of the loop: every new task queues its record
    store.gate.set()
    await asyncio.gather(first, *rest)
    assert [data.count(b"\n") for _, data in store.puts] == [1, 31]
    assert [path.rsplit("/", 1)[-1] for path, _ in store.puts] == [
        "0000000001.jsonl",
        "0000000002.jsonl",
    ]


async def test_a_killed_cycle_is_sealed_by_the_next_start(store_url: str) -> None:
    """Pending segments of a cycle never sealed become its cycle object, marked recovered."""
    dead = await trail_on(open_store(store_url)).open_cycle(
        cycle_id="dead", policy_sha256=POLICY_SHA, started_at=T0
    )
    await dead.intend(intent("msgbatch_1"))
    await dead.receipt(receipt("msgbatch_1", "deleted"))
    await dead.intend(intent("msgbatch_2"))  # killed here: no receipt, no seal
    store = open_store(store_url)
    log = await trail_on(store, clock=TickingClock(T0.replace(hour=13))).open_cycle(
        cycle_id="next", policy_sha256=POLICY_SHA, started_at=T0.replace(hour=13)
    )
    (path,) = await store.list("cycles")
    lines = await records(store, path)
    assert [line["kind"] for line in lines] == ["cycle", "intent", "receipt", "intent", "seal"]
    assert lines[-1]["recovered"] is True
    assert orjson.loads(await store.get("HEAD"))["object"] == path
    assert [p.split("/")[1] for p in await store.list("pending")] == ["next"]
    await log.intend(intent("msgbatch_3"))
    await log.seal()
    assert len(await store.list("cycles")) == 2


async def test_a_crash_between_the_object_and_head_is_finished_at_the_next_start() -> None:
    """If HEAD could not be moved, the next start moves it and clears the segments."""
    store = FailingStore()
    store.fail_path = lambda path: path == "HEAD"
    log = await trail_on(store).open_cycle(cycle_id="c1", policy_sha256=POLICY_SHA, started_at=T0)
    await log.intend(intent("msgbatch_1"))
    store.broken = True
    with pytest.raises(AuditUnavailableError, match="cannot seal cycle c1"):
        await log.seal()
    (path,) = await store.list("cycles")
    store.broken = False
    await trail_on(store).open_cycle(
        cycle_id="c2", policy_sha256=POLICY_SHA, started_at=T0.replace(hour=13)
    )
    assert orjson.loads(await store.get("HEAD"))["object"] == path
    assert await store.list(Layout().pending_cycle("c1")) == []


async def test_a_lost_head_stops_receipts_until_someone_looks(store_url: str) -> None:
    """Cycle objects without HEAD is an integrity error: fail closed, do not fork the chain."""
    store = open_store(store_url)
    await record_cycle(trail_on(store), "c1", ["deleted"])
    await store.delete("HEAD")
    with pytest.raises(AuditIntegrityError, match="HEAD is missing"):
        await trail_on(store).open_cycle(cycle_id="c2", policy_sha256=POLICY_SHA, started_at=T0)


async def test_the_null_trail_records_nothing_and_never_fails() -> None:
    """With no receipts configured the same calls succeed and write nothing."""
    log = await NullTrail().open_cycle(cycle_id="c1", policy_sha256=POLICY_SHA, started_at=T0)
    await log.intend(intent("msgbatch_1"))
    await log.receipt(receipt("msgbatch_1", "deleted"))
    await log.seal()
    assert NullTrail().describe() == "none"
