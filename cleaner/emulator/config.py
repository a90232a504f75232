"""The emulator's configuration: every [assume] switch of the contract, timings and faults.

Frozen, so a running server never sees half a change: `Emulator.configure` swaps the whole
object. Values are type-checked here because the operator endpoint feeds JSON in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cleaner.emulator.faults import FaultRule
from cleaner.emulator.wire import ERROR_TYPES, JsonObject
from cleaner.emulator.workspaces import MismatchMode, WorkspaceSpec


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything switchable; `Emulator.configure` swaps it at runtime."""

    api_key: str | None = field(default=None, repr=False)
    processing_time_s: float = 300.0
    cancel_settle_s: float = 30.0
    delete_running_status: Literal[400, 409] = 400
    cancel_ended_ok: bool = False
    cancel_canceling_status: Literal[200, 400, 409] = 200
    deleted_cursor: Literal["works", "404"] = "works"
    rate_limit_rpm: float | None = None  # the organisation's, shared by every workspace
    latency_s: float = 0.0
    faults: tuple[FaultRule, ...] = ()
    create_on_list: int = 0
    seed: int = 0
    results_line_bytes: int = 0  # > 0: pad every results line to this size (results.py)
    workspaces: tuple[WorkspaceSpec, ...] = ()  # besides the default one (which has api_key)
    workspace_mismatch: MismatchMode = "403"
    ratelimit_headers: bool = False
    refuse_delete: frozenset[str] = frozenset()  # batch ids whose DELETE always fails
    refuse_delete_status: int = 500

    def __post_init__(self) -> None:
        _check_types(self)
        if self.delete_running_status not in (400, 409):
            raise ValueError("delete_running_status must be 400 or 409")
        if self.cancel_canceling_status not in (200, 400, 409):
            raise ValueError("cancel_canceling_status must be 200, 400 or 409")
        if self.deleted_cursor not in ("works", "404"):
            raise ValueError('deleted_cursor must be "works" or "404"')
        if self.processing_time_s < 0 or self.cancel_settle_s < 0 or self.latency_s < 0:
            raise ValueError("durations must be >= 0")
        if self.rate_limit_rpm is not None and self.rate_limit_rpm <= 0:
            raise ValueError("rate_limit_rpm must be > 0 (or None for no limit)")
        if self.create_on_list < 0:
            raise ValueError("create_on_list must be >= 0")
        if self.results_line_bytes < 0:
            raise ValueError("results_line_bytes must be >= 0")
        if not all(isinstance(rule, FaultRule) for rule in self.faults):
            raise ValueError("faults must be FaultRule objects")
        if self.workspace_mismatch not in ("403", "ignore"):
            raise ValueError('workspace_mismatch must be "403" or "ignore"')
        if self.refuse_delete_status not in ERROR_TYPES:
            raise ValueError(f"refuse_delete_status must be one of {sorted(ERROR_TYPES)}")

    def to_json(self) -> JsonObject:
        """The configuration as the operator endpoint shows it (the key only as set / unset)."""
        out: JsonObject = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "api_key"
        }
        out["faults"] = [rule.to_json() for rule in self.faults]
        out["workspaces"] = [workspace.to_json() for workspace in self.workspaces]
        out["refuse_delete"] = sorted(self.refuse_delete)
        out["api_key_set"] = self.api_key is not None
        return out


_NUMBERS = ("processing_time_s", "cancel_settle_s", "latency_s")
_INTEGERS = (
    "delete_running_status",
    "cancel_canceling_status",
    "create_on_list",
    "seed",
    "results_line_bytes",
    "refuse_delete_status",
)


def _check_types(config: EmulatorConfig) -> None:
    """Catch wrongly typed values early (the operator endpoint feeds JSON in here)."""

    def is_number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    for name in _NUMBERS:
        if not is_number(getattr(config, name)):
            raise ValueError(f"{name} must be a number of seconds")
    for name in _INTEGERS:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer")
    if config.rate_limit_rpm is not None and not is_number(config.rate_limit_rpm):
        raise ValueError("rate_limit_rpm must be a number or null")
    if config.api_key is not None and not isinstance(config.api_key, str):
        raise ValueError("api_key must be a string or null")
    for name in ("cancel_ended_ok", "ratelimit_headers"):
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"{name} must be true or false")
    if not isinstance(config.faults, tuple):
        raise ValueError("faults must be a tuple of FaultRule")
    if not isinstance(config.workspaces, tuple) or not all(
        isinstance(w, WorkspaceSpec) for w in config.workspaces
    ):
        raise ValueError("workspaces must be a tuple of WorkspaceSpec")
    if not isinstance(config.refuse_delete, frozenset) or not all(
        isinstance(i, str) for i in config.refuse_delete
    ):
        raise ValueError("refuse_delete must be a set of batch ids")


def config_changes(data: Mapping[str, object]) -> dict[str, object]:
    """Validate an operator's partial configuration (JSON) into `configure` keyword args."""
    names = {f.name for f in dataclasses.fields(EmulatorConfig)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown configuration fields {sorted(unknown)}")
    changes = dict(data)
    faults = changes.get("faults")
    if "faults" in changes:
        if not isinstance(faults, list) or not all(isinstance(f, dict) for f in faults):
            raise ValueError("faults must be a list of rule objects")
        changes["faults"] = tuple(FaultRule.from_json(rule) for rule in faults)
    if "workspaces" in changes:
        spaces = changes["workspaces"]
        if not isinstance(spaces, list) or not all(isinstance(w, dict) for w in spaces):
            raise ValueError("workspaces must be a list of workspace objects")
        changes["workspaces"] = tuple(WorkspaceSpec.from_json(w) for w in spaces)
    if "refuse_delete" in changes:
        ids = changes["refuse_delete"]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("refuse_delete must be a list of batch ids")
        changes["refuse_delete"] = frozenset(ids)
    return changes
