"""The official MCP Python SDK client against `ringfence serve`, in both protocol eras.

``mode="legacy"`` runs the 2025-11-25 initialize handshake; ``mode="2026-07-28"`` is the stateless
modern era. Each test runs in both.
"""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError

from tests.support.http import parse_bearer_challenge
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.sdk import sdk_client
from tests.support.serve import ServeProcess

pytestmark = pytest.mark.anyio

# tool: (readOnlyHint, destructiveHint, idempotentHint, openWorldHint), derived from effect=
EXPECTED_HINTS = {
    "app_info": (True, False, True, False),
    "search_contacts": (True, False, True, False),
    "add_contact": (False, False, False, False),
    "delete_contact": (False, True, False, False),
}
EXPECTED_SCHEMES = {
    "app_info": [{"type": "noauth"}],
    "search_contacts": [{"type": "oauth2", "scopes": ["contacts:read"]}],
    "add_contact": [{"type": "oauth2", "scopes": ["contacts:write"]}],
    "delete_contact": [{"type": "oauth2", "scopes": ["contacts:write"]}],
}


@pytest.fixture(params=["legacy", "2026-07-28"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def token_for(server: ServeProcess, idp: TestIdentityProvider, scope: str, subject: str = "user-1") -> str:
    return idp.token(server.mcp_url, sub=subject, scope=scope)


async def test_each_era_is_really_used_on_the_wire(contacts: ServeProcess, mode: str) -> None:
    """2025-11-25 opens with ``initialize``; 2026-07-28 has no handshake."""
    async with sdk_client(contacts, None, mode=mode) as (client, wire):
        await client.list_tools()
    assert ("initialize" in wire.methods()) == (mode == "legacy")
    assert wire.last("tools/list").status == 200


async def test_tools_list_carries_all_four_hints_derived_from_the_effect(contacts: ServeProcess, mode: str) -> None:
    """MCP ToolAnnotations, each set explicitly (Apps SDK rejects missing hints), from effect= alone."""
    async with sdk_client(contacts, None, mode=mode) as (client, _):
        tools = (await client.list_tools()).tools
    hints = {
        tool.name: (tool.annotations.read_only_hint, tool.annotations.destructive_hint,
                    tool.annotations.idempotent_hint, tool.annotations.open_world_hint)
        for tool in tools
    }
    assert hints == EXPECTED_HINTS


async def test_tools_list_carries_security_schemes_in_meta(contacts: ServeProcess, mode: str) -> None:
    """Apps SDK ``securitySchemes`` (SEP-1488): ``noauth`` for public tools, ``oauth2`` + scopes otherwise."""
    async with sdk_client(contacts, None, mode=mode) as (client, _):
        tools = (await client.list_tools()).tools
    assert {tool.name: tool.meta["securitySchemes"] for tool in tools} == EXPECTED_SCHEMES


async def test_public_tool_works_without_a_token(contacts: ServeProcess, mode: str) -> None:
    """A ``noauth`` tool is callable anonymously."""
    async with sdk_client(contacts, None, mode=mode) as (client, _):
        result = await client.call_tool("app_info", {})
    assert result.is_error is False
    assert result.structured_content["name"] == "Contacts"


async def test_protected_tool_without_a_token_fails_with_401_on_the_wire(contacts: ServeProcess, mode: str) -> None:
    """The SDK surfaces the HTTP 401 as an error; the wire shows the challenge with the scope to request."""
    async with sdk_client(contacts, None, mode=mode) as (client, wire):
        with pytest.raises(MCPError):
            await client.call_tool("search_contacts", {"query": "ann"})
    refused = wire.last("tools/call")
    assert refused.status == 401
    assert parse_bearer_challenge(refused.www_authenticate)["scope"] == "contacts:read"


@pytest.mark.parametrize(("tool", "arguments", "granted"), [
    ("search_contacts", {"query": "ann"}, ""),
    ("add_contact", {"name": "Nope"}, "contacts:read"),
    ("delete_contact", {"contact_id": 1}, "contacts:read"),
])
async def test_tool_without_its_scope_fails_with_403_insufficient_scope(contacts: ServeProcess,
                                                                       idp: TestIdentityProvider, mode: str,
                                                                       tool: str, arguments: dict,
                                                                       granted: str) -> None:
    """MCP step-up: the SDK raises; the wire shows 403 ``insufficient_scope`` naming the missing scope."""
    async with sdk_client(contacts, token_for(contacts, idp, granted), mode=mode) as (client, wire):
        with pytest.raises(MCPError):
            await client.call_tool(tool, arguments)
    refused = wire.last("tools/call")
    assert refused.status == 403
    params = parse_bearer_challenge(refused.www_authenticate)
    assert params["error"] == "insufficient_scope"
    assert set(EXPECTED_SCHEMES[tool][0]["scopes"]) <= set(params["scope"].split())


@pytest.mark.parametrize(("tool", "arguments", "scope"), [
    ("search_contacts", {"query": "ann"}, "contacts:read"),
    ("add_contact", {"name": "Scoped Sue"}, "contacts:write"),
    ("delete_contact", {"contact_id": 999_999}, "contacts:write"),
])
async def test_tool_with_its_scope_runs(contacts: ServeProcess, idp: TestIdentityProvider, mode: str,
                                        tool: str, arguments: dict, scope: str) -> None:
    """With the declared scope the call reaches the tool (delete of a missing id is the tool's own error)."""
    async with sdk_client(contacts, token_for(contacts, idp, scope, new_subject()), mode=mode) as (client, wire):
        result = await client.call_tool(tool, arguments)
    assert wire.last("tools/call").status == 200
    assert result.is_error is (tool == "delete_contact")


async def test_add_search_and_delete_a_contact(contacts: ServeProcess, idp: TestIdentityProvider, mode: str) -> None:
    """The reference app's whole life cycle through the SDK (contacts:write implies contacts:read)."""
    token = token_for(contacts, idp, "contacts:write", new_subject())
    async with sdk_client(contacts, token, mode=mode) as (client, _):
        added = await client.call_tool("add_contact", {"name": "Ada Lovelace", "email": "ada@example.org"})
        found = await client.call_tool("search_contacts", {"query": "ada"})
        contact = {"contact_id": added.structured_content["id"]}
        pending = await client.call_tool("delete_contact", contact)  # destructive: the user confirms first
        handle = pending.meta["ringfence/confirmation"]["handle"]
        deleted = await client.call_tool("delete_contact", {**contact, "confirmation": handle})
        after = await client.call_tool("search_contacts", {"query": "ada"})
    assert found.structured_content["result"] == [added.structured_content]
    assert deleted.is_error is False
    assert after.structured_content["result"] == []


async def test_second_user_cannot_see_or_delete_the_first_users_contacts(contacts: ServeProcess,
                                                                         idp: TestIdentityProvider,
                                                                         mode: str) -> None:
    """Tenant isolation by ``sub``: another user's search finds nothing and their delete is refused."""
    first = token_for(contacts, idp, "contacts:write", new_subject())
    second = token_for(contacts, idp, "contacts:write", new_subject())
    async with sdk_client(contacts, first, mode=mode) as (client, _):
        added = await client.call_tool("add_contact", {"name": "Private Pat"})
    async with sdk_client(contacts, second, mode=mode) as (client, _):
        seen = await client.call_tool("search_contacts", {"query": "pat"})
        deleted = await client.call_tool("delete_contact", {"contact_id": added.structured_content["id"]})
    async with sdk_client(contacts, first, mode=mode) as (client, _):
        still = await client.call_tool("search_contacts", {"query": "pat"})
    assert seen.structured_content["result"] == []
    assert deleted.is_error is True
    assert still.structured_content["result"] == [added.structured_content]
