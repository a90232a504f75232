"""Workspaces: each has its own keys and batches, and every answer names the one it used."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleaner.emulator import (
    DEFAULT_WORKSPACE_ID,
    Directory,
    Emulator,
    ManualClock,
    Population,
    Presented,
    WorkspaceSpec,
    load_seed,
    resolve_workspace,
)
from tests.emulator.conftest import KEY, PARAMS

PROD_KEY = "sk-prod-key-0001"
DEV_KEY = "sk-dev-key-00002"
OTHER_KEY = "sk-nobodys-key-3"
PROD = WorkspaceSpec("prod", keys=frozenset({PROD_KEY}))
DEV = WorkspaceSpec("dev", "wrkspc_01DevWorkspace", frozenset({DEV_KEY}))
DAY_S = 86400
BATCHES = "/v1/messages/batches"


@pytest.fixture
def org(emulator: Emulator) -> Emulator:
    """The test emulator with workspaces prod and dev besides the default one (KEY)."""
    emulator.configure(workspaces=(PROD, DEV))
    return emulator


@pytest.fixture
def clients(base_url: str) -> Iterator[dict[str, httpx.Client]]:
    """One raw client per key: default, prod, dev."""
    opened = {
        name: httpx.Client(
            base_url=base_url,
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            timeout=10,
        )
        for name, key in (("default", KEY), ("prod", PROD_KEY), ("dev", DEV_KEY))
    }
    yield opened
    for client in opened.values():
        client.close()


def _ids(client: httpx.Client) -> set[str]:
    page = client.get(BATCHES, params={"limit": 1000}).json()
    return {batch["id"] for batch in page["data"]}


def _seed(emulator: Emulator, count: int, workspace: str | None) -> set[str]:
    population = Population(count=count, status="ended", age_s=DAY_S, workspace=workspace)
    return set(emulator.seed(population))


def test_a_key_sees_only_its_own_workspaces_batches(
    org: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """Listing with a workspace's key shows exactly the batches seeded into that workspace."""
    seeded = {name: _seed(org, n, name) for name, n in (("default", 3), ("prod", 5), ("dev", 2))}
    for name, client in clients.items():
        assert _ids(client) == seeded[name], name
    assert len(org) == 10


def test_every_answer_names_the_workspace_the_request_resolved_to(
    org: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """200s, 404s, 400s and 403s all carry anthropic-workspace-id of the key's workspace."""
    prod = clients["prod"]
    answers = [
        prod.get(BATCHES),
        prod.get(f"{BATCHES}/msgbatch_{'0' * 24}"),
        prod.get(BATCHES, headers={"anthropic-workspace-id": DEV.id}),
        prod.get("/v1/nothing"),
        prod.get(BATCHES, params={"limit": "0"}),
    ]
    assert [a.status_code for a in answers] == [200, 404, 403, 404, 400]
    assert {a.headers["anthropic-workspace-id"] for a in answers} == {PROD.id}
    assert clients["dev"].get(BATCHES).headers["anthropic-workspace-id"] == DEV.id


def test_an_answer_to_unknown_credentials_names_no_workspace(org: Emulator, base_url: str) -> None:
    """A 401 resolved no workspace, so it carries no anthropic-workspace-id."""
    headers = {"x-api-key": OTHER_KEY, "anthropic-version": "2023-06-01"}
    response = httpx.get(f"{base_url}{BATCHES}", headers=headers)
    assert response.status_code == 401
    assert "anthropic-workspace-id" not in response.headers


def test_with_no_workspace_configured_answers_name_the_default_workspace(
    http: httpx.Client,
) -> None:
    """The single default workspace is wrkspc_default, and the key works as it always did."""
    response = http.get(BATCHES)
    assert response.status_code == 200
    assert response.headers["anthropic-workspace-id"] == DEFAULT_WORKSPACE_ID


def test_another_workspaces_batch_is_not_found_and_left_alone(
    org: Emulator, clients: dict[str, httpx.Client], clock: ManualClock
) -> None:
    """Retrieve, cancel, delete and results of a batch in prod answer 404 to the dev key."""
    (ended,) = _seed(org, 1, "prod")
    running = org.add_batch(workspace="prod")["id"]
    dev = clients["dev"]
    for response in (
        dev.get(f"{BATCHES}/{ended}"),
        dev.get(f"{BATCHES}/{ended}/results"),
        dev.delete(f"{BATCHES}/{ended}"),
        dev.post(f"{BATCHES}/{running}/cancel"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"
    assert org.get(ended) is not None
    assert org.get(str(running))["processing_status"] == "in_progress"  # type: ignore[index]
    assert clients["prod"].delete(f"{BATCHES}/{ended}").status_code == 200


def test_a_batch_created_with_a_workspace_key_belongs_to_that_workspace(
    org: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """Create files the batch under the key's workspace; the journal names the workspace."""
    body = {"requests": [{"custom_id": "a", "params": PARAMS}]}
    created = clients["dev"].post(BATCHES, json=body).json()
    assert org.workspace_of(created["id"]) == DEV.id
    assert _ids(clients["dev"]) == {created["id"]}
    assert _ids(clients["prod"]) == set()
    (entry,) = org.journal
    assert (entry.endpoint, entry.workspace_id) == ("create", DEV.id)


def test_a_workspace_header_naming_another_workspace_answers_403(
    org: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """anthropic-workspace-id must match the key's workspace; the matching one is fine."""
    prod = clients["prod"]
    refused = prod.get(BATCHES, headers={"anthropic-workspace-id": DEV.id})
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert prod.get(BATCHES, headers={"anthropic-workspace-id": PROD.id}).status_code == 200


def test_a_mismatched_workspace_header_can_be_ignored_through_the_operator_endpoint(
    org: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """workspace_mismatch="ignore": the header is disregarded and the key's workspace wins."""
    (batch_id,) = _seed(org, 1, "prod")
    patched = clients["prod"].patch("/_emulator/config", json={"workspace_mismatch": "ignore"})
    assert patched.json()["workspace_mismatch"] == "ignore"
    response = clients["prod"].get(BATCHES, headers={"anthropic-workspace-id": DEV.id})
    assert response.status_code == 200
    assert [b["id"] for b in response.json()["data"]] == [batch_id]
    assert response.headers["anthropic-workspace-id"] == PROD.id


def test_once_workspaces_hold_keys_an_unknown_key_or_none_answers_401(
    org: Emulator, base_url: str
) -> None:
    """Even with no default key configured, only the workspaces' keys are accepted."""
    org.configure(api_key=None)
    for headers in ({"x-api-key": OTHER_KEY}, {}):
        response = httpx.get(
            f"{base_url}{BATCHES}", headers={**headers, "anthropic-version": "2023-06-01"}
        )
        assert response.status_code == 401
    headers = {"authorization": f"Bearer {PROD_KEY}", "anthropic-version": "2026-10-21"}
    assert httpx.get(f"{base_url}{BATCHES}", headers=headers).status_code == 200


def test_a_bearer_token_resolves_through_a_registered_token_resolver(
    org: Emulator, base_url: str
) -> None:
    """token_resolvers map a bearer token to a workspace id: the hook for issued tokens."""
    token = "issued-token-abc"
    org.token_resolvers.append(lambda t: DEV.id if t == token else None)
    (batch_id,) = _seed(org, 1, "dev")
    headers = {"authorization": f"Bearer {token}", "anthropic-version": "2026-10-21"}
    response = httpx.get(f"{base_url}{BATCHES}", headers=headers)
    assert [b["id"] for b in response.json()["data"]] == [batch_id]
    assert response.headers["anthropic-workspace-id"] == DEV.id
    headers["authorization"] = "Bearer some-other-token"
    assert httpx.get(f"{base_url}{BATCHES}", headers=headers).status_code == 401


def test_a_seed_document_adds_workspaces_with_their_batches_and_never_shows_keys(
    emulator: Emulator, http: httpx.Client, base_url: str
) -> None:
    """POST /_emulator/seed with workspaces; GET /_emulator/workspaces counts without keys."""
    document = {
        "workspaces": [
            {"name": "ops", "keys": [OTHER_KEY], "batches": [{"count": 4, "status": "ended"}]}
        ],
        "populations": [{"count": 2, "status": "ended", "age": "2d", "workspace": "ops"}],
    }
    assert http.post("/_emulator/seed", json=document).json()["created"] == 6
    listing = http.get("/_emulator/workspaces")
    assert OTHER_KEY not in listing.text
    by_name = {w["name"]: w for w in listing.json()["workspaces"]}
    assert (by_name["ops"]["id"], by_name["ops"]["batches"], by_name["ops"]["keys"]) == (
        "wrkspc_ops",
        6,
        1,
    )
    assert by_name["default"]["id"] == DEFAULT_WORKSPACE_ID
    headers = {"x-api-key": OTHER_KEY, "anthropic-version": "2023-06-01"}
    page = httpx.get(f"{base_url}{BATCHES}", headers=headers).json()
    assert len(page["data"]) == 6


def test_a_workspace_can_be_added_over_the_operator_endpoint(
    emulator: Emulator, http: httpx.Client
) -> None:
    """POST /_emulator/workspaces adds one; posting the same name again replaces it."""
    first = http.post("/_emulator/workspaces", json={"name": "qa", "keys": [OTHER_KEY]})
    assert first.json()["id"] == "wrkspc_qa"
    http.post("/_emulator/workspaces", json={"name": "qa", "keys": [], "rate_limit_rpm": 60})
    (qa,) = [w for w in emulator.workspaces() if w.name == "qa"]
    assert (qa.keys, qa.rate_limit_rpm) == (frozenset(), 60.0)


def test_the_operator_listing_merges_workspaces_or_shows_one(
    org: Emulator, http: httpx.Client
) -> None:
    """/_emulator/batches pages every workspace newest first, or one with ?workspace=."""
    for name in ("default", "prod", "dev"):
        org.seed(Population(count=7, status="ended", age_s=DAY_S, spread_s=DAY_S, workspace=name))
    expected = [b["id"] for b in org.batches()]
    paged: list[str] = []
    params: dict[str, str | int] = {"limit": 4}
    while True:
        page = http.get("/_emulator/batches", params=params).json()
        paged += [b["id"] for b in page["data"]]
        if not page["has_more"]:
            break
        params["after_id"] = page["last_id"]
    assert paged == expected
    assert len(paged) == 21
    prod = http.get("/_emulator/batches", params={"workspace": "prod"}).json()
    assert [b["id"] for b in prod["data"]] == [b["id"] for b in org.batches("prod")]
    assert http.get("/_emulator/state").json()["by_workspace"][PROD.id] == 7


def test_bad_workspace_input_is_refused(http: httpx.Client) -> None:
    """Bad names, ids, keys or unknown fields answer 400; a population's unknown workspace too."""
    for body in (
        {"name": "has space", "keys": []},
        {"name": "x", "id": "ws_1", "keys": []},
        {"name": "x", "keys": [""]},
        {"name": "x", "keys": [], "colour": "red"},
    ):
        assert http.post("/_emulator/workspaces", json=body).status_code == 400, body
    seed = {"count": 1, "status": "ended", "workspace": "nowhere"}
    assert http.post("/_emulator/seed", json=seed).status_code == 400


def test_workspace_specs_parse_from_the_command_line_form() -> None:
    """NAME=KEY[,KEY...], with NAME/ID to choose the id."""
    assert WorkspaceSpec.from_cli("prod=a1,b2") == WorkspaceSpec(
        "prod", "wrkspc_prod", frozenset({"a1", "b2"})
    )
    assert WorkspaceSpec.from_cli("prod/wrkspc_01X=a1").id == "wrkspc_01X"
    for bad in ("prod", "=a", "prod/other=a"):
        with pytest.raises(ValueError, match=r".+"):
            WorkspaceSpec.from_cli(bad)


def test_two_workspaces_may_not_share_a_key_or_a_name() -> None:
    """A key belongs to one workspace; names and ids are unique."""
    with pytest.raises(ValueError, match="key"):
        Directory(KEY, [WorkspaceSpec("a", keys=frozenset({KEY}))])
    with pytest.raises(ValueError, match="twice"):
        Directory(None, [WorkspaceSpec("a"), WorkspaceSpec("a", "wrkspc_b")])


def test_credentials_never_show_in_reprs() -> None:
    """Neither a spec nor the presented credentials print a key."""
    presented = Presented(api_keys=(PROD_KEY,), bearer_tokens=(DEV_KEY,))
    assert PROD_KEY not in repr(PROD)
    assert PROD_KEY not in repr(presented)
    assert DEV_KEY not in repr(presented)


_KEYS = st.text(alphabet="abcdefgh0123", min_size=4, max_size=8)


@given(assignment=st.dictionaries(_KEYS, st.integers(0, 3), max_size=12), probe=_KEYS)
def test_each_key_resolves_to_the_workspace_that_holds_it(
    assignment: dict[str, int], probe: str
) -> None:
    """Any key set split among workspaces: each key finds its own, a stranger finds none."""
    specs = [
        WorkspaceSpec(f"w{i}", keys=frozenset(k for k, owner in assignment.items() if owner == i))
        for i in range(4)
    ]
    directory = Directory("default-key", specs)
    for key, owner in assignment.items():
        found = resolve_workspace(Presented(api_keys=(key,)), directory)
        assert found is not None
        assert found.id == f"wrkspc_w{owner}"
    stranger = resolve_workspace(Presented(bearer_tokens=(probe,)), directory)
    expected = None if probe not in assignment else f"wrkspc_w{assignment[probe]}"
    assert (None if stranger is None else stranger.id) == expected


def test_the_seed_document_format_is_one_json_object(emulator: Emulator) -> None:
    """A document's workspaces, organisation limit and refusals are all applied at once."""
    raw = orjson.dumps(
        {
            "organization": {"rate_limit_rpm": 600},
            "workspaces": [{"name": "w", "keys": [OTHER_KEY], "rate_limit_rpm": 60}],
            "refuse_delete": ["msgbatch_refused"],
            "refuse_delete_status": 529,
        }
    )
    emulator.apply_seed(load_seed(raw))
    config = emulator.config
    assert (config.rate_limit_rpm, config.refuse_delete_status) == (600.0, 529)
    assert config.refuse_delete == frozenset({"msgbatch_refused"})
    assert [w.rate_limit_rpm for w in config.workspaces] == [60.0]
