"""The state of one planned batch's life between two commands (see :mod:`cleaner.lifecycle`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cleaner.commands import Command, EndedBatch, LifeConfig, SettleEstimate
from cleaner.models import Action


class Phase(StrEnum):
    INTENT_CANCEL = "intent_cancel"
    CANCELING = "canceling"
    SETTLE_WAIT = "settle_wait"  # a non-probe waiting for the probes to learn
    SLEEPING = "sleeping"
    POLLING = "polling"
    ARCHIVING = "archiving"
    INTENT_DELETE = "intent_delete"
    DELETING = "deleting"
    VERIFYING = "verifying"
    DONE = "done"


#: The phases in which a batch counts as waiting on its cancel (the progress gauge).
WAITING_PHASES = frozenset({Phase.SETTLE_WAIT, Phase.SLEEPING, Phase.POLLING})


@dataclass(frozen=True, slots=True, kw_only=True)
class Life:
    """One action's state between commands."""

    action: Action
    config: LifeConfig
    phase: Phase
    ended: EndedBatch | None = None
    cancel_sent_at: float = 0.0
    delay_s: float = 0.0
    not_found: int = 0
    probe: bool = False
    archive: Mapping[str, Any] | None = None
    results_unavailable: bool = False
    confirmation: Mapping[str, Any] | None = None
    request_id: str | None = None

    @property
    def waiting(self) -> bool:
        return self.phase in WAITING_PHASES


@dataclass(frozen=True, slots=True)
class Transition:
    """The life after a step, the next command, and the shared settle estimate."""

    life: Life
    command: Command
    settle: SettleEstimate
