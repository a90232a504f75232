"""Fault injection: a short list of rules, each firing on some endpoints with a probability.

Why rules rather than flags: a soak test wants "drop 5 % of deletes", a regression test wants
"the next two retrieves 404, then behave", and both must replay. So a rule names one kind of
misbehaviour, the endpoints it applies to, a probability and an optional budget (`times`);
the emulator walks the rules in order for every /v1 request, drawing from one seeded RNG.

The rate limits are not rules: they are token buckets (`ratelimit.py`) the emulator owns,
because they must count every request, not fire at random.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from cleaner.emulator.wire import ApiError, JsonObject

Endpoint = Literal["create", "retrieve", "list", "cancel", "delete", "results"]
ENDPOINTS: frozenset[str] = frozenset(get_args(Endpoint))

FaultKind = Literal[
    "server_error",  # 500 api_error
    "overloaded",  # 529 overloaded_error
    "timeout",  # 504 timeout_error
    "random_error",  # one of the three above, picked by the RNG
    "rate_limit",  # 429 rate_limit_error with retry-after (seconds = rule.seconds, default 1)
    "spend_cap",  # 429 rate_limit_error without retry-after: the monthly spend limit
    "not_found",  # transient 404 not_found_error for a batch that exists
    "malformed",  # 200 with a body that is not valid JSON
    "latency",  # sleep rule.seconds, then carry on (does not stop the rule walk)
    "hang",  # no answer for rule.seconds (default 120) or until the client gives up
    "reset_before",  # drop the connection before acting: no state change
    "drop_after",  # act (e.g. really delete), then drop the connection mid-response
    "cut_body",  # results only: half the body, then the connection drops (results.py)
    "trickle",  # results only: the body in small pieces, rule.seconds (default 1) apart
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))

# The status each error-like kind answers with, and its error type.
ERROR_KINDS: Mapping[str, tuple[int, str]] = {
    "server_error": (500, "api_error"),
    "overloaded": (529, "overloaded_error"),
    "timeout": (504, "timeout_error"),
    "rate_limit": (429, "rate_limit_error"),
    "spend_cap": (429, "rate_limit_error"),
    "not_found": (404, "not_found_error"),
}
_RANDOM_ERROR_CHOICES = ("server_error", "overloaded", "timeout")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One kind of misbehaviour; `endpoints=None` means every batch endpoint."""

    kind: FaultKind
    endpoints: frozenset[str] | None = None
    probability: float = 1.0
    times: int | None = None
    seconds: float | None = None
    should_retry: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(FAULT_KINDS)}")
        if self.endpoints is not None:
            unknown = set(self.endpoints) - ENDPOINTS
            if unknown:
                raise ValueError(f"unknown endpoints {sorted(unknown)}; known: {sorted(ENDPOINTS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0")
        if self.seconds is not None and self.seconds < 0:
            raise ValueError("seconds must be >= 0")

    def applies_to(self, endpoint: str) -> bool:
        """Whether this rule is about `endpoint` at all."""
        return self.endpoints is None or endpoint in self.endpoints

    def to_json(self) -> dict[str, object]:
        """The rule as the operator endpoint shows and accepts it."""
        return {
            "kind": self.kind,
            "endpoints": None if self.endpoints is None else sorted(self.endpoints),
            "probability": self.probability,
            "times": self.times,
            "seconds": self.seconds,
            "should_retry": self.should_retry,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FaultRule:
        """Parse one rule from JSON; raises ValueError with a readable message."""
        unknown = set(data) - {"kind", "endpoints", "probability", "times", "seconds"}
        unknown -= {"should_retry"}
        if unknown:
            raise ValueError(f"unknown fault rule fields {sorted(unknown)}")
        kind = data.get("kind")
        if not isinstance(kind, str) or kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}")
        endpoints = data.get("endpoints")
        if endpoints is not None and not (
            isinstance(endpoints, list) and all(isinstance(e, str) for e in endpoints)
        ):
            raise ValueError("endpoints must be a list of endpoint names or null")
        return cls(
            kind=kind,  # type: ignore[arg-type]  # checked against FAULT_KINDS above
            endpoints=None if endpoints is None else frozenset(endpoints),
            probability=_number(data.get("probability", 1.0), "probability"),
            times=_optional_int(data.get("times"), "times"),
            seconds=_optional_number(data.get("seconds"), "seconds"),
            should_retry=_optional_bool(data.get("should_retry"), "should_retry"),
        )


@dataclass(frozen=True, slots=True)
class Firing:
    """What the rule walk decided for one request."""

    kind: str | None  # the terminal fault, or None to serve normally
    delay_s: float  # latency to add before anything else
    rule: FaultRule | None


@dataclass(slots=True)
class FaultPlan:
    """The rules plus their remaining budgets and the RNG; guarded by one lock."""

    rules: tuple[FaultRule, ...]
    rng: random.Random
    remaining: list[int | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, rules: Iterable[FaultRule], seed: int) -> FaultPlan:
        """A fresh plan: budgets full, RNG at the start of `seed`."""
        frozen = tuple(rules)
        rng = random.Random(seed)  # noqa: S311  # nosec B311  # replayable, not crypto
        return cls(rules=frozen, rng=rng, remaining=[r.times for r in frozen])

    def decide(self, endpoint: str, base_latency_s: float) -> Firing:
        """Walk the rules for one request: latency adds up, the first other firing wins."""
        delay = base_latency_s
        with self.lock:
            for index, rule in enumerate(self.rules):
                if not rule.applies_to(endpoint) or self.remaining[index] == 0:
                    continue
                if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                    continue
                left = self.remaining[index]
                if left is not None:
                    self.remaining[index] = left - 1
                if rule.kind == "latency":
                    delay += rule.seconds or 0.0
                    continue
                kind: str = rule.kind
                if kind == "random_error":
                    kind = self.rng.choice(_RANDOM_ERROR_CHOICES)
                return Firing(kind=kind, delay_s=delay, rule=rule)
        return Firing(kind=None, delay_s=delay, rule=None)


def retry_after_headers(wait_s: float) -> list[tuple[bytes, bytes]]:
    """`retry-after` in whole seconds (rounded up) and `retry-after-ms`, as the API sends."""
    seconds = max(1, math.ceil(wait_s))
    millis = max(1, math.ceil(wait_s * 1000))
    return [(b"retry-after", str(seconds).encode()), (b"retry-after-ms", str(millis).encode())]


def fault_error(kind: str, batch_id: str | None) -> ApiError:
    """The error answer of an error-like fault kind."""
    status, error_type = ERROR_KINDS[kind]
    messages = {
        "server_error": "Internal server error (emulated)",
        "overloaded": "Overloaded (emulated)",
        "timeout": "Request timed out (emulated)",
        "rate_limit": "rate limit exceeded (emulated)",
        "spend_cap": "You have reached your specified API usage limits. You will regain "
        "access on the first day of next month (emulated monthly spend cap)",
        "not_found": f"message batch {batch_id!r} not found (emulated transient 404)",
    }
    # SDK 2.x reads error.details.error_code; this one makes it raise its spend-limit class.
    details: JsonObject | None = (
        {"error_code": "enforced_spend_limit_reached"} if kind == "spend_cap" else None
    )
    return ApiError(status, error_type, messages[kind], details)


def fault_headers(kind: str, rule: FaultRule) -> list[tuple[bytes, bytes]]:
    """Extra headers of a fault answer: retry-after for rate_limit (never for spend_cap)."""
    if kind == "rate_limit":
        return retry_after_headers(1.0 if rule.seconds is None else rule.seconds)
    return []


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    return float(value)


def _optional_number(value: object, name: str) -> float | None:
    return None if value is None else _number(value, name)


def _optional_int(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer or null")
    return value


def _optional_bool(value: object, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{name} must be true, false or null")
