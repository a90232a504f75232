"""Behind an enterprise network: an egress proxy that only tunnels, and a private CA.

The emulator is served over TLS with a certificate from a throwaway CA; a CONNECT-only
proxy on 127.0.0.1 is the only thing that knows the internal host name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cleaner.emulator import Emulator, EmulatorConfig, Population
from cleaner.errors import ApiUnreachableError, ConfigError, UntrustedCertificateError
from cleaner.network import check_host_resolves
from tests.integration.netkit import (
    INTERNAL_HOST,
    KEY,
    ConnectProxy,
    Pki,
    make_pki,
    production_client,
    serve_tls,
)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """The CA that signed the server's certificate."""
    return make_pki(tmp_path)


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    """A CA file that did not sign the server's certificate."""
    return make_pki(tmp_path, "other").ca_file


@pytest.fixture
def emulator() -> Emulator:
    """An emulator holding three ended batches, old enough to delete."""
    emulator = Emulator(EmulatorConfig(api_key=KEY))
    emulator.seed(Population(count=3, status="ended", age_s=40 * 86400))
    return emulator


@pytest.fixture
def tls_port(emulator: Emulator, pki: Pki) -> Iterator[int]:
    """The emulator's HTTPS port on 127.0.0.1."""
    with serve_tls(emulator, pki) as port:
        yield port


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[ConnectProxy, str]]:
    """The CONNECT-only proxy, mapping the internal name to loopback; and its URL."""
    proxy = ConnectProxy(hosts={INTERNAL_HOST: "127.0.0.1"})
    async with proxy.running() as url:
        yield proxy, url


async def test_an_https_base_url_reaches_the_api_through_the_proxy_with_connect(
    emulator: Emulator, pki: Pki, tls_port: int, proxy: tuple[ConnectProxy, str]
) -> None:
    """List and delete through one CONNECT tunnel to a host only the proxy can resolve."""
    fake, url = proxy
    environ = {"HTTPS_PROXY": url, "SSL_CERT_FILE": str(pki.ca_file)}
    base_url = f"https://{INTERNAL_HOST}:{tls_port}"
    async with production_client(base_url, environ) as client:
        page = await anext(client.pages())
        deletion = await client.delete(page.batches[0].id)
    assert deletion.confirmation["type"] == "message_batch_deleted"
    assert emulator.deleted_ids == {page.batches[0].id}
    assert fake.tunnels == [f"{INTERNAL_HOST}:{tls_port}"]  # one tunnel, kept alive
    assert fake.refused == []


async def test_proxy_credentials_in_the_url_are_sent_to_the_proxy_only(
    emulator: Emulator, pki: Pki, tls_port: int, proxy: tuple[ConnectProxy, str]
) -> None:
    """user:password in HTTPS_PROXY becomes Proxy-Authorization on the CONNECT."""
    fake, url = proxy
    with_auth = url.replace("http://", "http://egress:s3cret@")
    environ = {"https_proxy": with_auth, "SSL_CERT_FILE": str(pki.ca_file)}
    async with production_client(f"https://{INTERNAL_HOST}:{tls_port}", environ) as client:
        await anext(client.pages())
    assert fake.auth == ["Basic ZWdyZXNzOnMzY3JldA=="]  # base64("egress:s3cret")


async def test_no_proxy_naming_the_host_and_port_connects_directly(
    pki: Pki, tls_port: int, proxy: tuple[ConnectProxy, str]
) -> None:
    """NO_PROXY with host:port: the proxy sees nothing, the request still succeeds."""
    fake, url = proxy
    environ = {
        "HTTPS_PROXY": url,
        "NO_PROXY": f"corp.example, localhost:{tls_port}",
        "SSL_CERT_FILE": str(pki.ca_file),
    }
    async with production_client(f"https://localhost:{tls_port}", environ) as client:
        page = await anext(client.pages())
    assert len(page.batches) == 3
    assert fake.tunnels == []
    assert fake.refused == []


async def test_all_proxy_applies_when_no_scheme_proxy_is_set(
    pki: Pki, tls_port: int, proxy: tuple[ConnectProxy, str]
) -> None:
    """ALL_PROXY alone routes https too."""
    fake, url = proxy
    environ = {"ALL_PROXY": url, "SSL_CERT_FILE": str(pki.ca_file)}
    async with production_client(f"https://{INTERNAL_HOST}:{tls_port}", environ) as client:
        await anext(client.pages())
    assert fake.tunnels == [f"{INTERNAL_HOST}:{tls_port}"]


@pytest.mark.parametrize("store", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
async def test_the_ca_named_by_ssl_cert_file_or_dir_is_trusted(
    pki: Pki, tls_port: int, tmp_path: Path, store: str
) -> None:
    """The test CA, named either way, verifies the server; nothing else is needed."""
    if store == "SSL_CERT_FILE":
        environ = {"SSL_CERT_FILE": str(pki.ca_file)}
    else:
        hashed = tmp_path / "hashed"
        hashed.mkdir()
        (hashed / f"{_subject_hash(pki.ca_file)}.0").write_bytes(pki.ca_file.read_bytes())
        environ = {"SSL_CERT_DIR": str(hashed)}
    async with production_client(f"https://127.0.0.1:{tls_port}", environ) as client:
        page = await anext(client.pages())
    assert len(page.batches) == 3


@pytest.mark.parametrize("trusted", ["default store", "another CA"])
async def test_an_untrusted_certificate_is_one_attempt_and_a_typed_configuration_error(
    emulator: Emulator, other_ca: Path, tls_port: int, trusted: str
) -> None:
    """No retry: the error says the certificate was not trusted and names both variables."""
    environ = {} if trusted == "default store" else {"SSL_CERT_FILE": str(other_ca)}
    async with production_client(f"https://127.0.0.1:{tls_port}", environ) as client:
        with pytest.raises(UntrustedCertificateError) as raised:
            await anext(client.pages())
        assert client.stats.requests == 1
        assert client.stats.retries == 0
    assert not isinstance(raised.value, ApiUnreachableError)
    assert raised.value.retryable is False
    message = str(raised.value)
    assert "certificate was not trusted" in message
    assert "SSL_CERT_FILE" in message
    assert "SSL_CERT_DIR" in message
    assert emulator.request_counts.total() == 0


async def test_an_untrusted_certificate_behind_the_proxy_is_tunnelled_once(
    other_ca: Path, tls_port: int, proxy: tuple[ConnectProxy, str]
) -> None:
    """A TLS-intercepting proxy whose CA is missing: one CONNECT, then the typed error."""
    fake, url = proxy
    environ = {"HTTPS_PROXY": url, "SSL_CERT_FILE": str(other_ca)}
    async with production_client(f"https://{INTERNAL_HOST}:{tls_port}", environ) as client:
        with pytest.raises(UntrustedCertificateError):
            await anext(client.pages())
    assert fake.tunnels == [f"{INTERNAL_HOST}:{tls_port}"]


async def test_a_proxy_that_cannot_reach_the_host_is_retried_then_unreachable(
    pki: Pki, proxy: tuple[ConnectProxy, str]
) -> None:
    """A 502 to CONNECT is a connection failure: retried, then the API is unreachable."""
    fake, url = proxy
    environ = {"HTTPS_PROXY": url, "SSL_CERT_FILE": str(pki.ca_file)}
    async with production_client("https://elsewhere.internal.test", environ) as client:
        with pytest.raises(ApiUnreachableError):
            await anext(client.pages())
        assert client.stats.requests == 4  # QUICK_RETRY's attempts
    assert len(fake.refused) == 4


def test_an_unreadable_ca_bundle_is_a_configuration_error_naming_the_variable(
    tmp_path: Path,
) -> None:
    """SSL_CERT_FILE pointing at nothing fails when the client is built, not per request."""
    from cleaner.client import BatchesClient

    with pytest.raises(ConfigError) as raised:
        BatchesClient.http_client(
            base_url="https://api.anthropic.com",
            api_key=KEY,
            request_timeout_s=5.0,
            concurrency=1,
            environ={"SSL_CERT_FILE": str(tmp_path / "missing.pem")},
        )
    assert set(raised.value.problems) == {"SSL_CERT_FILE"}


def test_the_dns_check_runs_when_no_proxy_exempts_the_host() -> None:
    """A proxy set, but NO_PROXY covers the host: the local verdict (no such host) stands."""
    environ = {"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ".invalid"}
    with pytest.raises(ConfigError) as raised:
        check_host_resolves("https://api.typo.invalid", environ=environ)
    assert set(raised.value.problems) == {"ANTHROPIC_BASE_URL"}


def test_the_dns_check_is_skipped_when_a_proxy_applies_to_the_host() -> None:
    """The proxy resolves an internal name; locally it does not exist, and that is fine."""
    check_host_resolves(f"https://{INTERNAL_HOST}", environ={"https_proxy": "127.0.0.1:9"})


def test_the_dns_check_ignores_a_proxy_for_the_other_scheme() -> None:
    """HTTP_PROXY does not apply to an https base URL: the check still runs."""
    with pytest.raises(ConfigError):
        check_host_resolves("https://api.typo.invalid", environ={"HTTP_PROXY": "127.0.0.1:9"})


def _subject_hash(ca_file: Path) -> str:
    """OpenSSL's subject hash, the file name SSL_CERT_DIR lookups use."""
    import subprocess

    out = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(ca_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()
