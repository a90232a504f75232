"""Which proxy a base URL goes through: the environment read as curl and the SDKs read it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleaner.errors import ConfigError
from cleaner.network import bypasses, proxy_for

P = "http://proxy.corp:3128"
Q = "http://other.corp:8080"

#: (base URL, environment, the proxy expected or None for direct)
CASES: list[tuple[str, dict[str, str], str | None]] = [
    ("https://api.anthropic.com", {}, None),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P}, P),
    ("https://api.anthropic.com", {"https_proxy": P}, P),
    ("https://api.anthropic.com", {"https_proxy": P, "HTTPS_PROXY": Q}, P),  # lower case wins
    ("https://api.anthropic.com", {"https_proxy": "", "HTTPS_PROXY": Q}, Q),  # empty is unset
    ("https://api.anthropic.com", {"HTTP_PROXY": P}, None),  # the other scheme's
    ("http://127.0.0.1:8787", {"HTTP_PROXY": P}, P),
    ("http://127.0.0.1:8787", {"http_proxy": P, "HTTPS_PROXY": Q}, P),
    ("https://api.anthropic.com", {"ALL_PROXY": P}, P),
    ("https://api.anthropic.com", {"all_proxy": P}, P),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "ALL_PROXY": Q}, P),  # scheme first
    ("https://api.anthropic.com", {"HTTPS_PROXY": "proxy.corp:3128"}, P),  # no scheme: http
    ("https://api.anthropic.com", {"HTTPS_PROXY": "https://p.corp"}, "https://p.corp"),
    # NO_PROXY: hosts, suffixes, *, ports, addresses
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": "*"}, None),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": "api.anthropic.com"}, None),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "no_proxy": "anthropic.com"}, None),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": ".anthropic.com"}, None),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": "*.anthropic.com"}, None),
    ("https://anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": ".anthropic.com"}, None),
    ("https://API.Anthropic.COM", {"HTTPS_PROXY": P, "NO_PROXY": "api.anthropic.com"}, None),
    ("https://api.anthropic.com.", {"HTTPS_PROXY": P, "NO_PROXY": "anthropic.com"}, None),
    ("https://notanthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": "anthropic.com"}, P),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": "a.example, b.example"}, P),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": "a.example,anthropic.com"}, None),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": "x.example anthropic.com"}, None),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": "anthropic.com:443"}, None),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "NO_PROXY": "anthropic.com:8443"}, P),
    ("https://api.anthropic.com:8443", {"HTTPS_PROXY": P, "NO_PROXY": "anthropic.com:8443"}, None),
    ("http://10.1.2.3:80", {"HTTP_PROXY": P, "NO_PROXY": "10.1.2.3"}, None),
    ("http://10.1.2.3:80", {"HTTP_PROXY": P, "NO_PROXY": "10.0.0.0/8"}, None),
    ("http://11.1.2.3:80", {"HTTP_PROXY": P, "NO_PROXY": "10.0.0.0/8"}, P),
    ("http://10.1.2.3:80", {"HTTP_PROXY": P, "NO_PROXY": "2.3"}, P),  # no suffix rule for IPs
    ("http://[::1]:8787", {"HTTP_PROXY": P, "NO_PROXY": "::1"}, None),
    ("http://[::1]:8787", {"HTTP_PROXY": P, "NO_PROXY": "[::1]:8787"}, None),
    ("http://[::1]:8787", {"HTTP_PROXY": P, "NO_PROXY": "[::1]:9999"}, P),
    ("http://[fd00::5]:80", {"HTTP_PROXY": P, "NO_PROXY": "fd00::/8"}, None),
    ("https://api.anthropic.com", {"HTTPS_PROXY": P, "no_proxy": "x", "NO_PROXY": "*"}, P),
]


@pytest.mark.parametrize(("url", "environ", "expected"), CASES)
def test_the_proxy_for_a_base_url_follows_curls_rules(
    url: str, environ: dict[str, str], expected: str | None
) -> None:
    """One row of the table: the proxy chosen, or None for a direct connection."""
    assert proxy_for(url, environ=environ) == expected


@pytest.mark.parametrize(
    ("value", "complaint"),
    [("socks5://127.0.0.1:1080", "socks5"), ("http://:3128", "no host"), ("http://p:x", "port")],
)
def test_an_unusable_proxy_is_a_configuration_error_that_hides_the_value(
    value: str, complaint: str
) -> None:
    """The variable is named, the value (which may hold a password) is not repeated."""
    secret = value.replace("://", "://user:hunter2@")
    with pytest.raises(ConfigError) as raised:
        proxy_for("https://api.anthropic.com", environ={"HTTPS_PROXY": secret})
    assert set(raised.value.problems) == {"HTTPS_PROXY"}
    assert complaint in str(raised.value)
    assert "hunter2" not in str(raised.value)


labels = st.from_regex(r"[a-z][a-z0-9]{0,11}", fullmatch=True)  # a name, never an IP
hosts = st.lists(labels, min_size=1, max_size=4).map(".".join)


@given(host=hosts, parent=hosts, port=st.integers(1, 65535))
def test_a_no_proxy_domain_exempts_itself_and_every_subdomain_and_nothing_else(
    host: str, parent: str, port: int
) -> None:
    """``parent`` exempts ``parent`` and ``x.parent``; another name only if it ends so."""
    assert bypasses(parent, host=parent, port=port)
    assert bypasses(parent, host=f"{host}.{parent}", port=port)
    assert bypasses(f".{parent}", host=f"{host}.{parent}", port=port)
    glued = f"{host}{parent}"  # ends with the text, but not at a label boundary
    assert bypasses(parent, host=glued, port=port) == (glued == parent)


@given(host=hosts, port=st.integers(1, 65535), other=st.integers(1, 65535))
def test_a_no_proxy_port_limits_the_exemption_to_that_port(
    host: str, port: int, other: int
) -> None:
    """``host:port`` exempts that port only."""
    assert bypasses(f"{host}:{port}", host=host, port=port)
    assert bypasses(f"{host}:{port}", host=host, port=other) == (port == other)


@given(entries=st.lists(hosts, max_size=5), host=hosts, port=st.integers(1, 65535))
def test_a_star_among_the_entries_exempts_everything(
    entries: list[str], host: str, port: int
) -> None:
    """``*`` anywhere in the list means no proxy for any host."""
    assert bypasses(",".join([*entries, "*"]), host=host, port=port)
