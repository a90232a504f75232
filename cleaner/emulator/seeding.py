"""Seeding populations of batches by age and status, from code, flags or a JSON file.

A population says "3000 batches, ended, about 40 days old": `Population(3000, "ended",
age_s=40 * 86400)`; on the command line `--seed 3000:ended:40d` (optionally `:SPREAD` and
`:REQUESTS`, e.g. `--seed 50:in_progress:3h:1h:10`, and `@WORKSPACE`). Creation times are
`now - age - U(0, spread)`, so every batch is at least `age` old. Records are built in bulk
so that a million take seconds. Beyond the lifecycle a population can fix its ids, show a
`processing_status` verbatim (a value the API may add later; such a batch never ends),
carry a seeded `archived_at`, and belong to a workspace. JSON parsing is in `seedfile.py`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cleaner.emulator.clock import to_us
from cleaner.emulator.store import DAY_US, SECOND_US, BatchRecord, BatchStore, new_ids, observe
from cleaner.emulator.validation import valid_batch_id

SeedStatus = Literal["ended", "in_progress", "canceling"]
EndedBy = Literal["finish", "cancel", "expiry"]
_STATUSES = ("ended", "in_progress", "canceling")
STATUSES = _STATUSES
_ENDED_BY = ("finish", "cancel", "expiry")
ENDED_BY = _ENDED_BY
_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds from `90`, `1.5`, `50ms`, `30s`, `5m`, `3h`, `40d`, `2w`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 50ms, 30s, 5m, 3h, 40d)")
    return float(match.group(1)) * _UNITS_S[match.group(2) or "s"]


@dataclass(frozen=True, slots=True)
class Population:
    """`count` batches in `status`, created `age_s` (+ up to `spread_s`) seconds ago."""

    count: int
    status: SeedStatus
    age_s: float
    spread_s: float = 0.0
    request_count: int = 1
    errored_fraction: float = 0.0
    ended_by: EndedBy = "finish"
    workspace: str | None = None  # name or id; None: the default workspace
    processing_status: str | None = None  # shown verbatim, never ends (a known one = status)
    archived_at: datetime | Literal["now"] | None = None  # "now": the moment of seeding
    ids: tuple[str, ...] | None = None  # fixed ids (as many as count)
    refuse_delete: bool = False  # every DELETE of these batches fails (see refuse_delete)

    def __post_init__(self) -> None:
        shown = self.processing_status
        if shown in _STATUSES:  # a known status is just the lifecycle status
            object.__setattr__(self, "status", shown)
            object.__setattr__(self, "processing_status", None)
        elif shown is not None and not (isinstance(shown, str) and 0 < len(shown) <= 64):
            raise ValueError("processing_status must be a string of 1-64 characters")
        if self.ids is not None:
            if len(self.ids) != self.count or len(set(self.ids)) != self.count:
                raise ValueError("ids must be as many distinct ids as count")
            bad = [i for i in self.ids if not valid_batch_id(i)]
            if bad:
                raise ValueError(f"not a batch id: {bad[0]!r} (use msgbatch_...)")
        if self.archived_at is not None and (
            self.status != "ended" or self.processing_status is not None
        ):
            raise ValueError("only an ended batch can be archived")
        if self.count < 0 or self.request_count < 1:
            raise ValueError("count must be >= 0 and request_count >= 1")
        if self.status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}")
        if self.ended_by not in _ENDED_BY:
            raise ValueError(f"ended_by must be one of {_ENDED_BY}")
        if self.age_s < 0 or self.spread_s < 0:
            raise ValueError("age and spread must be >= 0")
        if not 0.0 <= self.errored_fraction <= 1.0:
            raise ValueError("errored_fraction must be within 0..1")
        oldest_s = self.age_s + self.spread_s
        running = self.status != "ended" and self.processing_status is None
        if running and oldest_s >= 86400:
            raise ValueError(f"a batch {self.status} must be younger than 24 h (it expires)")
        if self.status == "ended" and self.ended_by == "expiry" and self.age_s < 86400:
            raise ValueError("a batch ended by expiry is at least 24 h old")

    @classmethod
    def from_spec(cls, spec: str) -> Population:
        """Parse `COUNT:STATUS:AGE[:SPREAD[:REQUESTS]][@WORKSPACE]`, e.g. `3000:ended:40d:1h`."""
        spec, _, workspace = spec.partition("@")
        parts = spec.split(":")
        if not 3 <= len(parts) <= 5:
            raise ValueError(f"seed spec {spec!r}: use COUNT:STATUS:AGE[:SPREAD[:REQUESTS]]")
        count, status, age = parts[:3]
        if status not in _STATUSES:
            raise ValueError(f"seed spec {spec!r}: status must be one of {_STATUSES}")
        return cls(
            count=int(count),
            status=status,  # type: ignore[arg-type]  # checked just above
            age_s=parse_duration(age),
            spread_s=parse_duration(parts[3]) if len(parts) > 3 else 0.0,
            request_count=int(parts[4]) if len(parts) > 4 else 1,
            workspace=workspace or None,
        )


@dataclass(frozen=True, slots=True)
class Timing:
    """The lifecycle durations in force when batches are made."""

    processing_us: int
    settle_us: int


def build_records(
    store: BatchStore,
    population: Population,
    *,
    now_us: int,
    timing: Timing,
    rng: random.Random,
    used: Callable[[str], bool] | None = None,
) -> list[BatchRecord]:
    """Records for one population (not yet added to `store`; keys are taken from it).

    `used` says whether an id is taken anywhere (default: in `store`)."""
    used = store.used if used is None else used
    if population.ids is None:
        ids = new_ids(rng, population.count, used)
    else:
        ids = list(population.ids)
        taken = [batch_id for batch_id in ids if used(batch_id)]
        if taken:
            raise ValueError(f"batch id {taken[0]!r} is already in use")
    age_us = round(population.age_s * SECOND_US)
    spread_us = round(population.spread_s * SECOND_US)
    n = population.request_count
    errored = round(n * population.errored_fraction)
    out: list[BatchRecord] = []
    for batch_id in ids:
        created = now_us - age_us - (int(rng.random() * spread_us) if spread_us else 0)
        record = BatchRecord(batch_id, store.sort_key(created), created, n, 0, errored)
        _place_in_lifecycle(record, population, now_us, timing)
        record.status_override = population.processing_status
        if population.archived_at is not None:
            moment = population.archived_at
            archived_us = now_us if moment == "now" else to_us(moment)
            ended_us = observe(record, now_us).ended_us or created
            record.archived_us = max(archived_us, ended_us)  # never before it ended
        out.append(record)
    return out


def _place_in_lifecycle(
    record: BatchRecord, population: Population, now_us: int, timing: Timing
) -> None:
    """Set the moments that make `record` show `population.status` at `now_us`."""
    created = record.created_us
    if population.status == "in_progress":
        record.finish_us = now_us + max(1, timing.processing_us)
    elif population.status == "canceling":
        record.finish_us = record.expires_us
        record.cancel_us = now_us
        record.settle_us = max(1, timing.settle_us)
    elif population.ended_by == "expiry":
        record.finish_us = created + 4 * DAY_US  # a quarter done when it expires
    elif population.ended_by == "cancel":
        span = min(now_us - created, timing.processing_us + timing.settle_us, DAY_US - 1)
        record.finish_us = record.expires_us
        record.cancel_us = created + span // 2
        record.settle_us = span - span // 2
    else:
        record.finish_us = created + min(timing.processing_us, now_us - created)
