"""The official MCP SDK client links to the embedded authorization server, end to end, in both eras.

``OAuthClientProvider`` + ``Client(streamable_http_client(...), mode=...)`` against a real
``ringfence serve`` without ``--issuer``: the 401 challenge leads to protected resource metadata
(RFC 9728), then to authorization server metadata (RFC 8414); the SDK registers (RFC 7591),
authorizes with PKCE S256 (RFC 7636) and the resource indicator (RFC 8707), a person signs in and
consents, the code is exchanged and the tool call goes through. Then refresh (OAuth 2.1 §4.3)
and scope step-up (MCP authorization, "Scope Challenge Handling").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from tests.support.http import parse_bearer_challenge, tool_result
from tests.support.oauth import (
    MODES,
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    Linked,
    MemoryTokenStorage,
    RewriteTokenResponses,
    authorized_client,
    b64url,
    linked_in_each_era,
    oauth_provider,
    query_of,
    server_errors,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_server_errors")]

PRM_SUFFIX = "/.well-known/oauth-protected-resource/mcp"


@pytest.fixture(scope="module")
def linked(embedded: EmbeddedServer) -> Iterator[dict[str, Linked]]:
    """One first link per era, shared by the tests that each check one rule of it."""
    with linked_in_each_era(embedded.issuer, embedded.account, embedded.mcp_url, lambda mode: {
        "added": ("add_contact", {"name": f"Linked {mode}", "email": "l@example.org"}),
        "found": ("search_contacts", {"query": f"linked {mode}"}),
    }) as results:
        yield results


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def authorization_params(result: Linked, index: int = 0) -> dict[str, str]:
    return query_of(result.user.authorization_urls[index])


# The first link ---------------------------------------------------------------------------------


def test_sdk_follows_the_401_challenge_to_resource_then_server_metadata(embedded: EmbeddedServer,
                                                                      linked: dict[str, Linked], mode: str) -> None:
    """MCP authorization §"Authorization Server Discovery": 401 → ``resource_metadata`` → PRM → RFC 8414."""
    log = linked[mode].log
    paths = [(e.method, e.path, e.status) for e in log.exchanges]
    refused = next(e for e in log.exchanges if e.path == "/mcp" and e.status == 401)
    assert parse_bearer_challenge(refused.www_authenticate)["resource_metadata"] == embedded.issuer + PRM_SUFFIX
    after = paths[log.exchanges.index(refused) + 1:]
    assert after[:2] == [("GET", PRM_SUFFIX, 200), ("GET", "/.well-known/oauth-authorization-server", 200)]


def test_sdk_registers_dynamically_as_a_public_client_without_a_secret(linked: dict[str, Linked],
                                                                      mode: str) -> None:
    """RFC 7591 §3.2.1: registered with 201; a public client (``none``) is given no client_secret."""
    result = linked[mode]
    [registration] = result.log.to("/register", "POST")
    assert registration.status == 201
    assert result.storage.client_info is not None
    assert result.storage.client_info.client_secret is None
    assert authorization_params(result)["client_id"] == result.storage.client_info.client_id


def test_sdk_authorizes_with_pkce_s256_state_and_the_resource_indicator(embedded: EmbeddedServer,
                                                                       linked: dict[str, Linked], mode: str) -> None:
    """RFC 7636 §4.3 (S256), RFC 8707 §2 (``resource`` = the MCP endpoint), scope from the challenge."""
    params = authorization_params(linked[mode])
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert params["resource"] == embedded.mcp_url
    assert params["scope"] == "contacts:write"  # the challenge of add_contact, the first protected call
    assert params["state"]


def test_token_request_proves_the_verifier_and_names_the_same_resource(embedded: EmbeddedServer,
                                                                     linked: dict[str, Linked], mode: str) -> None:
    """RFC 7636 §4.5-4.6: the verifier hashes to the challenge; RFC 8707 §2.2: ``resource`` again; 200."""
    result = linked[mode]
    [exchange] = result.log.token_requests("authorization_code")
    form = exchange.form
    assert exchange.status == 200
    assert b64url(hashlib.sha256(form["code_verifier"].encode()).digest()) == \
        authorization_params(result)["code_challenge"]
    assert form["resource"] == embedded.mcp_url


def test_person_signs_in_once_and_consents_once(linked: dict[str, Linked], mode: str) -> None:
    """MCP security best practices (confused deputy): the user consents, on a page of this server."""
    result = linked[mode]
    assert len(result.user.login_pages) == 1
    assert len(result.user.consent_pages) == 1
    assert "See your contacts" not in result.user.consent_pages[0].text  # only contacts:write was asked
    assert "Add, change and delete your contacts" in result.user.consent_pages[0].text


def test_authorization_response_carries_the_issuer_the_sdk_validates(embedded: EmbeddedServer,
                                                                    linked: dict[str, Linked], mode: str) -> None:
    """RFC 9207 §2: ``iss`` on the redirect, equal to the metadata ``issuer`` (the SDK checks it too)."""
    redirect = next(r for r in linked[mode].user.responses if r.status_code == 302)
    assert query_of(redirect.headers["location"])["iss"] == embedded.issuer


def test_tool_calls_run_with_the_issued_token(linked: dict[str, Linked], mode: str) -> None:
    """After linking, the call that was refused with 401 is retried and runs; so does the next one."""
    result = linked[mode]
    assert result.calls["added"].is_error is False
    assert result.calls["found"].is_error is False
    assert result.calls["found"].structured_content["result"] == [result.calls["added"].structured_content]
    assert result.storage.tokens is not None and result.storage.tokens.refresh_token


# Refresh ----------------------------------------------------------------------------------------


def test_refresh_token_rotates_and_the_old_one_stops_working(embedded: EmbeddedServer,
                                                             linked: dict[str, Linked]) -> None:
    """OAuth 2.1 §4.3.1: refresh tokens of public clients rotate; the new access token works at /mcp."""
    result = linked["legacy"]
    client = DirectClient(embedded.issuer, embedded.mcp_url, {"client_id": result.storage.client_info.client_id})
    old = result.storage.tokens.refresh_token
    refreshed = client.refresh(old)
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["refresh_token"] != old
    assert body["scope"] == "contacts:write"
    assert body["token_type"].lower() == "bearer"
    assert tool_result(embedded.process.call_tool("search_contacts", {"query": "x"},
                                                  token=body["access_token"]))["isError"] is False
    again = client.refresh(old)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_sdk_refreshes_an_expired_access_token_with_the_rotating_refresh_token(
        embedded: EmbeddedServer, mode: str) -> None:
    """OAuth 2.1 §4.3: the SDK refreshes when its token has expired (``expires_in`` is rewritten to 0
    on the way to the SDK, as the server has no setting for the lifetime); the refresh names the
    resource (RFC 8707 §2.2), gets a new refresh token (§4.3.1), and the calls keep working."""
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    storage = MemoryTokenStorage()
    # Only the first access token looks expired: after a refresh the SDK sends the request with the
    # new token only if that one is still valid, so a rewritten refresh answer would drop the header.
    transport = RewriteTokenResponses(
        lambda form, body: {**body, "expires_in": 0} if form["grant_type"] == "authorization_code" else body)
    try:
        provider = oauth_provider(embedded.mcp_url, user, storage=storage)
        async with authorized_client(embedded.mcp_url, provider, mode=mode, transport=transport) as (client, log):
            first = await client.call_tool("search_contacts", {"query": "refresh"})
            second = await client.call_tool("search_contacts", {"query": "refresh"})
    finally:
        user.close()
    assert first.is_error is False and second.is_error is False
    [code_exchange] = log.token_requests("authorization_code")
    [refresh] = log.token_requests("refresh_token")
    assert refresh.status == 200
    assert len(user.consent_pages) == 1  # refreshed, not re-authorized
    first_refresh_token = json.loads(code_exchange.response_body)["refresh_token"]
    assert refresh.form["refresh_token"] == first_refresh_token
    assert refresh.form["resource"] == embedded.mcp_url
    assert storage.tokens.refresh_token not in (None, first_refresh_token)  # rotated
    client_id = storage.client_info.client_id
    reused = DirectClient(embedded.issuer, embedded.mcp_url, {"client_id": client_id}).refresh(first_refresh_token)
    assert reused.json()["error"] == "invalid_grant"


# Step-up ----------------------------------------------------------------------------------------


async def test_sdk_steps_up_from_read_to_write_on_insufficient_scope(embedded: EmbeddedServer, mode: str) -> None:
    """MCP authorization, scope challenge: 403 ``insufficient_scope`` with ``scope="contacts:read
    contacts:write"``; the SDK re-authorizes with both, consent is asked for the new scope, and the
    retried delete_contact gets as far as the user's confirmation, with which it succeeds."""
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    try:
        async with authorized_client(embedded.mcp_url, oauth_provider(embedded.mcp_url, user), mode=mode) as (
                client, _):
            added = await client.call_tool("add_contact", {"name": f"Step-up {mode}"})
        contact_id = added.structured_content["id"]
        reader_storage = MemoryTokenStorage()
        reader = oauth_provider(embedded.mcp_url, user, storage=reader_storage)
        async with authorized_client(embedded.mcp_url, reader, mode=mode) as (client, log):
            found = await client.call_tool("search_contacts", {"query": f"step-up {mode}"})
            read_only_scope = reader_storage.tokens.scope
            pending = await client.call_tool("delete_contact", {"contact_id": contact_id})  # now confirmed first
            handle = pending.meta["ringfence/confirmation"]["handle"]
            deleted = await client.call_tool("delete_contact", {"contact_id": contact_id, "confirmation": handle})
            after = await client.call_tool("search_contacts", {"query": f"step-up {mode}"})
    finally:
        user.close()
    assert found.structured_content["result"] == [added.structured_content]
    assert read_only_scope == "contacts:read"
    refused = [e for e in log.exchanges if e.path == "/mcp" and e.status == 403]
    assert len(refused) == 1
    challenge = parse_bearer_challenge(refused[0].www_authenticate)
    assert challenge["error"] == "insufficient_scope"
    assert challenge["scope"] == "contacts:read contacts:write"
    assert set(query_of(user.authorization_urls[-1])["scope"].split()) == {"contacts:read", "contacts:write"}
    assert "Add, change and delete your contacts" in user.consent_pages[-1].text  # consent for the new scope
    assert deleted.is_error is False, deleted.content
    assert deleted.content[0].text == f"Deleted contact {contact_id}."
    assert after.structured_content["result"] == []
    assert set(reader_storage.tokens.scope.split()) == {"contacts:read", "contacts:write"}


def test_no_response_was_a_server_error(embedded: EmbeddedServer, linked: dict[str, Linked]) -> None:
    """Nothing in the links made the server fail: no 5xx answer, no traceback in its log."""
    statuses = [e.status for result in linked.values() for e in result.log.exchanges]
    statuses += [r.status_code for result in linked.values() for r in result.user.responses]
    assert statuses and all(status < 500 for status in statuses)
    assert server_errors(embedded.logs()) == []
