"""Rate limits: one token bucket for the organisation, one per workspace that has a limit.

The organisation's limit (`EmulatorConfig.rate_limit_rpm`) bounds all its workspaces
together; a workspace's own limit (`WorkspaceSpec.rate_limit_rpm`) may be lower. A request
is admitted only when every bucket it draws from has a token, and then it takes one from
each, so a request refused by one bucket costs the other nothing.

The `anthropic-ratelimit-requests-*` headers describe the tighter bucket after the request:
`limit` is its requests per minute, `remaining` the whole tokens left in it (a bucket holds
one second's worth, so it is at most max(1, rpm/60)), and `reset` (RFC 3339) the moment it
is full again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

Header = tuple[bytes, bytes]


class TokenBucket:
    """Requests-per-minute as a continuously refilled bucket holding one second's worth."""

    def __init__(self, rpm: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        if rpm <= 0:
            raise ValueError("rate limit must be > 0 requests per minute")
        self.rpm = rpm
        self._rate_per_s = rpm / 60.0
        self._capacity = max(1.0, self._rate_per_s)
        self._tokens = self._capacity
        self._monotonic = monotonic
        self._last = monotonic()
        self._lock = threading.Lock()

    def take(self) -> float | None:
        """Take one token; None if granted, else the seconds until one is available."""
        with self._lock:
            wait_s = self.wait_s()
            if wait_s is None:
                self._tokens -= 1.0
            return wait_s

    def wait_s(self) -> float | None:
        """Refill; None if a token is there, else the seconds until one is (takes nothing)."""
        now = self._monotonic()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate_per_s)
        if self._tokens >= 1.0:
            return None
        return (1.0 - self._tokens) / self._rate_per_s

    def spend(self) -> None:
        """Take the token `wait_s` just found."""
        self._tokens -= 1.0

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self._tokens))

    @property
    def full_in_s(self) -> float:
        return max(0.0, self._capacity - self._tokens) / self._rate_per_s


@dataclass(frozen=True, slots=True)
class Admission:
    """What the buckets said about one request."""

    wait_s: float | None  # None: admitted; else seconds until it would be
    scope: str | None  # "organization" or "workspace": which bucket refused (or is tighter)
    bucket: TokenBucket | None  # the tighter bucket, for the headers; None: no limit at all


class RateLimits:
    """The organisation's bucket and the workspaces' buckets, taken from atomically."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._org: TokenBucket | None = None
        self._workspaces: dict[str, TokenBucket] = {}

    def configure(self, *, org_rpm: float | None, workspace_rpm: Mapping[str, float]) -> None:
        """Set the limits; a bucket whose limit did not change keeps its tokens."""
        with self._lock:
            self._org = self._keep_or_make(self._org, org_rpm)
            self._workspaces = {
                ws: bucket
                for ws, rpm in workspace_rpm.items()
                if (bucket := self._keep_or_make(self._workspaces.get(ws), rpm)) is not None
            }

    def admit(self, workspace_id: str) -> Admission:
        """Take a token from the organisation's and the workspace's bucket, or from neither."""
        with self._lock:
            buckets = [
                (scope, bucket)
                for scope, bucket in (
                    ("workspace", self._workspaces.get(workspace_id)),
                    ("organization", self._org),
                )
                if bucket is not None
            ]
            if not buckets:
                return Admission(None, None, None)
            waits = [(bucket.wait_s(), scope, bucket) for scope, bucket in buckets]
            refused = [(wait, scope, bucket) for wait, scope, bucket in waits if wait is not None]
            if refused:
                wait, scope, bucket = max(refused, key=lambda item: item[0])
                return Admission(wait, scope, bucket)
            for _, bucket in buckets:
                bucket.spend()
            scope, bucket = min(buckets, key=lambda item: (item[1].remaining, item[1].rpm))
            return Admission(None, scope, bucket)

    def headers(self, admission: Admission, now: datetime) -> list[Header]:
        """The `anthropic-ratelimit-requests-*` headers for an admission ([] if no limit)."""
        bucket = admission.bucket
        if bucket is None:
            return []
        with self._lock:
            remaining, full_in_s = bucket.remaining, bucket.full_in_s
        reset = now + timedelta(seconds=full_in_s)
        if reset.microsecond:  # whole seconds, rounded up: full by then, never before
            reset = reset.replace(microsecond=0) + timedelta(seconds=1)
        return [
            (b"anthropic-ratelimit-requests-limit", str(math.floor(bucket.rpm)).encode()),
            (b"anthropic-ratelimit-requests-remaining", str(remaining).encode()),
            (b"anthropic-ratelimit-requests-reset", f"{reset:%Y-%m-%dT%H:%M:%SZ}".encode()),
        ]

    def _keep_or_make(self, bucket: TokenBucket | None, rpm: float | None) -> TokenBucket | None:
        if rpm is None:
            return None
        if bucket is not None and bucket.rpm == rpm:
            return bucket
        return TokenBucket(rpm, self._monotonic)
