"""``cleaner report``: counts from the receipts, lateness, and the chain verified end to end."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import orjson
import pytest

from cleaner.report import main
from cleaner.storage import Store, open_store
from tests import storage_fixtures
from tests.audit_helpers import (
    POLICY_SHA,
    T0,
    TickingClock,
    altered,
    edit_lines,
    intent,
    receipt,
    record_cycle,
    trail_on,
)

# The shared storage fixtures, made visible to this module.
file_url, s3_url, store_url = (
    storage_fixtures.file_url,
    storage_fixtures.s3_url,
    storage_fixtures.store_url,
)
s3_server = storage_fixtures.s3_server

NOW = T0 + timedelta(days=2)


def report(url: str, *args: str) -> tuple[int, str]:
    """Run the report as the CLI does; its exit status and what it printed."""
    out = io.StringIO()
    status = main(list(args), audit_url=url, now=NOW, out=out)
    return status, out.getvalue()


def report_json(url: str, *args: str) -> tuple[int, dict[str, object]]:
    status, text = report(url, "--format", "json", *args)
    return status, orjson.loads(text)


async def three_cycles(url: str) -> list[str]:
    """Three sealed cycles, a day apart; returns their object paths."""
    store = open_store(url)
    for day, cycle_id in enumerate(["c1", "c2", "c3"]):
        started = T0 + timedelta(hours=12 * day)
        trail = trail_on(store, clock=TickingClock(started))
        await record_cycle(trail, cycle_id, ["deleted", "deleted", "already_gone", "failed"],
                           started_at=started)  # fmt: skip
    return await store.list("cycles")


def test_the_report_counts_outcomes_by_day_and_reason_and_the_chain_holds(store_url: str) -> None:
    """JSON form: totals, rows by day and reason, chain_ok true, exit 0."""
    asyncio.run(three_cycles(store_url))
    status, data = report_json(store_url)
    assert status == 0
    assert (data["deleted"], data["already_gone"], data["failed"]) == (6, 3, 3)
    assert data["chain_ok"] is True
    assert data["by_day"] == [
        {"day": "2026-12-01", "reason": "ended_past_retention", "deleted": 2,
         "already_gone": 1, "failed": 1},
        {"day": "2026-12-02", "reason": "ended_past_retention", "deleted": 4,
         "already_gone": 2, "failed": 2},
    ]  # fmt: skip


def test_since_counts_only_recent_receipts_but_verifies_everything(store_url: str) -> None:
    """--since 30h leaves out the first day's receipts; the chain is still checked whole."""
    asyncio.run(three_cycles(store_url))
    status, data = report_json(store_url, "--since", "30h")
    assert status == 0
    assert (data["deleted"], data["already_gone"], data["failed"]) == (2, 1, 1)
    assert data["chain"] == {"objects": 3, "records": 30, "pending_cycles": 0, "problems": []}


def test_the_report_names_the_oldest_late_deletion_and_by_how_much(store_url: str) -> None:
    """A deletion after its deadline is late; the oldest such batch is named with its delay."""

    async def cycle() -> None:
        log = await trail_on(open_store(store_url)).open_cycle(
            cycle_id="c1", policy_sha256=POLICY_SHA, started_at=T0
        )
        deadline = T0 - timedelta(hours=1)
        for batch_id, created_days, deleted_at in [
            ("msgbatch_on_time", 31, deadline - timedelta(minutes=1)),
            ("msgbatch_late_new", 30, T0),
            ("msgbatch_late_old", 35, T0 - timedelta(minutes=30)),
        ]:
            await log.intend(intent(batch_id, deadline=deadline))
            await log.receipt(receipt(
                batch_id, "deleted", deleted_at=deleted_at, deadline=deadline,
                created_at=T0 - timedelta(days=created_days),
            ))  # fmt: skip
        await log.seal()

    asyncio.run(cycle())
    status, data = report_json(store_url)
    assert status == 0
    assert data["late"] == {
        "count": 2,
        "max_late_s": 3600.0,
        "oldest": {
            "batch_id": "msgbatch_late_old",
            "created_at": "2026-10-27T12:00:00.000000Z",
            "deadline": "2026-12-01T11:00:00.000000Z",
            "deleted_at": "2026-12-01T11:30:00.000000Z",
            "late_s": 1800.0,
        },
    }
    status, text = report(store_url)
    assert "oldest msgbatch_late_old created 2026-10-27T12:00:00.000000Z, 1800 s late" in text


def test_the_table_form_prints_rows_totals_and_the_verdict(store_url: str) -> None:
    """The default table shows a row per day and reason, a total, and 'chain: ok'."""
    asyncio.run(three_cycles(store_url))
    status, text = report(store_url)
    assert status == 0
    lines = text.splitlines()
    assert lines[1].split() == ["2026-12-01", "ended_past_retention", "2", "1", "1"]
    assert lines[3].split() == ["total", "6", "3", "3"]
    assert lines[-1].startswith("chain: ok: 3 cycle objects, 30 records")


def test_an_intent_without_a_receipt_is_counted_as_unconfirmed(store_url: str) -> None:
    """A killed cycle's last intent, with no receipt, shows as unconfirmed after recovery."""

    async def crashed_then_recovered() -> None:
        dead = await trail_on(open_store(store_url)).open_cycle(
            cycle_id="dead", policy_sha256=POLICY_SHA, started_at=T0
        )
        await dead.intend(intent("msgbatch_1"))
        later = T0 + timedelta(hours=1)
        trail = trail_on(open_store(store_url), clock=TickingClock(later))
        await (await trail.open_cycle(cycle_id="next", policy_sha256=POLICY_SHA,
                                      started_at=later)).seal()  # fmt: skip

    asyncio.run(crashed_then_recovered())
    status, data = report_json(store_url)
    assert (status, data["unconfirmed_intents"], data["chain_ok"]) == (0, 1, True)


Tamper = Callable[[Store, list[str]], Coroutine[Any, Any, str]]


async def edit_a_record(store: Store, objects: list[str]) -> str:
    await edit_lines(store, objects[1], lambda ls: [*ls[:3], altered(ls[3], outcome="deleted",
                     batch_id="msgbatch_other"), *ls[4:]])  # fmt: skip
    return f"{objects[1]} line 4: record altered"


async def delete_a_record(store: Store, objects: list[str]) -> str:
    await edit_lines(store, objects[1], lambda ls: [*ls[:3], *ls[4:]])
    return f"{objects[1]} line 4: out of order or a record before it is missing"


async def reorder_records(store: Store, objects: list[str]) -> str:
    await edit_lines(store, objects[1], lambda ls: [*ls[:2], ls[3], ls[2], *ls[4:]])
    return f"{objects[1]} line 3: out of order"


async def delete_the_last_record(store: Store, objects: list[str]) -> str:
    await edit_lines(store, objects[2], lambda ls: [*ls[:-2], ls[-1]])
    return f"{objects[2]} line 9: out of order or a record before it is missing"


async def truncate_the_last_object(store: Store, objects: list[str]) -> str:
    await edit_lines(store, objects[2], lambda ls: ls[:-3])
    return f"{objects[2]} line 7: not sealed"


async def delete_the_last_object(store: Store, objects: list[str]) -> str:
    await store.delete(objects[2])
    return f"HEAD: names {objects[2]}, which is missing"


async def delete_a_middle_object(store: Store, objects: list[str]) -> str:
    await store.delete(objects[1])
    return f"{objects[2]} line 1: previous object {objects[1]} is missing"


async def delete_head(store: Store, objects: list[str]) -> str:
    await store.delete("HEAD")
    return "HEAD: HEAD is missing"


@pytest.mark.parametrize(
    "tamper",
    [
        edit_a_record,
        delete_a_record,
        reorder_records,
        delete_the_last_record,
        truncate_the_last_object,
        delete_the_last_object,
        delete_a_middle_object,
        delete_head,
    ],
)
def test_tampering_is_detected_and_named_by_object_and_line(store_url: str, tamper: Tamper) -> None:
    """Each kind of edit breaks the chain: exit 1, and the problem says where."""
    objects = asyncio.run(three_cycles(store_url))
    expected = asyncio.run(tamper(open_store(store_url), objects))
    status, data = report_json(store_url)
    assert status == 1
    assert data["chain_ok"] is False
    problems = data["chain"]["problems"]  # type: ignore[index]
    shown = [f"{p['object']}" + (f" line {p['line']}" if p["line"] else "") + f": {p['problem']}"
             for p in problems]  # fmt: skip
    assert any(line.startswith(expected) for line in shown), shown
    status, text = report(store_url)
    assert status == 1
    assert "chain: BROKEN" in text


@pytest.mark.parametrize("args", [["--since", "forever"], ["--format", "yaml"], ["--bogus"]])
def test_bad_arguments_exit_2(
    file_url: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Arguments the report does not understand: exit 2, usage on stderr."""
    status, text = report(file_url, *args)
    assert (status, text) == (2, "")
    assert "usage: cleaner report" in capsys.readouterr().err


def test_an_unusable_store_url_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A url no backend handles is a configuration error."""
    status, _ = report("ftp://nowhere/audit")
    assert status == 2
    assert "cannot read the audit store" in capsys.readouterr().err


def test_an_empty_store_reports_nothing_and_holds(file_url: str) -> None:
    """No receipts yet: zero counts, chain ok."""
    status, data = report_json(file_url)
    assert (status, data["deleted"], data["chain_ok"]) == (0, 0, True)
