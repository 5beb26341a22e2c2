"""A write declared ``irreversible=True`` (a sent message) is confirmed exactly like a destructive tool
(issue #17 item 3): held until the user confirms that call, by elicitation, the widget card's handle or
the signed-in page; run once per confirmation, never unconfirmed. A write declared ``irreversible=False``
runs at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.types import ElicitResult

from tests.support.confirmations import SignedInCaller
from tests.support.http import result_text
from tests.support.oauth import BrowserLikeUser, EmbeddedServer, start_embedded
from tests.support.sdk import sdk_client

OUTBOX_APP = str(Path(__file__).parent / "apps.py")


@pytest.fixture(scope="module")
def outbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = start_embedded(tmp_path_factory.mktemp("outbox"), target=OUTBOX_APP)
    yield server
    server.stop_and_check()


@pytest.fixture(scope="module")
def caller(outbox: EmbeddedServer) -> Iterator[SignedInCaller]:
    user = BrowserLikeUser(outbox.issuer, outbox.account)
    yield SignedInCaller(outbox, user, client_name="Chat", scope="outbox:send outbox:drafts")
    user.close()


def sent(caller: SignedInCaller) -> list[str]:
    return caller.call("list_sent", {})["structuredContent"]["result"]


def test_an_irreversible_write_is_held_until_confirmed_on_the_page_then_runs_once(caller):
    arguments = {"to": "ann@example.com", "text": "by the page"}
    pending = caller.call("send_message", arguments)
    assert pending["isError"] is True and result_text(pending).startswith("Not done yet: the user must confirm")
    assert "> send 'by the page' to ann@example.com" in result_text(pending)
    assert "ann@example.com: by the page" not in sent(caller)  # held: nothing was sent
    assert caller.answer_page(caller.page_link(pending), "confirm").status_code == 200
    done = caller.call("send_message", arguments)
    assert (done["isError"], done["structuredContent"]["result"]) == (False, "Sent to ann@example.com.")
    again = caller.call("send_message", arguments)  # the confirmation was used: asked again
    assert again["isError"] is True and result_text(again).startswith("Not done yet")
    assert sent(caller).count("ann@example.com: by the page") == 1


def test_an_irreversible_write_declined_on_the_page_is_never_sent(caller):
    arguments = {"to": "bob@example.com", "text": "declined"}
    pending = caller.call("send_message", arguments)
    assert caller.answer_page(caller.page_link(pending), "decline").status_code == 200
    refused = caller.call("send_message", arguments)
    assert refused["isError"] is True and "The user declined this action" in result_text(refused)
    assert "bob@example.com: declined" not in sent(caller)


def test_an_irreversible_write_runs_with_the_confirmation_cards_handle_once(caller):
    arguments = {"to": "cy@example.com", "text": "by the card"}
    handle = caller.call("send_message", arguments)["_meta"]["ringfence/confirmation"]["handle"]
    done = caller.call("send_message", {**arguments, "confirmation": handle})
    assert done["isError"] is False
    replayed = caller.call("send_message", {**arguments, "confirmation": handle})
    assert replayed["isError"] is True and "not valid for this call" in result_text(replayed)
    assert sent(caller).count("cy@example.com: by the card") == 1


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_an_irreversible_write_is_confirmed_by_elicitation_on_both_protocol_eras(caller, mode):
    asked: list[str] = []

    async def accept(_context, params):  # type: ignore[no-untyped-def]
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async with sdk_client(caller.server.process, caller.token, mode=mode, elicitation_callback=accept) as (client, _):
        done = await client.call_tool("send_message", {"to": "dee@example.com", "text": f"elicited {mode}"})
    assert done.is_error is False
    assert asked == ['Outbox asks you to confirm the action "send_message". What Outbox reports it will do, quoted '
                     f"as the app wrote it (names in it may come from anyone):\n> send 'elicited {mode}' to "
                     "dee@example.com"]
    assert sent(caller).count(f"dee@example.com: elicited {mode}") == 1


@pytest.mark.anyio
async def test_an_irreversible_write_declined_by_elicitation_is_never_sent(caller):
    async def decline(_context, _params):  # type: ignore[no-untyped-def]
        return ElicitResult(action="decline")

    async with sdk_client(caller.server.process, caller.token, mode="legacy", elicitation_callback=decline) as (
            client, _):
        refused = await client.call_tool("send_message", {"to": "eve@example.com", "text": "no"})
    assert refused.is_error is True and refused.content[0].text == "You declined, so nothing was done."
    assert "eve@example.com: no" not in sent(caller)


def test_a_reversible_write_is_not_held(caller):
    done = caller.call("save_draft", {"text": "a draft"})
    assert done["isError"] is False and isinstance(done["structuredContent"]["result"], int)
    assert "ringfence/confirmation" not in (done.get("_meta") or {})


def test_only_the_confirmed_tools_take_a_confirmation_handle(caller):
    listed = caller.server.process.request("tools/list", token=caller.token).json()["result"]["tools"]
    takes = {tool["name"]: "confirmation" in tool["inputSchema"]["properties"] for tool in listed}
    assert takes == {"send_message": True, "delete_drafts": True, "save_draft": False, "list_sent": False}
