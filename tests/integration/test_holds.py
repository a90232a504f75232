"""Holds, the blast-radius stop and unknown statuses, over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cleaner.bootstrap import build_daemon
from cleaner.cycle import CycleOptions
from cleaner.emulator import Emulator, Population
from cleaner.holds import parse_holds
from cleaner.models import CycleReport, KeepReason, Outcome
from cleaner.settings import settings_from
from tests.fakes import EventLog
from tests.integration.conftest import DAY, KEY, POLICY, cycle, open_test_client

FAST = CycleOptions(wait_timeout_s=10.0, poll_initial_s=0.05, poll_max_s=0.2)


def holds_text(*entries: str) -> str:
    return "holds:\n" + "".join(entries)


def ids_left(emulator: Emulator) -> set[str]:
    return {str(b["id"]) for b in emulator.batches()}


async def test_a_batch_id_hold_keeps_an_expired_batch_and_plan_names_its_owner(
    emulator: Emulator, base_url: str
) -> None:
    """The held batch survives, with reason held; its neighbours are deleted."""
    held, *others = emulator.seed(Population(count=4, status="ended", age_s=40 * DAY))
    holds = parse_holds(
        holds_text(f"  - batch_id: {held}\n    reason: eval run 42\n    owner: ml-infra\n"),
        source="holds.yaml",
    )
    report, _ = await cycle(base_url, policy=replace(POLICY, holds=holds), options=FAST)
    assert ids_left(emulator) == {held}
    assert report.kept[KeepReason.HELD] == 1
    assert report.outcome_count(Outcome.DELETED) == 3
    assert set(others).isdisjoint(ids_left(emulator))


async def test_a_window_hold_keeps_running_and_ended_batches_inside_it_only(
    emulator: Emulator, base_url: str
) -> None:
    """Bounds are exclusive: batches created inside a window are neither canceled nor deleted."""
    now = datetime.now(UTC)
    inside = emulator.seed(
        Population(count=3, status="ended", age_s=40 * DAY),
        Population(count=2, status="in_progress", age_s=3 * 3600),
    )
    outside = emulator.seed(
        Population(count=3, status="ended", age_s=60 * DAY),
        Population(count=1, status="in_progress", age_s=5 * 3600),
    )

    def window(older: timedelta, younger: timedelta) -> str:
        after = (now - older).isoformat().replace("+00:00", "Z")
        before = (now - younger).isoformat().replace("+00:00", "Z")
        return f"  - created_after: {after}\n    created_before: {before}\n    reason: legal\n"

    holds = parse_holds(
        holds_text(
            window(timedelta(days=41), timedelta(days=39)),
            window(timedelta(hours=4), timedelta(hours=2)),
        ),
        source="holds.yaml",
    )
    journal_mark = len(emulator.journal)
    await cycle(base_url, policy=replace(POLICY, holds=holds), options=FAST)
    assert set(inside) <= ids_left(emulator)
    assert set(outside).isdisjoint(ids_left(emulator))
    touched = {entry.batch_id for entry in emulator.journal[journal_mark:]}
    assert touched.isdisjoint(inside)


async def test_an_expired_hold_protects_nothing_and_overlapping_holds_add_up(
    emulator: Emulator, base_url: str
) -> None:
    """A hold past its until is ignored; a second, active hold on the same batch still keeps it."""
    lapsed, kept_twice = emulator.seed(Population(count=2, status="ended", age_s=40 * DAY))
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    holds = parse_holds(
        holds_text(
            f"  - batch_id: {lapsed}\n    reason: old\n    until: {yesterday}\n",
            f"  - batch_id: {kept_twice}\n    reason: first\n    until: {yesterday}\n",
            f"  - batch_id: {kept_twice}\n    reason: second\n",
        ),
        source="holds.yaml",
    )
    await cycle(base_url, policy=replace(POLICY, holds=holds), options=FAST)
    assert ids_left(emulator) == {kept_twice}


async def test_a_hold_ending_within_a_day_is_announced_with_the_batches_it_covers(
    emulator: Emulator, base_url: str
) -> None:
    """hold_expiring, once per cycle, names the hold and its batches before they go."""
    (held,) = emulator.seed(Population(count=1, status="ended", age_s=40 * DAY))
    soon = (datetime.now(UTC) + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    holds = parse_holds(
        holds_text(f"  - batch_id: {held}\n    reason: audit\n    owner: sec\n    until: {soon}\n"),
        source="holds.yaml",
    )
    _, log = await cycle(base_url, policy=replace(POLICY, holds=holds), options=FAST)
    (warning,) = log.named("hold_expiring")
    assert warning["level"] == "warning"
    assert warning["batches"] == [held]
    assert warning["owner"] == "sec"
    assert held in ids_left(emulator)


def _daemon_settings(base_url: str, holds_file: Path, **extra: str) -> object:
    return settings_from(
        {
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": base_url,
            "CLEANER_RETENTION": "30d",
            "CLEANER_SCHEDULE": "1h",
            "CLEANER_WAIT_TIMEOUT": "5s",
            "CLEANER_HOLDS_FILE": str(holds_file),
            **extra,
        }
    )


async def test_a_holds_file_changed_between_two_cycles_takes_effect_without_a_restart(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """Cycle one keeps the held batch; the hold is removed from the file; cycle two deletes it."""
    (held,) = emulator.seed(Population(count=1, status="ended", age_s=40 * DAY))
    holds_file = tmp_path / "holds.yaml"
    holds_file.write_text(holds_text(f"  - batch_id: {held}\n    reason: wait for me\n"))
    settings = _daemon_settings(base_url, holds_file)
    async with open_test_client(base_url) as client:
        daemon = build_daemon(settings, client, log=EventLog())  # type: ignore[arg-type]
        first = await daemon.run_cycle()
        assert held in ids_left(emulator)
        holds_file.write_text("holds: []\n")
        second = await daemon.run_cycle()
    assert first.kept[KeepReason.HELD] == 1
    assert second.outcome_count(Outcome.DELETED) == 1
    assert held not in ids_left(emulator)


async def test_a_holds_file_broken_while_running_stops_that_cycle_only(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """Fail closed: holds_invalid, nothing mutated, not ok; the next good cycle cleans."""
    emulator.seed(Population(count=3, status="ended", age_s=40 * DAY))
    holds_file = tmp_path / "holds.yaml"
    holds_file.write_text("holds:\n  - reason: no selector at all\n")
    settings = _daemon_settings(base_url, holds_file)
    log = EventLog()
    async with open_test_client(base_url) as client:
        daemon = build_daemon(settings, client, log=log)  # type: ignore[arg-type]
        broken = await daemon.run_cycle()
        assert emulator.journal == []
        holds_file.write_text("holds: []\n")
        healed = await daemon.run_cycle()
    assert not broken.ok
    (error,) = log.named("holds_invalid")
    assert error["level"] == "error"
    assert "holds.yaml" in error["error"]
    assert healed.ok
    assert healed.outcome_count(Outcome.DELETED) == 3


@pytest.mark.parametrize(
    ("expired", "fresh", "stops"),
    [(30, 70, False), (31, 69, True), (29, 71, False), (10, 0, False), (11, 0, True)],
)
async def test_the_blast_radius_stop_fires_only_above_the_fraction_and_ten_actions(
    emulator: Emulator, base_url: str, expired: int, fresh: int, stops: bool
) -> None:
    """At 0.3: 30 of 100 acts, 31 of 100 stops; 10 actions never stop, 11 of 11 do."""
    emulator.seed(Population(count=expired, status="ended", age_s=40 * DAY))
    if fresh:
        emulator.seed(Population(count=fresh, status="ended", age_s=DAY))
    options = replace(FAST, max_delete_fraction=0.3)
    report, log = await cycle(base_url, options=options)
    if stops:
        (line,) = log.named("blast_radius_exceeded")
        assert (line["planned"], line["listed"]) == (expired, expired + fresh)
        assert emulator.journal == []
        assert not report.ok
    else:
        assert not log.named("blast_radius_exceeded")
        assert report.outcome_count(Outcome.DELETED) == expired
        assert report.ok


async def test_unknown_statuses_are_kept_counted_and_warned_while_the_rest_is_cleaned(
    emulator: Emulator, base_url: str
) -> None:
    """One odd batch no longer stops all cleaning: it is kept, the others go."""
    odd = emulator.seed(
        Population(count=2, status="ended", age_s=40 * DAY, processing_status="archiving")
    )
    normal = emulator.seed(Population(count=5, status="ended", age_s=40 * DAY))
    report, log = await cycle(base_url, options=FAST)
    assert set(odd) == ids_left(emulator)
    assert set(normal).isdisjoint(ids_left(emulator))
    assert report.kept[KeepReason.UNKNOWN_STATUS] == 2
    (warning,) = log.named("unknown_processing_status")
    assert warning["statuses"] == {"archiving": 2}
    (planned,) = log.named("cycle_planned")
    assert planned["seen"]["archiving"] == 2
    assert report.ok


async def test_the_daemon_loop_keeps_refusing_while_the_blast_radius_is_exceeded(
    emulator: Emulator, base_url: str, tmp_path: Path
) -> None:
    """Every cycle refuses the same way until the configuration changes."""
    emulator.seed(Population(count=20, status="ended", age_s=40 * DAY))
    holds_file = tmp_path / "holds.yaml"
    holds_file.write_text("holds: []\n")
    settings = _daemon_settings(base_url, holds_file, CLEANER_MAX_DELETE_FRACTION="0.5")
    reports: list[CycleReport] = []
    async with open_test_client(base_url) as client:
        daemon = build_daemon(settings, client, log=EventLog(), observers=(reports.append,))  # type: ignore[arg-type]
        for _ in range(2):
            await asyncio.wait_for(daemon.run_cycle(), timeout=20)
    assert [r.ok for r in reports] == [False, False]
    assert emulator.journal == []
