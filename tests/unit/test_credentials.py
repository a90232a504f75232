"""Which credential is configured, and the API key and bearer token auths."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleaner.credentials import (
    API_KEY,
    AUTH_TOKEN,
    FEDERATION_RULE_ID,
    FEDERATION_VARIABLES,
    IDENTITY_TOKEN,
    IDENTITY_TOKEN_FILE,
    ORGANIZATION_ID,
    ApiKeyAuth,
    BearerTokenAuth,
    CredentialKind,
    credential_kind,
)
from cleaner.errors import ConfigError

FIRST_KEY = "sk-ant-unit-first-key-0001"
ROTATED_KEY = "sk-ant-unit-rotated-key-0002"
BEARER_KEY = "sk-ant-unit-bearer-token-0003"
FEDERATION = {
    IDENTITY_TOKEN_FILE: "/var/run/secrets/anthropic/token",
    FEDERATION_RULE_ID: "fdrl_x",
    ORGANIZATION_ID: "00000000-0000-4000-8000-000000000001",
}
ALL_VARIABLES = (API_KEY, AUTH_TOKEN, *FEDERATION_VARIABLES)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({API_KEY: FIRST_KEY}, CredentialKind.API_KEY),
        ({AUTH_TOKEN: BEARER_KEY}, CredentialKind.AUTH_TOKEN),
        (FEDERATION, CredentialKind.FEDERATION),
        ({**FEDERATION, IDENTITY_TOKEN_FILE: "", IDENTITY_TOKEN: "jwt"}, CredentialKind.FEDERATION),
        ({API_KEY: FIRST_KEY, AUTH_TOKEN: "  ", "HOME": "/root"}, CredentialKind.API_KEY),
    ],
)
def test_exactly_one_complete_credential_kind_is_recognised(
    env: dict[str, str], kind: CredentialKind
) -> None:
    """A key, a bearer token or a complete federation trio each select their kind."""
    assert credential_kind(env) is kind


def test_no_credential_at_all_names_the_variables_to_set() -> None:
    """An empty environment is refused with a message naming every way to configure one."""
    with pytest.raises(ConfigError) as caught:
        credential_kind({"ANTHROPIC_API_KEY": ""})
    message = str(caught.value)
    for name in (API_KEY, AUTH_TOKEN, IDENTITY_TOKEN_FILE, FEDERATION_RULE_ID, ORGANIZATION_ID):
        assert name in message


def test_two_credential_kinds_at_once_name_every_clashing_variable() -> None:
    """A key next to federation settings is ambiguous: each variable involved is named."""
    with pytest.raises(ConfigError) as caught:
        credential_kind({API_KEY: FIRST_KEY, FEDERATION_RULE_ID: "fdrl_x"})
    assert set(caught.value.problems) == {API_KEY, FEDERATION_RULE_ID}


def test_incomplete_federation_names_what_is_missing() -> None:
    """A rule id alone lacks the organisation and an identity token source."""
    with pytest.raises(ConfigError) as caught:
        credential_kind({FEDERATION_RULE_ID: "fdrl_x"})
    assert set(caught.value.problems) == {ORGANIZATION_ID, IDENTITY_TOKEN_FILE}


def test_both_identity_token_sources_at_once_are_refused() -> None:
    """A file and a literal token: which one is meant cannot be guessed."""
    with pytest.raises(ConfigError) as caught:
        credential_kind({**FEDERATION, IDENTITY_TOKEN: "jwt"})
    assert set(caught.value.problems) == {IDENTITY_TOKEN_FILE, IDENTITY_TOKEN}


@given(st.dictionaries(st.sampled_from(ALL_VARIABLES), st.sampled_from(["", " ", "v"])))
def test_any_combination_selects_one_kind_or_names_only_relevant_variables(
    env: dict[str, str],
) -> None:
    """The answer is a kind exactly when one kind is set and complete; else the error says why."""
    present = {name for name, value in env.items() if value.strip()}
    federation = present & set(FEDERATION_VARIABLES)
    kinds = [bool(API_KEY in present), bool(AUTH_TOKEN in present), bool(federation)]
    complete = {FEDERATION_RULE_ID, ORGANIZATION_ID} <= present and (
        (IDENTITY_TOKEN_FILE in present) != (IDENTITY_TOKEN in present)
    )
    if sum(kinds) == 1 and (not federation or complete):
        assert credential_kind(env) is [*CredentialKind][kinds.index(True)]
        return
    with pytest.raises(ConfigError) as caught:
        credential_kind(env)
    assert set(caught.value.problems) <= set(ALL_VARIABLES)


def _first(flow: Generator[httpx.Request, httpx.Response, None]) -> httpx.Request:
    return next(flow)


def _request() -> httpx.Request:
    return httpx.Request("GET", "https://api.example/v1/messages/batches")


def test_a_key_file_is_read_again_after_it_changes_but_at_most_once_a_second(
    tmp_path: Path,
) -> None:
    """A rotation shows on the first request after the recheck interval, not before."""
    path, clock = tmp_path / "ANTHROPIC_API_KEY", FakeClock()
    path.write_text(FIRST_KEY + "\n")
    auth = ApiKeyAuth(path=path, clock=clock)
    path.write_text(ROTATED_KEY)
    clock.now += 0.5
    assert _first(auth.sync_auth_flow(_request())).headers["x-api-key"] == FIRST_KEY
    clock.now += 0.5
    assert _first(auth.sync_auth_flow(_request())).headers["x-api-key"] == ROTATED_KEY
    assert auth.reloads == 2


def test_an_unchanged_key_file_is_stat_ed_not_read(tmp_path: Path) -> None:
    """Many seconds of requests against a file that did not change read it once."""
    path, clock = tmp_path / "key", FakeClock()
    path.write_text(FIRST_KEY)
    auth = ApiKeyAuth(path=path, clock=clock)
    for _ in range(100):
        clock.now += 0.3
        assert _first(auth.sync_auth_flow(_request())).headers["x-api-key"] == FIRST_KEY
    assert auth.reloads == 1


def test_a_401_rereads_the_key_file_at_once_and_resends_with_the_new_key(
    tmp_path: Path,
) -> None:
    """Rotated just now: the 401 makes the auth read the file and try once more."""
    path, clock = tmp_path / "key", FakeClock()
    path.write_text(FIRST_KEY)
    auth = ApiKeyAuth(path=path, clock=clock)
    flow = auth.sync_auth_flow(_request())
    sent = next(flow)
    path.write_text(ROTATED_KEY)
    resent = flow.send(httpx.Response(401, request=sent))
    assert resent.headers["x-api-key"] == ROTATED_KEY
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200, request=resent))


def test_a_401_with_the_same_key_on_disk_is_not_resent(tmp_path: Path) -> None:
    """A key that is simply wrong gets one 401, not a loop."""
    path = tmp_path / "key"
    path.write_text(FIRST_KEY)
    flow = ApiKeyAuth(path=path, clock=FakeClock()).sync_auth_flow(_request())
    sent = next(flow)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(401, request=sent))


def test_a_key_file_that_vanishes_or_empties_keeps_the_last_key(tmp_path: Path) -> None:
    """A rotation caught half-way must not stop the daemon."""
    path, clock = tmp_path / "key", FakeClock()
    path.write_text(FIRST_KEY)
    auth = ApiKeyAuth(path=path, clock=clock)
    path.write_text("\n")
    clock.now += 2
    assert _first(auth.sync_auth_flow(_request())).headers["x-api-key"] == FIRST_KEY
    path.unlink()
    clock.now += 2
    assert _first(auth.sync_auth_flow(_request())).headers["x-api-key"] == FIRST_KEY


def test_a_missing_key_file_at_start_is_a_configuration_error(tmp_path: Path) -> None:
    """The first read must succeed; the error names the variable and the path only."""
    with pytest.raises(ConfigError) as caught:
        ApiKeyAuth(path=tmp_path / "absent")
    assert set(caught.value.problems) == {API_KEY}
    assert "absent" in str(caught.value)


def test_neither_auth_shows_its_secret_in_its_repr(tmp_path: Path) -> None:
    """repr() is what tracebacks and debuggers show: never the key or token."""
    shown = repr(ApiKeyAuth(key=FIRST_KEY)) + repr(BearerTokenAuth(BEARER_KEY))
    assert FIRST_KEY not in shown
    assert BEARER_KEY not in shown


def test_a_bearer_token_travels_as_authorization_bearer() -> None:
    """ANTHROPIC_AUTH_TOKEN is sent as the SDK sends it, without x-api-key."""
    sent = _first(BearerTokenAuth(BEARER_KEY).sync_auth_flow(_request()))
    assert sent.headers["authorization"] == f"Bearer {BEARER_KEY}"
    assert "x-api-key" not in sent.headers
