"""Invariant 5 across the suite: the key guard in tests/conftest.py can and does fail."""

from __future__ import annotations

import pytest

from tests.conftest import known_keys, leaks
from tests.reliability.conftest import KEY

CANARY = "sk-ant-canary-key-only-the-inner-session-knows"

INNER_CONFTEST = f"""
from tests.conftest import EXTRA_SECRETS, pytest_runtest_makereport  # the guard under test

def pytest_configure(config):
    config.stash[EXTRA_SECRETS] = ({CANARY!r},)
"""

INNER_TESTS = f"""
import logging
import sys

def test_prints_the_key():
    print("authorization: " + {CANARY!r})

def test_logs_the_key():
    logging.getLogger("x").warning("x-api-key=%s", {CANARY!r})

def test_writes_the_key_to_stderr():
    sys.stderr.write({CANARY!r})

def test_prints_nothing_secret():
    print("nothing to see")
"""


def test_every_test_modules_key_is_known_to_the_guard() -> None:
    """The guard found the keys the suite's modules declare, this one's included."""
    keys = known_keys()
    assert KEY in keys
    assert len(keys) >= 5


def test_leaks_names_each_section_holding_a_key() -> None:
    """Only the sections that hold a key are reported."""
    sections = [("Captured stdout call", f"x {KEY} y"), ("Captured log call", "clean")]
    assert leaks(sections, [KEY]) == ["Captured stdout call"]
    assert leaks(sections, []) == []


def test_a_test_that_prints_logs_or_writes_a_key_fails_and_the_key_is_not_shown(
    pytester: pytest.Pytester,
) -> None:
    """An inner session with the guard: three leaking tests fail, the clean one passes."""
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:asyncio", "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=1, failed=3)
    text = result.stdout.str()
    assert "an API key appeared in captured output" in text
    assert CANARY not in text
