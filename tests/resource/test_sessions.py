"""Handshake-era MCP sessions (2025-11-25): bound to the user who opened them, never a substitute for a token."""

from __future__ import annotations

import httpx

from tests.support.contacts import add_contact, contact_names
from tests.support.http import jsonrpc_message, parse_bearer_challenge, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import LEGACY_VERSION, ServeProcess

SEARCH = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
          "params": {"name": "search_contacts", "arguments": {"query": "ann"}}}


def open_session(server: ServeProcess, token: str | None) -> dict[str, str]:
    """``initialize`` + ``notifications/initialized``; the headers that address the new session."""
    opened = server.initialize(token=token)
    assert opened.status_code == 200
    headers = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": LEGACY_VERSION}
    assert server.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, token=token,
                       headers=headers).status_code == 202
    return headers


def test_session_is_served_to_the_user_who_opened_it_with_a_fresh_token(contacts: ServeProcess,
                                                                       idp: TestIdentityProvider) -> None:
    """A refreshed access token (same client, issuer and subject) keeps working in the session."""
    subject = new_subject()
    session = open_session(contacts, idp.token(contacts.mcp_url, sub=subject, scope="contacts:read"))
    refreshed = idp.token(contacts.mcp_url, sub=subject, scope="contacts:read")
    assert tool_result(contacts.post(SEARCH, token=refreshed, headers=session))["isError"] is False


def test_session_is_not_found_for_another_user(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """MCP security best practices (session hijacking): a session id is bound to its user; others get 404."""
    session = open_session(contacts, idp.token(contacts.mcp_url, sub=new_subject(), scope="contacts:read"))
    intruder = idp.token(contacts.mcp_url, sub=new_subject(), scope="contacts:read")
    response = contacts.post(SEARCH, token=intruder, headers=session)
    assert response.status_code == 404


def test_anonymous_session_is_never_shared_by_two_users(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """Session fixation: whoever may adopt a session opened without credentials, a second user never can."""
    session = open_session(contacts, None)
    first, second = (idp.token(contacts.mcp_url, sub=new_subject(), scope="contacts:read") for _ in range(2))
    contacts.post(SEARCH, token=first, headers=session)  # adopted by the first user, or refused
    assert contacts.post(SEARCH, token=second, headers=session).status_code == 404


def test_session_does_not_stand_in_for_the_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """MCP: servers MUST NOT use sessions for authentication; without the token, the usual 401."""
    session = open_session(contacts, idp.token(contacts.mcp_url, sub=new_subject(), scope="contacts:read"))
    response = contacts.post(SEARCH, headers=session)
    assert response.status_code == 401
    assert parse_bearer_challenge(response.headers["www-authenticate"])["scope"] == "contacts:read"


def test_each_request_in_a_session_is_checked_with_its_own_token(contacts: ServeProcess,
                                                                 idp: TestIdentityProvider) -> None:
    """MCP: authorization on every request. A session opened with a write token does not lend its scopes."""
    subject = new_subject()
    contact_id = add_contact(contacts, idp, subject, "Session Sam")
    session = open_session(contacts, idp.token(contacts.mcp_url, sub=subject, scope="contacts:write"))
    reader = idp.token(contacts.mcp_url, sub=subject, scope="contacts:read")
    delete = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "delete_contact", "arguments": {"contact_id": contact_id}, "_meta": {"openai/session": "x"}}}
    refused = jsonrpc_message(contacts.post(delete, token=reader, headers=session))["result"]
    assert refused["isError"] is True
    assert "insufficient_scope" in refused["_meta"]["mcp/www_authenticate"][0]
    assert contact_names(contacts, idp, subject, "sam") == ["Session Sam"]


def test_closed_session_is_not_found(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """MCP Streamable HTTP: after DELETE ends a session, its id answers 404 (the client starts a new one)."""
    token = idp.token(contacts.mcp_url, sub=new_subject(), scope="contacts:read")
    session = open_session(contacts, token)
    closed = httpx.delete(contacts.mcp_url, headers={**session, "authorization": f"Bearer {token}"})
    assert closed.status_code == 200
    assert contacts.post(SEARCH, token=token, headers=session).status_code == 404
