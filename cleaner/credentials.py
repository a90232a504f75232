"""How requests prove who sends them: an API key, a bearer token, or workload identity.

Exactly one credential kind is configured (:func:`credential_kind` says which, or names the
variables that clash or are missing). Each is an ``httpx.Auth``, so the client's requests
carry it without the client knowing which:

* :class:`ApiKeyAuth` sends ``x-api-key``. Read from a file (a mounted Secret), it follows
  rotation without a restart: the file is looked at (one ``stat``) at most once per
  ``recheck_s``, re-read when it changed, and re-read at once after a 401, the request then
  being sent once more if the key on disk differs.
* :class:`BearerTokenAuth` sends ``Authorization: Bearer`` with a token given directly.
* :class:`FederationAuth` (in :mod:`cleaner.federation`) exchanges an identity token for
  short-lived access tokens.

No credential appears in a repr, an error message or a log line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from enum import StrEnum
from pathlib import Path

import httpx

from cleaner.errors import ConfigError
from cleaner.federation import FederationAuth, IdentityTokenFile, IdentityTokenValue, send_through

# The names of the variables (not secrets: S105 and B105 see "TOKEN" in the name).
API_KEY = "ANTHROPIC_API_KEY"
AUTH_TOKEN = "ANTHROPIC_AUTH_TOKEN"  # noqa: S105  # nosec B105
IDENTITY_TOKEN_FILE = "ANTHROPIC_IDENTITY_TOKEN_FILE"  # noqa: S105  # nosec B105
IDENTITY_TOKEN = "ANTHROPIC_IDENTITY_TOKEN"  # noqa: S105  # nosec B105
FEDERATION_RULE_ID = "ANTHROPIC_FEDERATION_RULE_ID"
ORGANIZATION_ID = "ANTHROPIC_ORGANIZATION_ID"
FEDERATION_VARIABLES = (IDENTITY_TOKEN_FILE, IDENTITY_TOKEN, FEDERATION_RULE_ID, ORGANIZATION_ID)


class CredentialKind(StrEnum):
    API_KEY = "api_key"
    AUTH_TOKEN = "auth_token"  # noqa: S105  # nosec B105  # a kind's name
    FEDERATION = "federation"


def credential_kind(env: Mapping[str, str | None]) -> CredentialKind:
    """Which credential kind ``env`` configures; a ConfigError unless exactly one is complete.

    ``env`` maps variable names to values; empty or blank counts as unset. A key found in
    the secrets directory counts as ``ANTHROPIC_API_KEY`` being set (the caller maps it so).
    Federation needs ``ANTHROPIC_FEDERATION_RULE_ID``, ``ANTHROPIC_ORGANIZATION_ID`` and one
    of ``ANTHROPIC_IDENTITY_TOKEN_FILE`` / ``ANTHROPIC_IDENTITY_TOKEN``.
    """
    present = {name for name, value in env.items() if value is not None and value.strip()}
    by_kind = {
        CredentialKind.API_KEY: [API_KEY] if API_KEY in present else [],
        CredentialKind.AUTH_TOKEN: [AUTH_TOKEN] if AUTH_TOKEN in present else [],
        CredentialKind.FEDERATION: [n for n in FEDERATION_VARIABLES if n in present],
    }
    configured = [kind for kind, names in by_kind.items() if names]
    if not configured:
        raise ConfigError(
            {
                API_KEY: f"no credential is configured: set exactly one of {API_KEY}, "
                f"{AUTH_TOKEN}, or federation ({IDENTITY_TOKEN_FILE} or {IDENTITY_TOKEN}, "
                f"with {FEDERATION_RULE_ID} and {ORGANIZATION_ID})"
            }
        )
    if len(configured) > 1:
        clashing = [name for kind in configured for name in by_kind[kind]]
        why = "set together with " + ", ".join(clashing) + ": configure exactly one credential"
        raise ConfigError(dict.fromkeys(clashing, why))
    kind = configured[0]
    if kind is CredentialKind.FEDERATION:
        _check_federation(present)
    return kind


def _check_federation(present: set[str]) -> None:
    problems = {
        name: "required for workload identity federation"
        for name in (FEDERATION_RULE_ID, ORGANIZATION_ID)
        if name not in present
    }
    sources = [name for name in (IDENTITY_TOKEN_FILE, IDENTITY_TOKEN) if name in present]
    if not sources:
        problems[IDENTITY_TOKEN_FILE] = f"federation needs this (or {IDENTITY_TOKEN})"
    elif len(sources) > 1:
        for name in sources:
            problems[name] = f"set only one of {IDENTITY_TOKEN_FILE} and {IDENTITY_TOKEN}"
    if problems:
        raise ConfigError(problems)


class ApiKeyAuth(httpx.Auth):
    """``x-api-key`` from a value, or from a file that may be rotated under a running process.

    A file that turns missing, unreadable or empty keeps the last key in force (a rotation
    in progress must not stop the daemon); only the first read must succeed.
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        path: Path | None = None,
        variable: str = API_KEY,
        recheck_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (key is None) == (path is None):
            raise ValueError("ApiKeyAuth takes exactly one of key= and path=")
        self._path = path
        self._recheck_s = recheck_s
        self._clock = clock
        self._seen: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) last read
        self._next_check = float("-inf")
        self.reloads = 0  # how many times the file was read (for tests and metrics)
        if key is not None:
            key = key.strip()
        elif path is not None:
            key = self._read(path)
            if key is None:
                raise ConfigError(
                    {variable: f"the key file {path} is missing, unreadable or empty"}
                )
        if not key:
            raise ConfigError({variable: "the key is empty"})
        self._key: str = key
        self._next_check = clock() + recheck_s

    def __repr__(self) -> str:
        source = f"path={str(self._path)!r}" if self._path is not None else "key=<hidden>"
        return f"ApiKeyAuth({source})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = self._current()
        request.headers["x-api-key"] = key
        response = yield request
        if response.status_code == 401 and self._path is not None:
            fresh = self._reload(self._path, force=True)
            if fresh != key:  # rotated since this request left: one more try with the new key
                request.headers["x-api-key"] = fresh
                yield request

    def _current(self) -> str:
        if self._path is not None and self._clock() >= self._next_check:
            return self._reload(self._path, force=False)
        return self._key

    def _reload(self, path: Path, *, force: bool) -> str:
        self._next_check = self._clock() + self._recheck_s
        try:
            stat = path.stat()
        except OSError:
            return self._key
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if force or signature != self._seen:
            key = self._read(path)
            if key:
                self._key = key
        return self._key

    def _read(self, path: Path) -> str | None:
        self.reloads += 1
        try:
            stat = path.stat()
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        self._seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        return text or None


class BearerTokenAuth(httpx.Auth):
    """``Authorization: Bearer`` with a token given directly (``ANTHROPIC_AUTH_TOKEN``)."""

    def __init__(self, token: str) -> None:
        token = token.strip()
        if not token:
            raise ConfigError({AUTH_TOKEN: "the token is empty"})
        self._token = token

    def __repr__(self) -> str:
        return "BearerTokenAuth(token=<hidden>)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["authorization"] = f"Bearer {self._token}"
        yield request


__all__ = [
    "API_KEY",
    "AUTH_TOKEN",
    "FEDERATION_RULE_ID",
    "IDENTITY_TOKEN",
    "IDENTITY_TOKEN_FILE",
    "ORGANIZATION_ID",
    "ApiKeyAuth",
    "BearerTokenAuth",
    "CredentialKind",
    "FederationAuth",
    "IdentityTokenFile",
    "IdentityTokenValue",
    "credential_kind",
    "send_through",
]
