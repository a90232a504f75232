"""Workspaces: the organisation's workspaces, their keys, and which one a request is in.

Batches are scoped to a workspace: a key sees only its workspace's batches, and every answer
names the workspace it resolved to (`anthropic-workspace-id`). With nothing configured there
is one workspace, `wrkspc_default`, holding `EmulatorConfig.api_key` (or, when no key is
configured anywhere, taking any key or none), so the emulator behaves as it always did.

`resolve_workspace` is the one place a credential becomes a workspace. It tries, in order:
every presented secret (x-api-key values, then bearer tokens) as a workspace's API key; then
each bearer token through the `token_resolvers` (callables mapping a token to a workspace id,
e.g. tokens issued by a `/v1/oauth/token` exchange); then the open default workspace.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cleaner.emulator.asgi import Scope, header_values
from cleaner.emulator.wire import ApiError, JsonObject

DEFAULT_WORKSPACE = "default"
DEFAULT_WORKSPACE_ID = "wrkspc_default"
WORKSPACE_HEADER = b"anthropic-workspace-id"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ID = re.compile(r"^wrkspc_[A-Za-z0-9_-]{1,64}$")

#: Maps a bearer token to the id of the workspace it was issued for, or None if unknown.
TokenResolver = Callable[[str], str | None]
MismatchMode = Literal["403", "ignore"]


@dataclass(frozen=True, slots=True)
class WorkspaceSpec:
    """One workspace: a name (for seeding and flags), its wire id, keys and own rate limit."""

    name: str
    id: str = ""  # "" means derived from the name: wrkspc_<name>
    keys: frozenset[str] = field(default=frozenset(), repr=False)
    rate_limit_rpm: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError("a workspace name is 1-64 characters of [A-Za-z0-9_-]")
        if not self.id:
            object.__setattr__(self, "id", f"wrkspc_{self.name}")
        if not _ID.match(self.id):
            raise ValueError(f"workspace id {self.id!r}: use wrkspc_ + 1-64 of [A-Za-z0-9_-]")
        if not all(isinstance(key, str) and key for key in self.keys):
            raise ValueError(f"workspace {self.name!r}: keys must be non-empty strings")
        rpm = self.rate_limit_rpm
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int | float)):
            raise ValueError(f"workspace {self.name!r}: rate_limit_rpm must be a number or null")
        if rpm is not None and rpm <= 0:
            raise ValueError(f"workspace {self.name!r}: rate_limit_rpm must be > 0")

    def to_json(self) -> JsonObject:
        """As the operator endpoints show it: never the keys, only how many there are."""
        return {
            "name": self.name,
            "id": self.id,
            "keys": len(self.keys),
            "rate_limit_rpm": self.rate_limit_rpm,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> WorkspaceSpec:
        """`{"name", "id"?, "keys": [...], "rate_limit_rpm"?}` (other keys are the caller's)."""
        keys = data.get("keys", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError("workspace keys must be a list of strings")
        name, ws_id, rpm = data.get("name"), data.get("id", ""), data.get("rate_limit_rpm")
        if not isinstance(name, str) or not isinstance(ws_id, str):
            raise ValueError("a workspace needs a string name (and id, if given)")
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int | float)):
            raise ValueError("rate_limit_rpm must be a number or null")
        return cls(name, ws_id, frozenset(keys), None if rpm is None else float(rpm))

    @classmethod
    def from_cli(cls, spec: str) -> WorkspaceSpec:
        """`NAME=KEY[,KEY...]`; NAME may be `name/wrkspc_id` to choose the id."""
        name, sep, keys = spec.partition("=")
        if not sep:
            raise ValueError(f"workspace {spec.split('=')[0]!r}: use NAME=KEY[,KEY...]")
        name, _, ws_id = name.partition("/")
        return cls(name, ws_id, frozenset(k for k in keys.split(",") if k))


@dataclass(frozen=True, slots=True)
class Presented:
    """The credentials a request offered: x-api-key values and bearer tokens."""

    api_keys: tuple[str, ...] = ()
    bearer_tokens: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:  # never show a secret
        return f"Presented(api_keys={len(self.api_keys)}, bearer_tokens={len(self.bearer_tokens)})"

    @classmethod
    def from_scope(cls, scope: Scope) -> Presented:
        keys = tuple(v.strip() for v in header_values(scope, b"x-api-key"))
        tokens: list[str] = []
        for value in header_values(scope, b"authorization"):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                tokens.append(token.strip())
        return cls(keys, tuple(tokens))


class Directory:
    """The organisation's workspaces by id, name and key; rebuilt whenever they change."""

    def __init__(self, default_key: str | None, specs: Iterable[WorkspaceSpec] = ()) -> None:
        """A spec named `default` (id wrkspc_default) gives the default workspace more keys
        and its own rate limit; `default_key` (EmulatorConfig.api_key) is always one of them."""
        specs = list(specs)
        given = [s for s in specs if DEFAULT_WORKSPACE in (s.name, s.id[len("wrkspc_") :])]
        if len(given) > 1 or any(s.id != DEFAULT_WORKSPACE_ID for s in given):
            raise ValueError(f"only one workspace may be {DEFAULT_WORKSPACE!r}, the default one")
        keys = frozenset() if default_key is None else frozenset({default_key})
        rpm = given[0].rate_limit_rpm if given else None
        keys |= given[0].keys if given else frozenset()
        self.default = WorkspaceSpec(DEFAULT_WORKSPACE, DEFAULT_WORKSPACE_ID, keys, rpm)
        self._all: dict[str, WorkspaceSpec] = {self.default.id: self.default}
        self._by_name = {self.default.name: self.default}
        self._by_key: dict[str, WorkspaceSpec] = dict.fromkeys(keys, self.default)
        for spec in specs:
            if spec in given:
                continue
            if spec.id in self._all or spec.name in self._by_name:
                raise ValueError(f"workspace {spec.name!r} ({spec.id}) is defined twice")
            self._all[spec.id] = spec
            self._by_name[spec.name] = spec
            for key in spec.keys:
                if key in self._by_key:
                    raise ValueError(f"workspace {spec.name!r} shares a key with another one")
                self._by_key[key] = spec
        #: No key configured anywhere: any key, or none, is the default workspace's.
        self.open = not self._by_key

    def __iter__(self) -> Iterator[WorkspaceSpec]:
        return iter(self._all.values())

    def find(self, name_or_id: str) -> WorkspaceSpec | None:
        """The workspace with that id or name."""
        return self._all.get(name_or_id) or self._by_name.get(name_or_id)

    def by_key(self, secret: str) -> WorkspaceSpec | None:
        return self._by_key.get(secret)


def resolve_workspace(
    presented: Presented,
    directory: Directory,
    token_resolvers: Iterable[TokenResolver] = (),
) -> WorkspaceSpec | None:
    """The workspace a request's credentials belong to, or None (401: unknown credentials)."""
    for secret in (*presented.api_keys, *presented.bearer_tokens):
        found = directory.by_key(secret)
        if found is not None:
            return found
    for token in presented.bearer_tokens:
        for resolver in token_resolvers:
            workspace_id = resolver(token)
            found = None if workspace_id is None else directory.find(workspace_id)
            if found is not None:
                return found
    return directory.default if directory.open else None


def check_workspace_header(
    scope: Scope, workspace: WorkspaceSpec, mode: MismatchMode
) -> ApiError | None:
    """A sent `anthropic-workspace-id` must name the credential's workspace (else 403)."""
    sent = header_values(scope, WORKSPACE_HEADER)
    if mode == "ignore" or not sent or all(v.strip() == workspace.id for v in sent):
        return None
    return ApiError(
        403,
        "permission_error",
        "anthropic-workspace-id does not match the workspace of the credential used",
    )
