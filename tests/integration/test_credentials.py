"""cleaner's credentials against the emulator over HTTP: federation end to end, key rotation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cleaner.budget import RequestBudget
from cleaner.client import API_VERSION, BatchesClient
from cleaner.clock import SystemClock
from cleaner.credentials import ApiKeyAuth, FederationAuth, IdentityTokenFile, send_through
from cleaner.cycle import CycleOptions, run_cycle
from cleaner.emulator import Emulator, EmulatorConfig, ManualClock, Population, serve_in_thread
from cleaner.emulator.oauth import FederationRule
from cleaner.errors import FederationError
from tests.fakes import EventLog
from tests.integration.conftest import FAST_RETRY, POLICY

IDENTITY_KEY = "eyJhbGciOiJSUzI1NiJ9.integration-identity.sig"
ROTATED_IDENTITY_KEY = "eyJhbGciOiJSUzI1NiJ9.integration-identity-rotated.sig"
OLD_KEY = "sk-ant-integration-old-key-101"
NEW_KEY = "sk-ant-integration-new-key-202"
RULE = "fdrl_integration"
ORG = "00000000-0000-4000-8000-0000000000aa"
DAY_S = 86400.0


class FakeMonotonic:
    """The credentials' clock; tests move it with the emulator's lifecycle clock."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lifecycle() -> ManualClock:
    """The emulator's clock: token expiry is measured on it."""
    return ManualClock()


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def emulator(lifecycle: ManualClock) -> Emulator:
    """A federation-only emulator (no key) issuing 600 s tokens for IDENTITY_KEY."""
    emulator = Emulator(
        EmulatorConfig(processing_time_s=3600, cancel_settle_s=0.2), clock=lifecycle
    )
    emulator.oauth.add_rule(FederationRule(RULE, ORG, frozenset({IDENTITY_KEY})))
    emulator.oauth.ttl_s = 600
    emulator.seed(Population(count=5, status="ended", age_s=40 * DAY_S))
    return emulator


@pytest.fixture
def identity_file(tmp_path: Path) -> Path:
    """A projected service-account token, as the kubelet writes it."""
    path = tmp_path / "token"
    path.write_text(IDENTITY_KEY)
    return path


def _write(path: Path, text: str) -> None:
    """Rewrite a file, as the kubelet or a Secret update does (a tiny write; no event loop cost)."""
    path.write_text(text)


def _advance(lifecycle: ManualClock, clock: FakeMonotonic, seconds: float) -> None:
    lifecycle.advance(seconds)
    clock.now += seconds


@asynccontextmanager
async def client_with(
    base_url: str, make_auth: Callable[[httpx.AsyncClient], httpx.Auth], concurrency: int = 16
) -> AsyncIterator[BatchesClient]:
    """A BatchesClient whose HTTP client carries ``make_auth(http)`` and no key header."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    http = httpx.AsyncClient(
        base_url=base_url,
        headers={"anthropic-version": API_VERSION},
        timeout=5.0,
        transport=httpx.AsyncHTTPTransport(limits=limits),
    )
    http.auth = make_auth(http)
    async with http:
        yield BatchesClient(
            http,
            budget=RequestBudget(600_000),
            concurrency=concurrency,
            request_timeout_s=5.0,
            retry=FAST_RETRY,
        )


def federation(
    base_url: str, identity_file: Path, clock: FakeMonotonic
) -> Callable[[httpx.AsyncClient], FederationAuth]:
    def make(http: httpx.AsyncClient) -> FederationAuth:
        return FederationAuth(
            identity=IdentityTokenFile(identity_file),
            federation_rule_id=RULE,
            organization_id=ORG,
            base_url=base_url,
            send=send_through(http),
            clock=clock,
        )

    return make


def _auth(client: BatchesClient) -> Any:
    return client._wire.http.auth


def _401s(emulator: Emulator) -> int:
    return sum(n for (_, status), n in emulator.request_counts.items() if status == 401)


async def _list_all(client: BatchesClient) -> int:
    return sum([len(page.batches) async for page in client.pages()])


async def test_a_cycle_deletes_expired_batches_with_federation_alone(
    base_url: str, emulator: Emulator, identity_file: Path, clock: FakeMonotonic
) -> None:
    """One exchange, then every list and delete of the cycle carries the access token."""
    async with client_with(base_url, federation(base_url, identity_file, clock)) as client:
        report = await run_cycle(
            client, POLICY, CycleOptions(), log=EventLog(), clock=SystemClock(wall=emulator.now)
        )
    assert report.ok
    assert len(emulator.deleted_ids) == 5
    assert [(e.status, e.rule_id) for e in emulator.oauth.exchanges] == [(200, RULE)]
    assert _401s(emulator) == 0


async def test_the_token_is_renewed_before_it_expires_so_no_request_sees_a_401(
    base_url: str,
    emulator: Emulator,
    identity_file: Path,
    lifecycle: ManualClock,
    clock: FakeMonotonic,
) -> None:
    """Inside the renewal margin a new token is fetched; when the old one dies, nobody cares."""
    async with client_with(base_url, federation(base_url, identity_file, clock)) as client:
        await _list_all(client)
        _advance(lifecycle, clock, 500)  # 100 s before the expiry: inside the 120 s margin
        await _list_all(client)
        _advance(lifecycle, clock, 200)  # the first token has expired by now
        assert await _list_all(client) == 5
    assert len(emulator.oauth.exchanges) == 2
    assert _401s(emulator) == 0


async def test_a_revoked_token_costs_one_401_then_a_new_exchange_and_a_retry(
    base_url: str, emulator: Emulator, identity_file: Path, clock: FakeMonotonic
) -> None:
    """The emulator revokes the token early: the auth renews once and the call succeeds."""
    async with client_with(base_url, federation(base_url, identity_file, clock)) as client:
        await _list_all(client)
        emulator.oauth.revoke_all()
        assert await _list_all(client) == 5
    assert len(emulator.oauth.exchanges) == 2
    assert _401s(emulator) == 1
    assert client.stats.retries == 0  # renewed inside the auth, not by the retry loop


async def test_an_identity_file_rewritten_between_exchanges_is_read_again(
    base_url: str,
    emulator: Emulator,
    identity_file: Path,
    lifecycle: ManualClock,
    clock: FakeMonotonic,
) -> None:
    """The kubelet rotates the token and the rule stops accepting the old one: still fine."""
    async with client_with(base_url, federation(base_url, identity_file, clock)) as client:
        await _list_all(client)
        _write(identity_file, ROTATED_IDENTITY_KEY + "\n")
        emulator.oauth.add_rule(FederationRule(RULE, ORG, frozenset({ROTATED_IDENTITY_KEY})))
        _advance(lifecycle, clock, 600)
        assert await _list_all(client) == 5
    assert [e.status for e in emulator.oauth.exchanges] == [200, 200]


async def test_32_requests_in_flight_share_one_exchange_over_http(
    base_url: str, emulator: Emulator, identity_file: Path, clock: FakeMonotonic
) -> None:
    """The first requests of a busy cycle queue behind one exchange, not 32."""
    ids = [str(b["id"]) for b in emulator.batches()]
    async with client_with(
        base_url, federation(base_url, identity_file, clock), concurrency=32
    ) as client:
        batches = await asyncio.gather(*(client.retrieve(ids[i % 5]) for i in range(32)))
    assert len(batches) == 32
    assert len(emulator.oauth.exchanges) == 1


async def test_a_401_holding_the_only_pooled_connection_does_not_starve_the_renewal(
    base_url: str, emulator: Emulator, identity_file: Path, clock: FakeMonotonic
) -> None:
    """The rejected response gives its connection back before the exchange needs one."""
    async with client_with(
        base_url, federation(base_url, identity_file, clock), concurrency=1
    ) as client:
        await _list_all(client)
        emulator.oauth.revoke_all()
        assert await _list_all(client) == 5
    assert len(emulator.oauth.exchanges) == 2
    assert client.stats.retries == 0


async def test_a_refused_identity_token_is_a_fatal_federation_error_tried_once(
    base_url: str, emulator: Emulator, identity_file: Path, clock: FakeMonotonic
) -> None:
    """invalid_grant will not heal: one exchange, no retries, and no token in the message."""
    _write(identity_file, ROTATED_IDENTITY_KEY)
    async with client_with(base_url, federation(base_url, identity_file, clock)) as client:
        with pytest.raises(FederationError) as caught:
            await _list_all(client)
    assert (caught.value.status, caught.value.error, caught.value.fatal) == (
        401,
        "invalid_grant",
        True,
    )
    assert ROTATED_IDENTITY_KEY not in str(caught.value)
    assert len(emulator.oauth.exchanges) == 1


async def test_a_failing_token_endpoint_is_retried_by_the_calls_retry_loop(
    base_url: str, emulator: Emulator, identity_file: Path, clock: FakeMonotonic
) -> None:
    """Two 503s from the token endpoint, then a token: the call succeeds."""
    emulator.oauth.fail_next(503, times=2)
    async with client_with(base_url, federation(base_url, identity_file, clock)) as client:
        assert await _list_all(client) == 5
    assert [e.status for e in emulator.oauth.exchanges] == [503, 503, 200]
    assert client.stats.retries == 2


def key_file_auth(path: Path, clock: FakeMonotonic) -> Callable[[httpx.AsyncClient], ApiKeyAuth]:
    return lambda http: ApiKeyAuth(path=path, clock=clock)


@pytest.mark.parametrize(("wait_s", "expected_401s"), [(1.0, 0), (0.0, 1)])
async def test_a_rotated_key_file_is_picked_up_without_a_restart(
    tmp_path: Path,
    lifecycle: ManualClock,
    clock: FakeMonotonic,
    wait_s: float,
    expected_401s: int,
) -> None:
    """After a second the new key is read unasked; right away, the first 401 reads it."""
    key_file = tmp_path / "ANTHROPIC_API_KEY"
    key_file.write_text(OLD_KEY + "\n")
    emulator = Emulator(EmulatorConfig(api_key=OLD_KEY), clock=lifecycle)
    emulator.seed(Population(count=3, status="ended", age_s=60))
    with serve_in_thread(emulator) as url:
        async with client_with(url, key_file_auth(key_file, clock)) as client:
            assert await _list_all(client) == 3
            key_file.write_text(NEW_KEY + "\n")
            emulator.configure(api_key=NEW_KEY)
            clock.now += wait_s
            assert await _list_all(client) == 3
    assert _401s(emulator) == expected_401s
