"""RFC 8414 authorization server metadata of the embedded server, and one issuer string everywhere.

MCP authorization (server metadata discovery): clients try ``/.well-known/oauth-authorization-server``
then ``/.well-known/openid-configuration``, and refuse a document whose ``issuer`` is not identical
to the issuer they started from. The same string must appear in the protected resource metadata,
in every token's ``iss`` and in RFC 9207's ``iss`` on the redirect, without a trailing slash.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from mcp.shared.auth import OAuthMetadata

from tests.support.oauth import (
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    jwt_claims,
)

pytestmark = pytest.mark.usefixtures("no_server_errors")

WELL_KNOWN = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]


@dataclass
class Issued:
    redirect: dict[str, str]
    tokens: dict[str, Any]


@pytest.fixture(scope="module")
def issued(embedded: EmbeddedServer) -> Iterator[Issued]:
    """One authorization: the redirect the client receives and the tokens it then gets."""
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    client = DirectClient.register(embedded.issuer, embedded.mcp_url)
    request = client.authorization_request(scope="contacts:read")
    redirect = user.authorization_response(request.url)
    response = client.redeem(redirect["code"], request.verifier)
    assert response.status_code == 200, response.text
    yield Issued(redirect, response.json())
    user.close()


@pytest.fixture(scope="module")
def metadata(embedded: EmbeddedServer) -> dict[str, Any]:
    response = httpx.get(embedded.issuer + WELL_KNOWN[0])
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_metadata_is_served_as_json_at_both_discovery_urls(embedded: EmbeddedServer, path: str) -> None:
    """RFC 8414 §3 and OpenID Connect Discovery §4: the same JSON document at both well-known URLs."""
    response = httpx.get(embedded.issuer + path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == httpx.get(embedded.issuer + WELL_KNOWN[0]).json()


def test_issuer_is_the_origin_without_a_trailing_slash(embedded: EmbeddedServer, metadata: dict) -> None:
    """RFC 8414 §3.3: ``issuer`` identical to the URL the metadata was fetched for (no trailing slash)."""
    assert metadata["issuer"] == f"http://127.0.0.1:{embedded.process.port}"
    assert OAuthMetadata.model_validate(metadata).issuer is not None  # the SDK's own model accepts it


def test_issuer_is_byte_identical_to_the_protected_resource_metadata_entry(embedded: EmbeddedServer,
                                                                           metadata: dict) -> None:
    """RFC 9728 §3 ``authorization_servers`` and RFC 8414 §3.3: one string, compared byte for byte."""
    prm = httpx.get(embedded.process.metadata_url).json()
    assert prm["authorization_servers"] == [metadata["issuer"]]


def test_issuer_is_byte_identical_to_the_token_iss(metadata: dict, issued: Issued) -> None:
    """RFC 9068 §2.2: ``iss`` of the access token is the issuer identifier."""
    assert jwt_claims(issued.tokens["access_token"])["iss"] == metadata["issuer"]


def test_issuer_is_byte_identical_to_the_iss_on_the_redirect(metadata: dict, issued: Issued) -> None:
    """RFC 9207 §2: the authorization response carries ``iss``, equal to the metadata issuer."""
    assert issued.redirect["iss"] == metadata["issuer"]


def test_pkce_is_advertised_with_s256_only(metadata: dict) -> None:
    """MCP: clients refuse to proceed without ``code_challenge_methods_supported``; OAuth 2.1: S256 only."""
    assert metadata["code_challenge_methods_supported"] == ["S256"]


def test_public_clients_are_supported_at_the_token_endpoint(metadata: dict) -> None:
    """RFC 8414 §2 ``token_endpoint_auth_methods_supported`` includes ``none`` (public MCP clients)."""
    assert "none" in metadata["token_endpoint_auth_methods_supported"]


@pytest.mark.parametrize("endpoint", ["token", "revocation", "introspection"])
def test_private_key_jwt_is_advertised_with_asymmetric_algorithms_only(metadata: dict, endpoint: str) -> None:
    """RFC 8414 §2: with ``private_key_jwt`` (RFC 7523; ChatGPT prefers it when offered) the server lists
    ``*_auth_signing_alg_values_supported``, which MUST NOT include ``none``; here no symmetric (HS*) one either."""
    assert "private_key_jwt" in metadata[f"{endpoint}_endpoint_auth_methods_supported"]
    algorithms = metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
    assert "ES256" in algorithms and "RS256" in algorithms
    assert not [alg for alg in algorithms if alg == "none" or alg.startswith("HS")]


def test_registration_and_metadata_documents_are_advertised(embedded: EmbeddedServer, metadata: dict) -> None:
    """RFC 7591 ``registration_endpoint``; CIMD §5 ``client_id_metadata_document_supported``."""
    assert metadata["registration_endpoint"] == embedded.issuer + "/register"
    assert metadata["client_id_metadata_document_supported"] is True


def test_issuer_parameter_support_is_advertised(metadata: dict) -> None:
    """RFC 9207 §3: ``authorization_response_iss_parameter_supported`` is true when ``iss`` is sent."""
    assert metadata["authorization_response_iss_parameter_supported"] is True


@pytest.mark.parametrize("name", ["revocation_endpoint", "introspection_endpoint", "token_endpoint"])
def test_protocol_endpoints_are_advertised_and_served(embedded: EmbeddedServer, metadata: dict, name: str) -> None:
    """RFC 8414 §2: RFC 7009 revocation and RFC 7662 introspection endpoints exist where advertised."""
    url = metadata[name]
    assert url.startswith(embedded.issuer + "/")
    response = httpx.post(url, data={})
    assert response.status_code in (400, 401)  # a real OAuth endpoint refusing an empty request
    assert "error" in response.json()


def test_jwks_uri_serves_a_public_es256_key_with_a_kid(metadata: dict, issued: Issued) -> None:
    """RFC 8414 ``jwks_uri``; RFC 7517: the public EC P-256 key, ``kid`` set, no private member."""
    jwks = httpx.get(metadata["jwks_uri"]).json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
        assert key["kid"]
        assert "d" not in key
    token = issued.tokens["access_token"]
    verified = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert verified.header["kid"] in {key["kid"] for key in jwks["keys"]}


def test_scopes_supported_are_the_declared_scopes_without_offline_access(metadata: dict) -> None:
    """MCP: ``scopes_supported`` is the app's scopes, and SHOULD NOT list ``offline_access``."""
    assert metadata["scopes_supported"] == ["contacts:read", "contacts:write"]


def test_only_the_code_flow_is_offered(metadata: dict) -> None:
    """OAuth 2.1 §1.1: no implicit grant; the code flow and refresh only."""
    assert metadata["response_types_supported"] == ["code"]
    assert set(metadata["grant_types_supported"]) == {"authorization_code", "refresh_token"}


def test_every_endpoint_is_on_the_issuer_origin(embedded: EmbeddedServer, metadata: dict) -> None:
    """Same-origin deployment: every advertised URL is under the issuer."""
    urls = [value for key, value in metadata.items() if key.endswith(("_endpoint", "_uri"))]
    assert len(urls) == 7  # six endpoints and op_policy_uri (RFC 8414 §2: the privacy disclosure)
    assert all(url.startswith(embedded.issuer + "/") for url in urls)
