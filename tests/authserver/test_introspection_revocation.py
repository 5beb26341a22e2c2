"""RFC 7662 introspection and RFC 7009 revocation at the embedded authorization server.

Introspection is for authenticated (confidential) clients only (RFC 7662 §2.1). Revoking a refresh
token or an access token revokes its grant: the whole rotation family and every access token of it
(what that does to tool calls is in test_revocation.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, basic_auth, oauth_error

pytestmark = pytest.mark.usefixtures("no_server_errors")


@pytest.fixture(scope="module")
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


@pytest.fixture(scope="module")
def public(embedded: EmbeddedServer) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Public Introspector")


@pytest.fixture(scope="module")
def confidential(embedded: EmbeddedServer) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Confidential Introspector",
                                 token_endpoint_auth_method="client_secret_basic")


def introspect(client: DirectClient, token: str, *, authenticated: bool = True) -> httpx.Response:
    headers = basic_auth(client.client_id, client.client_secret) if authenticated and client.client_secret else {}
    data = {"token": token} if headers else {"token": token, "client_id": client.client_id}
    return httpx.post(f"{client.issuer}/introspect", data=data, headers=headers)


def revoke(client: DirectClient, token: str, **extra: str) -> httpx.Response:
    return httpx.post(f"{client.issuer}/revoke", data={"token": token, "client_id": client.client_id, **extra})


# Introspection ----------------------------------------------------------------------------------


def test_public_client_may_not_introspect(public: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 7662 §2.1: the endpoint requires client authentication; a public client has none."""
    tokens = public.tokens(user)
    oauth_error(introspect(public, tokens["access_token"]), 401, "invalid_client")


def test_anonymous_introspection_is_refused(embedded: EmbeddedServer, public: DirectClient,
                                            user: BrowserLikeUser) -> None:
    """RFC 7662 §4: no token scanning without credentials."""
    tokens = public.tokens(user)
    oauth_error(httpx.post(f"{embedded.issuer}/introspect", data={"token": tokens["access_token"]}), 401,
                "invalid_client")


def test_wrong_client_secret_is_refused(confidential: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 6749 §2.3.1: a wrong secret is no authentication."""
    tokens = confidential.tokens(user)
    response = httpx.post(f"{confidential.issuer}/introspect", data={"token": tokens["access_token"]},
                          headers=basic_auth(confidential.client_id, "not-the-secret"))
    oauth_error(response, 401, "invalid_client")


def test_fresh_access_token_is_active_with_its_claims(embedded: EmbeddedServer, confidential: DirectClient,
                                                      user: BrowserLikeUser) -> None:
    """RFC 7662 §2.2: ``active`` true, with client_id, scope, sub, aud (the resource), exp and iss."""
    tokens = confidential.tokens(user, scope="contacts:read")
    response = introspect(confidential, tokens["access_token"])
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["token_type"] == "access_token"
    assert body["client_id"] == confidential.client_id
    assert body["scope"] == "contacts:read"
    assert body["aud"] == embedded.mcp_url
    assert body["iss"] == embedded.issuer
    assert body["sub"] and body["sub"] != embedded.account.username
    assert body["exp"] > 0


def test_live_refresh_token_is_active_and_a_rotated_one_is_not(confidential: DirectClient,
                                                               user: BrowserLikeUser) -> None:
    """RFC 7662 §2.2: a used (rotated) refresh token is no longer active; its successor is."""
    tokens = confidential.tokens(user)
    assert introspect(confidential, tokens["refresh_token"]).json()["active"] is True
    successor = confidential.refresh(tokens["refresh_token"]).json()["refresh_token"]
    assert introspect(confidential, tokens["refresh_token"]).json() == {"active": False}
    assert introspect(confidential, successor).json()["active"] is True


@pytest.mark.parametrize("token", ["not-a-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_unknown_or_forged_token_is_inactive(confidential: DirectClient, token: str) -> None:
    """RFC 7662 §2.2: anything not issued here, or not valid, is ``{"active": false}``."""
    response = introspect(confidential, token)
    assert response.status_code == 200
    assert response.json() == {"active": False}


# Revocation -------------------------------------------------------------------------------------


def test_revoked_refresh_token_no_longer_refreshes(public: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 7009 §2.1: a public client revokes its own refresh token with its client_id; 200."""
    tokens = public.tokens(user)
    response = revoke(public, tokens["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    oauth_error(public.refresh(tokens["refresh_token"]), 400, "invalid_grant")


def test_revoking_a_refresh_token_revokes_its_whole_family(public: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 7009 §2.1 (MAY revoke related tokens): revoking the rotated-away token kills its successor."""
    tokens = public.tokens(user)
    successor = public.refresh(tokens["refresh_token"]).json()["refresh_token"]
    assert revoke(public, tokens["refresh_token"]).status_code == 200
    oauth_error(public.refresh(successor), 400, "invalid_grant")


def test_revocation_by_another_client_is_refused_and_revokes_nothing(public: DirectClient, confidential: DirectClient,
                                                                    user: BrowserLikeUser) -> None:
    """RFC 7009 §2.1: the server verifies the token was issued to the client asking for revocation."""
    tokens = public.tokens(user)
    response = httpx.post(f"{confidential.issuer}/revoke", data={"token": tokens["refresh_token"]},
                          headers=basic_auth(confidential.client_id, confidential.client_secret))
    assert 400 <= response.status_code < 500
    assert public.refresh(tokens["refresh_token"]).status_code == 200


def test_revoking_an_unknown_token_answers_200(public: DirectClient) -> None:
    """RFC 7009 §2.2: an invalid token is not an error (nothing to learn from the answer)."""
    assert revoke(public, "no-such-token").status_code == 200


def test_revocation_without_a_client_is_refused(embedded: EmbeddedServer) -> None:
    """RFC 7009 §2.1: the client authenticates (or, public, identifies itself)."""
    oauth_error(httpx.post(f"{embedded.issuer}/revoke", data={"token": "x"}), 401, "invalid_client")


def test_a_client_may_not_introspect_another_clients_token(embedded: EmbeddedServer, public: DirectClient,
                                                          user: BrowserLikeUser) -> None:
    """RFC 7662 §4: registration is open, so any confidential client could otherwise read any token's facts."""
    other = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Nosy Client",
                                  token_endpoint_auth_method="client_secret_basic")
    tokens = public.tokens(user)
    response = introspect(other, tokens["access_token"])
    assert response.status_code == 200
    assert response.json() == {"active": False}


def test_revoking_an_access_token_revokes_its_grant(confidential: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 7009 §2.1: the server MAY revoke related tokens; the access token is then inactive (RFC 7662 §2.2),
    and so is the refresh token issued with it."""
    tokens = confidential.tokens(user)
    response = httpx.post(f"{confidential.issuer}/revoke", data={"token": tokens["access_token"]},
                          headers=basic_auth(confidential.client_id, confidential.client_secret))
    assert response.status_code == 200
    assert introspect(confidential, tokens["access_token"]).json() == {"active": False}
    assert introspect(confidential, tokens["refresh_token"]).json() == {"active": False}
    oauth_error(confidential.refresh(tokens["refresh_token"]), 400, "invalid_grant")


def test_an_access_token_of_a_revoked_refresh_token_is_inactive(confidential: DirectClient,
                                                                 user: BrowserLikeUser) -> None:
    """RFC 7662 §2.2: a revoked token is not active; revoking the refresh token revoked its grant."""
    tokens = confidential.tokens(user)
    response = httpx.post(f"{confidential.issuer}/revoke", data={"token": tokens["refresh_token"]},
                          headers=basic_auth(confidential.client_id, confidential.client_secret))
    assert response.status_code == 200
    assert introspect(confidential, tokens["access_token"]).json() == {"active": False}
