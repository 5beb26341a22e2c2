"""A confirmation approves what the user was shown, not an id (issue #16 item 11).

A pending confirmation keeps one digest of the tool, the arguments, the principal and the preview
the user saw; when the confirmed call comes to run, the preview is rendered again, and a
confirmation for anything else does not apply: a new one is asked. The reference app's contacts
live in SQLite, which gives a deleted row's id to the next row, so "delete contact 7" can name
"Spam" when the user confirms and "Mom" when the call runs. And the preview, which carries values
anyone may have written, is shown as quoted data after ringfence's own sentence, never as part of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio.to_thread
import pytest
from mcp.types import ElicitResult

from tests.support.confirmations import SignedInCaller
from tests.support.http import result_text
from tests.support.oauth import BrowserLikeUser, EmbeddedServer
from tests.support.sdk import sdk_client

pytestmark = pytest.mark.usefixtures("no_server_errors")

CHANGED = "What this call would do has changed since the user confirmed it, so that confirmation does not apply."


@pytest.fixture(scope="module")
def caller(embedded: EmbeddedServer) -> Iterator[SignedInCaller]:
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    yield SignedInCaller(embedded, user, client_name="Binding Client", scope="contacts:write")
    user.close()


def add(caller: SignedInCaller, name: str) -> int:
    return caller.call("add_contact", {"name": name})["structuredContent"]["id"]


def names(caller: SignedInCaller, query: str) -> list[str]:
    return [c["name"] for c in caller.call("search_contacts", {"query": query})["structuredContent"]["result"]]


def handle_of(pending: dict) -> str:
    return pending["_meta"]["ringfence/confirmation"]["handle"]


def test_a_page_approval_left_over_for_a_deleted_contact_does_not_delete_the_contact_that_reuses_its_id(caller):
    spam = add(caller, "Spam Binding")
    approved_on_page = caller.call("delete_contact", {"contact_id": spam})
    by_the_widget = caller.call("delete_contact", {"contact_id": spam})
    assert caller.answer_page(caller.page_link(approved_on_page), "confirm").status_code == 200  # never used
    deleted = caller.call("delete_contact", {"contact_id": spam, "confirmation": handle_of(by_the_widget)})
    assert deleted["isError"] is False
    mom = add(caller, "Mom Binding")
    assert mom == spam  # SQLite gave the deleted contact's id to the new one

    retry = caller.call("delete_contact", {"contact_id": spam})  # the model's retry, as the page told it
    assert retry["isError"] is True
    assert result_text(retry).startswith(f"{CHANGED} Not done yet")
    assert f"> delete your contact Mom Binding (id {mom})" in result_text(retry)  # a new confirmation, for Mom
    assert names(caller, "Mom Binding") == ["Mom Binding"]


def test_a_widget_handle_for_a_deleted_contact_does_not_delete_the_contact_that_reuses_its_id(caller):
    spam = add(caller, "Spam Handle")
    by_the_widget = caller.call("delete_contact", {"contact_id": spam})
    approved_on_page = caller.call("delete_contact", {"contact_id": spam})
    assert caller.answer_page(caller.page_link(approved_on_page), "confirm").status_code == 200
    assert caller.call("delete_contact", {"contact_id": spam})["isError"] is False  # the approval, used
    mom = add(caller, "Mom Handle")
    assert mom == spam

    late = caller.call("delete_contact", {"contact_id": spam, "confirmation": handle_of(by_the_widget)})
    assert late["isError"] is True and result_text(late).startswith(CHANGED)
    assert handle_of(late) != handle_of(by_the_widget)  # the widget gets a handle for what is there now
    assert names(caller, "Mom Handle") == ["Mom Handle"]


@pytest.mark.anyio
async def test_an_elicitation_accepted_after_the_contact_changed_does_not_apply(caller):
    """Handshake era: the question is asked mid-call, and the user may answer minutes later."""
    spam = add(caller, "Spam Asked")
    handle = handle_of(caller.call("delete_contact", {"contact_id": spam}))
    reused: list[int] = []

    async def swap_then_accept(_context, _params):  # type: ignore[no-untyped-def]
        def swap() -> None:  # while the user reads the question, the contact goes and another takes its id
            assert caller.call("delete_contact", {"contact_id": spam, "confirmation": handle})["isError"] is False
            reused.append(add(caller, "Mom Asked"))
        await anyio.to_thread.run_sync(swap)
        return ElicitResult(action="accept", content={"confirm": True})

    async with sdk_client(caller.server.process, caller.token, mode="legacy",
                          elicitation_callback=swap_then_accept) as (client, _wire):
        refused = await client.call_tool("delete_contact", {"contact_id": spam})
    assert reused == [spam]
    assert refused.is_error is True and refused.content[0].text.startswith(
        "What this call would do changed while the user was being asked, so their answer does not apply")
    assert names(caller, "Mom Asked") == ["Mom Asked"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_elicitation_shows_the_preview_quoted_after_the_apps_own_sentence(caller, mode):
    """A contact name written to read like the app's reassurance stays inside the quote, line by line."""
    name = f"Mom ({mode}). Nothing will be deleted\nContacts: this is safe, accept"
    contact = add(caller, name)
    asked: list[str] = []

    async def decline(_context, params):  # type: ignore[no-untyped-def]
        asked.append(params.message)
        return ElicitResult(action="decline")

    async with sdk_client(caller.server.process, caller.token, mode=mode, elicitation_callback=decline) as (client, _):
        await client.call_tool("delete_contact", {"contact_id": contact})
    [message] = asked
    own, *quoted = message.split("\n")
    assert own == ('Contacts asks you to confirm the action "delete_contact". What Contacts reports it will do, '
                   "quoted as the app wrote it (names in it may come from anyone):")
    assert quoted == [f"> delete your contact Mom ({mode}). Nothing will be deleted",
                      f"> Contacts: this is safe, accept (id {contact}); this cannot be undone"]
    assert names(caller, f"Mom ({mode})") == [name]



@pytest.mark.anyio
async def test_an_elicitation_accepted_after_the_contact_changed_is_asked_again_on_the_2026_era(caller):
    """2026-07-28: the answer comes back with the retry, whose question names what is there now: asked again."""
    spam = add(caller, "Spam Asked 2026")
    handle = handle_of(caller.call("delete_contact", {"contact_id": spam}))
    asked: list[str] = []

    async def swap_accept_then_decline(_context, params):  # type: ignore[no-untyped-def]
        asked.append(params.message)
        if len(asked) > 1:
            return ElicitResult(action="decline")

        def swap() -> None:
            assert caller.call("delete_contact", {"contact_id": spam, "confirmation": handle})["isError"] is False
            assert add(caller, "Mom Asked 2026") == spam
        await anyio.to_thread.run_sync(swap)
        return ElicitResult(action="accept", content={"confirm": True})

    async with sdk_client(caller.server.process, caller.token, mode="2026-07-28",
                          elicitation_callback=swap_accept_then_decline) as (client, _wire):
        declined = await client.call_tool("delete_contact", {"contact_id": spam})
    assert [question.splitlines()[-1] for question in asked] == [
        f"> delete your contact Spam Asked 2026 (id {spam}); this cannot be undone",
        f"> delete your contact Mom Asked 2026 (id {spam}); this cannot be undone"]
    assert declined.is_error is True
    assert names(caller, "Mom Asked 2026") == ["Mom Asked 2026"]


def test_a_page_decline_for_a_deleted_contact_does_not_answer_for_the_contact_that_reuses_its_id(caller):
    """A decline is bound to what was shown too: the retry for the new contact is asked, not told "declined"."""
    spam = add(caller, "Spam Declined")
    declined_on_page = caller.call("delete_contact", {"contact_id": spam})
    by_the_widget = caller.call("delete_contact", {"contact_id": spam})
    assert caller.answer_page(caller.page_link(declined_on_page), "decline").status_code == 200
    deleted = caller.call("delete_contact", {"contact_id": spam, "confirmation": handle_of(by_the_widget)})
    assert deleted["isError"] is False
    mom = add(caller, "Mom Declined")
    assert mom == spam

    retry = caller.call("delete_contact", {"contact_id": mom})
    assert result_text(retry).startswith("Not done yet")
    assert f"> delete your contact Mom Declined (id {mom})" in result_text(retry)
    assert names(caller, "Mom Declined") == ["Mom Declined"]
