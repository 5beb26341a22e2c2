"""The sign-in, consent and connected-apps pages: CSRF, framing, cookies, remembered consent, revocation.

MCP security best practices (confused deputy): the consent page MUST implement CSRF protection and
prevent iframing (``frame-ancestors`` or ``X-Frame-Options: DENY``); consent cookies are HttpOnly
and SameSite=Lax; consent is per client, and can be withdrawn.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.oauth import (
    LOOPBACK_REDIRECT,
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    hidden_fields,
    oauth_error,
    page_kind,
    query_of,
)

pytestmark = pytest.mark.usefixtures("no_server_errors")


@pytest.fixture
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


@pytest.fixture(scope="module")
def client(embedded: EmbeddedServer) -> DirectClient:
    """A client nobody ever allows here, so that its authorization requests always show the consent page."""
    return DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Pages Test Client")


def consent_page(user: BrowserLikeUser, client: DirectClient, scope: str = "contacts:read") -> httpx.Response:
    """Sign in, then open an authorization request for ``scope``: the consent page."""
    if not user.login_pages:
        assert user.sign_in().status_code == 303
    page = user.http.get(client.authorization_request(scope=scope).url)
    assert page_kind(page) == "consent", page.text[:300]
    return page


# CSRF -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "forged-token"], ids=["missing", "wrong"])
def test_sign_in_without_the_forms_csrf_token_gets_403(user: BrowserLikeUser, csrf: str | None) -> None:
    """MCP security best practices: CSRF protection; the password is not even checked."""
    fields = hidden_fields(user.http.get("/login").text)
    fields.pop("csrf")
    if csrf is not None:
        fields["csrf"] = csrf
    response = user.http.post("/login", data={**fields, "username": user.account.username,
                                              "password": user.account.password})
    assert response.status_code == 403
    assert "location" not in response.headers
    assert "invalid_csrf" in response.text


@pytest.mark.parametrize("csrf", [None, "forged-token"], ids=["missing", "wrong"])
def test_consent_without_the_forms_csrf_token_gets_403_and_no_code(user: BrowserLikeUser, client: DirectClient,
                                                                   csrf: str | None) -> None:
    """A cross-site form post cannot approve a client in the signed-in user's name."""
    fields = hidden_fields(consent_page(user, client).text)
    fields.pop("csrf")
    if csrf is not None:
        fields["csrf"] = csrf
    response = user.http.post("/authorize", data={**fields, "decision": "allow"})
    assert response.status_code == 403
    assert "location" not in response.headers


def test_consent_form_of_another_session_gets_403(embedded: EmbeddedServer, user: BrowserLikeUser,
                                                 client: DirectClient) -> None:
    """The CSRF token is bound to the session: a valid token from another browser does not work."""
    fields = hidden_fields(consent_page(user, client).text)
    with BrowserLikeUser(embedded.issuer, embedded.account).http as other:
        assert other.get("/login").status_code == 200  # has a session of its own, not signed in
        response = other.post("/authorize", data={**fields, "decision": "allow"})
    assert response.status_code == 403


def test_consent_with_the_csrf_token_is_accepted(embedded: EmbeddedServer, user: BrowserLikeUser) -> None:
    """The control case: the same post with its token redirects back with a code."""
    client = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Accepted Client")
    fields = hidden_fields(consent_page(user, client).text)
    response = user.http.post("/authorize", data={**fields, "decision": "allow"})
    assert response.status_code == 302
    assert "code" in query_of(response.headers["location"])


def test_connected_apps_revocation_without_csrf_gets_403(user: BrowserLikeUser, client: DirectClient) -> None:
    """Withdrawing access is a state change too: CSRF protected."""
    consent_page(user, client)
    response = user.http.post("/account/revoke", data={"client_id": client.client_id})
    assert response.status_code == 403


# Framing and cookies ----------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["sign-in", "consent", "connected apps", "error"])
def test_pages_forbid_framing(user: BrowserLikeUser, client: DirectClient, page: str) -> None:
    """MCP security best practices: ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (clickjacking)."""
    if page == "sign-in":
        response = user.http.get("/login")
    elif page == "consent":
        response = consent_page(user, client)
    elif page == "connected apps":
        user.sign_in()
        response = user.http.get("/account")
    else:
        response = user.http.get("/authorize?client_id=nobody&response_type=code")
    assert response.headers["content-type"].startswith("text/html")
    directives = [part.strip() for part in response.headers["content-security-policy"].split(";")]
    assert "frame-ancestors 'none'" in directives
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_consent_page_may_post_only_to_this_server_and_the_clients_redirect_origin(user: BrowserLikeUser,
                                                                                   client: DirectClient) -> None:
    """CSP ``form-action``: the consent form posts here; the browser then follows the redirect to the client."""
    policy = consent_page(user, client).headers["content-security-policy"]
    form_action = next(part.strip() for part in policy.split(";") if part.strip().startswith("form-action"))
    assert form_action == "form-action 'self' http://127.0.0.1:3030"


def test_session_cookie_is_http_only_and_same_site_lax(embedded: EmbeddedServer) -> None:
    """MCP security best practices: consent cookies HttpOnly, SameSite=Lax (plain-http loopback: no Secure)."""
    response = httpx.get(f"{embedded.issuer}/login")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie


def test_signing_in_replaces_the_session_id(user: BrowserLikeUser) -> None:
    """OWASP session management: a new session id after sign-in (no session fixation)."""
    user.http.get("/login")
    before = dict(user.http.cookies)
    assert user.sign_in().status_code == 303
    after = dict(user.http.cookies)
    assert before.keys() == after.keys() and before != after


# Consent memory ---------------------------------------------------------------------------------


def test_consent_is_remembered_for_the_same_scopes_and_asked_again_for_new_ones(embedded: EmbeddedServer,
                                                                               user: BrowserLikeUser) -> None:
    """Consent per client and scope: the same request later redirects at once; a wider one asks again."""
    client = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Remembered Client")
    first = user.authorize(client.authorization_request(scope="contacts:read").url)
    assert first.status_code == 302 and len(user.consent_pages) == 1
    again = user.http.get(client.authorization_request(scope="contacts:read").url)
    assert again.status_code == 302
    assert "code" in query_of(again.headers["location"])
    wider = user.http.get(client.authorization_request(scope="contacts:write").url)
    assert page_kind(wider) == "consent"
    assert "Add, change and delete your contacts" in wider.text


def test_denied_consent_is_sent_back_as_access_denied(embedded: EmbeddedServer, user: BrowserLikeUser,
                                                      client: DirectClient) -> None:
    """RFC 6749 §4.1.2.1: the resource owner denied the request: ``access_denied``, with state and iss."""
    request = client.authorization_request(scope="contacts:write")
    answer = user.authorization_response(request.url, decision="deny")
    assert answer["error"] == "access_denied"
    assert answer["state"] == request.state
    assert answer["iss"] == embedded.issuer
    assert "code" not in answer


# Connected apps ---------------------------------------------------------------------------------


def test_connected_apps_lists_the_client_and_revoking_it_revokes_its_refresh_tokens(
        embedded: EmbeddedServer, user: BrowserLikeUser) -> None:
    """Consent can be withdrawn (MCP confused deputy: per-client consent); it takes the grants with it."""
    client = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Revocable Client")
    tokens = client.tokens(user, scope="contacts:read")
    account = user.http.get("/account")
    assert "Revocable Client" in account.text
    fields = {"csrf": hidden_fields(account.text)["csrf"], "client_id": client.client_id}
    revoked = user.http.post("/account/revoke", data=fields)
    assert revoked.status_code == 303
    assert "Revocable Client" not in user.http.get("/account").text
    oauth_error(client.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    asked_again = user.http.get(client.authorization_request(scope="contacts:read").url)
    assert page_kind(asked_again) == "consent"


def test_signing_out_ends_the_session(user: BrowserLikeUser, client: DirectClient) -> None:
    """After sign-out the next authorization asks for the password again."""
    page = consent_page(user, client)
    response = user.http.post("/logout", data={"csrf": hidden_fields(page.text)["csrf"]})
    assert response.status_code == 303
    assert page_kind(user.http.get(client.authorization_request(scope="contacts:read").url)) == "login"


def test_redirect_after_sign_in_stays_on_this_server(user: BrowserLikeUser) -> None:
    """No open redirect through ``next``: an absolute or protocol-relative URL lands on /account."""
    for target in ("https://evil.example/", "//evil.example/", LOOPBACK_REDIRECT):
        page = user.http.get("/login", params={"next": target})
        fields = hidden_fields(page.text)
        response = user.http.post("/login", data={**fields, "username": user.account.username,
                                                  "password": user.account.password})
        assert response.status_code == 303
        assert response.headers["location"] == "/account"
