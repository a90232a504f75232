"""Configuration: the only reader of the environment.

Every variable is parsed and validated once, at start, into a frozen :class:`Settings`.
Anything wrong becomes one :class:`ConfigError` naming every offending variable, so a
bad deployment stops before it sends a single request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from cleaner.clock import SYSTEM
from cleaner.durations import parse_duration
from cleaner.errors import ConfigError
from cleaner.holds import Holds, HoldsError, parse_holds
from cleaner.models import AgeBasis
from cleaner.policy import RetentionPolicy
from cleaner.schedule import Schedule

DEFAULT_SECRETS_DIR = "/run/secrets"


def _duration(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


def _positive(name: str, value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"{name} must be longer than zero")
    return value


class Settings(BaseSettings):
    """Everything cleaner reads from its environment. Units are in the names."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=False,
        extra="ignore",
        populate_by_name=False,
    )

    # --- the API
    api_key: SecretStr = Field(
        validation_alias="ANTHROPIC_API_KEY",
        min_length=1,
        description="API key of the workspace whose batches are cleaned. Required. Kept out "
        "of logs; may instead be a file named ANTHROPIC_API_KEY in CLEANER_SECRETS_DIR.",
        examples=["sk-ant-api03-EXAMPLE-NOT-A-REAL-KEY"],
    )
    base_url: str = Field(
        "https://api.anthropic.com",
        validation_alias="ANTHROPIC_BASE_URL",
        description="Base URL of the API, http(s) with a host. Point it at a local emulator "
        "for a trial.",
        examples=["http://127.0.0.1:8000"],
    )

    # --- the policy
    retention: timedelta = Field(
        validation_alias="CLEANER_RETENTION",
        description="Required. An ended batch older than this (from CLEANER_AGE_BASIS) is "
        "deleted. A number with a unit (w, d, h, m, s, ms; combinable as 1h30m) or ISO 8601 "
        "(P30D); a bare number is refused.",
        examples=["30d"],
    )
    processing_retention: timedelta | None = Field(
        None,
        validation_alias="CLEANER_PROCESSING_RETENTION",
        description="A batch not yet ended (in progress or canceling) older than this, from "
        "its creation, is canceled, waited on until it ends, then deleted. Defaults to "
        "CLEANER_RETENTION.",
        examples=["12h"],
    )
    age_basis: AgeBasis = Field(
        AgeBasis.CREATED_AT,
        validation_alias="CLEANER_AGE_BASIS",
        description="What an ended batch's age counts from: created_at (the API's own "
        "results clock) or ended_at.",
        examples=["ended_at"],
    )
    protected_ids: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(),
        validation_alias="CLEANER_PROTECTED_IDS",
        description="Comma-separated batch ids that are never canceled or deleted.",
        examples=["msgbatch_013Zva2CMHLNnXjNJJKqJ2EF,msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d"],
    )
    max_deletions_per_run: int | None = Field(
        None,
        ge=1,
        validation_alias="CLEANER_MAX_DELETIONS_PER_RUN",
        description="At most this many actions per cycle, oldest batches first; the rest wait "
        "for later cycles. Empty, none or off: no cap.",
        examples=["1000"],
    )
    holds_file: Path | None = Field(
        None,
        validation_alias="CLEANER_HOLDS_FILE",
        description="A YAML or JSON file of holds (a mounted ConfigMap): batches never "
        "canceled or deleted, by batch_id or a created_after/created_before window, each with "
        "a reason, optionally an owner and an until. Read again at every cycle; a broken file "
        "stops that cycle from acting (fail closed).",
        examples=["/etc/cleaner/holds.yaml"],
    )
    max_delete_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        validation_alias="CLEANER_MAX_DELETE_FRACTION",
        description="Blast-radius stop: when a cycle plans actions on more than this share of "
        "the batches it listed (and more than 10 actions), it acts on nothing, logs "
        "blast_radius_exceeded and fails. Unset: no stop.",
        examples=["0.5"],
    )
    dry_run: bool = Field(
        False,
        validation_alias="CLEANER_DRY_RUN",
        description="true: list, plan and log every action (dry_run_action lines) but send no "
        "cancel or delete. The shipped manifests set it; switch it off after reading the plan.",
        examples=["true"],
    )

    # --- the schedule and the cycle
    schedule: str = Field(
        "15m",
        validation_alias="CLEANER_SCHEDULE",
        description="When `cleaner run` starts a cycle, besides one at start: an interval "
        "(at least 1s) or a 5-field cron expression in UTC. A long cycle delays the next one; "
        "it never overlaps it.",
        examples=["1h", "0 3 * * *"],
    )
    full_listing_interval: timedelta = Field(
        timedelta(hours=24),
        validation_alias="CLEANER_FULL_LISTING_INTERVAL",
        description="Between full listings, a cycle pages only where something can have "
        "changed (new batches, the bands that crossed a retention boundary) and retrieves the "
        "batches it is waiting on. A full listing runs after every start, after a change of "
        "policy or holds, whenever the memory is in doubt, and at least this often.",
        examples=["6h"],
    )
    wait_timeout: timedelta = Field(
        timedelta(minutes=5),
        validation_alias="CLEANER_WAIT_TIMEOUT",
        description="How long a cycle waits for canceled batches to end before leaving them to "
        "the next cycle. 0s: do not wait.",
        examples=["10m"],
    )

    # --- the client
    requests_per_minute: int = Field(
        500,
        ge=1,
        le=1_000_000,
        validation_alias="CLEANER_REQUESTS_PER_MINUTE",
        description="Upper bound on API requests per minute. The key's rate "
        "limit is shared with other traffic: leave headroom. Lowered for a while after a 429.",
        examples=["200"],
    )
    concurrency: int = Field(
        32,
        ge=1,
        le=512,
        validation_alias="CLEANER_CONCURRENCY",
        description="API requests in flight at most.",
        examples=["8"],
    )
    request_timeout: timedelta = Field(
        timedelta(seconds=30),
        validation_alias="CLEANER_REQUEST_TIMEOUT",
        description="Time limit for one HTTP exchange, the whole body included.",
        examples=["10s"],
    )
    max_attempts: int = Field(
        10,
        ge=1,
        le=50,
        validation_alias="CLEANER_MAX_ATTEMPTS",
        description="Attempts per API call, the first included, on 429, 5xx, 529 "
        "and connection errors, with backoff that honours retry-after.",
        examples=["5"],
    )

    # --- operations
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        validation_alias="CLEANER_LOG_LEVEL",
        description="debug, info, warning or error. Logs are JSON lines on stdout.",
        examples=["debug"],
    )
    http_port: Annotated[int, Field(ge=0, le=65535)] | Literal["off"] | None = Field(
        None,
        validation_alias="CLEANER_HTTP_PORT",
        description="Port serving /livez, /readyz and /metrics on all interfaces. Unset: 8080 "
        "for `cleaner run`, none for `cleaner run --once`. `off` serves nothing; 0 picks a "
        "free port.",
        examples=["9090"],
    )

    @field_validator(
        "retention",
        "processing_retention",
        "wait_timeout",
        "request_timeout",
        "full_listing_interval",
        mode="before",
    )
    @classmethod
    def _parse_durations(cls, value: object) -> object:
        return _duration(value)

    @field_validator(
        "retention", "processing_retention", "request_timeout", "full_listing_interval"
    )
    @classmethod
    def _must_be_positive(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else _positive("the duration", value)

    @field_validator("wait_timeout")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("the wait timeout cannot be negative")
        return value

    @field_validator("log_level", "age_basis", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("protected_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("max_deletions_per_run", "max_delete_fraction", "holds_file", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in {"", "none", "off"}:
            return None
        return value

    @field_validator("http_port", mode="before")
    @classmethod
    def _port_or_off(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value == "":
                return None
        return value

    def health_port(self, *, once: bool) -> int | None:
        """The port to serve health on, or None: 8080 for the daemon, none for --once."""
        if self.http_port == "off":
            return None
        if self.http_port is None:
            return None if once else 8080
        return self.http_port

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError(f"{value!r} has an invalid port") from None
        return value.strip().rstrip("/")

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        Schedule.parse(value, now=SYSTEM.wall())  # validated at load, the one moment it runs
        return value.strip()

    def policy(self, holds: Holds | None = None) -> RetentionPolicy:
        """The retention policy these settings describe, with ``holds`` from the holds file."""
        return RetentionPolicy(
            retention=self.retention,
            processing_retention=self.processing_retention or self.retention,
            protected_ids=self.protected_ids,
            age_basis=self.age_basis,
            holds=holds or Holds(),
        )


_OWN_PREFIX = "CLEANER_"
_KNOWN = {
    (field.validation_alias if isinstance(field.validation_alias, str) else name.upper())
    for name, field in Settings.model_fields.items()
} | {"CLEANER_SECRETS_DIR"}


def known_variables() -> frozenset[str]:
    """Every environment variable cleaner reads."""
    return frozenset(_KNOWN)


def load_settings() -> Settings:
    """Read and validate the configuration, or raise one ConfigError naming every problem.

    The key may also come from a file ``ANTHROPIC_API_KEY`` in ``CLEANER_SECRETS_DIR``
    (default ``/run/secrets``), the way Kubernetes mounts secrets; the environment wins.
    """
    problems: dict[str, str] = {}
    for name in os.environ:
        upper = name.upper()
        if upper.startswith(_OWN_PREFIX) and upper not in _KNOWN:
            # A typo such as CLEANER_RETENSION would otherwise pass silently.
            problems[name] = "unknown variable (see config/README.md for the list)"
    secrets_dir = Path(os.environ.get("CLEANER_SECRETS_DIR", DEFAULT_SECRETS_DIR))
    if "CLEANER_SECRETS_DIR" in os.environ and not secrets_dir.is_dir():
        problems["CLEANER_SECRETS_DIR"] = f"{secrets_dir} is not a directory"
    try:
        # A secrets dir that does not exist makes pydantic-settings warn on every load.
        settings = Settings(_secrets_dir=secrets_dir if secrets_dir.is_dir() else None)  # type: ignore[call-arg]
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "configuration"
            problems.setdefault(name, _message(error))
        raise ConfigError(problems) from None
    except SettingsError as exc:
        raise ConfigError({"configuration": str(exc)}) from None
    if settings.holds_file is not None:
        try:
            read_holds(settings.holds_file)
        except HoldsError as exc:
            problems["CLEANER_HOLDS_FILE"] = str(exc)
    if problems:
        raise ConfigError(problems)
    return settings


def read_holds(path: Path | None) -> Holds:
    """The holds file's holds (none when no file is configured); HoldsError if it is bad.

    Read at start (a bad file is a configuration error) and again at every cycle, so an
    edited ConfigMap takes effect without a restart.
    """
    if path is None:
        return Holds()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HoldsError(str(path), f"cannot be read: {exc}") from exc
    return parse_holds(text, source=str(path))


class _ExplicitSettings(Settings):
    """Settings validated from given values alone; the environment is not consulted."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_from(values: Mapping[str, Any]) -> Settings:
    """Settings from explicit values keyed by variable name (the demo, tests).

    Validated exactly like the environment, but whatever the caller's shell has set is
    ignored, so the result is the same on every machine.
    """
    return _ExplicitSettings(**values)


def _message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "missing":
        return "required but not set"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    raw = error.get("input")
    loc = error.get("loc") or ("",)
    # Echo what was read so the operator sees the typo; never echo the key.
    if isinstance(raw, str) and loc[0] != "ANTHROPIC_API_KEY" and repr(raw) not in message:
        return f"{message} (got {raw!r})"
    return message
