"""Revocation ends the access tokens of a grant at once, not when they expire (15 minutes later).

Against the shared ``ringfence serve`` with the embedded authorization server, through the real
OAuth flow: each test warms a token (a tool call answered 200, so the token is cached and its grant
confirmed), revokes, and calls again. What this server revoked itself is refused on the very next
call: RFC 7009 revocation of either token, the app disconnected on ``/account``, a replayed
authorization code (RFC 6749 §4.1.2) or refresh token (OAuth 2.1 §4.3.1). An account deleted by
another process (``ringfence users remove``) is refused within a second. The same on a second
instance: tests/instances/test_revocation.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.authserver.revocation import SCOPE, assert_revoked, refused_within, search
from tests.support.oauth import (
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    add_user,
    hidden_fields,
    oauth_error,
    ringfence_cli,
)

pytestmark = pytest.mark.usefixtures("no_server_errors")
ADDRESS = "127.0.0.7"  # this module's registrations count against their own per-address budget


@pytest.fixture(scope="module")
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


def register(embedded: EmbeddedServer, name: str) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url, client_name=name, local_address=ADDRESS)


def revoke(client: DirectClient, token: str) -> httpx.Response:
    return httpx.post(f"{client.issuer}/revoke", data={"token": token, "client_id": client.client_id})


def test_revoking_a_refresh_token_refuses_its_access_token_at_once(embedded: EmbeddedServer,
                                                                    user: BrowserLikeUser) -> None:
    """RFC 7009 §2.1: revoking the refresh token revokes its grant, access tokens included."""
    client = register(embedded, "Revoked By Refresh Token")
    tokens = client.tokens(user, scope=SCOPE)
    assert search(embedded.process, tokens["access_token"]).status_code == 200
    assert revoke(client, tokens["refresh_token"]).status_code == 200
    assert_revoked(search(embedded.process, tokens["access_token"]))


def test_revoking_an_access_token_refuses_it_and_its_refresh_token_at_once(embedded: EmbeddedServer,
                                                                            user: BrowserLikeUser) -> None:
    """RFC 7009 §2.1: an access token is revocable too (the server MAY revoke the refresh token with it)."""
    client = register(embedded, "Revoked By Access Token")
    tokens = client.tokens(user, scope=SCOPE)
    assert search(embedded.process, tokens["access_token"]).status_code == 200
    assert revoke(client, tokens["access_token"]).status_code == 200
    assert_revoked(search(embedded.process, tokens["access_token"]))
    oauth_error(client.refresh(tokens["refresh_token"]), 400, "invalid_grant")


def test_disconnecting_the_app_on_the_account_page_refuses_its_tokens_at_once(embedded: EmbeddedServer,
                                                                              user: BrowserLikeUser) -> None:
    """The consent page promises "You can withdraw this at any time": every grant of that app ends,
    other apps keep working."""
    client, other = register(embedded, "Disconnected App"), register(embedded, "Still Connected App")
    first, second, kept = client.tokens(user, scope=SCOPE), client.tokens(user, scope=SCOPE), other.tokens(
        user, scope=SCOPE)
    for tokens in (first, second, kept):
        assert search(embedded.process, tokens["access_token"]).status_code == 200
    page = user.http.get("/account")
    answer = user.http.post("/account/revoke", data={"csrf": hidden_fields(page.text)["csrf"],
                                                     "client_id": client.client_id})
    assert answer.status_code == 303
    for tokens in (first, second):
        assert_revoked(search(embedded.process, tokens["access_token"]))
        oauth_error(client.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    assert search(embedded.process, kept["access_token"]).status_code == 200


def test_a_replayed_authorization_code_refuses_the_access_token_it_issued_at_once(embedded: EmbeddedServer,
                                                                                  user: BrowserLikeUser) -> None:
    """RFC 6749 §4.1.2: a code used twice SHOULD revoke the tokens issued from it (all of them)."""
    client = register(embedded, "Replayed Code")
    code, request = client.code(user, scope=SCOPE)
    issued = client.redeem(code, request.verifier)
    assert issued.status_code == 200
    tokens = issued.json()
    assert search(embedded.process, tokens["access_token"]).status_code == 200
    oauth_error(client.redeem(code, request.verifier), 400, "invalid_grant")
    assert_revoked(search(embedded.process, tokens["access_token"]))
    oauth_error(client.refresh(tokens["refresh_token"]), 400, "invalid_grant")


def test_a_replayed_refresh_token_refuses_every_access_token_of_its_family_at_once(embedded: EmbeddedServer,
                                                                                   user: BrowserLikeUser) -> None:
    """OAuth 2.1 §4.3.1: a rotated refresh token presented again revokes the family, whoever holds it."""
    client = register(embedded, "Replayed Refresh Token")
    tokens = client.tokens(user, scope=SCOPE)
    rotated = client.refresh(tokens["refresh_token"]).json()
    for token in (tokens["access_token"], rotated["access_token"]):
        assert search(embedded.process, token).status_code == 200
    oauth_error(client.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    for token in (tokens["access_token"], rotated["access_token"]):
        assert_revoked(search(embedded.process, token))


def test_an_account_removed_by_another_process_is_refused_within_a_second(embedded: EmbeddedServer) -> None:
    """``ringfence users remove`` shares only the database with the server: seen at its next lookup."""
    account = add_user(embedded.data_dir, "leaving-user", "a long enough password")
    person = BrowserLikeUser(embedded.issuer, account)
    try:
        tokens = register(embedded, "Removed Account").tokens(person, scope=SCOPE)
    finally:
        person.close()
    assert search(embedded.process, tokens["access_token"]).status_code == 200
    removed = ringfence_cli("users", "remove", "leaving-user", "--data-dir", str(embedded.data_dir))
    assert removed.returncode == 0, removed.stderr
    assert refused_within(1.0, lambda: search(embedded.process, tokens["access_token"])) is not None

