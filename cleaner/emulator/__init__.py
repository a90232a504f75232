"""A local, stateful emulator of the Message Batches API (see /work/shared/api-contract.md).

The backbone of cleaner's tests, benchmarks and `cleaner demo`: the official SDK should not
be able to tell it from the real service for every call cleaner makes. It is a stand-alone
fake and imports nothing else from cleaner.

    emu = Emulator(EmulatorConfig(api_key="k"), clock=ManualClock())
    emu.seed(Population(count=3000, status="ended", age_s=40 * 86400))
    with serve_in_thread(emu) as base_url:
        ...  # point a client at base_url; assert on emu.journal, emu.get(...), ...

Workspaces: `EmulatorConfig(workspaces=(WorkspaceSpec("prod", keys=frozenset({"k2"})),))`
adds `wrkspc_prod` beside the default `wrkspc_default`; `Population(..., workspace="prod")`
seeds into it. A credential becomes a workspace only in `resolve_workspace` (workspaces.py).
"""

from cleaner.emulator.clock import Clock, ManualClock, OffsetClock, system_clock
from cleaner.emulator.config import EmulatorConfig
from cleaner.emulator.emulator import Emulator, JournalEntry
from cleaner.emulator.faults import FAULT_KINDS, FaultRule
from cleaner.emulator.ratelimit import TokenBucket
from cleaner.emulator.seedfile import SeedDocument, load_seed
from cleaner.emulator.seeding import Population, parse_duration
from cleaner.emulator.server import serve_forever, serve_in_thread
from cleaner.emulator.wire import ApiError
from cleaner.emulator.workspaces import (
    DEFAULT_WORKSPACE_ID,
    Directory,
    Presented,
    TokenResolver,
    WorkspaceSpec,
    resolve_workspace,
)

__all__ = [
    "DEFAULT_WORKSPACE_ID",
    "FAULT_KINDS",
    "ApiError",
    "Clock",
    "Directory",
    "Emulator",
    "EmulatorConfig",
    "FaultRule",
    "JournalEntry",
    "ManualClock",
    "OffsetClock",
    "Population",
    "Presented",
    "SeedDocument",
    "TokenBucket",
    "TokenResolver",
    "WorkspaceSpec",
    "load_seed",
    "parse_duration",
    "resolve_workspace",
    "serve_forever",
    "serve_in_thread",
    "system_clock",
]
