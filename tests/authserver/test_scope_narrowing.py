"""Requested scopes are narrowed to what the app declares, never refused, never widened.

The DCR scope trap (see mcp-authorization reference §11): real clients register without ``scope``,
ask only for ``offline_access``, or send no ``scope`` at all (ChatGPT on reconnect). Each gets a
working grant with the app's minimal default scope (``contacts:read``: what its read tools need),
never ``invalid_scope``, and never ``contacts:write`` unless it asked for it (MCP: scope minimization).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, jwt_claims

pytestmark = pytest.mark.usefixtures("no_server_errors")


@pytest.fixture(scope="module")
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


@pytest.fixture(scope="module")
def unscoped(embedded: EmbeddedServer) -> DirectClient:
    """Registered without ``scope`` (RFC 7591 §2: optional)."""
    return DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Unscoped Client")


def granted(tokens: dict) -> str:
    """The granted scope, as the token response says and as the access token carries it."""
    assert jwt_claims(tokens["access_token"])["scope"] == tokens["scope"]
    return tokens["scope"]


@pytest.mark.parametrize("scope", [None, "", "offline_access", "admin", "openid profile"],
                         ids=["absent", "empty", "offline_access", "unknown", "oidc"])
def test_request_without_a_declared_scope_gets_the_minimal_default(unscoped: DirectClient, user: BrowserLikeUser,
                                                                   scope: str | None) -> None:
    """Never ``invalid_scope``; the app's minimal scope, ``contacts:read`` — never ``contacts:write``."""
    assert granted(unscoped.tokens(user, scope=scope)) == "contacts:read"


def test_offline_access_alone_still_gets_a_refresh_token(unscoped: DirectClient, user: BrowserLikeUser) -> None:
    """``offline_access`` asks for a refresh token (MCP 2026-07-28), not for access to the resource."""
    tokens = unscoped.tokens(user, scope="offline_access")
    assert tokens["refresh_token"]
    assert "offline_access" not in tokens["scope"].split()


def test_unknown_scopes_are_dropped_and_declared_ones_kept(unscoped: DirectClient, user: BrowserLikeUser) -> None:
    """Narrowed to the declared scopes: ``contacts:write`` kept, ``admin`` and ``offline_access`` dropped."""
    assert granted(unscoped.tokens(user, scope="admin contacts:write offline_access")) == "contacts:write"


def test_registered_scope_does_not_cap_a_later_step_up(embedded: EmbeddedServer, user: BrowserLikeUser) -> None:
    """MCP scope step-up: a client registered with ``contacts:read`` (the SDK registers with its first
    challenge's scope) can later be granted ``contacts:write`` when it asks and the user consents."""
    client = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Step-up Client",
                                   scope="contacts:read")
    assert granted(client.tokens(user, scope="contacts:read")) == "contacts:read"
    assert granted(client.tokens(user, scope="contacts:read contacts:write")) == "contacts:read contacts:write"


def test_consent_page_shows_the_narrowed_scope(embedded: EmbeddedServer, user: BrowserLikeUser) -> None:
    """The person consents to what will actually be granted: the default scope's description."""
    client = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Consent Scope Client")
    client.tokens(user, scope="offline_access")
    page = user.consent_pages[-1].text
    shown = page[page.index('<ul class="scopes">'):page.index("</ul>")]
    assert "See your contacts" in shown and "<code>contacts:read</code>" in shown
    assert "contacts:write" not in shown
    assert "offline_access" not in shown


def test_narrowed_token_is_refused_for_a_write_tool(embedded: EmbeddedServer, unscoped: DirectClient,
                                                    user: BrowserLikeUser) -> None:
    """The default grant really is read-only at the resource: add_contact gets 403 insufficient_scope."""
    tokens = unscoped.tokens(user)
    assert embedded.process.call_tool("search_contacts", {"query": "x"},
                                      token=tokens["access_token"]).status_code == 200
    assert embedded.process.call_tool("add_contact", {"name": "No"}, token=tokens["access_token"]).status_code == 403
