"""The emulator's /v1/oauth/token, driven by the official SDK's own federation credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest
from anthropic.lib.credentials import WorkloadIdentityCredentials, WorkloadIdentityError

from cleaner.emulator import Emulator, EmulatorConfig, ManualClock, Population
from cleaner.emulator.app import EmulatorApp
from cleaner.emulator.command import _parser
from cleaner.emulator.oauth import GRANT_TYPE, FederationRule
from cleaner.emulator.workspaces import WorkspaceSpec
from tests.emulator.conftest import FakeMonotonic

IDENTITY_KEY = "eyJhbGciOiJSUzI1NiJ9.emulator-identity-token.sig"
OTHER_IDENTITY_KEY = "eyJhbGciOiJSUzI1NiJ9.not-accepted-by-the-rule.sig"
API_KEY = "sk-ant-oauth-test-api-key-7"
RULE = "fdrl_test_rule"
ORG = "00000000-0000-4000-8000-000000000042"
BETA = "oauth-2025-04-20,oidc-federation-2026-04-01"


@pytest.fixture
def emulator(clock: ManualClock, monotonic: FakeMonotonic) -> Emulator:
    """A federation-only emulator (no API key) with one rule accepting IDENTITY_KEY."""
    emulator = Emulator(EmulatorConfig(processing_time_s=300), clock=clock, monotonic=monotonic)
    emulator.oauth.add_rule(FederationRule(RULE, ORG, frozenset({IDENTITY_KEY})))
    emulator.oauth.ttl_s = 600
    emulator.seed(Population(count=3, status="ended", age_s=3600))
    return emulator


def _sdk(base_url: str, identity: str = IDENTITY_KEY, retries: int = 1) -> anthropic.Anthropic:
    credentials = WorkloadIdentityCredentials(
        identity_token_provider=lambda: identity, federation_rule_id=RULE, organization_id=ORG
    )
    return anthropic.Anthropic(
        credentials=credentials,
        base_url=base_url,
        max_retries=retries,
        _strict_response_validation=True,
    )


@pytest.fixture
def raw(base_url: str) -> Iterator[httpx.Client]:
    """Plain httpx, no credentials."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def _exchange(raw: httpx.Client, identity: str = IDENTITY_KEY) -> str:
    body = {
        "grant_type": GRANT_TYPE,
        "assertion": identity,
        "federation_rule_id": RULE,
        "organization_id": ORG,
    }
    answer = raw.post("/v1/oauth/token", json=body, headers={"anthropic-beta": BETA})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _list(raw: httpx.Client, token: str, beta: str = "oauth-2025-04-20") -> httpx.Response:
    headers = {
        "authorization": f"Bearer {token}",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": beta,
    }
    return raw.get("/v1/messages/batches", headers=headers)


def test_the_sdk_exchanges_its_identity_token_once_and_lists_with_the_access_token(
    base_url: str, emulator: Emulator
) -> None:
    """The SDK's WorkloadIdentityCredentials get a token; two calls share one exchange."""
    with _sdk(base_url) as sdk:
        assert len(sdk.messages.batches.list().data) == 3
        assert len(sdk.messages.batches.list().data) == 3
    assert [(e.status, e.rule_id) for e in emulator.oauth.exchanges] == [(200, RULE)]


def test_the_sdk_gets_a_new_token_after_the_emulator_clock_expires_the_old_one(
    base_url: str, emulator: Emulator, clock: ManualClock
) -> None:
    """Past the expiry the API answers 401; the SDK exchanges again and its retry succeeds."""
    with _sdk(base_url) as sdk:
        sdk.messages.batches.list()
        clock.advance(601)
        assert len(sdk.messages.batches.list().data) == 3
    assert [e.status for e in emulator.oauth.exchanges] == [200, 200]
    assert emulator.request_counts[("list", 401)] == 1


def test_the_sdk_reads_federation_from_the_environment_and_the_token_file(
    base_url: str, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ANTHROPIC_IDENTITY_TOKEN_FILE with the rule and organisation ids is all the SDK needs."""
    token_file = tmp_path / "token"
    token_file.write_text(IDENTITY_KEY + "\n")
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "no-profiles"))
    monkeypatch.setenv("ANTHROPIC_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("ANTHROPIC_FEDERATION_RULE_ID", RULE)
    monkeypatch.setenv("ANTHROPIC_ORGANIZATION_ID", ORG)
    with anthropic.Anthropic(base_url=base_url, max_retries=0) as sdk:
        assert len(sdk.messages.batches.list().data) == 3
    assert len(emulator.oauth.exchanges) == 1


def test_an_identity_token_the_rule_does_not_accept_is_refused_with_invalid_grant(
    base_url: str, emulator: Emulator
) -> None:
    """The SDK's exchange fails with 401 invalid_grant; the API itself is never reached."""
    with (
        _sdk(base_url, identity=OTHER_IDENTITY_KEY) as sdk,
        pytest.raises(WorkloadIdentityError) as caught,
    ):
        sdk.messages.batches.list()
    assert caught.value.status_code == 401
    assert caught.value.body == {
        "error": "invalid_grant",
        "error_description": "the identity token does not match the federation rule",
    }
    assert sum(n for (endpoint, _), n in emulator.request_counts.items() if endpoint == "list") == 0


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"assertion": ""}, 400, "invalid_request"),
        ({"federation_rule_id": None}, 400, "invalid_request"),
        ({"organization_id": "00000000-0000-4000-8000-000000000043"}, 401, "invalid_grant"),
        ({"federation_rule_id": "fdrl_unknown"}, 401, "invalid_grant"),
        ({"workspace_id": "wrkspc_elsewhere"}, 401, "invalid_grant"),
    ],
)
def test_a_malformed_or_mismatched_exchange_is_refused_with_an_oauth_error(
    raw: httpx.Client, change: dict[str, object], status: int, error: str
) -> None:
    """Each wrong field gets the RFC 6749 error an OAuth client expects."""
    body = {
        "grant_type": GRANT_TYPE,
        "assertion": IDENTITY_KEY,
        "federation_rule_id": RULE,
        "organization_id": ORG,
        **change,
    }
    answer = raw.post("/v1/oauth/token", json=body, headers={"anthropic-beta": BETA})
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert answer.headers["request-id"].startswith("req_")
    assert IDENTITY_KEY not in answer.text


def test_an_exchange_without_the_federation_beta_or_json_is_a_bad_request(
    raw: httpx.Client,
) -> None:
    """The beta header and a JSON object body are both required; GET is not allowed."""
    no_beta = raw.post("/v1/oauth/token", json={"grant_type": GRANT_TYPE})
    not_json = raw.post(
        "/v1/oauth/token", content=b"grant_type=x", headers={"anthropic-beta": BETA}
    )
    assert (no_beta.status_code, no_beta.json()["error"]) == (400, "invalid_request")
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid_request")
    assert raw.get("/v1/oauth/token").status_code == 405


def test_an_issued_token_works_until_it_expires_on_the_emulator_clock(
    raw: httpx.Client, clock: ManualClock
) -> None:
    """One second before the expiry the token is good; at the expiry it is a 401."""
    token = _exchange(raw)
    clock.advance(599)
    assert _list(raw, token).status_code == 200
    clock.advance(1)
    expired = _list(raw, token)
    assert expired.status_code == 401
    assert expired.json()["error"]["type"] == "authentication_error"


def test_revoked_tokens_are_refused_and_new_ones_are_not(
    raw: httpx.Client, emulator: Emulator
) -> None:
    """revoke_all ends every token issued so far; an exchange after it works again."""
    old = _exchange(raw)
    assert emulator.oauth.revoke_all() == 1
    assert _list(raw, old).status_code == 401
    assert _list(raw, _exchange(raw)).status_code == 200


def test_a_token_the_emulator_did_not_issue_or_without_the_oauth_beta_is_refused(
    raw: httpx.Client,
) -> None:
    """With federation on, only issued tokens pass, and only with the OAuth beta header."""
    token = _exchange(raw)
    assert _list(raw, "sk-ant-oat01-made-up").status_code == 401
    assert _list(raw, token, beta="message-batches-2024-09-24").status_code == 401
    assert _list(raw, token, beta="message-batches-2024-09-24,oauth-2025-04-20").status_code == 200


def test_with_an_api_key_configured_too_both_the_key_and_issued_tokens_pass(
    raw: httpx.Client, emulator: Emulator
) -> None:
    """Federation does not lock out the configured key; a wrong key is still a 401."""
    emulator.configure(api_key=API_KEY)
    headers = {"anthropic-version": "2023-06-01"}
    key_ok = raw.get("/v1/messages/batches", headers={**headers, "x-api-key": API_KEY})
    wrong = raw.get("/v1/messages/batches", headers={**headers, "x-api-key": "sk-wrong-key-x"})
    assert (key_ok.status_code, wrong.status_code) == (200, 401)
    assert _list(raw, _exchange(raw)).status_code == 200


def test_a_failure_switched_on_answers_the_next_exchanges_with_that_status(
    raw: httpx.Client, emulator: Emulator
) -> None:
    """fail_next(503) makes exactly the next exchange fail, for retry tests."""
    emulator.oauth.fail_next(503)
    body = {"grant_type": GRANT_TYPE}
    assert (
        raw.post("/v1/oauth/token", json=body, headers={"anthropic-beta": BETA}).status_code == 503
    )
    assert _exchange(raw)


def test_the_command_line_takes_federation_rules_and_a_token_lifetime() -> None:
    """--federation-rule RULE:ORG:WORKSPACE:TOKENS and --access-token-ttl parse as documented."""
    args = _parser().parse_args(
        ["--federation-rule", f"{RULE}:{ORG}:wrkspc_ci:a-token,b-token", "--access-token-ttl", "1m"]
    )
    (rule,) = [FederationRule.from_cli(spec) for spec in args.federation_rule]
    assert (rule.rule_id, rule.organization_id, rule.workspace_id) == (RULE, ORG, "wrkspc_ci")
    assert rule.identity_tokens == {"a-token", "b-token"}
    assert args.access_token_ttl == "1m"
    with pytest.raises(ValueError, match="RULE_ID:ORGANIZATION_ID"):
        FederationRule.from_cli(f"{RULE}:{ORG}")


def test_an_issued_token_reaches_the_workspace_its_rule_names(
    clock: ManualClock, monotonic: FakeMonotonic, server: tuple[EmulatorApp, str]
) -> None:
    """The token resolves, through the emulator's token resolvers, to the rule's workspace."""
    ci = WorkspaceSpec("ci", keys=frozenset({API_KEY}))
    emulator = Emulator(EmulatorConfig(workspaces=(ci,)), clock=clock, monotonic=monotonic)
    emulator.oauth.add_rule(FederationRule(RULE, ORG, frozenset({IDENTITY_KEY}), "wrkspc_ci"))
    emulator.seed(Population(count=2, status="ended", age_s=60, workspace="ci"))
    emulator.seed(Population(count=5, status="ended", age_s=60))
    app, url = server
    app.emulator, emulator.base_url = emulator, url
    with httpx.Client(base_url=url, timeout=10) as raw:
        listed = _list(raw, _exchange(raw))
    assert listed.status_code == 200
    assert len(listed.json()["data"]) == 2
    assert listed.headers["anthropic-workspace-id"] == "wrkspc_ci"
