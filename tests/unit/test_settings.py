"""Settings: every variable parsed, every bad value named, the key never shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cleaner.durations import parse_duration
from cleaner.errors import ConfigError
from cleaner.models import AgeBasis
from cleaner.schedule import Schedule
from cleaner.settings import known_variables, load_settings

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def parse_schedule(text: str) -> timedelta | str | None:
    """The schedule as the daemon reads it: an interval, or the cron text."""
    parsed = Schedule.parse(text, now=NOW)
    return parsed.interval or parsed.cron


KEY = "sk-ant-test-key-0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Start every test from an environment with only the two required variables."""
    for name in list(__import__("os").environ):
        if name.startswith(("CLEANER_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLEANER_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("CLEANER_RETENTION", "30d")


def problems(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert KEY not in str(caught.value)
    return caught.value.problems


def test_defaults_are_the_documented_ones() -> None:
    """Only the key and the retention are required; the rest has safe defaults."""
    settings = load_settings()
    assert settings.base_url == "https://api.anthropic.com"
    assert settings.retention == timedelta(days=30)
    assert settings.policy().processing_retention == timedelta(days=30)  # as retention
    assert settings.schedule == "15m"
    assert settings.dry_run is False
    assert settings.protected_ids == frozenset()
    assert settings.max_deletions_per_run is None
    assert settings.log_level == "info"
    assert settings.age_basis is AgeBasis.CREATED_AT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("36h", timedelta(hours=36)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h30m", timedelta(minutes=90)),
        ("2w", timedelta(days=14)),
        ("P30D", timedelta(days=30)),
        ("PT5M", timedelta(minutes=5)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations_accept_units_and_iso_8601(text: str, expected: timedelta) -> None:
    """Every documented duration form parses to the same timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["300", "", "5 minutes", "d", "P", "1x", "-5m"])
def test_durations_without_a_unit_or_malformed_are_refused(text: str) -> None:
    """A bare number is ambiguous; a retention period is no place to guess."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_cron_expression_that_never_fires_is_refused() -> None:
    """February 31st never comes."""
    with pytest.raises(ValueError, match="never fires"):
        parse_schedule("0 0 31 2 *")


def test_schedules_are_intervals_or_five_field_cron() -> None:
    """Both schedule forms are accepted."""
    assert parse_schedule("15m") == timedelta(minutes=15)
    assert parse_schedule("*/5 * * * *") == "*/5 * * * *"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLEANER_RETENTION", "300"),
        ("CLEANER_RETENTION", "0s"),
        ("CLEANER_PROCESSING_RETENTION", "soon"),
        ("CLEANER_SCHEDULE", "every day"),
        ("CLEANER_SCHEDULE", "61 * * * *"),
        ("CLEANER_SCHEDULE", "0 0 31 2 *"),
        ("CLEANER_SCHEDULE", "100ms"),
        ("CLEANER_DRY_RUN", "maybe"),
        ("CLEANER_MAX_DELETIONS_PER_RUN", "0"),
        ("CLEANER_MAX_DELETIONS_PER_RUN", "lots"),
        ("CLEANER_WAIT_TIMEOUT", "-5m"),
        ("CLEANER_REQUESTS_PER_MINUTE", "0"),
        ("CLEANER_CONCURRENCY", "0"),
        ("CLEANER_CONCURRENCY", "10000"),
        ("CLEANER_LOG_LEVEL", "loud"),
        ("CLEANER_AGE_BASIS", "modified_at"),
        ("CLEANER_HTTP_PORT", "70000"),
        ("CLEANER_REQUEST_TIMEOUT", "0s"),
        ("CLEANER_MAX_ATTEMPTS", "0"),
        ("ANTHROPIC_BASE_URL", "ftp://api.example"),
        ("ANTHROPIC_BASE_URL", "not a url"),
        ("ANTHROPIC_BASE_URL", "http://host:99999"),
        ("CLEANER_RETENSION", "30d"),
    ],
)
def test_every_invalid_value_is_reported_under_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """The error names the variable, so the operator knows what to fix."""
    assert name in problems(monkeypatch, **{name: value})


def test_all_problems_are_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One start tells the operator everything that is wrong, not one thing per restart."""
    found = problems(monkeypatch, CLEANER_CONCURRENCY="x", CLEANER_DRY_RUN="maybe")
    assert {"CLEANER_CONCURRENCY", "CLEANER_DRY_RUN"} <= set(found)


def test_a_missing_key_or_retention_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both required variables are reported when absent."""
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("CLEANER_RETENTION")
    found = problems(monkeypatch)
    assert found["ANTHROPIC_API_KEY"] == "required but not set"
    assert found["CLEANER_RETENTION"] == "required but not set"


def test_the_key_is_read_from_the_secrets_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Kubernetes-style secret files work when the variable is unset."""
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    (tmp_path / "ANTHROPIC_API_KEY").write_text("sk-from-file\n")
    assert load_settings().api_key.get_secret_value() == "sk-from-file"


def test_a_missing_secrets_directory_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An explicitly named directory that is not there is reported."""
    assert "CLEANER_SECRETS_DIR" in problems(
        monkeypatch, CLEANER_SECRETS_DIR=str(tmp_path / "nope")
    )


def test_protected_ids_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spaces and empty entries are ignored."""
    monkeypatch.setenv("CLEANER_PROTECTED_IDS", " msgbatch_a, ,msgbatch_b ")
    assert load_settings().protected_ids == frozenset({"msgbatch_a", "msgbatch_b"})


def test_the_key_never_appears_in_the_settings_repr() -> None:
    """SecretStr hides the key from repr and str."""
    settings = load_settings()
    assert KEY not in repr(settings)
    assert KEY not in str(settings)


def test_an_invalid_key_value_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even an empty or odd key is reported without its value."""
    found = problems(monkeypatch, ANTHROPIC_API_KEY="", CLEANER_RETENTION="x")
    assert "ANTHROPIC_API_KEY" in found
    assert "got" not in found["ANTHROPIC_API_KEY"]


def test_processing_retention_defaults_to_retention_but_can_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Running batches can be given a shorter leash."""
    monkeypatch.setenv("CLEANER_PROCESSING_RETENTION", "6h")
    settings = load_settings()
    assert settings.policy().processing_retention == timedelta(hours=6)
    assert settings.policy().retention == timedelta(days=30)


def test_the_known_variables_are_the_documented_interface() -> None:
    """The names operators script against; changing one is a breaking change."""
    assert known_variables() == {
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "CLEANER_RETENTION",
        "CLEANER_PROCESSING_RETENTION",
        "CLEANER_AGE_BASIS",
        "CLEANER_SCHEDULE",
        "CLEANER_DRY_RUN",
        "CLEANER_PROTECTED_IDS",
        "CLEANER_MAX_DELETIONS_PER_RUN",
        "CLEANER_WAIT_TIMEOUT",
        "CLEANER_REQUESTS_PER_MINUTE",
        "CLEANER_CONCURRENCY",
        "CLEANER_REQUEST_TIMEOUT",
        "CLEANER_MAX_ATTEMPTS",
        "CLEANER_LOG_LEVEL",
        "CLEANER_HTTP_PORT",
        "CLEANER_SECRETS_DIR",
        "CLEANER_HOLDS_FILE",
        "CLEANER_MAX_DELETE_FRACTION",
        "CLEANER_FULL_LISTING_INTERVAL",
    }
