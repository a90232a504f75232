"""Workspaces from the operator's side: seed documents, the workspace endpoint, listings."""

from __future__ import annotations

import httpx
import orjson
import pytest

from cleaner.emulator import DEFAULT_WORKSPACE_ID, Emulator, Population, WorkspaceSpec, load_seed

OPS_KEY = "sk-operator-ops-key"
PROD = WorkspaceSpec("prod", keys=frozenset({"sk-operator-prod-key"}))
DEV = WorkspaceSpec("dev", "wrkspc_01DevWorkspace", frozenset({"sk-operator-dev-key"}))
DAY_S = 86400
BATCHES = "/v1/messages/batches"


@pytest.fixture
def org(emulator: Emulator) -> Emulator:
    """The test emulator with workspaces prod and dev besides the default one."""
    emulator.configure(workspaces=(PROD, DEV))
    return emulator


def test_a_seed_document_adds_workspaces_with_their_batches_and_never_shows_keys(
    emulator: Emulator, http: httpx.Client, base_url: str
) -> None:
    """POST /_emulator/seed with workspaces; GET /_emulator/workspaces counts without keys."""
    document = {
        "workspaces": [
            {"name": "ops", "keys": [OPS_KEY], "batches": [{"count": 4, "status": "ended"}]}
        ],
        "populations": [{"count": 2, "status": "ended", "age": "2d", "workspace": "ops"}],
    }
    assert http.post("/_emulator/seed", json=document).json()["created"] == 6
    listing = http.get("/_emulator/workspaces")
    assert OPS_KEY not in listing.text
    by_name = {w["name"]: w for w in listing.json()["workspaces"]}
    assert (by_name["ops"]["id"], by_name["ops"]["batches"], by_name["ops"]["keys"]) == (
        "wrkspc_ops",
        6,
        1,
    )
    assert by_name["default"]["id"] == DEFAULT_WORKSPACE_ID
    headers = {"x-api-key": OPS_KEY, "anthropic-version": "2023-06-01"}
    page = httpx.get(f"{base_url}{BATCHES}", headers=headers).json()
    assert len(page["data"]) == 6


def test_a_workspace_can_be_added_over_the_operator_endpoint(
    emulator: Emulator, http: httpx.Client
) -> None:
    """POST /_emulator/workspaces adds one; posting the same name again replaces it."""
    first = http.post("/_emulator/workspaces", json={"name": "qa", "keys": [OPS_KEY]})
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


def test_the_seed_document_format_is_one_json_object(emulator: Emulator) -> None:
    """A document's workspaces, organisation limit and refusals are all applied at once."""
    raw = orjson.dumps(
        {
            "organization": {"rate_limit_rpm": 600},
            "workspaces": [{"name": "w", "keys": [OPS_KEY], "rate_limit_rpm": 60}],
            "refuse_delete": ["msgbatch_refused"],
            "refuse_delete_status": 529,
        }
    )
    emulator.apply_seed(load_seed(raw))
    config = emulator.config
    assert (config.rate_limit_rpm, config.refuse_delete_status) == (600.0, 529)
    assert config.refuse_delete == frozenset({"msgbatch_refused"})
    assert [w.rate_limit_rpm for w in config.workspaces] == [60.0]
