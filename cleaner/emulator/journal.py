"""The journal of mutating requests: what tests assert on instead of mock call counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cleaner.emulator.wire import JsonObject

MUTATING_ENDPOINTS = frozenset({"create", "cancel", "delete"})


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request that changed state or tried to (status 0: connection dropped, no answer)."""

    at: datetime
    method: str
    path: str
    endpoint: str
    batch_id: str | None
    status: int
    fault: str | None = None
    workspace_id: str | None = None

    def to_json(self) -> JsonObject:
        return {
            "at": f"{self.at:%Y-%m-%dT%H:%M:%S.%f}Z",
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "batch_id": self.batch_id,
            "status": self.status,
            "fault": self.fault,
            "workspace_id": self.workspace_id,
        }
