"""A tool declared ``confirm="page"`` is confirmed only on the signed-in confirmation page.

Issue #16 item 14: an MCP client can answer "accept" to an elicitation itself, and can press a
widget's button (its handle is in ``_meta``, which the client sees). For such a tool ringfence
neither asks by elicitation nor issues a handle: only the owner, signed in to this server, approves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.types import ElicitResult

from ringfence import App, DeclarationError, Scope
from tests.support.confirmations import SignedInCaller
from tests.support.http import result_text
from tests.support.idp import free_port
from tests.support.oauth import BrowserLikeUser, EmbeddedServer, ringfence_cli, start_embedded
from tests.support.sdk import sdk_client

PAGE_APP = str(Path(__file__).parent / "page_confirmed_app.py")


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = start_embedded(tmp_path_factory.mktemp("vault"), target=PAGE_APP)
    yield server
    server.stop_and_check()


@pytest.fixture(scope="module")
def caller(vault: EmbeddedServer) -> Iterator[SignedInCaller]:
    user = BrowserLikeUser(vault.issuer, vault.account)
    yield SignedInCaller(vault, user, client_name="Auto Accepter", scope="vault:write")
    user.close()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_client_that_accepts_every_elicitation_cannot_run_a_page_only_tool(caller, mode):
    note = caller.call("add_note", {"text": f"keep me ({mode})"})["structuredContent"]["result"]
    asked: list[str] = []

    async def accept_everything(_context, params):  # type: ignore[no-untyped-def]
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async with sdk_client(caller.server.process, caller.token, mode=mode,
                          elicitation_callback=accept_everything) as (client, _wire):
        pending = await client.call_tool("destroy_note", {"note_id": note})
    assert asked == []  # never asked: an answer from the client would not count
    assert pending.is_error is True and "only that page can confirm this tool" in pending.content[0].text
    assert "handle" not in pending.meta["ringfence/confirmation"]
    assert f"keep me ({mode})" in caller.call("list_notes", {})["structuredContent"]["result"]


def test_a_page_only_tool_takes_no_confirmation_handle(caller):
    listed = caller.server.process.request("tools/list", token=caller.token).json()["result"]["tools"]
    [destroy] = [tool for tool in listed if tool["name"] == "destroy_note"]
    assert set(destroy["inputSchema"]["properties"]) == {"note_id"}
    note = caller.call("add_note", {"text": "not by handle"})["structuredContent"]["result"]
    forged = caller.call("destroy_note", {"note_id": note, "confirmation": "A" * 43})
    assert forged["isError"] is True
    assert "not by handle" in caller.call("list_notes", {})["structuredContent"]["result"]


def test_the_signed_in_page_approval_runs_a_page_only_tool_once(caller):
    note = caller.call("add_note", {"text": "destroy me"})["structuredContent"]["result"]
    pending = caller.call("destroy_note", {"note_id": note})
    assert pending["isError"] is True and "> destroy note" in result_text(pending)
    assert caller.answer_page(caller.page_link(pending), "confirm").status_code == 200
    done = caller.call("destroy_note", {"note_id": note})
    assert (done["isError"], done["structuredContent"]["result"]) == (False, f"Destroyed note {note}.")
    assert "destroy me" not in caller.call("list_notes", {})["structuredContent"]["result"]


def test_confirm_page_is_declared_on_destructive_tools_with_scopes_only():
    app = App("declared", scopes=[Scope("x:write", "Change x")])
    with pytest.raises(DeclarationError, match="confirm= is for destructive or irreversible tools"):
        app.tool(effect="write", scopes=["x:write"], confirm="page", name="change")(lambda: None)
    with pytest.raises(DeclarationError, match="needs scopes="):
        app.tool(effect="destructive", confirm="page", name="anonymous_delete")(lambda: None)
    with pytest.raises(DeclarationError, match="must be one of any, page"):
        app.tool(effect="destructive", scopes=["x:write"], confirm="elicitation", name="odd")(lambda: None)


def test_a_page_only_tool_is_not_served_without_the_confirmation_page(tmp_path):
    """With an external identity provider (``--issuer``) there is no sign-in page here: refuse to start."""
    refused = ringfence_cli("serve", PAGE_APP, "--issuer", "https://idp.example.test", "--jwks-url",
                            "https://idp.example.test/jwks", "--port", str(free_port()), "--data-dir", str(tmp_path))
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1] == (
        "ringfence: error: tools ['destroy_note'] declare confirm=\"page\", which needs the confirmation page of "
        "the embedded authorization server (serve without --issuer)")
