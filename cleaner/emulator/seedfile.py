"""Seed files and `POST /_emulator/seed` bodies: populations, workspaces and switches as JSON.

Accepted shapes: one population object, a list of them, or a document

    {"organization": {"rate_limit_rpm": 600},
     "workspaces": [{"name": "prod", "id": "wrkspc_prod", "keys": ["sk-..."],
                     "rate_limit_rpm": 120,
                     "batches": [{"count": 30, "status": "ended", "age": "40d"}]}],
     "populations": [{"count": 5, "status": "in_progress", "age": "1h"}],
     "refuse_delete": ["msgbatch_..."], "refuse_delete_status": 500}

where every part is optional. A population: `count`, `status` (ended | in_progress |
canceling), `age`/`age_s`, `spread`/`spread_s` (seconds or "40d"), `request_count`,
`errored_fraction`, `ended_by` (finish | cancel | expiry), and the extras `workspace` (name
or id), `processing_status` (any string, shown verbatim; `status` may then be left out),
`archived_at` (RFC 3339, or "now"), `ids` (fixed ids; `count` may then be left out) and
`refuse_delete` (true: deleting these batches always fails).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson

from cleaner.emulator.seeding import ENDED_BY, STATUSES, Population, parse_duration
from cleaner.emulator.wire import ERROR_TYPES
from cleaner.emulator.workspaces import WorkspaceSpec

_POPULATION_FIELDS = frozenset(
    {"count", "status", "age", "age_s", "spread", "spread_s", "request_count"}
    | {"errored_fraction", "ended_by", "workspace", "processing_status", "archived_at"}
    | {"ids", "refuse_delete"}
)
_DOCUMENT_FIELDS = frozenset(
    {"organization", "workspaces", "populations", "refuse_delete", "refuse_delete_status"}
)


@dataclass(frozen=True, slots=True)
class SeedDocument:
    """Everything a seed file can say; `Emulator.apply_seed` carries it out."""

    populations: tuple[Population, ...] = ()
    workspaces: tuple[WorkspaceSpec, ...] = ()
    org_rate_limit_rpm: float | None = None  # None: leave the organisation's limit alone
    refuse_delete: tuple[str, ...] = ()
    refuse_delete_status: int | None = None


def load_seed(raw: bytes) -> SeedDocument:
    """Parse a seed file or operator body; raises ValueError with a readable message."""
    data = orjson.loads(raw)
    if isinstance(data, dict) and data and set(data) <= _DOCUMENT_FIELDS:
        return _document(data)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError('seed data must be a population object, a list, or {"populations": [...]}')
    return SeedDocument(populations=tuple(population_from_json(item) for item in data))


def load_populations(raw: bytes) -> list[Population]:
    """The populations of a seed file (its workspaces and switches ignored)."""
    return list(load_seed(raw).populations)


def population_from_json(data: Mapping[str, object], workspace: str | None = None) -> Population:
    """Parse one population object (durations as seconds or strings like "40d")."""
    unknown = set(data) - _POPULATION_FIELDS
    if unknown:
        raise ValueError(f"unknown population fields {sorted(unknown)}")
    shown, ids = data.get("processing_status"), data.get("ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise ValueError("ids must be a list of batch ids")
    count = data.get("count", len(ids) if ids is not None else None)
    status = data.get("status", "in_progress" if shown is not None else None)
    requests, ended_by = data.get("request_count", 1), data.get("ended_by", "finish")
    fraction = data.get("errored_fraction", 0.0)
    if not isinstance(count, int) or isinstance(count, bool):
        raise ValueError("count must be an integer")
    if status not in STATUSES or ended_by not in ENDED_BY:
        raise ValueError(f"status must be one of {STATUSES}, ended_by one of {ENDED_BY}")
    if not isinstance(requests, int) or isinstance(requests, bool):
        raise ValueError("request_count must be an integer")
    if not isinstance(fraction, int | float) or isinstance(fraction, bool):
        raise ValueError("errored_fraction must be a number")
    if shown is not None and not isinstance(shown, str):
        raise ValueError("processing_status must be a string")
    where = data.get("workspace", workspace)
    if where is not None and not isinstance(where, str):
        raise ValueError("workspace must be a workspace name or id")
    return Population(
        count=count,
        status=status,  # type: ignore[arg-type]  # checked just above
        age_s=_seconds(data.get("age_s", data.get("age", 0)), "age"),
        spread_s=_seconds(data.get("spread_s", data.get("spread", 0)), "spread"),
        request_count=requests,
        errored_fraction=float(fraction),
        ended_by=ended_by,  # type: ignore[arg-type]  # checked just above
        workspace=where,
        processing_status=shown,
        archived_at=_moment(data.get("archived_at")),
        ids=None if ids is None else tuple(ids),
        refuse_delete=_flag(data.get("refuse_delete", False), "refuse_delete"),
    )


def _document(data: Mapping[str, object]) -> SeedDocument:
    populations = [population_from_json(p) for p in _objects(data, "populations")]
    workspaces: list[WorkspaceSpec] = []
    for item in _objects(data, "workspaces"):
        spec = WorkspaceSpec.from_json({k: v for k, v in item.items() if k != "batches"})
        unknown = set(item) - {"name", "id", "keys", "rate_limit_rpm", "batches"}
        if unknown:
            raise ValueError(f"unknown workspace fields {sorted(unknown)}")
        workspaces.append(spec)
        populations += [population_from_json(p, spec.id) for p in _objects(item, "batches")]
    org = data.get("organization", {})
    if not isinstance(org, dict) or set(org) - {"rate_limit_rpm"}:
        raise ValueError('organization must be {"rate_limit_rpm": N}')
    rpm = org.get("rate_limit_rpm")
    if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int | float)):
        raise ValueError("organization rate_limit_rpm must be a number")
    refuse = data.get("refuse_delete", [])
    if not isinstance(refuse, list) or not all(isinstance(i, str) for i in refuse):
        raise ValueError("refuse_delete must be a list of batch ids")
    status = data.get("refuse_delete_status")
    if status is not None and status not in ERROR_TYPES:
        raise ValueError(f"refuse_delete_status must be one of {sorted(ERROR_TYPES)}")
    return SeedDocument(
        populations=tuple(populations),
        workspaces=tuple(workspaces),
        org_rate_limit_rpm=None if rpm is None else float(rpm),
        refuse_delete=tuple(refuse),
        refuse_delete_status=status if isinstance(status, int) else None,
    )


def _objects(data: Mapping[str, object], name: str) -> list[dict[str, object]]:
    items = data.get(name, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"{name} must be a list of objects")
    return items


def _moment(value: object) -> datetime | Literal["now"] | None:
    if value is None or value == "now":
        return value
    if not isinstance(value, str):
        raise ValueError('archived_at must be an RFC 3339 time or "now"')
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("archived_at needs a time zone (e.g. Z)")
    return moment


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _seconds(value: object, name: str) -> float:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{name} must be seconds or a duration like 40d")
