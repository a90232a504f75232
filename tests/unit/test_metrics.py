"""Metrics: what the exposition says after the client, the cycle and a report fed them."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cleaner.events import Exchange
from cleaner.metrics import Metrics
from cleaner.models import (
    ActionKind,
    CycleReport,
    KeepReason,
    Outcome,
    ProcessingStatus,
    Progress,
)

STARTED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _report(
    *,
    outcomes: Counter[tuple[ActionKind, Outcome]] | None = None,
    error: str | None = None,
    seen: dict[ProcessingStatus | str, int] | None = None,
) -> CycleReport:
    outcomes = Counter({(ActionKind.DELETE, Outcome.DELETED): 3}) if outcomes is None else outcomes
    return CycleReport(
        started_at=STARTED,
        duration_s=12.5,
        dry_run=False,
        seen={ProcessingStatus.ENDED: 10, ProcessingStatus.IN_PROGRESS: 2}
        if seen is None
        else seen,
        kept={KeepReason.WITHIN_RETENTION: 7},
        planned=Counter(kind for (kind, _), n in outcomes.items() for _ in range(n)),
        outcomes=outcomes,
        deferred=4,
        cancels_sent=1,
        requests=9,
        retries=2,
        rate_limited=1,
        error=error,
    )


def _samples(metrics: Metrics) -> list[Sample]:
    text = generate_latest(metrics.registry).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    matches = [s.value for s in _samples(metrics) if s.name == name and s.labels == labels]
    assert len(matches) == 1, f"{name}{labels}: {len(matches)} samples"
    return matches[0]


def test_every_metric_is_prefixed_and_the_exposition_parses() -> None:
    """All families are named cleaner_*, and counters carry the _total suffix."""
    metrics = Metrics(CollectorRegistry())
    text = generate_latest(metrics.registry).decode()
    families = list(text_string_to_metric_families(text))
    assert len(families) >= 20
    for family in families:
        assert family.name.startswith("cleaner_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)


def test_series_exist_at_zero_before_the_first_cycle() -> None:
    """Alerts on rate() and absent() see zeros, not missing series, at start."""
    metrics = Metrics(CollectorRegistry())
    assert _value(metrics, "cleaner_cycles_total", outcome="failed") == 0
    assert _value(metrics, "cleaner_actions_total", kind="cancel", outcome="wait_timeout") == 0
    assert _value(metrics, "cleaner_batches_seen", status="canceling") == 0
    assert math.isnan(_value(metrics, "cleaner_cycle_eta_seconds"))


def test_a_successful_report_counts_cycle_actions_and_listing() -> None:
    """An ok report adds its outcomes and sets the listing gauges and timestamps."""
    metrics = Metrics(CollectorRegistry())
    metrics.observe_report(_report())
    assert _value(metrics, "cleaner_cycles_total", outcome="ok") == 1
    assert _value(metrics, "cleaner_actions_total", kind="delete", outcome="deleted") == 3
    assert _value(metrics, "cleaner_batches_seen", status="ended") == 10
    assert _value(metrics, "cleaner_batches_seen", status="canceling") == 0
    assert _value(metrics, "cleaner_batches_kept", reason="within_retention") == 7
    assert _value(metrics, "cleaner_actions_deferred") == 4
    assert _value(metrics, "cleaner_api_retries_total") == 2
    assert _value(metrics, "cleaner_cancels_sent_total") == 1
    ended = STARTED.timestamp() + 12.5
    assert _value(metrics, "cleaner_last_success_timestamp_seconds") == ended
    assert _value(metrics, "cleaner_cycle_duration_seconds_count") == 1
    assert _value(metrics, "cleaner_cycle_duration_seconds_bucket", le="15.0") == 1
    assert _value(metrics, "cleaner_cycle_duration_seconds_bucket", le="5.0") == 0


def test_a_report_with_failed_actions_counts_as_failed_and_keeps_last_success() -> None:
    """A failed action makes the cycle 'failed' and leaves the success timestamp alone."""
    metrics = Metrics(CollectorRegistry())
    metrics.observe_report(_report(outcomes=Counter({(ActionKind.DELETE, Outcome.FAILED): 1})))
    assert _value(metrics, "cleaner_cycles_total", outcome="failed") == 1
    assert _value(metrics, "cleaner_last_success_timestamp_seconds") == 0
    assert _value(metrics, "cleaner_last_cycle_timestamp_seconds") > 0


def test_an_aborted_listing_keeps_the_previous_batch_counts() -> None:
    """A cycle whose listing failed says nothing about what exists, so the gauges stay."""
    metrics = Metrics(CollectorRegistry())
    metrics.observe_report(_report())
    metrics.observe_report(_report(outcomes=Counter(), error="ApiUnreachableError", seen={}))
    assert _value(metrics, "cleaner_cycles_total", outcome="aborted") == 1
    assert _value(metrics, "cleaner_batches_seen", status="ended") == 10


def test_responses_count_by_endpoint_and_status_and_429s_separately() -> None:
    """on_response counts every exchange and the 429s among them."""
    metrics = Metrics(CollectorRegistry(), clock=lambda: 42.0)
    for status in ("200", "200", "429", "timeout"):
        metrics.observe(_exchange("delete", status))
    assert _value(metrics, "cleaner_api_requests_total", endpoint="delete", status="200") == 2
    assert _value(metrics, "cleaner_api_requests_total", endpoint="delete", status="timeout") == 1
    assert _value(metrics, "cleaner_api_rate_limited_total", endpoint="delete") == 1
    assert metrics.last_response_at == 42.0
    assert metrics.api_answered


def test_an_authentication_failure_is_not_an_answer_for_readiness() -> None:
    """A 401 or a timeout is heard, but does not make the API 'answered'."""
    metrics = Metrics(CollectorRegistry())
    metrics.observe(_exchange("list", "401"))
    metrics.observe(_exchange("list", "connection_error"))
    assert not metrics.api_answered
    assert metrics.last_response_at is not None


def test_progress_snapshots_become_gauges_and_the_report_settles_them() -> None:
    """A drain's progress shows while it runs; the final report zeroes waits and ETA."""
    metrics = Metrics(CollectorRegistry())
    metrics.on_progress(
        Progress(done=250, planned=1000, waiting_on_cancel=7, rate_per_s=8.3, eta_s=90.4)
    )
    assert _value(metrics, "cleaner_cycle_actions_done") == 250
    assert _value(metrics, "cleaner_cycle_actions_planned") == 1000
    assert _value(metrics, "cleaner_batches_waiting_on_cancel") == 7
    assert _value(metrics, "cleaner_cycle_actions_per_second") == 8.3
    assert _value(metrics, "cleaner_cycle_eta_seconds") == 90.4
    metrics.on_progress(Progress(done=0, planned=5, waiting_on_cancel=0, rate_per_s=0, eta_s=None))
    assert math.isnan(_value(metrics, "cleaner_cycle_eta_seconds"))
    metrics.observe_report(_report())
    assert _value(metrics, "cleaner_cycle_actions_done") == 3
    assert _value(metrics, "cleaner_batches_waiting_on_cancel") == 0
    assert _value(metrics, "cleaner_cycle_eta_seconds") == 0


def test_budget_and_mode_gauges_follow_what_they_are_given() -> None:
    """set_budget, watch_budget and set_dry_run show in the exposition."""
    metrics = Metrics(CollectorRegistry())
    metrics.set_dry_run(True)
    metrics.set_budget(500)
    assert _value(metrics, "cleaner_dry_run") == 1
    assert _value(metrics, "cleaner_request_budget_per_minute") == 500
    current = [250.0]
    metrics.watch_budget(lambda: current[0])
    current[0] = 125.0
    assert _value(metrics, "cleaner_request_budget_per_minute") == 125
    assert _value(metrics, "cleaner_build_info", version=_version()) == 1


def test_two_instances_on_fresh_registries_do_not_collide() -> None:
    """The registry is a seam: no global state, so tests can build as many as they like."""
    first, second = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    first.observe(_exchange("list", "200"))
    assert _value(first, "cleaner_api_requests_total", endpoint="list", status="200") == 1
    assert not [s for s in _samples(second) if s.name == "cleaner_api_requests_total"]


def _exchange(endpoint: str, status: str) -> Exchange:
    """An exchange as the client reports it: a status, or how the request failed."""
    if status.isdecimal():
        return Exchange(endpoint, int(status))
    return Exchange(endpoint, None, status)


def _version() -> str:
    from cleaner import __version__

    return __version__


def test_promtool_finds_no_naming_problem_where_it_is_installed() -> None:
    """promtool check metrics (Debian package prometheus) passes the exposition, if present."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    metrics = Metrics(CollectorRegistry())
    metrics.observe_report(_report())
    metrics.observe(_exchange("list", "200"))
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(metrics.registry),
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
