"""When cycles run: an interval or a 5-field cron expression in UTC, parsed once into a value.

The daemon builds its trigger from it and the liveness probe asks it when the next tick
was due, so the schedule is read in one place only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from cleaner.durations import parse_duration

_TINY = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: ``interval`` for ``15m``, ``cron`` for ``*/30 * * * *``."""

    text: str
    interval: timedelta | None = None
    cron: str | None = None

    @classmethod
    def parse(cls, text: str, *, now: datetime) -> Schedule:
        """Parse ``text``; a cron expression must fire at least once after ``now``."""
        value = text.strip()
        if len(value.split()) == 5:
            try:
                trigger = CronTrigger.from_crontab(value, timezone=UTC)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from None
            if trigger.get_next_fire_time(None, now) is None:
                raise ValueError(f"cron expression {value!r} never fires")
            return cls(text=value, cron=value)
        try:
            interval = parse_duration(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is neither an interval (e.g. 15m) nor a 5-field cron expression"
            ) from None
        if interval < timedelta(seconds=1):
            raise ValueError("the schedule interval must be at least 1s")
        return cls(text=value, interval=interval)

    def trigger(self) -> IntervalTrigger | CronTrigger:
        """The APScheduler trigger that fires on this schedule."""
        if self.interval is not None:
            return IntervalTrigger(seconds=self.interval.total_seconds(), timezone=UTC)
        return CronTrigger.from_crontab(self.cron or "", timezone=UTC)

    def next_tick(self, after: datetime) -> tuple[datetime, float] | None:
        """When the first tick after ``after`` is due, and the period from it to the next."""
        if self.interval is not None:
            return after + self.interval, self.interval.total_seconds()
        trigger = self.trigger()
        expected: datetime | None = trigger.get_next_fire_time(None, after + _TINY)
        if expected is None:
            return None
        following: datetime | None = trigger.get_next_fire_time(None, expected + _TINY)
        period_s = (following - expected).total_seconds() if following is not None else 0.0
        return expected, period_s

    def period_s(self, now: datetime) -> float:
        """The gap between ticks around ``now`` (the metric alerts compare against)."""
        tick = self.next_tick(now)
        return 0.0 if tick is None else tick[1]
