"""The TypeScript SDK (``@modelcontextprotocol/sdk`` 1.32.2, run by Node) links to ``ringfence serve``,
reads, writes and confirms a deletion, unmodified (tests/clients/node/link_and_call.mjs).

Its step-up cannot widen a grant: on ``403 insufficient_scope`` it refreshes the token it holds
(typescript-sdk#2255) and RFC 6749 §6 forbids a refresh to add scopes, so it gives up with "Server
returned 403 after trying upscoping". ringfence's answer is on its consent page: the scopes the app's
tools need besides the request are offered, ticked (``policy.scopes_beyond``); a person who keeps them
gets a first token that reaches the write tools, one who unticks them gets the SDK's 403.
"""

from __future__ import annotations

import pytest

from tests.clients.support import REDIRECT_URI, KeepsTickedUser, NodeRun, run_node_client
from tests.support.http import parse_bearer_challenge
from tests.support.oauth import BrowserLikeUser, EmbeddedServer, query_of

SCRIPT = "link_and_call.mjs"


def linked(embedded: EmbeddedServer, user: BrowserLikeUser) -> tuple[NodeRun, BrowserLikeUser]:
    try:
        return run_node_client(SCRIPT, embedded.mcp_url, REDIRECT_URI, user=user), user
    finally:
        user.close()


@pytest.fixture(scope="module")
def kept(embedded: EmbeddedServer) -> tuple[NodeRun, BrowserLikeUser]:
    """A person links the TS SDK client and allows the consent page as shown."""
    return linked(embedded, KeepsTickedUser(embedded.issuer, embedded.account))


@pytest.fixture(scope="module")
def unticked(embedded: EmbeddedServer) -> tuple[NodeRun, BrowserLikeUser]:
    """A person links the TS SDK client and unticks what the client did not ask for."""
    return linked(embedded, BrowserLikeUser(embedded.issuer, embedded.account))


def test_ts_sdk_asks_for_the_read_scope_of_its_first_call_and_the_consent_page_offers_write(
        kept: tuple[NodeRun, BrowserLikeUser]) -> None:
    """MCP authorization, scope selection: the SDK asks for the 401 challenge's ``contacts:read``; the
    consent page shows it and offers ``contacts:write`` (with what it unlocks), ticked, to untick."""
    run, user = kept
    [url] = run.of("authorize")
    assert query_of(url)["scope"] == "contacts:read"
    [page] = user.consent_pages
    assert 'name="also:contacts:write" value="yes" checked' in page.text
    assert "Lets the app delete your data" in page.text


def test_ts_sdk_reaches_the_write_tools_with_the_first_consent_and_confirms_the_deletion(
        kept: tuple[NodeRun, BrowserLikeUser]) -> None:
    """One sign-in, one consent: search, add, and delete (confirmed by MCP elicitation) all run."""
    run, user = kept
    assert [step.get("error") for step in run.events if "step" in step] == [None] * 5
    assert {tool["name"] for tool in run.step("list")["result"]["tools"]} >= {"search_contacts", "delete_contact"}
    added = run.step("add")["result"]["structuredContent"]
    assert added["name"] == "Ada from TypeScript"
    [question] = run.of("elicitation")
    assert "Ada from TypeScript" in question  # the user was shown what would be deleted
    assert run.step("delete")["result"].get("isError") is not True
    assert run.step("after")["result"]["structuredContent"]["result"] == []
    assert set(run.of("tokens")[-1]["scope"].split()) == {"contacts:read", "contacts:write"}
    assert (len(user.login_pages), len(user.consent_pages)) == (1, 1)


def test_ts_sdk_without_write_gets_its_403_after_upscoping_and_the_refresh_never_widens(
        embedded: EmbeddedServer, unticked: tuple[NodeRun, BrowserLikeUser]) -> None:
    """typescript-sdk#2255, reproduced: with ``contacts:read`` only, ``add_contact`` gets 403
    ``insufficient_scope``; the SDK refreshes, and the refreshed token still has ``contacts:read`` only
    (RFC 6749 §6: a refresh never widens the grant), so the SDK stops. Nothing was added."""
    run, user = unticked
    assert run.step("search").get("error") is None
    assert "Server returned 403 after trying upscoping" in run.step("add")["error"]
    assert "403" in run.step("delete")["error"]
    scopes = [token["scope"] for token in run.of("tokens")]
    assert len(scopes) >= 2 and set(scopes) == {"contacts:read"}  # the code's token, then each refresh's
    assert len(user.consent_pages) == 1
    assert run.step("after")["result"]["structuredContent"]["result"] == []


def test_challenges_stay_precise_the_offer_is_made_on_the_consent_page(embedded: EmbeddedServer) -> None:
    """MCP authorization §10.6: a 401 names the scopes of the operation, never the whole catalog."""
    for tool, scope in (("search_contacts", "contacts:read"), ("add_contact", "contacts:write")):
        refused = embedded.process.call_tool(tool, {"query": "x"} if tool == "search_contacts" else {"name": "x"})
        assert refused.status_code == 401
        assert parse_bearer_challenge(refused.headers["www-authenticate"])["scope"] == scope
