"""End-to-end fixtures: ``cleaner`` as a real subprocess against an emulator on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from cleaner.emulator import Emulator, EmulatorConfig, serve_in_thread

KEY = "sk-ant-e2e-secret-key-do-not-print-7731"
DAY = 86400.0


@dataclass
class Finished:
    """A finished cleaner process: exit code and its output, stdout parsed as JSON lines."""

    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]


def cleaner_env(base_url: str, **extra: str) -> dict[str, str]:
    """A minimal environment for cleaner: nothing of the caller's CLEANER_* leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEANER_", "ANTHROPIC_"))}
    env.update(
        ANTHROPIC_API_KEY=KEY,
        ANTHROPIC_BASE_URL=base_url,
        CLEANER_RETENTION="30d",
        CLEANER_PROCESSING_RETENTION="2h",
        CLEANER_SECRETS_DIR="/",  # an existing directory holding no key file
        CLEANER_REQUESTS_PER_MINUTE="60000",
    )
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cleaner", *args]


def run_cleaner(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> Finished:
    """Run cleaner to completion and capture everything it printed."""
    done = subprocess.run(
        command(*args),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for stream in (done.stdout, done.stderr):
        assert KEY not in stream  # the key never appears in any output
    return Finished(done.returncode, done.stdout, done.stderr)


def stop_when(
    process: subprocess.Popen[str], condition: Callable[[], bool], *, within_s: float = 20.0
) -> tuple[str, float]:
    """Once ``condition`` holds (or ``within_s`` passed), SIGTERM the process.

    Returns what it printed and how long it took to exit after the signal.
    """
    try:
        deadline = time.monotonic() + within_s
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        out, _ = process.communicate(timeout=15)
        return out, time.monotonic() - sent
    finally:
        process.kill()


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(EmulatorConfig(api_key=KEY, processing_time_s=20 * 3600, cancel_settle_s=0.5))


@pytest.fixture
def base_url(emulator: Emulator) -> Iterator[str]:
    with serve_in_thread(emulator) as url:
        yield url
