"""Processes for the drain benchmark: an emulator, and measured runs of cleaner or the SDK.

Every process is separate: the emulator in its own interpreter (`python -m
cleaner.emulator`), and each measured program under `launch.py`, which reports the exit
code, wall time, peak RSS and CPU seconds of that program alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
KEY = "sk-ant-bench-not-a-real-key"
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Measured:
    """One finished program: what launch.py saw, and where its output went."""

    exit_code: int
    wall_s: float
    peak_rss_mb: float
    cpu_s: float
    stdout: Path

    def lines(self) -> Iterator[dict[str, Any]]:
        """The program's stdout as JSON lines (other lines skipped)."""
        with self.stdout.open("rb") as lines:
            for line in lines:
                if line.startswith(b"{"):
                    yield json.loads(line)

    def event(self, name: str) -> dict[str, Any]:
        """The last log line with this event name."""
        found = [line for line in self.lines() if line.get("event") == name]
        if not found:
            raise RuntimeError(f"{self.stdout}: no {name} line (exit {self.exit_code})")
        return found[-1]


@dataclass(slots=True)
class Emulator:
    """`python -m cleaner.emulator` in its own process; a context manager."""

    seeds: Sequence[str]
    latency: str = "0s"
    rate_limit_rpm: float | None = None
    cancel_settle: str | None = None
    processing_time: str | None = None
    base_url: str = ""
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)
    _http: httpx.Client | None = field(default=None, repr=False)

    def __enter__(self) -> Emulator:
        command = [sys.executable, "-m", "cleaner.emulator", "--port", "0", "--api-key", KEY]
        command += ["--latency", self.latency, "--random-seed", "7"]
        for seed in self.seeds:
            command += ["--seed", seed]
        if self.rate_limit_rpm is not None:
            command += ["--rate-limit-rpm", str(self.rate_limit_rpm)]
        if self.cancel_settle is not None:
            command += ["--cancel-settle", self.cancel_settle]
        if self.processing_time is not None:
            command += ["--processing-time", self.processing_time]
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
        )
        stdout = self._process.stdout
        if stdout is None:
            raise RuntimeError("emulator has no stdout")
        line = stdout.readline()  # blocks while seeding; a million batches take seconds
        if not line.startswith("emulator listening on "):
            self.__exit__()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.base_url = line.split()[3]
        self._http = httpx.Client(base_url=self.base_url, timeout=60.0)
        return self

    def __exit__(self, *_: object) -> None:
        if self._http is not None:
            self._http.close()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def admin(self, path: str) -> Any:
        """GET an operator endpoint under /_emulator/."""
        if self._http is None:
            raise RuntimeError("emulator not started")
        response = self._http.get(f"/_emulator/{path}")
        response.raise_for_status()
        return response.json()

    def request_counts(self) -> dict[tuple[str, int], int]:
        """Requests the API endpoints answered, by (endpoint, status)."""
        counts = self.admin("requests")["counts"]
        return {(c["endpoint"], int(c["status"])): int(c["count"]) for c in counts}

    def journal(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.admin("journal")["entries"]
        return entries

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.admin("state")
        return state


def cleaner_env(base_url: str, **settings: str) -> dict[str, str]:
    """The environment of one cleaner run: nothing of the caller's CLEANER_* leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEANER_", "ANTHROPIC_"))}
    env.update(
        ANTHROPIC_API_KEY=KEY,
        ANTHROPIC_BASE_URL=base_url,
        CLEANER_SECRETS_DIR="/",  # an existing directory without a key file: no warning
        CLEANER_RETENTION="30d",
    )
    env.update(settings)
    return env


def cleaner_command() -> list[str]:
    """`cleaner run --once`, via the installed console script when there is one."""
    script = Path(sys.executable).parent / "cleaner"
    if script.exists():
        return [str(script), "run", "--once"]
    return [sys.executable, "-m", "cleaner", "run", "--once"]


def measure(command: Sequence[str], *, env: Mapping[str, str], workdir: Path) -> Measured:
    """Run ``command`` under launch.py; its stdout goes to a file in ``workdir``."""
    with tempfile.NamedTemporaryFile(
        dir=workdir, prefix="run-", suffix=".json", delete=False
    ) as report:
        report_path = Path(report.name)
    stdout_path = report_path.with_suffix(".out")
    stderr_path = report_path.with_suffix(".err")
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        subprocess.run(
            [sys.executable, str(BENCH / "launch.py"), str(report_path), *command],
            stdout=out,
            stderr=err,
            env=dict(env),
            cwd=REPO,
            check=True,
        )
    result = json.loads(report_path.read_text())
    measured = Measured(
        exit_code=int(result["exit_code"]),
        wall_s=float(result["wall_s"]),
        peak_rss_mb=float(result["peak_rss_mb"]),
        cpu_s=float(result["user_s"]) + float(result["system_s"]),
        stdout=stdout_path,
    )
    if measured.exit_code != 0:
        tail = stderr_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{command[0]} exited {measured.exit_code}: {tail}")
    return measured


def run_cleaner(base_url: str, *, workdir: Path, **settings: str) -> Measured:
    return measure(cleaner_command(), env=cleaner_env(base_url, **settings), workdir=workdir)


def run_sdk_loop(base_url: str, *, workdir: Path, retention_days: float = 30.0) -> Measured:
    command = [sys.executable, str(BENCH / "sdk_loop.py"), base_url, KEY, str(retention_days)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return measure(command, env=env, workdir=workdir)
