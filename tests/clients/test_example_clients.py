"""The copyable clients of examples/clients/ work against ``ringfence serve`` as their comments say:
sign in through the browser (here: ``BROWSER`` writes the URL to a file and :class:`BrowserAtTheUrlFile`
answers it; the browser then lands on the example's own loopback callback, RFC 8252 §7.3), call the
tools, and ask the person on the terminal when the app wants a deletion confirmed (MCP elicitation).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.clients.support import NODE_DIR, BrowserAtTheUrlFile, KeepsTickedUser, browser_env, node_package
from tests.support.idp import free_port
from tests.support.oauth import BrowserLikeUser, EmbeddedServer, query_of
from tests.support.serve import REPO

EXAMPLES = REPO / "examples" / "clients"


def run_example(command: list[str], folder: Path, user: BrowserLikeUser, *, answer: str = "",
                cwd: Path = REPO) -> tuple[list[dict[str, Any]], BrowserAtTheUrlFile]:
    """Run an example with ``answer`` on its stdin while the person answers its sign-ins; its JSON lines."""
    env = {**browser_env(folder), "MCP_CALLBACK_PORT": str(free_port())}
    with BrowserAtTheUrlFile(folder, user) as browser:
        done = subprocess.run(command, input=answer, capture_output=True, text=True, env=env, cwd=cwd, timeout=90)
    assert browser.failures == []
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], browser


@pytest.fixture
def typescript_example(tmp_path: Path) -> Path:
    """examples/clients/typescript_client.mjs next to a node_modules holding the pinned SDK (as after
    ``npm install @modelcontextprotocol/sdk`` in the user's own folder)."""
    node_package("@modelcontextprotocol", "sdk", "package.json")
    (tmp_path / "node_modules").symlink_to(NODE_DIR / "node_modules")
    copy = tmp_path / "typescript_client.mjs"
    copy.write_text((EXAMPLES / "typescript_client.mjs").read_text())
    return copy


def test_python_example_links_reads_steps_up_and_confirms_a_deletion(embedded: EmbeddedServer,
                                                                     tmp_path: Path) -> None:
    """The Python SDK asks for ``contacts:read`` first; ``add_contact`` makes it step up through a second
    consent (the person unticked what was not asked); a second run deletes after the person says y."""
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    example = [sys.executable, str(EXAMPLES / "python_client.py"), embedded.mcp_url]
    try:
        first, browser = run_example([*example, "search_contacts", '{"query": "py"}',
                                      "add_contact", '{"name": "Python Pat"}'], tmp_path / "1", user)
        contact = first[1]["structured"]["id"]
        second, _ = run_example([*example, "delete_contact", json.dumps({"contact_id": contact}),
                                 "search_contacts", '{"query": "python pat"}'], tmp_path / "2", user, answer="y\n")
    finally:
        user.close()
    assert [query_of(url)["scope"] for url in browser.seen] == ["contacts:read", "contacts:read contacts:write"]
    assert [call["is_error"] for call in first + second] == [False, False, False, False]
    assert first[1]["structured"]["name"] == "Python Pat"
    assert second[0]["text"] == [f"Deleted contact {contact}."]
    assert second[1]["structured"]["result"] == []


def test_python_example_lists_the_tools_without_signing_in(embedded: EmbeddedServer, tmp_path: Path) -> None:
    """Listing tools needs no token: no browser is opened."""
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    try:
        listed, browser = run_example([sys.executable, str(EXAMPLES / "python_client.py"), embedded.mcp_url],
                                      tmp_path, user)
    finally:
        user.close()
    assert browser.seen == []
    assert {line["tool"] for line in listed} == {"app_info", "search_contacts", "add_contact", "delete_contact"}


def test_typescript_example_links_writes_and_deletes_after_the_person_confirms(
        embedded: EmbeddedServer, typescript_example: Path, tmp_path: Path) -> None:
    """The TS SDK 1.x asks for ``contacts:read``; the person keeps the offered ``contacts:write`` ticked, so
    ``add_contact`` runs without a step-up; a second run's deletion waits for the person's y, a third's
    n declines it."""
    user = KeepsTickedUser(embedded.issuer, embedded.account)
    example = ["node", str(typescript_example), embedded.mcp_url]
    try:
        first, browser = run_example([*example, "search_contacts", '{"query": "ts"}',
                                      "add_contact", '{"name": "TypeScript Tia"}'], tmp_path / "1", user,
                                     cwd=typescript_example.parent)
        contact = json.dumps({"contact_id": first[1]["structured"]["id"]})
        declined, _ = run_example([*example, "delete_contact", contact], tmp_path / "2", user, answer="n\n",
                                  cwd=typescript_example.parent)
        deleted, _ = run_example([*example, "delete_contact", contact, "search_contacts", '{"query": "tia"}'],
                                 tmp_path / "3", user, answer="y\n", cwd=typescript_example.parent)
    finally:
        user.close()
    assert [query_of(url)["scope"] for url in browser.seen] == ["contacts:read"]
    assert [call["is_error"] for call in first] == [False, False]
    assert declined[0]["is_error"] is True
    assert deleted[0]["is_error"] is False
    assert deleted[1]["structured"]["result"] == []
