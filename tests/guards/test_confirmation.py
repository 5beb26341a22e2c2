"""Destructive tools run only with the user's confirmation of exactly that call, which the model cannot forge.

A confirmation is bound to the tool, the canonical hash of the arguments, the principal and five
minutes, and is single-use. Three ways to give it: MCP elicitation (both protocol eras), a widget
button (the handle travels only in ``_meta``), and a confirmation page on the server. On every
refused path the tool body does not run: the contact is still there.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp.types import ElicitResult

from tests.conftest import served_trusting
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, add_user, start_embedded
from tests.support.sdk import sdk_client
from tests.support.serve import ServeProcess


@pytest.fixture(scope="module")
def server(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    data = tmp_path_factory.mktemp("confirm")
    with served_trusting(idp, data, introspection=False) as process:
        process.data_dir = data  # type: ignore[attr-defined]
        yield process


class Person:
    """One user of the contacts app, calling tools with a token for both scopes."""

    def __init__(self, server: ServeProcess, idp: TestIdentityProvider) -> None:
        self.server = server
        self.subject = new_subject()
        self.token = idp.token(server.mcp_url, sub=self.subject, scope="contacts:write")

    def call(self, tool: str, arguments: dict) -> dict:
        return tool_result(self.server.call_tool(tool, arguments, token=self.token))

    def add(self, name: str, email: str | None = None) -> int:
        return self.call("add_contact", {"name": name, "email": email})["structuredContent"]["id"]

    def names(self) -> list[str]:
        return [c["name"] for c in self.call("search_contacts", {"query": ""})["structuredContent"]["result"]]

    def ask_to_delete(self, contact_id: int) -> dict:
        pending = self.call("delete_contact", {"contact_id": contact_id})
        assert pending["isError"] is True
        return pending


def handle_of(pending: dict) -> str:
    return pending["_meta"]["ringfence/confirmation"]["handle"]


@pytest.fixture
def person(server: ServeProcess, idp: TestIdentityProvider) -> Person:
    return Person(server, idp)


def test_a_destructive_call_without_confirmation_returns_a_preview_and_does_not_run(person):
    contact = person.add("Ada Lovelace", "ada@example.com")
    pending = person.ask_to_delete(contact)
    text = result_text(pending)
    assert text.startswith("Not done yet: the user must confirm this call first. What it would do, as the app "
                           f"reports it:\n> delete your contact Ada Lovelace <ada@example.com> (id {contact});")
    # A client that shows no widgets is never told to press a button it does not have.
    assert "confirmation card, in a client that shows it (this one does not)" in text
    confirmation = pending["_meta"]["ringfence/confirmation"]
    assert confirmation["tool"] == "delete_contact" and len(confirmation["handle"]) >= 40
    assert confirmation["arguments"] == {"contact_id": contact}  # what the card calls the tool with again
    assert confirmation["handle"] not in text  # the handle is only in _meta, which the model does not see
    assert person.names() == ["Ada Lovelace"]


APPS_CAPABILITIES = {"io.modelcontextprotocol/clientCapabilities": {
    "extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}}}}


@pytest.mark.parametrize("meta", [{"openai/locale": "en-GB"}, APPS_CAPABILITIES], ids=["chatgpt", "mcp-apps-host"])
def test_press_confirm_is_said_only_to_a_client_that_shows_the_confirmation_card(person, meta):
    contact = person.add("Grace Hopper")
    pending = tool_result(person.server.call_tool("delete_contact", {"contact_id": contact}, token=person.token,
                                                  meta=meta))
    assert "the user presses Confirm on the card shown in the chat" in result_text(pending)
    assert person.names() == ["Grace Hopper"]


def test_the_widget_handle_confirms_once(person):
    contact = person.add("Grace")
    handle = handle_of(person.ask_to_delete(contact))
    done = person.call("delete_contact", {"contact_id": contact, "confirmation": handle})
    assert done["isError"] is False and done["structuredContent"]["result"] == f"Deleted contact {contact}."
    assert person.names() == []
    again = person.call("delete_contact", {"contact_id": contact, "confirmation": handle})
    assert again["isError"] is True and result_text(again).startswith("This confirmation is not valid for this call")


def test_a_handle_for_other_arguments_is_refused(person):
    first, second = person.add("Keep"), person.add("Also keep")
    handle = handle_of(person.ask_to_delete(first))
    refused = person.call("delete_contact", {"contact_id": second, "confirmation": handle})
    assert refused["isError"] is True and "not valid for this call" in result_text(refused)
    assert sorted(person.names()) == ["Also keep", "Keep"]


def test_a_handle_for_another_user_is_refused(server, idp, person):
    contact = person.add("Mine")
    handle = handle_of(person.ask_to_delete(contact))
    other = Person(server, idp)
    refused = other.call("delete_contact", {"contact_id": contact, "confirmation": handle})
    assert refused["isError"] is True and "not valid for this call" in result_text(refused)
    assert person.names() == ["Mine"]


@pytest.mark.parametrize("forgery", ["truncated", "forged", "empty-ish"])
def test_forged_or_truncated_handles_are_refused(person, forgery):
    contact = person.add("Safe")
    handle = handle_of(person.ask_to_delete(contact))
    value = {"truncated": handle[:-4], "forged": "A" * len(handle), "empty-ish": " "}[forgery]
    refused = person.call("delete_contact", {"contact_id": contact, "confirmation": value})
    assert refused["isError"] is True
    assert person.names() == ["Safe"]


def test_model_visible_text_is_not_a_confirmation(person):
    """Copying what the model can see (the text, or any token in it) into the call authorizes nothing."""
    contact = person.add("Visible")
    text = result_text(person.ask_to_delete(contact))
    for candidate in [text, *re.findall(r"[A-Za-z0-9_-]{16,}", text)]:
        refused = person.call("delete_contact", {"contact_id": contact, "confirmation": candidate[:10_000]})
        assert refused["isError"] is True
    assert person.names() == ["Visible"]


def test_an_expired_handle_is_refused(server, person):
    contact = person.add("Later")
    handle = handle_of(person.ask_to_delete(contact))
    with sqlite3.connect(Path(server.data_dir) / "ringfence.db") as db:
        db.execute("UPDATE ringfence_confirmations SET expires_at = 0")
    refused = person.call("delete_contact", {"contact_id": contact, "confirmation": handle})
    assert refused["isError"] is True and "not valid for this call" in result_text(refused)
    assert person.names() == ["Later"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_mcp_elicitation_confirms_on_both_protocol_eras(server, idp, mode):
    person = Person(server, idp)
    contact = person.add("Elicited", "e@example.com")
    asked: list[str] = []

    async def answer(_context, params):  # type: ignore[no-untyped-def]
        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async with sdk_client(server, person.token, mode=mode, elicitation_callback=answer) as (client, _wire):
        done = await client.call_tool("delete_contact", {"contact_id": contact})
    assert done.is_error is False
    assert asked == ['Contacts asks you to confirm the action "delete_contact". What Contacts reports it will do, '
                     "quoted as the app wrote it (names in it may come from anyone):\n"
                     f"> delete your contact Elicited <e@example.com> (id {contact}); this cannot be undone"]
    assert person.names() == []


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_declining_the_elicitation_runs_nothing(server, idp, mode):
    person = Person(server, idp)
    contact = person.add("Declined")

    async def decline(_context, _params):  # type: ignore[no-untyped-def]
        return ElicitResult(action="decline")

    async with sdk_client(server, person.token, mode=mode, elicitation_callback=decline) as (client, _wire):
        refused = await client.call_tool("delete_contact", {"contact_id": contact})
    assert refused.is_error is True and refused.content[0].text == "You declined, so nothing was done."
    assert person.names() == ["Declined"]


@pytest.mark.anyio
async def test_a_client_without_elicitation_gets_the_pending_confirmation(server, idp):
    person = Person(server, idp)
    contact = person.add("No elicitation")
    async with sdk_client(server, person.token, mode="legacy") as (client, _wire):
        pending = await client.call_tool("delete_contact", {"contact_id": contact})
    assert pending.is_error is True and pending.content[0].text.startswith("Not done yet:")
    assert person.names() == ["No elicitation"]


# The confirmation page (embedded authorization server: it needs the user signed in) ---------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = start_embedded(tmp_path_factory.mktemp("confirm-page"))
    yield server
    server.stop_and_check()


def test_the_confirmation_page_lets_the_models_retry_through_once(embedded):
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    client = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Page Test")
    token = client.tokens(user, scope="contacts:read contacts:write")["access_token"]
    call = lambda tool, args: tool_result(embedded.process.call_tool(tool, args, token=token))  # noqa: E731
    contact = call("add_contact", {"name": "Paged"})["structuredContent"]["id"]
    text = result_text(call("delete_contact", {"contact_id": contact}))
    link = re.search(r"opens (\S+/confirm/[A-Za-z0-9_-]+) and presses Confirm", text).group(1)

    page = user.http.get(link)
    assert page.status_code == 200 and "delete your contact Paged" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    without_csrf = user.http.post(link, data={"decision": "confirm"})
    assert without_csrf.status_code == 403
    confirmed = user.http.post(link, data={"csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1),
                                           "decision": "confirm"})
    assert confirmed.status_code == 200 and "Confirmed" in confirmed.text

    assert call("delete_contact", {"contact_id": contact})["isError"] is False  # the retry goes through
    assert call("search_contacts", {"query": "Paged"})["structuredContent"]["result"] == []
    anonymous = httpx.get(link)  # without the owner's sign-in the page shows a login form, never the preview
    assert anonymous.status_code == 200 and "Sign in" in anonymous.text
    assert "delete your contact Paged" not in anonymous.text
    user.close()


def test_another_users_confirmation_page_shows_nothing_and_approves_nothing(embedded):
    owner = BrowserLikeUser(embedded.issuer, embedded.account)
    client = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Owner Client")
    token = client.tokens(owner, scope="contacts:read contacts:write")["access_token"]
    call = lambda tool, args: tool_result(embedded.process.call_tool(tool, args, token=token))  # noqa: E731
    contact = call("add_contact", {"name": "Not yours"})["structuredContent"]["id"]
    link = re.search(r"opens (\S+/confirm/[A-Za-z0-9_-]+) and presses Confirm",
                     result_text(call("delete_contact", {"contact_id": contact}))).group(1)

    stranger = BrowserLikeUser(embedded.issuer, add_user(embedded.data_dir, "mallory", "correct horse battery"))
    assert stranger.sign_in().status_code == 303
    page = stranger.http.get(link)
    assert page.status_code == 404 and "Not yours" not in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', stranger.http.get("/account").text).group(1)
    assert stranger.http.post(link, data={"csrf": csrf, "decision": "confirm"}).status_code == 404
    assert call("delete_contact", {"contact_id": contact})["isError"] is True  # still only pending
    assert [c["name"] for c in call("search_contacts", {"query": "yours"})["structuredContent"]["result"]] == [
        "Not yours"]
    owner.close()
    stranger.close()
