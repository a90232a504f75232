"""Bad configuration: exit 2, a message naming the variable, and not one request sent.

Every variable with an invalid value, a missing key, a base URL that is not HTTP or whose
host does not exist, a cron expression that never fires. All cases start together (one
process each, real ``cleaner``) against one emulator, which must see no request at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cleaner.cli import check_host_resolves
from cleaner.emulator import Emulator, serve_in_thread
from cleaner.errors import ConfigError
from tests.reliability.conftest import KEY, reliability_emulator

UNSET = "<unset>"
#: (variable, bad value, command). Every variable cleaner reads has at least one case,
#: except CLEANER_PROTECTED_IDS, where any comma-separated text is a valid list of ids.
CASES: list[tuple[str, str, str]] = [
    ("ANTHROPIC_API_KEY", UNSET, "run"),
    ("ANTHROPIC_API_KEY", "", "run"),
    ("ANTHROPIC_BASE_URL", "ftp://api.example.com", "run"),
    ("ANTHROPIC_BASE_URL", "not a url", "run"),
    ("ANTHROPIC_BASE_URL", "http://127.0.0.1:99999", "run"),
    ("ANTHROPIC_BASE_URL", "https://no-such-host.invalid", "run"),
    ("ANTHROPIC_BASE_URL", "https://no-such-host.invalid", "plan"),
    ("CLEANER_RETENTION", UNSET, "run"),
    ("CLEANER_RETENTION", "forever", "run"),
    ("CLEANER_RETENTION", "300", "run"),
    ("CLEANER_PROCESSING_RETENTION", "0s", "run"),
    ("CLEANER_AGE_BASIS", "modified_at", "run"),
    ("CLEANER_MAX_DELETIONS_PER_RUN", "0", "run"),
    ("CLEANER_DRY_RUN", "maybe", "run"),
    ("CLEANER_SCHEDULE", "0 0 31 2 *", "run"),  # February 31st: never fires
    ("CLEANER_SCHEDULE", "every day", "run"),
    ("CLEANER_WAIT_TIMEOUT", "-5m", "run"),
    ("CLEANER_REQUESTS_PER_MINUTE", "0", "run"),
    ("CLEANER_CONCURRENCY", "many", "run"),
    ("CLEANER_REQUEST_TIMEOUT", "0s", "run"),
    ("CLEANER_MAX_ATTEMPTS", "0", "run"),
    ("CLEANER_LOG_LEVEL", "loud", "run"),
    ("CLEANER_HTTP_PORT", "70000", "run"),
    ("CLEANER_SECRETS_DIR", "/no/such/dir", "run"),
    ("CLEANER_RETENSION", "30d", "run"),  # a typo is not silently ignored
]


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def finished() -> Iterator[tuple[Emulator, dict[int, Finished]]]:
    """Every case run at once against one emulator; their exit codes and output."""
    emulator = reliability_emulator()
    with serve_in_thread(emulator) as base_url:
        processes = {}
        for index, (name, value, command) in enumerate(CASES):
            env = {
                k: v for k, v in os.environ.items() if not k.startswith(("CLEANER_", "ANTHROPIC_"))
            }
            env.update(
                ANTHROPIC_API_KEY=KEY,
                ANTHROPIC_BASE_URL=base_url,
                CLEANER_RETENTION="30d",
                CLEANER_SECRETS_DIR="/",
                CLEANER_HTTP_PORT="off",
            )
            if value == UNSET:
                env.pop(name, None)
            else:
                env[name] = value
            args = [sys.executable, "-m", "cleaner", command]
            args += ["--once"] if command == "run" else ["--format", "json"]
            processes[index] = subprocess.Popen(
                args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        results = {}
        for index, process in processes.items():
            out, err = process.communicate(timeout=50)
            results[index] = Finished(process.returncode, out, err)
        yield emulator, results


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{n}={v!r}-{c}" for n, v, c in CASES])
def test_bad_configuration_exits_two_naming_the_variable_and_sends_nothing(
    finished: tuple[Emulator, dict[int, Finished]], index: int
) -> None:
    """Exit 2; the variable on stderr and in the JSON error line; no request; no key."""
    emulator, results = finished
    name = CASES[index][0]
    done = results[index]
    assert done.code == 2, done.stdout + done.stderr
    assert "cleaner: invalid configuration: " in done.stderr
    assert name in done.stderr
    lines = [
        json.loads(line) for line in (done.stdout + done.stderr).splitlines() if line[:1] == "{"
    ]
    error = [line for line in lines if line.get("event") == "configuration_invalid"]
    assert len(error) == 1
    assert name in error[0]["variables"]
    assert "Traceback" not in done.stderr
    assert KEY not in done.stdout + done.stderr
    assert emulator.request_counts.total() == 0


def test_a_host_that_resolves_passes_the_dns_check() -> None:
    """Loopback names and addresses resolve; a refused port is the daemon's exit 1, not 2."""
    check_host_resolves("http://127.0.0.1:9")
    check_host_resolves("http://localhost:9")


def test_a_host_that_does_not_exist_fails_the_dns_check_naming_the_variable() -> None:
    """The .invalid top-level domain never resolves (RFC 2606)."""
    with pytest.raises(ConfigError) as raised:
        check_host_resolves("https://api.typo.invalid")
    assert set(raised.value.problems) == {"ANTHROPIC_BASE_URL"}
    assert "api.typo.invalid" in str(raised.value)


def test_the_dns_check_is_skipped_when_a_proxy_resolves_for_us(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With HTTPS_PROXY set, the name is the proxy's to resolve: no local verdict."""
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    check_host_resolves("https://api.typo.invalid")
