"""API details the client must read right: retry-after dates, error codes, fatal errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleaner.errors import (
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    ServerError,
    SpendCapError,
    status_error,
)
from cleaner.wire import error_envelope, retry_after_s

NOW = datetime(2026, 12, 2, 18, 0, 0, tzinfo=UTC)


def _headers(**values: str) -> httpx.Headers:
    return httpx.Headers({name.replace("_", "-"): value for name, value in values.items()})


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("Wed, 02 Dec 2026 18:00:07 GMT", 7.0),  # IMF-fixdate
        ("Wednesday, 02-Dec-26 18:00:30 GMT", 30.0),  # obsolete RFC 850
        ("Wed Dec  2 18:01:00 2026", 60.0),  # obsolete asctime
        ("Wed, 02 Dec 2026 17:59:00 GMT", 0.0),  # already past: retry now
        ("Wed, 02 Dec 2026 19:00:00 GMT", 600.0),  # capped like any absurd wait
        ("3", 3.0),
        ("0.5", 0.5),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(header: str, seconds: float) -> None:
    """Every form RFC 9110 allows gives the wait from now, not 'absent'."""
    assert retry_after_s(_headers(retry_after=header), now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", ["soon", "-1", "nan", "inf", ""])
def test_a_retry_after_that_is_neither_a_number_nor_a_date_reads_as_absent(header: str) -> None:
    """Garbage is not a wait (and so a 429 without a usable one stays a spend cap)."""
    assert retry_after_s(_headers(retry_after=header), now=NOW) is None


def test_retry_after_ms_wins_over_retry_after() -> None:
    """The millisecond header is the precise one, as in the SDKs."""
    headers = _headers(retry_after="Wed, 02 Dec 2026 18:00:07 GMT", retry_after_ms="1500")
    assert retry_after_s(headers, now=NOW) == pytest.approx(1.5)


@given(st.integers(min_value=0, max_value=599), st.integers(min_value=0, max_value=10**6))
def test_any_imf_fixdate_within_the_cap_reads_as_the_seconds_until_it(
    seconds: int, offset_s: int
) -> None:
    """An HTTP date ``seconds`` ahead of any "now" reads back as ``seconds``."""
    now = NOW + timedelta(seconds=offset_s)
    header = format_datetime(now + timedelta(seconds=seconds), usegmt=True)
    assert retry_after_s(_headers(retry_after=header), now=now) == seconds


def _body(error: object) -> bytes:
    return orjson.dumps({"type": "error", "error": error, "request_id": "req_body"})


def test_the_error_envelope_gives_type_message_request_id_and_error_code() -> None:
    """error.details.error_code is read alongside the bare type."""
    body = _body(
        {
            "type": "invalid_request_error",
            "message": "on hold",
            "details": {"error_code": "organization_on_hold"},
        }
    )
    assert error_envelope(body) == (
        "invalid_request_error",
        "on hold",
        "req_body",
        "organization_on_hold",
    )


@pytest.mark.parametrize(
    "body",
    [b"<html>bad gateway</html>", b"[]", _body("a string"), _body({"details": ["x"]}), b"null"],
)
def test_an_error_body_without_the_envelope_reads_as_empty(body: bytes) -> None:
    """A proxy's page or a mangled envelope leaves only the status to go on."""
    error_type, _, _, code = error_envelope(body)
    assert (error_type, code) == ("", None)


@pytest.mark.parametrize(
    ("status", "code", "retry_after_s", "cls"),
    [
        (400, "organization_on_hold", None, BadRequestError),
        (429, "enforced_spend_limit_reached", 30.0, SpendCapError),
        (429, None, None, SpendCapError),
        (401, None, None, AuthenticationError),
    ],
)
def test_errors_that_will_fail_every_call_are_fatal_and_not_retried(
    status: int, code: str | None, retry_after_s: float | None, cls: type[Exception]
) -> None:
    """Account on hold, a spend limit, no key: the cycle stops instead of failing each batch."""
    error = status_error(status, "m", error_code=code, retry_after_s=retry_after_s)
    assert type(error) is cls
    assert error.fatal
    assert not error.retryable
    assert error.error_code == code


def test_an_unknown_error_code_is_handled_as_its_bare_type_and_shown() -> None:
    """A code we do not know changes nothing but the message that names it."""
    server = status_error(500, "m", error_type="api_error", error_code="brand_new_code")
    limited = status_error(429, "m", error_type="rate_limit_error", retry_after_s=1.0)
    assert type(server) is ServerError
    assert (server.retryable, server.fatal) == (True, False)
    assert "api_error (brand_new_code)" in str(server)
    assert type(limited) is RateLimitError
    assert not limited.fatal
