"""Crash and restart: SIGKILL ``cleaner run --once`` at awkward moments, run it again.

The second run must finish the work with every invariant intact across both runs: no
batch deleted that should not be, none canceled twice, none logged deleted twice. Kill
moments are drawn from a seed and sharpened by watching the emulator: during the
listing, between cancel and delete, with deletions in flight, and at a random moment.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cleaner.emulator import Emulator, FaultRule
from cleaner.emulator.app import EmulatorApp, route
from cleaner.emulator.asgi import Receive, Scope, Send
from cleaner.emulator.server import serve_app_in_thread
from tests.reliability.conftest import KEY, reliability_emulator, seed_world
from tests.reliability.invariants import check_invariants, snapshot

SEED = int(os.environ.get("RELIABILITY_CRASH_SEED", "1122"))


class WatchedApp(EmulatorApp):
    """The emulator's app, noting when a request to each endpoint first arrives."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.arrived: dict[str, threading.Event] = {}

    def event(self, endpoint: str) -> threading.Event:
        return self.arrived.setdefault(endpoint, threading.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            where = route(str(scope.get("method", "")), str(scope.get("path", "")))
            self.event(where.endpoint).set()
        await super().__call__(scope, receive, send)


def environment(base_url: str, protected: frozenset[str]) -> dict[str, str]:
    """cleaner's environment for these runs; nothing of the caller's leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEANER_", "ANTHROPIC_"))}
    env.update(
        ANTHROPIC_API_KEY=KEY,
        ANTHROPIC_BASE_URL=base_url,
        CLEANER_RETENTION="30d",
        CLEANER_PROCESSING_RETENTION="2h",
        CLEANER_SECRETS_DIR="/",
        CLEANER_REQUESTS_PER_MINUTE="60000",
        CLEANER_CONCURRENCY="4",
        CLEANER_WAIT_TIMEOUT="20s",
        CLEANER_PROTECTED_IDS=",".join(sorted(protected)),
    )
    return env


def parse(stdout: str) -> list[dict[str, Any]]:
    """JSON lines; a line cut short by the kill is dropped (its bytes were never written)."""
    lines = []
    for text in stdout.splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return lines


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the kill moment never came")
        time.sleep(0.005)


def delete_confirmed(emulator: Emulator, count: int) -> Callable[[], bool]:
    return lambda: sum(1 for e in emulator.journal if e.endpoint == "delete") >= count


def first_cancel(emulator: Emulator) -> Callable[[], bool]:
    return lambda: any(e.endpoint == "cancel" and e.status == 200 for e in emulator.journal)


MOMENTS = ("during the listing", "between cancel and delete", "with deletions in flight", "any")


@pytest.fixture
def served() -> Iterator[tuple[Emulator, WatchedApp, str]]:
    """An emulator whose cancels take 2 s to settle, served behind a watching app."""
    emulator = reliability_emulator(cancel_settle_s=2.0)
    app = WatchedApp(emulator)
    with serve_app_in_thread(app) as base_url:
        yield emulator, app, base_url


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_run_killed_at_any_moment_is_finished_by_the_next_with_every_invariant(
    served: tuple[Emulator, WatchedApp, str], moment: str
) -> None:
    """SIGKILL mid-run, restart: all expired batches gone, nothing else, nothing twice."""
    emulator, app, base_url = served
    rng = random.Random(f"{SEED}:{moment}")  # noqa: S311  # replayable, not a secret
    world = seed_world(emulator, old=40, stale_running=4)
    if moment == "during the listing":
        emulator.configure(
            faults=(FaultRule(kind="latency", endpoints=frozenset({"list"}), seconds=0.4),)
        )
    else:
        emulator.configure(latency_s=0.02)
    env = environment(base_url, world.policy.protected_ids)
    first = subprocess.Popen(
        [sys.executable, "-m", "cleaner", "run", "--once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if moment == "during the listing":
            wait_for(app.event("list").is_set)
            time.sleep(rng.uniform(0.0, 0.3))
        elif moment == "between cancel and delete":
            wait_for(first_cancel(emulator))
            time.sleep(rng.uniform(0.0, 0.3))
        elif moment == "with deletions in flight":
            wait_for(delete_confirmed(emulator, rng.randint(1, 30)))
        else:
            wait_for(app.event("list").is_set)
            time.sleep(rng.uniform(0.0, 1.5))
        first.send_signal(signal.SIGKILL)
        out, err = first.communicate(timeout=10)
    finally:
        first.kill()
    assert first.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    time.sleep(0.5)  # requests the dead process left in the server's hands land in the journal
    mark = len(emulator.journal)
    emulator.configure(faults=(), latency_s=0.0)
    before_restart = snapshot(emulator)
    second = subprocess.run(
        [sys.executable, "-m", "cleaner", "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    events = parse(out) + parse(second.stdout)
    outputs = [out, err, second.stdout, second.stderr]
    check_invariants(
        emulator,
        policy=world.policy,
        seen=world.seen,
        events=events,
        journal=emulator.journal[:mark],
        outputs=outputs,
        secrets=[KEY],
        every_confirmation_logged=False,  # killed between an answer and its log line
    )
    check_invariants(
        emulator,
        policy=world.policy,
        seen=before_restart,
        events=events,
        journal=emulator.journal[mark:],
        outputs=outputs,
        secrets=[KEY],
    )
    live = {str(b["id"]) for b in emulator.batches()}
    assert not world.expired & live, f"seed {SEED}: the second run left work undone"
    assert world.kept <= live
