"""``/authorize`` refuses what OAuth 2.1 and MCP forbid, with the right error, in the right place.

RFC 6749 §4.1.2.1: once the client and its redirect URI are verified, errors go back to the client
on that redirect URI (with ``state``, and RFC 9207 ``iss``); before that, never: the person sees an
error page here, and nothing is sent to an unverified URI (no open redirector, OAuth 2.1 §7.12).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.http import assert_no_internals
from tests.support.oauth import LOOPBACK_REDIRECT, BrowserLikeUser, DirectClient, EmbeddedServer, query_of

pytestmark = pytest.mark.usefixtures("no_server_errors")

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def client(embedded: EmbeddedServer) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url)


@pytest.fixture(scope="module")
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    """A signed-in person, so that a refusal is never just the sign-in page."""
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    assert person.sign_in().status_code == 303
    yield person
    person.close()


def redirected_error(response: httpx.Response, state: str, issuer: str) -> dict[str, str]:
    """The error parameters of a redirect back to the registered loopback URI."""
    assert response.status_code == 302, f"{response.status_code}: {response.text[:300]}"
    location = response.headers["location"]
    assert location.startswith(LOOPBACK_REDIRECT + "?")
    params = query_of(location)
    assert params["state"] == state  # RFC 6749 §4.1.2.1: state is returned as sent
    assert params["iss"] == issuer  # RFC 9207 §2: also on error responses
    assert "code" not in params
    return params


def error_page(response: httpx.Response, status: int, error: str) -> None:
    """An HTML error page here, never a redirect."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:300]}"
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert f"<code>{error}</code>" in response.text
    assert_no_internals(response)


def test_missing_code_challenge_is_sent_back_as_invalid_request(embedded: EmbeddedServer, client: DirectClient,
                                                                user: BrowserLikeUser) -> None:
    """OAuth 2.1 §4.1.1: PKCE is required; RFC 7636 §4.4.1: ``invalid_request`` on the redirect URI."""
    request = client.authorization_request(code_challenge=None)
    params = redirected_error(user.http.get(request.url), request.state, embedded.issuer)
    assert params["error"] == "invalid_request"


@pytest.mark.parametrize("method", ["plain", None], ids=["plain", "absent"])
def test_code_challenge_method_other_than_s256_is_sent_back_as_invalid_request(
        embedded: EmbeddedServer, client: DirectClient, user: BrowserLikeUser, method: str | None) -> None:
    """RFC 7636 §4.3: an absent method means ``plain``; OAuth 2.1 §4.1.1 / MCP: only S256 is accepted."""
    request = client.authorization_request(code_challenge_method=method)
    params = redirected_error(user.http.get(request.url), request.state, embedded.issuer)
    assert params["error"] == "invalid_request"


def test_implicit_grant_is_sent_back_as_unsupported_response_type(embedded: EmbeddedServer, client: DirectClient,
                                                                 user: BrowserLikeUser) -> None:
    """OAuth 2.1 §10.1: the implicit grant (``response_type=token``) is gone."""
    request = client.authorization_request(response_type="token")
    params = redirected_error(user.http.get(request.url), request.state, embedded.issuer)
    assert params["error"] == "unsupported_response_type"


def test_resource_this_server_does_not_serve_is_sent_back_as_invalid_target(
        embedded: EmbeddedServer, client: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 8707 §2: a ``resource`` the server issues no tokens for gets ``invalid_target``."""
    request = client.authorization_request(resource="https://other.example/mcp")
    params = redirected_error(user.http.get(request.url), request.state, embedded.issuer)
    assert params["error"] == "invalid_target"


def test_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(client: DirectClient,
                                                                     user: BrowserLikeUser) -> None:
    """OAuth 2.1 §4.1.2.1 / MCP: exact redirect URI match; an unverified URI is never redirected to."""
    request = client.authorization_request(redirect_uri="http://127.0.0.1:3031/callback")
    error_page(user.http.get(request.url), 400, "invalid_request")


def test_redirect_uri_differing_only_by_a_trailing_slash_is_not_a_match(client: DirectClient,
                                                                        user: BrowserLikeUser) -> None:
    """OAuth 2.1 §2.3.1: redirect URIs are compared as exact strings."""
    request = client.authorization_request(redirect_uri=LOOPBACK_REDIRECT + "/")
    error_page(user.http.get(request.url), 400, "invalid_request")


def test_unknown_client_gets_an_error_page_and_no_redirect(client: DirectClient, user: BrowserLikeUser) -> None:
    """RFC 6749 §4.1.2.1: with an invalid ``client_id`` the server MUST NOT redirect."""
    request = client.authorization_request(client_id="no-such-client")
    error_page(user.http.get(request.url), 400, "invalid_client")


def test_repeated_parameter_gets_invalid_request(embedded: EmbeddedServer, client: DirectClient,
                                                 user: BrowserLikeUser) -> None:
    """RFC 6749 §3.1: request parameters MUST NOT be included more than once."""
    query = urlencode([("client_id", client.client_id), ("client_id", "other"), ("response_type", "code")])
    error_page(user.http.get(f"{embedded.issuer}/authorize?{query}"), 400, "invalid_request")


@pytest.mark.parametrize("case", ["unknown client", "bad redirect", "consent page", "sign-in page", "login next"])
def test_html_from_the_query_is_never_reflected_unescaped(embedded: EmbeddedServer, client: DirectClient,
                                                          user: BrowserLikeUser, case: str) -> None:
    """OWASP XSS prevention: whatever a link carries (state, client_id, redirect_uri, next) is escaped."""
    signed_in = True
    if case == "unknown client":
        url = client.authorization_request(client_id=f"<b>{SCRIPT}</b>", state=SCRIPT).url
    elif case == "bad redirect":
        url = client.authorization_request(redirect_uri=f"http://127.0.0.1:3030/{SCRIPT}", state=SCRIPT).url
    elif case == "consent page":
        url = client.authorization_request(state=SCRIPT, scope="contacts:read").url
    elif case == "sign-in page":
        url, signed_in = client.authorization_request(state=SCRIPT).url, False
    else:
        url, signed_in = f"{embedded.issuer}/login?{urlencode({'next': SCRIPT})}", False
    if signed_in:
        response = user.http.get(url)
    else:
        with httpx.Client() as anonymous:
            response = anonymous.get(url)
    assert response.status_code in (200, 400)
    assert response.headers["content-type"].startswith("text/html")
    assert "<script" not in response.text.lower()
    assert "<b>" not in response.text
    if case == "consent page":
        assert 'name="state" value="&lt;script&gt;alert(1)&lt;/script&gt;"' in response.text  # carried, escaped
    if case == "sign-in page":
        assert "state=%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in response.text  # carried in next, encoded
