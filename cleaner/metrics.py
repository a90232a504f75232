"""Prometheus metrics: every metric declared once, fed by the client, the cycle and its report.

Two feeds, neither of which knows about Prometheus:

* :meth:`Metrics.observe` takes the cycle's events (:mod:`cleaner.events`): every HTTP
  exchange as it happens (requests by endpoint and status, 429s, and the time of the last
  answer, which the liveness probe reads), and the same progress snapshots as the periodic
  ``cycle_progress`` log line, so a long drain shows on a dashboard while it runs;
* :meth:`Metrics.observe_report` is a daemon observer: the totals of each finished cycle.

The registry is a constructor argument, so every test gets a fresh one and nothing is
registered on import.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from cleaner import __version__
from cleaner.clock import SYSTEM
from cleaner.events import BlastRadiusExceeded, CyclePlanned, Event, Exchange, ProgressReported
from cleaner.models import (
    ActionKind,
    CycleReport,
    KeepReason,
    Outcome,
    ProcessingStatus,
    Progress,
)

#: Cycle durations: a quiet pass takes a second; draining a backlog, hours.
DURATION_BUCKETS_S = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0)


def cycle_outcome(report: CycleReport) -> str:
    """``ok``, ``failed`` (some action failed) or ``aborted`` (a fatal error ended it)."""
    if report.error is not None:
        return "aborted"
    return "ok" if report.ok else "failed"


class Metrics:
    """The metrics of one cleaner process, registered on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = SYSTEM.monotonic,
    ) -> None:
        self.registry = registry
        self._clock = clock
        #: When the API last answered anything (monotonic); None until it has.
        self.last_response_at: float | None = None
        #: True once the API answered with a status other than 401/403 (readiness).
        self.api_answered = False

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        self.build = Info("cleaner_build", "The running cleaner version.", registry=registry)
        self.build.info({"version": __version__})
        self.dry_run = gauge("cleaner_dry_run", "1 when cycles only plan (CLEANER_DRY_RUN).")
        self.schedule = gauge(
            "cleaner_schedule_interval_seconds",
            "The schedule's period (for cron, the gap between two fire times); 0 for --once.",
        )

        # --- cycles
        self.cycles = counter("cleaner_cycles_total", "Cycles finished, by outcome.", ("outcome",))
        self.cycle_duration = Histogram(
            "cleaner_cycle_duration_seconds",
            "How long each cycle took, listing included.",
            buckets=DURATION_BUCKETS_S,
            registry=registry,
        )
        self.last_cycle = gauge(
            "cleaner_last_cycle_timestamp_seconds", "When the last cycle ended (Unix time)."
        )
        self.last_success = gauge(
            "cleaner_last_success_timestamp_seconds",
            "When the last cycle without failures ended (Unix time).",
        )
        self.actions = counter(
            "cleaner_actions_total",
            "Planned actions finished, by kind and outcome.",
            ("kind", "outcome"),
        )
        self.cancels_sent = counter("cleaner_cancels_sent_total", "Cancel requests accepted.")
        self.seen = gauge(
            "cleaner_batches_seen", "Batches in the last listing, by status.", ("status",)
        )
        self.kept = gauge(
            "cleaner_batches_kept", "Batches the last cycle left alone, by reason.", ("reason",)
        )
        self.held = gauge("cleaner_batches_held", "Batches the last plan kept for a hold.")
        self.unknown_status = gauge(
            "cleaner_batches_unknown_status",
            "Batches the last plan kept because their processing_status is unknown to it.",
        )
        self.blast_radius = gauge(
            "cleaner_blast_radius_exceeded",
            "1 while the blast-radius stop refuses cycles (CLEANER_MAX_DELETE_FRACTION).",
        )
        self.blast_radius_stops = counter(
            "cleaner_blast_radius_stops_total", "Cycles the blast-radius stop refused."
        )
        self.deferred = gauge(
            "cleaner_actions_deferred",
            "Actions the last cycle left for later cycles (CLEANER_MAX_DELETIONS_PER_RUN).",
        )

        # --- the running cycle (the cycle_progress log line)
        self.progress_planned = gauge(
            "cleaner_cycle_actions_planned", "Actions planned by the running (or last) cycle."
        )
        self.progress_done = gauge(
            "cleaner_cycle_actions_done", "Actions finished by the running (or last) cycle."
        )
        self.progress_rate = gauge(
            "cleaner_cycle_actions_per_second", "Finishing rate of the running (or last) cycle."
        )
        self.progress_eta = gauge(
            "cleaner_cycle_eta_seconds",
            "Estimated time left in the running cycle; NaN while unknown, 0 when done.",
        )
        self.waiting_on_cancel = gauge(
            "cleaner_batches_waiting_on_cancel", "Canceled batches being polled until ended."
        )

        # --- the API
        self.responses = counter(
            "cleaner_api_requests_total",
            "API requests by endpoint and HTTP status (or timeout / connection_error).",
            ("endpoint", "status"),
        )
        self.rate_limited = counter(
            "cleaner_api_rate_limited_total",
            "API answers with status 429, by endpoint.",
            ("endpoint",),
        )
        self.retries = counter("cleaner_api_retries_total", "API calls retried after a failure.")
        self.budget = gauge(
            "cleaner_request_budget_per_minute",
            "Requests per minute the client allows itself now (lowered after 429s).",
        )

        # Series that exist before the first cycle, so rate() and alerts see a zero.
        for outcome in ("ok", "failed", "aborted"):
            self.cycles.labels(outcome=outcome)
        for kind in ActionKind:
            for result in Outcome:
                self.actions.labels(kind=kind.value, outcome=result.value)
        for status in ProcessingStatus:
            self.seen.labels(status=status.value)
        for reason in KeepReason:
            self.kept.labels(reason=reason.value)
        self.progress_eta.set(math.nan)

    # --- feeds

    def set_dry_run(self, dry_run: bool) -> None:
        """Record the mode the daemon runs in."""
        self.dry_run.set(1 if dry_run else 0)

    def set_schedule(self, period_s: float) -> None:
        """Record the schedule's period, which the no-successful-cycle alert compares to."""
        self.schedule.set(period_s)

    def set_budget(self, per_minute: float) -> None:
        """Record the request budget in force now."""
        self.budget.set(per_minute)

    def watch_budget(self, read: Callable[[], float]) -> None:
        """Read the budget at every scrape instead (e.g. ``lambda: client.budget.per_minute``)."""
        self.budget.set_function(read)

    def observe(self, event: Event) -> None:
        """An event of a cycle; fits ``run_cycle(observers=(...,))``."""
        if isinstance(event, Exchange):
            self.on_exchange(event)
        elif isinstance(event, ProgressReported):
            self.on_progress(event.progress)
        elif isinstance(event, CyclePlanned):
            kept = event.plan.kept
            self.held.set(kept.get(KeepReason.HELD, 0) + kept.get(KeepReason.PROTECTED, 0))
            self.unknown_status.set(kept.get(KeepReason.UNKNOWN_STATUS, 0))
            self.blast_radius.set(0)
        elif isinstance(event, BlastRadiusExceeded):
            self.blast_radius.set(1)
            self.blast_radius_stops.inc()

    def on_exchange(self, exchange: Exchange) -> None:
        """One HTTP exchange ended."""
        self.responses.labels(endpoint=exchange.endpoint, status=exchange.label).inc()
        self.last_response_at = self._clock()
        if exchange.status == 429:
            self.rate_limited.labels(endpoint=exchange.endpoint).inc()
        if exchange.answered:
            self.api_answered = True

    def on_progress(self, progress: Progress) -> None:
        """A snapshot of the running cycle."""
        self.progress_planned.set(progress.planned)
        self.progress_done.set(progress.done)
        self.progress_rate.set(progress.rate_per_s)
        self.progress_eta.set(math.nan if progress.eta_s is None else progress.eta_s)
        self.waiting_on_cancel.set(progress.waiting_on_cancel)

    def observe_report(self, report: CycleReport) -> None:
        """A cycle finished: add its totals; fits ``Daemon(observers=(...,))``."""
        ended = report.started_at.timestamp() + report.duration_s
        self.cycles.labels(outcome=cycle_outcome(report)).inc()
        self.cycle_duration.observe(report.duration_s)
        self.last_cycle.set(ended)
        if report.ok:
            self.last_success.set(ended)
        for (kind, outcome), count in report.outcomes.items():
            self.actions.labels(kind=kind.value, outcome=outcome.value).inc(count)
        self.cancels_sent.inc(report.cancels_sent)
        self.retries.inc(report.retries)
        if report.seen or report.error is None:  # a failed listing says nothing of what exists
            for status in ProcessingStatus:
                self.seen.labels(status=status.value).set(report.seen.get(status, 0))
            for reason in KeepReason:
                self.kept.labels(reason=reason.value).set(report.kept.get(reason, 0))
        self.deferred.set(report.deferred)
        done = sum(report.outcomes.values())
        self.progress_planned.set(sum(report.planned.values()))
        self.progress_done.set(done)
        self.progress_rate.set(round(done / report.duration_s, 2) if report.duration_s > 0 else 0)
        self.progress_eta.set(0)
        self.waiting_on_cancel.set(0)
