"""The access tokens the embedded server issues: RFC 9068 JWTs for exactly one resource, 15 minutes.

RFC 9068 §2: ``typ`` ``at+jwt``, asymmetric signature, ``iss``, ``exp``, ``aud``, ``sub``,
``client_id``, ``iat``, ``jti``; RFC 8707 / MCP: ``aud`` is the MCP endpoint (never the client);
OAuth 2.1 §7.1 / MCP: short-lived.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, jwt_claims, jwt_header

pytestmark = pytest.mark.usefixtures("no_server_errors")


@dataclass
class Issued:
    client: DirectClient
    response: dict[str, Any]
    received_at: float

    @property
    def token(self) -> str:
        return self.response["access_token"]

    @property
    def claims(self) -> dict[str, Any]:
        return jwt_claims(self.token)


@pytest.fixture(scope="module")
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


@pytest.fixture(scope="module")
def issued(embedded: EmbeddedServer, user: BrowserLikeUser) -> list[Issued]:
    """Two grants for the same person through two clients."""
    result = []
    for name in ("Token Client A", "Token Client B"):
        client = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name=name)
        tokens = client.tokens(user, scope="contacts:write")
        result.append(Issued(client, tokens, time.time()))
    return result


def test_header_is_at_jwt_es256_with_a_published_kid(embedded: EmbeddedServer, issued: list[Issued]) -> None:
    """RFC 9068 §2.1: ``typ: at+jwt``; signed ES256 with a key the JWKS publishes under that ``kid``."""
    header = jwt_header(issued[0].token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    kids = {key["kid"] for key in httpx.get(f"{embedded.issuer}/jwks.json").json()["keys"]}
    assert header["kid"] in kids


def test_signature_verifies_with_the_published_keys(embedded: EmbeddedServer, issued: list[Issued]) -> None:
    """RFC 9068 §4: resource servers verify with the issuer's ``jwks_uri`` keys."""
    keys = KeySet.import_key_set(httpx.get(f"{embedded.issuer}/jwks.json").json())
    token = jwt.decode(issued[0].token, keys, algorithms=["ES256"])
    assert token.claims == issued[0].claims


def test_audience_is_the_mcp_endpoint(embedded: EmbeddedServer, issued: list[Issued]) -> None:
    """RFC 8707 §2 / MCP: ``aud`` is the resource's canonical URI, not the client id."""
    assert issued[0].claims["aud"] == f"http://127.0.0.1:{embedded.process.port}/mcp"
    assert issued[0].claims["aud"] != issued[0].client.client_id


def test_issuer_and_client_id_claims(embedded: EmbeddedServer, issued: list[Issued]) -> None:
    """RFC 9068 §2.2: ``iss`` is this server; ``client_id`` the client the token was issued to."""
    for grant in issued:
        assert grant.claims["iss"] == embedded.issuer
        assert grant.claims["client_id"] == grant.client.client_id


def test_subject_is_opaque_and_stable_for_the_person(embedded: EmbeddedServer, issued: list[Issued]) -> None:
    """RFC 9068 §2.2 ``sub``: an identifier, not the login name; the same person through any client."""
    subjects = {grant.claims["sub"] for grant in issued}
    assert len(subjects) == 1
    [subject] = subjects
    assert embedded.account.username not in subject
    assert len(subject) == 32 and int(subject, 16) >= 0


def test_scope_claim_is_the_granted_scope(issued: list[Issued]) -> None:
    """RFC 9068 §2.2.3: ``scope`` as in the token response."""
    assert issued[0].claims["scope"] == "contacts:write" == issued[0].response["scope"]


def test_lifetime_is_fifteen_minutes(issued: list[Issued]) -> None:
    """Short-lived (OAuth 2.1 §7.1, MCP token theft): ``exp`` = ``iat`` + 900, and ``expires_in`` says so."""
    claims = issued[0].claims
    assert claims["exp"] - claims["iat"] == 900
    assert issued[0].response["expires_in"] == 900
    assert abs(claims["iat"] - issued[0].received_at) < 30


def test_every_token_has_its_own_jti(issued: list[Issued]) -> None:
    """RFC 9068 §2.2: ``jti`` identifies the token."""
    assert all(grant.claims["jti"] for grant in issued)
    assert issued[0].claims["jti"] != issued[1].claims["jti"]


def test_token_response_is_a_bearer_token_pair(issued: list[Issued]) -> None:
    """RFC 6749 §5.1: ``token_type`` Bearer (RFC 6750), a refresh token for the authorization code grant."""
    assert issued[0].response["token_type"].lower() == "bearer"
    assert issued[0].response["refresh_token"] and issued[0].response["refresh_token"] != issued[1].response[
        "refresh_token"]


def test_token_opens_the_mcp_endpoint_it_was_issued_for(embedded: EmbeddedServer, issued: list[Issued]) -> None:
    """The resource server (same process) accepts its own authorization server's token."""
    response = embedded.process.call_tool("add_contact", {"name": "Token Check"}, token=issued[0].token)
    assert response.status_code == 200


def test_every_token_names_its_grant_and_a_refreshed_token_the_same_one(issued: list[Issued]) -> None:
    """``sid``: the grant whose revocation ends the token (refreshing keeps the grant, a new sign-in makes one)."""
    first, second = issued[0].claims["sid"], issued[1].claims["sid"]
    assert first and second and first != second
    refreshed = issued[0].client.refresh(issued[0].response["refresh_token"])
    assert refreshed.status_code == 200
    assert jwt_claims(refreshed.json()["access_token"])["sid"] == first
