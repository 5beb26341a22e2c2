"""RFC 9728 protected resource metadata: how a client finds the authorization server and scopes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import external_idp_args
from tests.support.http import challenge
from tests.support.idp import TestIdentityProvider, free_port
from tests.support.serve import CONTACTS_APP, ServeProcess, start_together, stop_together

WELL_KNOWN = ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]
PUBLIC_URL = "https://mcp.example.test"


@pytest.fixture(scope="module")
def servers(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, ...]]:
    """The reference app twice, started together: as is, and told it is reached as https://mcp.example.test."""
    data = tmp_path_factory.mktemp("metadata")
    args, env = external_idp_args(idp)
    port = free_port()
    plain = ServeProcess(CONTACTS_APP, *args, "--data-dir", str(data / "plain"), env=env)
    proxied = ServeProcess(CONTACTS_APP, *args, "--public-url", PUBLIC_URL, "--allowed-host", f"127.0.0.1:{port}",
                           "--data-dir", str(data / "proxied"), env=env, port=port)
    yield start_together(data, plain, proxied)
    stop_together(plain, proxied)


@pytest.fixture(scope="module")
def contacts(servers: tuple[ServeProcess, ...]) -> ServeProcess:
    """The reference app on its loopback URL (this module's own, started with ``proxied``)."""
    return servers[0]


@pytest.fixture(scope="module")
def proxied(servers: tuple[ServeProcess, ...]) -> ServeProcess:
    """Behind a reverse proxy: --public-url names the origin clients use; loopback allowed for the tests."""
    return servers[1]


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_metadata_is_served_as_json_at_root_and_path_inserted_urls(contacts: ServeProcess, path: str) -> None:
    """RFC 9728 §3.1 (path-inserted form) and MCP 2025-11-25 discovery fallback (root form)."""
    response = httpx.get(contacts.base_url + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_resource_is_byte_identical_to_the_mcp_endpoint_url(contacts: ServeProcess, path: str) -> None:
    """RFC 9728 §3.3: the client requires ``resource`` to equal, byte for byte, the URL it used."""
    document = httpx.get(contacts.base_url + path).json()
    assert document["resource"] == f"http://127.0.0.1:{contacts.port}/mcp"


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_authorization_servers_is_exactly_the_issuer(contacts: ServeProcess, idp: TestIdentityProvider,
                                                     path: str) -> None:
    """MCP: PRM MUST list the authorization server; RFC 8414 §3.3: the issuer is compared exactly."""
    document = httpx.get(contacts.base_url + path).json()
    assert document["authorization_servers"] == [idp.issuer]
    assert not document["authorization_servers"][0].endswith("/")


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_scopes_supported_is_the_declared_scopes_and_never_offline_access(contacts: ServeProcess,
                                                                          path: str) -> None:
    """MCP 2025-11-25: ``scopes_supported`` lists the app's scopes and SHOULD NOT list offline_access."""
    document = httpx.get(contacts.base_url + path).json()
    assert document["scopes_supported"] == ["contacts:read", "contacts:write"]
    assert "offline_access" not in document["scopes_supported"]


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_bearer_methods_supported_is_the_header_only(contacts: ServeProcess, path: str) -> None:
    """RFC 9728 §2 ``bearer_methods_supported``; MCP: tokens only in the Authorization header."""
    document = httpx.get(contacts.base_url + path).json()
    assert document["bearer_methods_supported"] == ["header"]


def test_both_well_known_urls_serve_the_same_document(contacts: ServeProcess) -> None:
    """A client that falls back from the path-inserted URL to the root one sees the same resource."""
    root, inserted = (httpx.get(contacts.base_url + path).json() for path in WELL_KNOWN)
    assert root == inserted


def test_challenge_resource_metadata_points_at_the_served_document(contacts: ServeProcess) -> None:
    """RFC 9728 §5.1: the 401's ``resource_metadata`` URL serves the metadata for this very resource."""
    refused = contacts.call_tool("search_contacts", {"query": "ann"})
    url = challenge(refused)["resource_metadata"]
    assert url == f"http://127.0.0.1:{contacts.port}/.well-known/oauth-protected-resource/mcp"
    assert httpx.get(url).json()["resource"] == contacts.mcp_url


# Behind a reverse proxy: --public-url names the origin clients use --------------------------


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_public_url_is_the_resource(proxied: ServeProcess, path: str) -> None:
    """RFC 9728 §3.3: ``resource`` is the URL clients use: the public URL plus /mcp."""
    document = httpx.get(proxied.base_url + path).json()
    assert document["resource"] == "https://mcp.example.test/mcp"


def test_public_url_is_used_in_the_challenge(proxied: ServeProcess) -> None:
    """RFC 9728 §5.1: ``resource_metadata`` is a URL the client can reach, not the internal address."""
    refused = proxied.call_tool("search_contacts", {"query": "ann"})
    assert refused.status_code == 401
    assert challenge(refused)["resource_metadata"] == (
        "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
    )


def test_tokens_must_name_the_public_resource_as_audience(proxied: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 8707 §2 / MCP: the audience is the canonical public URI, not the loopback one."""
    for_public = idp.token("https://mcp.example.test/mcp", scope="contacts:read")
    for_loopback = idp.token(proxied.mcp_url, scope="contacts:read")
    assert proxied.call_tool("search_contacts", {"query": "ann"}, token=for_public).status_code == 200
    refused = proxied.call_tool("search_contacts", {"query": "ann"}, token=for_loopback)
    assert refused.status_code == 401
    assert challenge(refused)["error"] == "invalid_token"


def test_public_host_is_served_and_other_loopback_names_are_not(proxied: ServeProcess) -> None:
    """DNS-rebinding protection follows the public URL: its host, plus only the hosts explicitly allowed."""
    as_public = httpx.get(proxied.metadata_url, headers={"host": "mcp.example.test"})
    as_localhost = httpx.get(proxied.metadata_url, headers={"host": f"localhost:{proxied.port}"})
    assert as_public.status_code == 200
    assert as_localhost.status_code == 421
