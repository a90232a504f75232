"""Suite-wide guard for invariant 5: no test key ever appears in captured output.

Every test module names its fake key in a ``...KEY = "..."`` constant. At start the guard
collects them all, and after each test phase it scans what pytest captured (stdout,
stderr, log records) for any of them; a test whose output shows a key fails, even when
its own assertions passed. Tests that run cleaner as a subprocess check its output
themselves. ``tests/reliability/test_secrets.py`` proves the guard can fail.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

_TESTS = Path(__file__).resolve().parent
_KEY_CONSTANT = re.compile(r'^\s*[A-Z_]*KEY[A-Z_]*\s*=\s*"([^"]{8,})"', re.MULTILINE)
#: Extra secrets a session adds (the guard's own proof uses it for a canary key).
EXTRA_SECRETS = pytest.StashKey[tuple[str, ...]]()


def known_keys() -> frozenset[str]:
    """Every fake key declared by a test module (shorter ones would match by chance)."""
    found: set[str] = set()
    for path in _TESTS.rglob("*.py"):
        found.update(_KEY_CONSTANT.findall(path.read_text(encoding="utf-8")))
    return frozenset(found)


_KNOWN = known_keys()


def leaks(sections: Iterable[tuple[str, str]], secrets: Iterable[str]) -> list[str]:
    """The names of the captured sections in which any of ``secrets`` appears."""
    wanted = [s for s in secrets if s]
    return [title for title, text in sections if any(s in text for s in wanted)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    extra: tuple[str, ...] = item.config.stash.get(EXTRA_SECRETS, ())
    secrets = _KNOWN | set(extra)
    # Each phase's report repeats the earlier phases' sections: judge only its own.
    own = [(title, text) for title, text in report.sections if title.endswith(f" {call.when}")]
    where = leaks(own, secrets)
    if where and not report.failed:
        report.outcome = "failed"
        report.longrepr = f"an API key appeared in captured output: {', '.join(where)}"
    # Captured output is shown with a failure: never print the key there either.
    report.sections = [(title, _redact(text, secrets)) for title, text in report.sections]
    return report


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[key redacted by tests/conftest.py]")
    return text
