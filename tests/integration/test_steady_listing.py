"""The daemon's steady state over real HTTP: after one full listing, cycles page only the bands."""

from __future__ import annotations

from cleaner.bootstrap import build_daemon
from cleaner.emulator import Emulator, Population
from cleaner.settings import settings_from
from tests.fakes import EventLog
from tests.integration.conftest import DAY, KEY, open_test_client


def _settings(base_url: str, **extra: str) -> object:
    return settings_from(
        {
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": base_url,
            "CLEANER_RETENTION": "30d",
            "CLEANER_PROCESSING_RETENTION": "2h",
            "CLEANER_SCHEDULE": "15m",
            "CLEANER_WAIT_TIMEOUT": "5s",
            **extra,
        }
    )


async def test_after_a_full_first_cycle_the_next_ones_list_only_what_can_have_changed(
    emulator: Emulator, base_url: str
) -> None:
    """5,000 retained batches: the first cycle lists 5 pages, the next a couple, same result."""
    emulator.seed(Population(count=5000, status="ended", age_s=10 * DAY, spread_s=15 * DAY))
    emulator.seed(Population(count=30, status="ended", age_s=40 * DAY))
    log = EventLog()
    async with open_test_client(base_url) as client:
        daemon = build_daemon(_settings(base_url), client, log=log)  # type: ignore[arg-type]
        first = await daemon.run_cycle()
        # The real API creates batches only now; one seeded in the past waits for a full listing.
        emulator.seed(Population(count=7, status="ended", age_s=35 * DAY))
        emulator.seed(Population(count=20, status="ended", age_s=60))  # new work at the head
        second = await daemon.run_cycle()
    planned = log.named("cycle_planned")
    assert [p["listing"] for p in planned] == ["full", "incremental"]
    assert planned[0]["pages"] >= 5
    assert planned[1]["pages"] <= 3
    assert first.ok
    assert second.ok
    assert len(emulator) == 5000 + 20 + 7  # old batches created in the past are not new


async def test_a_changed_policy_or_a_restart_lists_in_full_again(
    emulator: Emulator, base_url: str
) -> None:
    """A new process has no memory: its first cycle is a full listing."""
    emulator.seed(Population(count=50, status="ended", age_s=10 * DAY))
    log = EventLog()
    async with open_test_client(base_url) as client:
        for _ in range(2):  # two processes, one cycle each
            daemon = build_daemon(_settings(base_url), client, log=log)  # type: ignore[arg-type]
            await daemon.run_cycle()
    assert [p["listing"] for p in log.named("cycle_planned")] == ["full", "full"]
