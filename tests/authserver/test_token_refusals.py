"""``/token`` refuses every code or refresh token that is not exactly what was issued, to whom, for what.

OAuth 2.1 §4.1.3 / RFC 6749 §5.2: errors are JSON with a 4xx status. Authorization codes are
single use, short-lived and bound to the client, the redirect URI, the PKCE challenge and the
RFC 8707 resource; refresh tokens rotate and a replay revokes their whole family (OAuth 2.1 §4.3.1).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, select, update

from ringfence.authserver.models import AuthorizationCode
from ringfence.authserver.store import secret_hash
from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, oauth_error, pkce_pair

pytestmark = pytest.mark.usefixtures("no_server_errors")


@pytest.fixture(scope="module")
def client(embedded: EmbeddedServer) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url)


@pytest.fixture(scope="module")
def other_client(embedded: EmbeddedServer) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url, redirect_uri="http://localhost:4040/cb")


@pytest.fixture(scope="module")
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


def still_works(embedded: EmbeddedServer, access_token: str) -> bool:
    return embedded.process.call_tool("search_contacts", {"query": "x"}, token=access_token).status_code == 200


# Authorization codes ----------------------------------------------------------------------------


def test_code_with_the_right_verifier_is_exchanged(client: DirectClient, user: BrowserLikeUser) -> None:
    """The control case: the same requests, unaltered, get 200 and a bearer token pair."""
    code, request = client.code(user)
    response = client.redeem(code, request.verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"  # RFC 6749 §5.1
    assert {"access_token", "refresh_token", "expires_in", "scope", "token_type"} <= response.json().keys()


def test_wrong_code_verifier_gets_invalid_grant(client: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 7636 §4.6: the verifier must hash to the challenge, else ``invalid_grant``."""
    code, _ = client.code(user)
    other_verifier, _ = pkce_pair()
    oauth_error(client.redeem(code, other_verifier), 400, "invalid_grant")


def test_missing_code_verifier_gets_an_error(client: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 7636 §4.5 / OAuth 2.1 §4.1.3: a code issued with a challenge needs its verifier (a missing
    parameter is ``invalid_request``, RFC 6749 §5.2)."""
    code, _ = client.code(user)
    oauth_error(client.redeem(code, "", code_verifier=None), 400, "invalid_request")


def test_reused_code_gets_invalid_grant_and_revokes_what_it_issued(client: DirectClient,
                                                                   user: BrowserLikeUser) -> None:
    """RFC 6749 §4.1.2 / OAuth 2.1 §4.1.3: a code is single use; on reuse the refresh token issued
    from it is revoked too."""
    code, request = client.code(user)
    first = client.redeem(code, request.verifier)
    assert first.status_code == 200
    oauth_error(client.redeem(code, request.verifier), 400, "invalid_grant")
    oauth_error(client.refresh(first.json()["refresh_token"]), 400, "invalid_grant")


def test_expired_code_gets_invalid_grant(embedded: EmbeddedServer, client: DirectClient,
                                         user: BrowserLikeUser) -> None:
    """OAuth 2.1 §4.1.2: codes are short-lived (60 s here). Instead of waiting, the code's stored
    ``expires_at`` is moved into the past in the server's own database: the server's check is real."""
    code, request = client.code(user)
    engine = create_engine(f"sqlite:///{embedded.database_file}")
    with engine.begin() as connection:
        moved = connection.execute(
            update(AuthorizationCode.__table__)
            .where(AuthorizationCode.__table__.c.code_hash == secret_hash(code))
            .values(expires_at=int(time.time()) - 1)
        )
    engine.dispose()
    assert moved.rowcount == 1
    oauth_error(client.redeem(code, request.verifier), 400, "invalid_grant")


def stored_code(embedded: EmbeddedServer, code: str) -> dict | None:
    engine = create_engine(f"sqlite:///{embedded.database_file}")
    table = AuthorizationCode.__table__
    with engine.connect() as connection:
        row = connection.execute(select(table).where(table.c.code_hash == secret_hash(code))).mappings().first()
    engine.dispose()
    return dict(row) if row else None


def test_code_is_issued_to_live_at_most_sixty_seconds(embedded: EmbeddedServer, client: DirectClient,
                                                      user: BrowserLikeUser) -> None:
    """OAuth 2.1 §4.1.2: "a maximum authorization code lifetime of 10 minutes is RECOMMENDED"; here 60 s."""
    code, _ = client.code(user)
    assert 0 < stored_code(embedded, code)["expires_at"] - time.time() <= 60


def test_code_is_stored_only_as_a_hash(embedded: EmbeddedServer, client: DirectClient,
                                       user: BrowserLikeUser) -> None:
    """Codes are bearer secrets: the database holds their SHA-256, never the code itself."""
    code, _ = client.code(user)
    assert stored_code(embedded, code) is not None
    files = [embedded.database_file, embedded.database_file.with_name("ringfence.db-wal")]
    assert all(code.encode() not in path.read_bytes() for path in files if path.exists())


def test_code_of_another_client_gets_invalid_grant(client: DirectClient, other_client: DirectClient,
                                                   user: BrowserLikeUser) -> None:
    """RFC 6749 §4.1.3: the code must have been issued to the authenticated client."""
    code, request = client.code(user)
    oauth_error(other_client.redeem(code, request.verifier, redirect_uri=client.redirect_uri), 400,
                "invalid_grant")


def test_redirect_uri_different_from_the_authorization_request_gets_invalid_grant(client: DirectClient,
                                                                                  user: BrowserLikeUser) -> None:
    """RFC 6749 §4.1.3: ``redirect_uri`` identical to the one in the authorization request."""
    code, request = client.code(user)
    oauth_error(client.redeem(code, request.verifier, redirect_uri="http://127.0.0.1:3030/other"), 400,
                "invalid_grant")


def test_resource_different_from_the_authorization_request_gets_invalid_target(client: DirectClient,
                                                                               user: BrowserLikeUser) -> None:
    """RFC 8707 §2: the token request may not change the resource that was authorized."""
    code, request = client.code(user)
    oauth_error(client.redeem(code, request.verifier, resource="https://other.example/mcp"), 400, "invalid_target")


def test_unknown_grant_type_gets_unsupported_grant_type(client: DirectClient) -> None:
    """RFC 6749 §5.2; OAuth 2.1 drops the password grant."""
    response = client.token_request({"grant_type": "password", "username": "owner", "password": "x",
                                     "client_id": client.client_id})
    oauth_error(response, 400, "unsupported_grant_type")


# Refresh tokens ---------------------------------------------------------------------------------


def test_reused_refresh_token_gets_invalid_grant_and_revokes_its_successor(client: DirectClient,
                                                                          user: BrowserLikeUser) -> None:
    """OAuth 2.1 §4.3.1 / RFC 9700 §4.14.2: replay of a rotated refresh token revokes the family."""
    tokens = client.tokens(user)
    rotated = client.refresh(tokens["refresh_token"])
    assert rotated.status_code == 200
    successor = rotated.json()["refresh_token"]
    oauth_error(client.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    oauth_error(client.refresh(successor), 400, "invalid_grant")


def test_refresh_token_of_another_client_gets_invalid_grant(client: DirectClient, other_client: DirectClient,
                                                            user: BrowserLikeUser) -> None:
    """RFC 6749 §6: the refresh token is bound to the client it was issued to."""
    tokens = client.tokens(user)
    oauth_error(other_client.refresh(tokens["refresh_token"]), 400, "invalid_grant")


def test_refresh_for_another_resource_gets_invalid_target(client: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 8707 §2.2: a refresh may not move the grant to another resource."""
    tokens = client.tokens(user)
    oauth_error(client.refresh(tokens["refresh_token"], resource="https://other.example/mcp"), 400,
                "invalid_target")


def test_refresh_cannot_widen_the_granted_scope(client: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 6749 §6: the refreshed scope MUST NOT include any scope not originally granted."""
    tokens = client.tokens(user, scope="contacts:read")
    response = client.refresh(tokens["refresh_token"], scope="contacts:read contacts:write")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    # The refusal leaves the refresh token unused: the client can still refresh within its grant.
    kept = client.refresh(tokens["refresh_token"])
    assert kept.status_code == 200 and kept.json()["scope"] == "contacts:read"


# Malformed requests -----------------------------------------------------------------------------


def test_repeated_parameter_gets_invalid_request(embedded: EmbeddedServer, client: DirectClient) -> None:
    """RFC 6749 §3.2: parameters sent without a value or more than once are refused."""
    body = f"grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id={client.client_id}"
    response = httpx.post(f"{embedded.issuer}/token", content=body,
                          headers={"content-type": "application/x-www-form-urlencoded"})
    oauth_error(response, 400, "invalid_request")


def test_oversized_body_gets_413(embedded: EmbeddedServer, client: DirectClient) -> None:
    """A token request is small; a 100 KB body is refused (RFC 9110 §15.5.14) before it is parsed."""
    response = httpx.post(f"{embedded.issuer}/token", data={"grant_type": "refresh_token",
                                                            "client_id": client.client_id,
                                                            "refresh_token": "a" * 100_000})
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert response.headers["cache-control"] == "no-store"


def test_non_utf8_body_gets_400(embedded: EmbeddedServer) -> None:
    """RFC 6749 Appendix B: the form is UTF-8; other bytes are refused, not guessed at."""
    response = httpx.post(f"{embedded.issuer}/token", content=b"grant_type=authorization_code&code=\xff\xfe",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    oauth_error(response, 400, "invalid_request")


def test_parameters_in_the_url_of_a_token_request_are_not_mixed_with_the_body(embedded: EmbeddedServer,
                                                                              client: DirectClient) -> None:
    """RFC 6749 §3.2 (POST); the same parameter in the query and the body is refused."""
    response = httpx.post(f"{embedded.issuer}/token?grant_type=refresh_token",
                          data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": client.client_id})
    oauth_error(response, 400, "invalid_request")
