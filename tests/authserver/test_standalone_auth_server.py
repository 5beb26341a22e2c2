"""``ringfence auth-server`` alone, in front of a ``ringfence serve --issuer AS --jwks-url AS/jwks.json``.

MCP authorization: "the authorization server ... may be hosted with the resource server or a
separate entity". The resource server's metadata points at the separate issuer (RFC 9728), the
official SDK client discovers it, registers and signs in there, and calls the tool with a token
whose ``aud`` is the resource server and whose ``iss`` is the authorization server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.idp import free_port
from tests.support.oauth import (
    MODES,
    EmbeddedServer,
    Linked,
    jwt_claims,
    linked_in_each_era,
    server_errors,
    start_auth_server,
)
from tests.support.serve import CONTACTS_APP, ServeProcess


@dataclass
class Deployment:
    auth: EmbeddedServer
    resource: ServeProcess


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    resource_port = free_port()
    resource_url = f"http://127.0.0.1:{resource_port}/mcp"
    auth = start_auth_server(tmp_path_factory.mktemp("auth-server"), resource=resource_url)
    data = tmp_path_factory.mktemp("resource-server")
    resource = ServeProcess(CONTACTS_APP, "--issuer", auth.issuer, "--jwks-url", f"{auth.issuer}/jwks.json",
                            "--data-dir", str(data), port=resource_port).start(data)
    yield Deployment(auth, resource)
    resource.stop()
    auth.stop_and_check()
    assert server_errors(resource.logs()) == []


@pytest.fixture(scope="module")
def linked(deployment: Deployment) -> Iterator[dict[str, Linked]]:
    with linked_in_each_era(deployment.auth.issuer, deployment.auth.account, deployment.resource.mcp_url,
                            lambda mode: {"added": ("add_contact", {"name": f"Standalone {mode}"}),
                                          "found": ("search_contacts", {"query": f"standalone {mode}"})}) as results:
        yield results


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def test_resource_metadata_names_the_separate_authorization_server(deployment: Deployment) -> None:
    """RFC 9728 §2 ``authorization_servers``: exactly the standalone server's issuer."""
    prm = httpx.get(deployment.resource.metadata_url).json()
    assert prm["authorization_servers"] == [deployment.auth.issuer]
    assert prm["resource"] == deployment.resource.mcp_url


def test_authorization_server_serves_only_the_authorization_endpoints(deployment: Deployment) -> None:
    """The standalone server has no MCP endpoint; the resource server has no authorization endpoints."""
    assert httpx.post(f"{deployment.auth.issuer}/mcp", json={}).status_code == 404
    assert httpx.get(f"{deployment.resource.base_url}/.well-known/oauth-authorization-server").status_code == 404
    assert httpx.get(f"{deployment.resource.base_url}/authorize").status_code == 404


def test_sdk_registers_signs_in_and_gets_tokens_at_the_authorization_server(deployment: Deployment,
                                                                           linked: dict[str, Linked],
                                                                           mode: str) -> None:
    """Discovery leads off-origin: metadata, registration and token requests all go to the issuer."""
    log = linked[mode].log
    oauth_urls = [e.url for e in log.exchanges if e.path in ("/.well-known/oauth-authorization-server",
                                                              "/register", "/token")]
    assert len(oauth_urls) == 3
    assert all(url.startswith(deployment.auth.issuer + "/") for url in oauth_urls)
    assert linked[mode].user.authorization_urls[0].startswith(deployment.auth.issuer + "/authorize?")


def test_tool_calls_run_at_the_resource_server(linked: dict[str, Linked], mode: str) -> None:
    """The token from the separate issuer opens the resource server's protected tools."""
    result = linked[mode]
    assert result.calls["added"].is_error is False
    assert result.calls["found"].structured_content["result"] == [result.calls["added"].structured_content]


def test_token_is_issued_by_the_auth_server_for_the_resource_server(deployment: Deployment,
                                                                    linked: dict[str, Linked], mode: str) -> None:
    """RFC 9068 §2.2 / RFC 8707: ``iss`` the authorization server, ``aud`` the resource server's MCP URL."""
    claims = jwt_claims(linked[mode].storage.tokens.access_token)
    assert claims["iss"] == deployment.auth.issuer
    assert claims["aud"] == deployment.resource.mcp_url
