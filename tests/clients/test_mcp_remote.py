"""mcp-remote 0.15.1 (the stdio↔HTTP proxy Claude Desktop and other stdio-only clients use) in front of
``ringfence serve``, driven by the official Python SDK's stdio client, as such a client would.

mcp-remote opens "the browser" with the ``open`` package, which honours ``BROWSER``: here a script that
writes the URL to a file; the person (:class:`BrowserLikeUser`) signs in and consents there, and their
browser follows the redirect to mcp-remote's loopback callback (RFC 8252 §7.3). The person unticks
what was not asked for, so the write tool needs a step-up: mcp-remote's bundled SDK re-authorizes
with the union of scopes (MCP 2026-07-28 authorization, scope step-up).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import ElicitResult

from tests.clients.support import BrowserAtTheUrlFile, browser_env, node_package
from tests.support.http import result_text
from tests.support.idp import free_port
from tests.support.oauth import BrowserLikeUser, EmbeddedServer, query_of


@pytest.fixture
def mcp_remote(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], int]]:
    """mcp-remote's entry point, its environment (own config folder, the URL-writing browser) and port."""
    proxy = node_package("mcp-remote", "dist", "proxy.js")
    yield proxy, {**browser_env(tmp_path), "MCP_REMOTE_CONFIG_DIR": str(tmp_path / "mcp-auth")}, free_port()


ASKED: list[str] = []


async def accept(_context, params) -> ElicitResult:  # type: ignore[no-untyped-def]
    """The person accepts what they are asked (the question is kept for the test to check)."""
    ASKED.append(params.message)
    return ElicitResult(action="accept", content={"confirm": True})


def test_mcp_remote_links_reads_steps_up_to_write_and_confirms_a_deletion(
        embedded: EmbeddedServer, mcp_remote: tuple[Path, dict[str, str], int], tmp_path: Path) -> None:
    """Through mcp-remote: the first protected call sends the person to sign in and consent (read);
    ``add_contact`` gets 403 ``insufficient_scope`` and mcp-remote re-authorizes with read and write
    (a second consent, no second sign-in); the deletion is confirmed by MCP elicitation, relayed."""
    proxy, env, port = mcp_remote
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    # As a Claude Desktop config runs it: mcp-remote URL [callback port]; plain http is allowed on loopback.
    params = StdioServerParameters(command="node", args=[str(proxy), embedded.mcp_url, str(port), "--host",
                                                         "127.0.0.1"], env=env)
    results: dict[str, Any] = {}

    async def run() -> None:
        async with Client(params, mode="legacy", read_timeout_seconds=60, elicitation_callback=accept) as client:
            results["search"] = await client.call_tool("search_contacts", {"query": "remote"})
            results["add"] = await client.call_tool("add_contact", {"name": "Remote Rita"})
            contact = {"contact_id": results["add"].structured_content["id"]}
            results["delete"] = await client.call_tool("delete_contact", contact)
            results["after"] = await client.call_tool("search_contacts", {"query": "remote rita"})

    try:
        with BrowserAtTheUrlFile(tmp_path, user) as browser:
            anyio.run(run)
    finally:
        user.close()
    assert browser.failures == []
    assert [query_of(url)["scope"] for url in browser.seen] == ["contacts:read", "contacts:read contacts:write"]
    assert [callback.status_code for callback in browser.callbacks] == [200, 200]
    assert (len(user.login_pages), len(user.consent_pages)) == (1, 2)
    assert results["search"].is_error is False
    assert results["add"].is_error is False
    assert results["delete"].is_error is False, result_text(results["delete"].model_dump())
    assert any("Remote Rita" in question for question in ASKED)
    assert results["after"].structured_content["result"] == []
