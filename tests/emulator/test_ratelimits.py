"""Rate limits: the organisation's bucket bounds all workspaces, a workspace's its own."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cleaner.emulator import Emulator, WorkspaceSpec
from tests.emulator.conftest import KEY, FakeMonotonic

PROD_KEY = "sk-prod-rate-key-1"
DEV_KEY = "sk-dev-rate-key-22"
BATCHES = "/v1/messages/batches"
LIMIT = "anthropic-ratelimit-requests-limit"
REMAINING = "anthropic-ratelimit-requests-remaining"
RESET = "anthropic-ratelimit-requests-reset"


def _org(emulator: Emulator, *, org_rpm: float | None, prod_rpm: float | None) -> None:
    emulator.configure(
        rate_limit_rpm=org_rpm,
        workspaces=(
            WorkspaceSpec("prod", keys=frozenset({PROD_KEY}), rate_limit_rpm=prod_rpm),
            WorkspaceSpec("dev", keys=frozenset({DEV_KEY})),
        ),
    )


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


def _statuses(*responses: httpx.Response) -> list[int]:
    return [response.status_code for response in responses]


def test_the_organisations_limit_is_shared_by_every_workspace(
    emulator: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """At 60 rpm (a one-token bucket) prod's request leaves nothing for dev."""
    _org(emulator, org_rpm=60, prod_rpm=None)
    first = clients["prod"].get(BATCHES)
    refused = clients["dev"].get(BATCHES)
    assert _statuses(first, refused) == [200, 429]
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert "organization" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"] == "1"


def test_a_workspace_limit_below_the_organisations_refuses_only_that_workspace(
    emulator: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """prod at 60 rpm is refused on its second request while dev still gets through."""
    _org(emulator, org_rpm=6000, prod_rpm=60)
    prod, dev = clients["prod"], clients["dev"]
    assert _statuses(prod.get(BATCHES), prod.get(BATCHES), dev.get(BATCHES)) == [200, 429, 200]
    refused = prod.get(BATCHES)
    assert "workspace" in refused.json()["error"]["message"]
    assert refused.headers["anthropic-workspace-id"] == "wrkspc_prod"


def test_a_request_refused_by_one_bucket_takes_nothing_from_the_other(
    emulator: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """A request the workspace refuses leaves the organisation's tokens for other workspaces."""
    _org(emulator, org_rpm=120, prod_rpm=60)  # the organisation holds 2 tokens, prod 1
    prod, dev = clients["prod"], clients["dev"]
    answers = [prod.get(BATCHES), prod.get(BATCHES), dev.get(BATCHES), dev.get(BATCHES)]
    assert _statuses(*answers) == [200, 429, 200, 429]


def test_the_buckets_refill_as_time_passes(
    emulator: Emulator, clients: dict[str, httpx.Client], monotonic: FakeMonotonic
) -> None:
    """One second later a 60-rpm workspace has its token back."""
    _org(emulator, org_rpm=None, prod_rpm=60)
    prod = clients["prod"]
    assert _statuses(prod.get(BATCHES), prod.get(BATCHES)) == [200, 429]
    monotonic.now += 1.0
    assert prod.get(BATCHES).status_code == 200


def test_rate_limit_headers_are_off_by_default(
    emulator: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """With a limit in force but the switch off, no anthropic-ratelimit-* header is sent."""
    _org(emulator, org_rpm=600, prod_rpm=120)
    response = clients["prod"].get(BATCHES)
    assert not [name for name in response.headers if name.startswith("anthropic-ratelimit")]


def test_rate_limit_headers_describe_the_tighter_bucket(
    emulator: Emulator, clients: dict[str, httpx.Client]
) -> None:
    """limit is its rpm, remaining its whole tokens, reset (RFC 3339) when it is full again."""
    _org(emulator, org_rpm=600, prod_rpm=120)  # org: 10 tokens at 10/s; prod: 2 at 2/s
    emulator.configure(ratelimit_headers=True)
    prod = clients["prod"]
    answers = [prod.get(BATCHES), prod.get(BATCHES), prod.get(BATCHES)]
    assert _statuses(*answers) == [200, 200, 429]
    seen = [(a.headers[LIMIT], a.headers[REMAINING], a.headers[RESET]) for a in answers]
    assert seen == [
        ("120", "1", "2026-03-01T12:00:01Z"),  # 0.5 s to refill, rounded up
        ("120", "0", "2026-03-01T12:00:01Z"),
        ("120", "0", "2026-03-01T12:00:01Z"),
    ]
    default = clients["default"].get(BATCHES)  # only the organisation's bucket: 10 - 3 = 7
    assert (default.headers[LIMIT], default.headers[REMAINING]) == ("600", "7")


def test_rate_limit_headers_can_be_switched_on_over_the_operator_endpoint(
    emulator: Emulator, http: httpx.Client
) -> None:
    """PATCH {"ratelimit_headers": true} with an organisation limit adds the headers."""
    http.patch("/_emulator/config", json={"ratelimit_headers": True, "rate_limit_rpm": 60})
    response = http.get(BATCHES)
    assert (response.headers[LIMIT], response.headers[REMAINING]) == ("60", "0")


def test_without_any_limit_there_are_no_rate_limit_headers(
    emulator: Emulator, http: httpx.Client
) -> None:
    """Switched on but with nothing to reflect, the headers stay away."""
    emulator.configure(ratelimit_headers=True)
    assert LIMIT not in http.get(BATCHES).headers


def test_limits_come_from_a_seed_document(
    emulator: Emulator, http: httpx.Client, base_url: str
) -> None:
    """organization.rate_limit_rpm and a workspace's rate_limit_rpm apply at once."""
    document = {
        "organization": {"rate_limit_rpm": 6000},
        "workspaces": [{"name": "slow", "keys": [PROD_KEY], "rate_limit_rpm": 60}],
    }
    assert http.post("/_emulator/seed", json=document).status_code == 200
    headers = {"x-api-key": PROD_KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=base_url, headers=headers) as slow:
        assert _statuses(slow.get(BATCHES), slow.get(BATCHES)) == [200, 429]
    assert emulator.config.rate_limit_rpm == 6000


def test_the_default_workspace_can_have_its_own_limit_and_more_keys(
    emulator: Emulator, base_url: str, clients: dict[str, httpx.Client]
) -> None:
    """A spec named default adds keys and a limit to wrkspc_default; KEY still works."""
    emulator.configure(
        workspaces=(WorkspaceSpec("default", keys=frozenset({PROD_KEY}), rate_limit_rpm=60),)
    )
    first = clients["prod"].get(BATCHES)
    refused = clients["default"].get(BATCHES)
    assert _statuses(first, refused) == [200, 429]
    assert first.headers["anthropic-workspace-id"] == "wrkspc_default"
    assert "workspace" in refused.json()["error"]["message"]
    with pytest.raises(ValueError, match="default"):
        emulator.configure(workspaces=(WorkspaceSpec("default", "wrkspc_other"),))
