"""Short-hands for the reference app, used to check what a refused call did (or did not) change."""

from __future__ import annotations

from tests.support.http import tool_result
from tests.support.idp import TestIdentityProvider
from tests.support.serve import ServeProcess


def add_contact(server: ServeProcess, idp: TestIdentityProvider, subject: str, name: str) -> int:
    """Add a contact as ``subject`` (with contacts:write); its id."""
    token = idp.token(server.mcp_url, sub=subject, scope="contacts:write")
    return tool_result(server.call_tool("add_contact", {"name": name}, token=token))["structuredContent"]["id"]


def contact_names(server: ServeProcess, idp: TestIdentityProvider, subject: str, query: str) -> list[str]:
    """The names of ``subject``'s contacts matching ``query`` (with contacts:read)."""
    token = idp.token(server.mcp_url, sub=subject, scope="contacts:read")
    found = tool_result(server.call_tool("search_contacts", {"query": query}, token=token))["structuredContent"]
    return [contact["name"] for contact in found["result"]]
