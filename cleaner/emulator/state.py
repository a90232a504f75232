"""The emulator's state and its Python API for tests, benchmarks and the demo.

`EmulatorState` owns the per-workspace batch stores, the clock, the configuration (switches
for every [assume] behaviour of the contract, faults, workspaces, rate limits), the journal
and the request counters. `Emulator` (emulator.py) adds the API operations on top.

Thread safety: the server runs in its own thread (or process) while tests call in from
another, so every operation takes one re-entrant lock; all of them are short.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from cleaner.emulator.clock import Clock, system_clock, to_us
from cleaner.emulator.config import EmulatorConfig
from cleaner.emulator.faults import FaultPlan
from cleaner.emulator.journal import JournalEntry
from cleaner.emulator.ratelimit import Admission, Header, RateLimits
from cleaner.emulator.seedfile import SeedDocument
from cleaner.emulator.seeding import Population, Timing, build_records
from cleaner.emulator.store import SECOND_US, observe
from cleaner.emulator.tenants import WorkspaceStores
from cleaner.emulator.wire import JsonObject, batch_json
from cleaner.emulator.workspaces import (
    Directory,
    Presented,
    TokenResolver,
    WorkspaceSpec,
    resolve_workspace,
)


@dataclass(eq=False)
class EmulatorState:
    """A stateful, in-memory organisation of workspaces and their batches."""

    config: EmulatorConfig = field(default_factory=EmulatorConfig)
    clock: Clock | None = None
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._now: Clock = self.clock if self.clock is not None else system_clock
        self._stores = WorkspaceStores()
        # Seeded on purpose: ids and seeding replay; nothing here is a secret.
        self._rng = random.Random(self.config.seed)  # noqa: S311  # nosec B311
        self._faults = FaultPlan.build(self.config.faults, self.config.seed)
        self._limits = RateLimits(self.monotonic)
        self._directory = Directory(self.config.api_key, self.config.workspaces)
        self._apply_limits()
        #: Extra ways a bearer token resolves to a workspace id (e.g. issued OAuth tokens).
        self.token_resolvers: list[TokenResolver] = []
        self.journal: list[JournalEntry] = []
        self.request_counts: Counter[tuple[str, int]] = Counter()
        self.base_url = ""  # set by the server: makes results_url absolute

    # ----- workspaces and rate limits -----

    def resolve(self, presented: Presented) -> WorkspaceSpec | None:
        """The workspace these credentials belong to (None: 401). See `resolve_workspace`."""
        return resolve_workspace(presented, self._directory, self.token_resolvers)

    def workspaces(self) -> list[WorkspaceSpec]:
        """Every workspace, the default one first."""
        return list(self._directory)

    def workspace_id(self, name_or_id: str | None) -> str:
        """The id of a workspace named by name or id (None: the default workspace)."""
        if name_or_id is None:
            return self._directory.default.id
        found = self._directory.find(name_or_id)
        if found is None:
            raise ValueError(f"unknown workspace {name_or_id!r}")
        return found.id

    def admit(self, workspace_id: str) -> Admission:
        """Take a token from the organisation's and the workspace's buckets (or say wait)."""
        return self._limits.admit(workspace_id)

    def ratelimit_headers(self, admission: Admission) -> list[Header]:
        """The anthropic-ratelimit-requests-* headers, when switched on."""
        if not self.config.ratelimit_headers:
            return []
        return self._limits.headers(admission, self._now())

    # ----- seeding -----

    def now(self) -> datetime:
        return self._now()

    def seed(self, *populations: Population) -> list[str]:
        """Add populations of batches; returns their ids (oldest population first)."""
        ids: list[str] = []
        with self._lock:
            now_us = to_us(self._now())
            refused: set[str] = set()
            for population in populations:
                store = self._stores.store(self.workspace_id(population.workspace))
                records = build_records(
                    store,
                    population,
                    now_us=now_us,
                    timing=self._timing(),
                    rng=self._rng,
                    used=self._stores.used,
                )
                store.add_many(records)
                ids.extend(record.id for record in records)
                if population.refuse_delete:
                    refused.update(record.id for record in records)
            if refused:
                self.configure(refuse_delete=self.config.refuse_delete | refused)
        return ids

    def apply_seed(self, document: SeedDocument) -> list[str]:
        """Carry out a seed file: workspaces (same name: replaced), limits, switches, batches."""
        with self._lock:
            changes: dict[str, object] = {}
            if document.workspaces:
                names = {spec.name for spec in document.workspaces}
                kept = [w for w in self.config.workspaces if w.name not in names]
                changes["workspaces"] = (*kept, *document.workspaces)
            if document.org_rate_limit_rpm is not None:
                changes["rate_limit_rpm"] = document.org_rate_limit_rpm
            if document.refuse_delete:
                changes["refuse_delete"] = self.config.refuse_delete | set(document.refuse_delete)
            if document.refuse_delete_status is not None:
                changes["refuse_delete_status"] = document.refuse_delete_status
            if changes:
                self.configure(**changes)
            return self.seed(*document.populations)

    # ----- views -----

    def get(self, batch_id: str) -> JsonObject | None:
        """The batch as the API would show it now (in any workspace), or None if unknown."""
        with self._lock:
            found = self._stores.find(batch_id)
            if found is None:
                return None
            return batch_json(found[1], to_us(self._now()), self.base_url)

    def workspace_of(self, batch_id: str) -> str | None:
        """The id of the workspace a live or deleted batch belongs to."""
        with self._lock:
            return self._stores.owner(batch_id)

    def batches(self, workspace: str | None = None) -> list[JsonObject]:
        """Every live batch (of one workspace, or all), newest first (for small populations)."""
        with self._lock:
            now_us = to_us(self._now())
            ws = None if workspace is None else self.workspace_id(workspace)
            return [batch_json(r, now_us, self.base_url) for r in self._stores.newest_first(ws)]

    def iter_batches(self, chunk: int = 1000) -> Iterator[list[JsonObject]]:
        """Every live batch in chunks, newest first, taking the lock per chunk (for 1M)."""
        with self._lock:
            records = self._stores.newest_first()
        while True:
            with self._lock:
                now_us = to_us(self._now())
                out = [
                    batch_json(r, now_us, self.base_url) for r in itertools.islice(records, chunk)
                ]
            if not out:
                return
            yield out

    def __len__(self) -> int:
        return len(self._stores)

    @property
    def deleted_ids(self) -> set[str]:
        with self._lock:
            return self._stores.deleted_ids

    def status_counts(self, workspace: str | None = None) -> Counter[str]:
        """How many live batches (of one workspace, or all) are in each status now."""
        with self._lock:
            now_us = to_us(self._now())
            ws = None if workspace is None else self.workspace_id(workspace)
            return Counter(observe(r, now_us).status for r in self._stores.newest_first(ws))

    def workspace_counts(self) -> dict[str, int]:
        """Live batches per workspace id (every workspace, even empty ones)."""
        with self._lock:
            counts = self._stores.counts()
            return {spec.id: counts.get(spec.id, 0) for spec in self._directory}

    # ----- reconfiguring -----

    def configure(self, **changes: object) -> EmulatorConfig:
        """Replace configuration fields at runtime; faults restart their budgets and RNG."""
        for name, kind in (("faults", tuple), ("workspaces", tuple), ("refuse_delete", frozenset)):
            value = changes.get(name)
            if isinstance(value, list | tuple | set | frozenset):
                changes[name] = kind(value)
        with self._lock:
            new = dataclasses.replace(self.config, **changes)  # type: ignore[arg-type]
            if "api_key" in changes or "workspaces" in changes:
                self._directory = Directory(new.api_key, new.workspaces)
            if "faults" in changes or "seed" in changes:
                self._faults = FaultPlan.build(new.faults, new.seed)
            self.config = new
            self._apply_limits()
            return new

    def clear_journal(self) -> None:
        with self._lock:
            self.journal.clear()

    def clear_request_counts(self) -> None:
        with self._lock:
            self.request_counts.clear()

    def _apply_limits(self) -> None:
        rpm = {w.id: w.rate_limit_rpm for w in self._directory if w.rate_limit_rpm is not None}
        self._limits.configure(org_rpm=self.config.rate_limit_rpm, workspace_rpm=rpm)

    def _timing(self) -> Timing:
        return Timing(
            processing_us=round(self.config.processing_time_s * SECOND_US),
            settle_us=round(self.config.cancel_settle_s * SECOND_US),
        )
