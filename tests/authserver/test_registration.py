"""RFC 7591 dynamic client registration: who may register which redirect URIs, and client secrets.

MCP authorization: "All redirect URIs MUST be either localhost or use HTTPS"; here https ones must
also be on the operator's allow-list (default: ChatGPT's). Public clients (``none``) get no secret;
confidential ones get a secret that is stored only as a hash and works at the token endpoint.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from ringfence.authserver.store import secret_hash
from tests.support import oauth
from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, basic_auth, oauth_error

pytestmark = pytest.mark.usefixtures("no_server_errors")

CHATGPT_REDIRECT = "https://chatgpt.com/connector/oauth/abc123"


# Registrations are rate-limited per address: this module registers from its own loopback address,
# so that it neither runs into the other modules' registrations nor they into its rate-limit test.
ADDRESS = "127.0.0.2"


def register(issuer: str, **metadata: Any) -> httpx.Response:
    return oauth.register(issuer, local_address=ADDRESS, **metadata)


@pytest.fixture(scope="module")
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


def stored_client(embedded: EmbeddedServer, client_id: str) -> dict:
    with sqlite3.connect(embedded.database_file) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM ringfence_clients WHERE client_id = ?", (client_id,)).fetchone()
    assert row is not None
    return dict(row)


# Redirect URIs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["http://127.0.0.1:3030/callback", "http://localhost:8080/cb", "http://[::1]:9/cb"])
def test_loopback_redirect_uri_is_accepted(embedded: EmbeddedServer, uri: str) -> None:
    """RFC 8252 §7.3 / MCP: loopback redirect URIs over plain http are allowed for native clients."""
    response = register(embedded.issuer, redirect_uris=[uri])
    assert response.status_code == 201, response.text
    assert response.json()["redirect_uris"] == [uri]


@pytest.mark.parametrize("uri", [
    "http://evil.example/cb",  # plain http, not loopback
    "https://evil.example/cb",  # https, but not on the operator's allow-list
    "https://chatgpt.com/connector/oauth/abc123/extra",  # the placeholder is one path segment only
    "https://chatgpt.com.evil.example/connector/oauth/abc123",
    "http://127.0.0.1:3030/cb#fragment",  # RFC 6749 §3.1.2: no fragment
    "javascript:alert(1)",
])
def test_redirect_uri_outside_the_policy_gets_invalid_redirect_uri(embedded: EmbeddedServer, uri: str) -> None:
    """RFC 7591 §3.2.2 ``invalid_redirect_uri``; MCP: localhost or https, here https only if allowed."""
    oauth_error(register(embedded.issuer, redirect_uris=[uri]), 400, "invalid_redirect_uri")


def test_one_bad_redirect_uri_refuses_the_whole_registration(embedded: EmbeddedServer) -> None:
    """Every listed redirect URI must pass, not just the first."""
    response = register(embedded.issuer, redirect_uris=["http://127.0.0.1:3030/cb", "http://evil.example/cb"])
    oauth_error(response, 400, "invalid_redirect_uri")


def test_registration_without_redirect_uris_is_refused(embedded: EmbeddedServer) -> None:
    """OAuth 2.1 §2.3.1: clients using the code flow MUST register redirect URIs."""
    oauth_error(register(embedded.issuer), 400, "invalid_redirect_uri")


def test_chatgpt_connector_redirect_uri_is_accepted(embedded: EmbeddedServer) -> None:
    """Apps SDK: ChatGPT registers ``https://chatgpt.com/connector/oauth/{callback_id}``."""
    response = register(embedded.issuer, redirect_uris=[CHATGPT_REDIRECT], client_name="ChatGPT")
    assert response.status_code == 201, response.text
    assert response.json()["redirect_uris"] == [CHATGPT_REDIRECT]


# Client types and metadata ----------------------------------------------------------------------


def test_public_client_gets_no_client_secret(embedded: EmbeddedServer) -> None:
    """RFC 7591 §3.2.1: ``client_secret`` only for clients that authenticate with one; the default is public."""
    response = register(embedded.issuer, redirect_uris=["http://127.0.0.1:3030/callback"])
    assert response.status_code == 201
    body = response.json()
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["client_id"] and isinstance(body["client_id_issued_at"], int)
    assert response.headers["cache-control"] == "no-store"


def test_client_that_cannot_use_the_code_flow_is_refused(embedded: EmbeddedServer) -> None:
    """MCP clients use the authorization code grant; a client_credentials-only client is refused
    (RFC 7591 §3.2.2 ``invalid_client_metadata``)."""
    response = register(embedded.issuer, redirect_uris=["http://127.0.0.1:3030/cb"],
                        grant_types=["client_credentials"])
    oauth_error(response, 400, "invalid_client_metadata")


@pytest.mark.parametrize("method", ["client_secret_jwt", "tls_client_auth"])
def test_unsupported_token_endpoint_auth_method_is_refused(embedded: EmbeddedServer, method: str) -> None:
    """RFC 7591 §2 / §3.2.2: an authentication method the server does not support is
    ``invalid_client_metadata``."""
    response = register(embedded.issuer, redirect_uris=["http://127.0.0.1:3030/cb"],
                        token_endpoint_auth_method=method)
    oauth_error(response, 400, "invalid_client_metadata")


# private_key_jwt (RFC 7523): keys instead of a secret -------------------------------------------


def public_jwks() -> dict[str, Any]:
    return {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}


def register_with_keys(embedded: EmbeddedServer, **keys: Any) -> httpx.Response:
    # Its own address: this module's rate-limit test spends 127.0.0.2's.
    return oauth.register(embedded.issuer, local_address="127.0.0.8", redirect_uris=["http://127.0.0.1:3030/cb"],
                          token_endpoint_auth_method="private_key_jwt", **keys)


@pytest.mark.parametrize("keys", [
    {"jwks": "inline"},
    {"jwks_uri": "https://client.example.com/jwks.json"},
], ids=["jwks", "jwks_uri"])
def test_private_key_jwt_client_with_published_keys_is_registered_without_a_secret(
        embedded: EmbeddedServer, keys: dict[str, Any]) -> None:
    """RFC 7591 §2: a private_key_jwt client gives its public keys (jwks or jwks_uri) and gets no
    client_secret: it authenticates with assertions it signs (RFC 7523 §2.2)."""
    keys = {name: public_jwks() if value == "inline" else value for name, value in keys.items()}
    response = register_with_keys(embedded, **keys)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in body
    assert stored_client(embedded, body["client_id"])["secret_hash"] is None


@pytest.mark.parametrize("keys", [
    {},
    {"jwks": {"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}},
    {"jwks": {"keys": [{"kty": "oct", "k": "c2hhcmVkLXNlY3JldA"}]}},
    {"jwks_uri": "http://client.example.com/jwks.json"},
    {"jwks_uri": "https://client.example.com/jwks.json", "jwks": "inline"},
], ids=["no keys", "private key", "symmetric key", "http jwks_uri", "both"])
def test_private_key_jwt_client_without_usable_public_keys_is_refused(embedded: EmbeddedServer,
                                                                      keys: dict[str, Any]) -> None:
    """RFC 7591 §2 / §3.2.2 invalid_client_metadata: keys are needed, public only (never a shared secret),
    at an https URL or inline, not both."""
    keys = {name: public_jwks() if value == "inline" else value for name, value in keys.items()}
    oauth_error(register_with_keys(embedded, **keys), 400, "invalid_client_metadata")


def test_requested_scope_is_narrowed_to_the_declared_scopes(embedded: EmbeddedServer) -> None:
    """Narrowed, never refused (the DCR scope trap): unknown scopes and offline_access are dropped."""
    response = register(embedded.issuer, redirect_uris=["http://127.0.0.1:3030/cb"],
                        scope="contacts:read admin offline_access")
    assert response.status_code == 201, response.text
    assert response.json()["scope"] == "contacts:read"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_registration_body_gets_400(embedded: EmbeddedServer, body: bytes) -> None:
    """RFC 7591 §3.2.2: a request that is not a JSON object is an error (4xx, not a crash)."""
    response = httpx.post(f"{embedded.issuer}/register", content=body, headers={"content-type": "application/json"})
    oauth_error(response, 400, "invalid_request")


# Confidential clients ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def confidential(embedded: EmbeddedServer) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url, local_address=ADDRESS,
                                 token_endpoint_auth_method="client_secret_basic")


def test_confidential_client_gets_a_client_secret(confidential: DirectClient) -> None:
    """RFC 7591 §3.2.1: a client registered for ``client_secret_basic`` receives a secret."""
    assert confidential.registration["token_endpoint_auth_method"] == "client_secret_basic"
    assert len(confidential.client_secret or "") >= 32
    assert confidential.registration["client_secret_expires_at"] == 0


def test_client_secret_is_stored_only_as_a_hash(embedded: EmbeddedServer, confidential: DirectClient) -> None:
    """The database holds the SHA-256 of the secret, not the secret."""
    row = stored_client(embedded, confidential.client_id)
    assert row["secret_hash"] == secret_hash(confidential.client_secret)
    files = [embedded.database_file, embedded.database_file.with_name("ringfence.db-wal")]
    assert all(confidential.client_secret.encode() not in path.read_bytes() for path in files if path.exists())


def test_confidential_client_authenticates_with_its_secret(confidential: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 6749 §2.3.1: HTTP Basic with the issued secret gets tokens."""
    tokens = confidential.tokens(user)
    assert tokens["access_token"] and tokens["refresh_token"]


def test_confidential_client_with_a_wrong_secret_gets_invalid_client(confidential: DirectClient,
                                                                     user: BrowserLikeUser) -> None:
    """RFC 6749 §5.2: failed client authentication is ``invalid_client`` with 401."""
    code, request = confidential.code(user)
    response = httpx.post(f"{confidential.issuer}/token", headers=basic_auth(confidential.client_id, "wrong"),
                          data={"grant_type": "authorization_code", "code": code, "code_verifier": request.verifier,
                                "redirect_uri": confidential.redirect_uri, "resource": confidential.resource})
    oauth_error(response, 401, "invalid_client")


def test_confidential_client_without_its_secret_gets_invalid_client(confidential: DirectClient,
                                                                    user: BrowserLikeUser) -> None:
    """A confidential client cannot act as a public one by leaving its secret out."""
    code, request = confidential.code(user)
    response = httpx.post(f"{confidential.issuer}/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": request.verifier,
        "redirect_uri": confidential.redirect_uri, "resource": confidential.resource,
        "client_id": confidential.client_id})
    oauth_error(response, 401, "invalid_client")


# Rate limit (last: it uses up this server's registrations) --------------------------------------


def test_registrations_are_rate_limited_per_address(embedded: EmbeddedServer) -> None:
    """Open registration is throttled per address: past the hourly allowance, 429 with ``Retry-After``;
    other addresses can still register."""
    for _ in range(31):
        response = register(embedded.issuer, redirect_uris=["http://127.0.0.1:3030/cb"])
        if response.status_code != 201:
            break
    assert response.status_code == 429
    assert response.json()["error"] == "slow_down"
    assert 0 < int(response.headers["retry-after"]) <= 3600
    elsewhere = oauth.register(embedded.issuer, local_address="127.0.0.3", redirect_uris=["http://127.0.0.1:3030/cb"])
    assert elsewhere.status_code == 201


@pytest.mark.parametrize("metadata", [
    {"response_types": ["token"]},
    {"response_types": ["code", "token"]},
    {"client_name": 42},
    {"client_name": "   "},
])
def test_registration_outside_the_code_flow_or_with_a_bad_name_is_refused(embedded, metadata):
    """OAuth 2.1 has only the code flow; RFC 7591 §3.2.2: invalid_client_metadata for a bad value."""
    response = oauth.register(embedded.issuer, local_address="127.0.0.4", redirect_uris=["http://127.0.0.1:9/cb"],
                              **metadata)  # its own address: this module's rate-limit test spends 127.0.0.2's
    oauth_error(response, 400, "invalid_client_metadata")
