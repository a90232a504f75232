"""Seeding populations of batches by age and status, from code, flags or a JSON file.

A population says "3000 batches, ended, about 40 days old": `Population(3000, "ended",
age_s=40 * 86400)`; on the command line `--seed 3000:ended:40d` (optionally `:SPREAD` and
`:REQUESTS`, e.g. `--seed 50:in_progress:3h:1h:10`). Creation times are `now - age - U(0,
spread)`, so every batch is at least `age` old. Records are built in bulk so that a million
take seconds.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import orjson

from cleaner.emulator.store import DAY_US, SECOND_US, BatchRecord, BatchStore, new_ids

SeedStatus = Literal["ended", "in_progress", "canceling"]
EndedBy = Literal["finish", "cancel", "expiry"]
_STATUSES = ("ended", "in_progress", "canceling")
_ENDED_BY = ("finish", "cancel", "expiry")
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

    def __post_init__(self) -> None:
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
        if self.status != "ended" and oldest_s >= 86400:
            raise ValueError(f"a batch {self.status} must be younger than 24 h (it expires)")
        if self.status == "ended" and self.ended_by == "expiry" and self.age_s < 86400:
            raise ValueError("a batch ended by expiry is at least 24 h old")

    @classmethod
    def from_spec(cls, spec: str) -> Population:
        """Parse `COUNT:STATUS:AGE[:SPREAD[:REQUESTS]]`, e.g. `3000:ended:40d:1h`."""
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
        )

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Population:
        """Parse one population object (durations as seconds or strings like "40d")."""
        allowed = {"count", "status", "age", "age_s", "spread", "spread_s", "request_count"}
        allowed |= {"errored_fraction", "ended_by"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown population fields {sorted(unknown)}")
        count, status, requests = (
            data.get("count"),
            data.get("status"),
            data.get("request_count", 1),
        )
        fraction, ended_by = data.get("errored_fraction", 0.0), data.get("ended_by", "finish")
        if not isinstance(count, int) or isinstance(count, bool):
            raise ValueError("count must be an integer")
        if status not in _STATUSES or ended_by not in _ENDED_BY:
            raise ValueError(f"status must be one of {_STATUSES}, ended_by one of {_ENDED_BY}")
        if not isinstance(requests, int) or isinstance(requests, bool):
            raise ValueError("request_count must be an integer")
        if not isinstance(fraction, int | float) or isinstance(fraction, bool):
            raise ValueError("errored_fraction must be a number")
        return cls(
            count=count,
            status=status,  # type: ignore[arg-type]  # checked just above
            age_s=_seconds(data.get("age_s", data.get("age", 0)), "age"),
            spread_s=_seconds(data.get("spread_s", data.get("spread", 0)), "spread"),
            request_count=requests,
            errored_fraction=float(fraction),
            ended_by=ended_by,  # type: ignore[arg-type]  # checked just above
        )


def load_populations(raw: bytes) -> list[Population]:
    """A seed file or operator body: a list of populations, or `{"populations": [...]}`."""
    data = orjson.loads(raw)
    if isinstance(data, dict) and set(data) == {"populations"}:
        data = data["populations"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError('seed data must be a population object, a list, or {"populations": [...]}')
    return [Population.from_json(item) for item in data]


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
) -> list[BatchRecord]:
    """Records for one population (not yet added to `store`; keys are taken from it)."""
    ids = new_ids(rng, population.count, store.used)
    age_us = round(population.age_s * SECOND_US)
    spread_us = round(population.spread_s * SECOND_US)
    n = population.request_count
    errored = round(n * population.errored_fraction)
    out: list[BatchRecord] = []
    for batch_id in ids:
        created = now_us - age_us - (int(rng.random() * spread_us) if spread_us else 0)
        record = BatchRecord(batch_id, store.sort_key(created), created, n, 0, errored)
        _place_in_lifecycle(record, population, now_us, timing)
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


def _seconds(value: object, name: str) -> float:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{name} must be seconds or a duration like 40d")
