"""One cycle against the emulator over real HTTP: what is deleted, in what order, and why."""

from __future__ import annotations

from collections import Counter
from typing import Literal

import pytest

from cleaner.cycle import CycleOptions, run_cycle
from cleaner.emulator import Emulator, FaultRule, Population
from cleaner.models import ActionKind, Outcome
from cleaner.policy import RetentionPolicy
from tests.fakes import EventLog
from tests.integration.conftest import DAY, POLICY, cycle, open_test_client


def seed(
    emulator: Emulator,
    *,
    old: int = 0,
    young: int = 0,
    running: int = 0,
    stale_running: int = 0,
    canceling: int = 0,
) -> dict[str, set[str]]:
    """A mixed population; returns the ids of each group."""

    def make(
        count: int, status: Literal["ended", "in_progress", "canceling"], age_s: float
    ) -> set[str]:
        if not count:
            return set()
        return set(
            emulator.seed(
                Population(
                    count=count,
                    status=status,
                    age_s=age_s,
                    spread_s=min(age_s / 10, 3600),
                )
            )
        )

    return {
        "old": make(old, "ended", 40 * DAY),
        "young": make(young, "ended", 1 * DAY),
        "running": make(running, "in_progress", 1800),
        "stale_running": make(stale_running, "in_progress", 3 * 3600),
        "canceling": make(canceling, "canceling", 3 * 3600),
    }


def deletes(emulator: Emulator) -> list[str]:
    """Ids of every DELETE the emulator answered with 200."""
    return [
        e.batch_id or "" for e in emulator.journal if e.endpoint == "delete" and e.status == 200
    ]


def assert_safe(emulator: Emulator, groups: dict[str, set[str]]) -> None:
    """No DELETE was refused (none premature) and no protected-by-age batch is gone."""
    refused = [e for e in emulator.journal if e.endpoint == "delete" and e.status in (400, 409)]
    assert refused == []
    for keep in ("young", "running"):
        assert not groups[keep] & emulator.deleted_ids


async def test_expired_batches_across_many_pages_are_deleted_and_the_rest_kept(
    emulator: Emulator, base_url: str
) -> None:
    """2,500 old batches over three pages go; young and running ones stay."""
    groups = seed(emulator, old=2500, young=300, running=50)
    report, log = await cycle(base_url)
    assert emulator.deleted_ids == groups["old"]
    assert sorted(log.ids("batch_deleted")) == sorted(groups["old"])
    assert report.ok
    assert report.outcome_count(Outcome.DELETED) == 2500
    assert report.requests == 3 + 2500  # three list pages of 1,000, one DELETE each
    assert_safe(emulator, groups)


async def test_every_deletion_line_carries_the_api_confirmation(
    emulator: Emulator, base_url: str
) -> None:
    """batch_deleted has the confirmation verbatim, the rule, the age and the request id."""
    groups = seed(emulator, old=3)
    _, log = await cycle(base_url)
    for line in log.named("batch_deleted"):
        assert line["confirmation"] == {"id": line["batch_id"], "type": "message_batch_deleted"}
        assert line["reason"] == "ended_past_retention"
        assert line["age_s"] > 30 * DAY
        assert str(line["request_id"]).startswith("req_")
        assert line["created_at"].endswith("+00:00")
    assert set(log.ids("batch_deleted")) == groups["old"]


async def test_running_batches_are_canceled_then_deleted_only_after_they_ended(
    emulator: Emulator, base_url: str
) -> None:
    """The journal shows cancel, then (after the settle time) delete; never a 400."""
    groups = seed(emulator, stale_running=20, running=5)
    report, log = await cycle(base_url)
    assert emulator.deleted_ids == groups["stale_running"]
    for batch_id in groups["stale_running"]:
        steps = [e for e in emulator.journal if e.batch_id == batch_id]
        assert [(e.endpoint, e.status) for e in steps] == [("cancel", 200), ("delete", 200)]
        assert (steps[1].at - steps[0].at).total_seconds() >= 0.3  # the settle time
    cancels = log.named("batch_cancel_requested")
    assert {c["batch_id"] for c in cancels} == groups["stale_running"]
    assert all(c["request_counts"]["processing"] >= 1 for c in cancels)
    assert report.cancels_sent == 20
    assert report.outcomes[(ActionKind.CANCEL, Outcome.DELETED)] == 20
    assert_safe(emulator, groups)


async def test_a_batch_canceled_elsewhere_is_awaited_and_deleted_without_a_second_cancel(
    emulator: Emulator, base_url: str
) -> None:
    """A canceling batch past retention gets no cancel from us, only a delete once ended."""
    groups = seed(emulator, canceling=4)
    report, _ = await cycle(base_url)
    assert emulator.deleted_ids == groups["canceling"]
    assert not [e for e in emulator.journal if e.endpoint == "cancel"]
    assert report.outcomes[(ActionKind.AWAIT, Outcome.DELETED)] == 4


async def test_a_dry_run_sends_no_cancel_or_delete_and_logs_no_deletion(
    emulator: Emulator, base_url: str
) -> None:
    """Dry run: the journal of mutating calls stays empty."""
    seed(emulator, old=30, stale_running=3)
    report, log = await cycle(base_url, options=CycleOptions(dry_run=True))
    assert emulator.journal == []
    assert log.named("batch_deleted") == []
    assert len(log.named("dry_run_action")) == 33
    assert report.outcome_count(Outcome.DRY_RUN) == 33
    assert report.ok


async def test_protected_ids_are_never_canceled_or_deleted(
    emulator: Emulator, base_url: str
) -> None:
    """Protection wins over any age."""
    groups = seed(emulator, old=10, stale_running=2)
    protected = frozenset(list(groups["old"])[:3] + list(groups["stale_running"])[:1])
    policy = RetentionPolicy(
        retention=POLICY.retention,
        processing_retention=POLICY.processing_retention,
        protected_ids=protected,
    )
    report, _ = await cycle(base_url, policy=policy)
    assert not protected & emulator.deleted_ids
    assert not [e for e in emulator.journal if e.batch_id in protected]
    assert len(emulator.deleted_ids) == 8
    assert report.ok


async def test_the_cap_deletes_the_oldest_first_and_leaves_the_rest_for_later(
    emulator: Emulator, base_url: str
) -> None:
    """Over the cap: oldest first, the cap is logged, and the cycle still succeeds."""
    seed(emulator, old=100)
    before = {str(b["id"]): str(b["created_at"]) for b in emulator.batches()}
    report, log = await cycle(base_url, options=CycleOptions(max_actions=30))
    assert len(emulator.deleted_ids) == 30
    oldest = sorted(before, key=lambda i: before[i])[:30]
    assert emulator.deleted_ids == set(oldest)
    assert report.deferred == 70
    assert log.named("deletion_cap_reached")[0]["deferred"] == 70
    assert report.ok
    second, _ = await cycle(base_url, options=CycleOptions(max_actions=100))
    assert second.outcome_count(Outcome.DELETED) == 70


@pytest.mark.parametrize("cursor", ["works", "404"])
@pytest.mark.parametrize("running_delete", [400, 409])
@pytest.mark.parametrize("cancel_ended_ok", [False, True])
async def test_the_result_is_the_same_under_every_switchable_api_assumption(
    emulator: Emulator, base_url: str, cursor: str, running_delete: int, cancel_ended_ok: bool
) -> None:
    """Cursor behaviour, 400 vs 409 and cancel-of-ended semantics change nothing."""
    emulator.configure(
        deleted_cursor=cursor, delete_running_status=running_delete, cancel_ended_ok=cancel_ended_ok
    )
    groups = seed(emulator, old=1050, young=30, stale_running=3)
    report, _ = await cycle(base_url)
    assert emulator.deleted_ids == groups["old"] | groups["stale_running"]
    assert report.ok
    assert_safe(emulator, groups)


async def test_batches_created_while_the_listing_runs_are_left_alone(
    emulator: Emulator, base_url: str
) -> None:
    """New batches appear at the front; the listing neither breaks nor touches them."""
    emulator.configure(create_on_list=7)
    groups = seed(emulator, old=2500)
    report, _ = await cycle(base_url)
    assert emulator.deleted_ids == groups["old"]
    assert len(emulator.batches()) == 7 * 3  # three list requests, seven new batches each
    assert report.ok


async def test_a_flaky_api_and_dropped_delete_responses_still_end_in_a_clean_cycle(
    emulator: Emulator, base_url: str
) -> None:
    """20% 5xx/529/504 everywhere and 10% of deletes dropped after acting: all old gone."""
    groups = seed(emulator, old=600, young=20, stale_running=5)
    emulator.configure(
        seed=7,
        faults=(
            FaultRule(kind="random_error", probability=0.2),
            FaultRule(kind="drop_after", endpoints=frozenset({"delete"}), probability=0.1),
        ),
    )
    report, log = await cycle(base_url)
    expected = groups["old"] | groups["stale_running"]
    problems = [e for e in log.events if e["level"] != "info"]
    assert emulator.deleted_ids == expected, (report, problems)
    deleted, gone = log.ids("batch_deleted"), log.ids("batch_already_gone")
    assert len(deleted) == len(set(deleted))
    assert set(deleted) | set(gone) == expected
    assert not set(deleted) & set(gone)
    # A deletion is logged only when its confirmation arrived.
    assert set(deleted) <= set(deletes(emulator))
    assert report.ok
    assert report.retries > 0
    assert_safe(emulator, groups)


async def test_a_429_storm_from_a_mis_set_budget_is_absorbed_with_few_429s(
    emulator: Emulator, base_url: str
) -> None:
    """The API allows 1,200/min, the client is told 12,000/min: it adapts, not hammers."""
    emulator.configure(rate_limit_rpm=1200)
    groups = seed(emulator, old=150)
    report, _ = await cycle(base_url, requests_per_minute=12_000)
    assert emulator.deleted_ids == groups["old"]
    assert report.ok
    assert 0 < report.rate_limited < 40
    statuses: Counter[int] = Counter()
    for (_, status), count in emulator.request_counts.items():
        statuses[status] += count
    assert statuses[429] == report.rate_limited


async def test_a_spend_cap_ends_the_cycle_with_a_clear_error_instead_of_hammering(
    emulator: Emulator, base_url: str
) -> None:
    """A 429 without retry-after is fatal for the cycle; few requests are spent on it."""
    seed(emulator, old=200)
    emulator.configure(faults=(FaultRule(kind="spend_cap", endpoints=frozenset({"delete"})),))
    report, log = await cycle(base_url)
    assert not report.ok
    assert report.error is not None
    assert "SpendCapError" in report.error
    assert len(log.named("cycle_aborted")) == 1
    # The listing, and at most one request per deletion worker already under way.
    assert report.requests <= 1 + CycleOptions().workers
    assert emulator.deleted_ids == set()


async def test_an_unreachable_api_ends_the_cycle_with_one_error() -> None:
    """Nothing listens: the listing gives up after its retries and the cycle reports it."""
    report, log = await cycle("http://127.0.0.1:9")
    assert not report.ok
    assert report.error is not None
    assert "ApiUnreachableError" in report.error
    assert [e["event"] for e in log.events if e["level"] == "error"] == ["listing_failed"]


async def test_transient_404s_while_waiting_do_not_lose_the_batch(
    emulator: Emulator, base_url: str
) -> None:
    """A 404 right after a cancel is asked again, not taken as proof of absence."""
    groups = seed(emulator, stale_running=3)
    emulator.configure(
        faults=(FaultRule(kind="not_found", endpoints=frozenset({"retrieve"}), times=2),)
    )
    report, _ = await cycle(base_url)
    assert emulator.deleted_ids == groups["stale_running"]
    assert report.outcomes[(ActionKind.CANCEL, Outcome.DELETED)] == 3


async def test_a_batch_that_does_not_end_in_time_is_left_for_the_next_cycle(
    emulator: Emulator, base_url: str
) -> None:
    """The wait is bounded; the batch is reported as waiting and taken next time."""
    emulator.configure(cancel_settle_s=2.0)
    groups = seed(emulator, stale_running=2)
    quick = CycleOptions(wait_timeout_s=0.3, poll_initial_s=0.05, poll_max_s=0.1)
    report, log = await cycle(base_url, options=quick)
    assert emulator.deleted_ids == set()
    assert report.outcomes[(ActionKind.CANCEL, Outcome.WAIT_TIMEOUT)] == 2
    assert len(log.named("batch_wait_timeout")) == 2
    assert report.ok  # waiting is not failing
    emulator.configure(cancel_settle_s=0.0)
    second, _ = await cycle(base_url)
    assert emulator.deleted_ids == groups["stale_running"]
    assert second.outcomes[(ActionKind.AWAIT, Outcome.DELETED)] == 2
    assert [e.endpoint for e in emulator.journal].count("cancel") == 2  # never twice


async def test_a_failing_batch_does_not_stop_the_others(emulator: Emulator, base_url: str) -> None:
    """Persistent 500s on some deletes fail those; the rest are deleted; the summary counts."""
    groups = seed(emulator, old=40)
    emulator.configure(
        seed=3,
        faults=(FaultRule(kind="server_error", endpoints=frozenset({"delete"}), probability=0.5),),
    )
    from cleaner.client import RetryPolicy

    report, log = await cycle(
        base_url,
        retry=RetryPolicy(
            attempts=2, total_s=5, wait_initial_s=0.001, wait_max_s=0.002, wait_jitter_s=0.0
        ),
    )
    failed = report.outcome_count(Outcome.FAILED)
    assert 0 < failed < 40
    assert report.outcome_count(Outcome.DELETED) == 40 - failed
    assert len(log.named("action_failed")) == failed
    assert not report.ok
    assert emulator.deleted_ids <= groups["old"]


async def test_a_stop_during_the_listing_ends_the_cycle_before_anything_is_acted_on(
    emulator: Emulator, base_url: str
) -> None:
    """SIGTERM while listing a long backlog: stop after the page in flight, delete nothing."""
    import asyncio

    from tests.fakes import EventLog

    seed(emulator, old=2500)
    stop = asyncio.Event()
    stop.set()
    log = EventLog()
    async with open_test_client(base_url) as client:
        report = await run_cycle(client, POLICY, CycleOptions(), log=log, stop=stop)
    assert emulator.request_counts[("list", 200)] == 1
    assert emulator.journal == []
    assert report.ok
    assert log.named("listing_interrupted")


async def test_each_cycle_reports_its_own_requests_and_retries_not_the_clients_lifetime(
    emulator: Emulator, base_url: str
) -> None:
    """Two cycles on one client under 5xx faults: each report counts only what it sent."""
    seed(emulator, old=300)
    emulator.configure(seed=11, faults=(FaultRule(kind="random_error", probability=0.2),))
    options = CycleOptions(wait_timeout_s=10.0, poll_initial_s=0.05, poll_max_s=0.2)
    async with open_test_client(base_url) as client:
        first = await run_cycle(client, POLICY, options, log=EventLog())
        before = sum(emulator.request_counts.values())
        failed_before = sum(n for (_, s), n in emulator.request_counts.items() if s >= 500)
        seed(emulator, old=200)
        second = await run_cycle(client, POLICY, options, log=EventLog())
    sent = sum(emulator.request_counts.values()) - before
    failed = sum(n for (_, s), n in emulator.request_counts.items() if s >= 500) - failed_before
    assert first.ok
    assert second.ok
    assert first.requests > 300
    assert first.retries > 0
    assert second.requests == sent
    assert second.retries == failed  # every 5xx was retried once more, and only those
    assert second.rate_limited == 0
