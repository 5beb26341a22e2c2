"""The confirmation page says who asks and what the app reports, and its answer reaches the model.

Issue #16 items 11 and 15: the page names the app and the OAuth client asking; shows the preview as
quoted data, escaped, apart from ringfence's own sentence; after Confirm says to go back to the
chat; after Decline the model's retry of the same call is told the user declined (for
``DECLINE_REMEMBERED_SECONDS``), instead of getting a new pending confirmation, and the decline
is on record.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

import pytest

from tests.support.confirmations import SignedInCaller
from tests.support.http import result_text
from tests.support.oauth import BrowserLikeUser, EmbeddedServer, audit_records

pytestmark = pytest.mark.usefixtures("no_server_errors")

DECLINED = "The user declined this action; do not retry unless they ask."
_QUOTE = re.compile(r'<blockquote class="reported"><bdi>(.*?)</bdi></blockquote>', re.S)


@pytest.fixture(scope="module")
def caller(embedded: EmbeddedServer) -> Iterator[SignedInCaller]:
    user = BrowserLikeUser(embedded.issuer, embedded.account)
    yield SignedInCaller(embedded, user, client_name="Page Naming Client", scope="contacts:write")
    user.close()


def ask_to_delete(caller: SignedInCaller, name: str) -> tuple[int, str]:
    """A new contact, and the confirmation page of the call deleting it."""
    contact = caller.call("add_contact", {"name": name})["structuredContent"]["id"]
    return contact, caller.page_link(caller.call("delete_contact", {"contact_id": contact}))


def test_the_page_names_the_app_and_the_client_that_asks(caller):
    _contact, link = ask_to_delete(caller, "Named Asker")
    page = caller.user.http.get(link).text
    assert ('<strong>Page Naming Client</strong> <span class="badge">unverified</span> asks <strong>Contacts</strong> '
            "to run <code>delete_contact</code> for you.") in page


def test_the_page_shows_the_preview_as_quoted_escaped_data_apart_from_its_own_sentence(caller):
    contact, link = ask_to_delete(caller, 'Mom <b>"safe"</b>. Nothing will be deleted, just press Confirm')
    page = caller.user.http.get(link).text
    [quoted] = _QUOTE.findall(page)
    assert quoted == (f"delete your contact Mom &lt;b&gt;&#34;safe&#34;&lt;/b&gt;. Nothing will be deleted, just press "
                      f"Confirm (id {contact}); this cannot be undone")
    outside = _QUOTE.sub("", page)
    assert "Nothing will be deleted" not in outside and "<b>" not in page
    assert "What Contacts reports it will do, quoted as the app wrote it." in outside


def test_after_confirming_the_page_says_to_go_back_to_the_chat(caller):
    _contact, link = ask_to_delete(caller, "Confirmed Then Chat")
    done = caller.answer_page(link, "confirm")
    assert done.status_code == 200 and "<h1>Confirmed</h1>" in done.text
    assert "Go back to the chat: <strong>Page Naming Client</strong>" in done.text


def test_after_declining_the_models_retry_is_told_the_user_declined_and_the_decline_is_on_record(caller, embedded):
    contact, link = ask_to_delete(caller, "Declined Contact")
    declined = caller.answer_page(link, "decline")
    assert declined.status_code == 200 and "<h1>Declined</h1>" in declined.text
    assert "Go back to the chat" in declined.text

    for _ in range(2):  # the model retries, and again: told each time, with no new pending confirmation
        retry = caller.call("delete_contact", {"contact_id": contact})
        assert retry["isError"] is True and result_text(retry).startswith(DECLINED)
        assert "ringfence/confirmation" not in (retry.get("_meta") or {})
    other = caller.call("delete_contact", {"contact_id": contact + 1000})  # other arguments: asked as usual
    assert result_text(other).startswith("Not done yet")
    [decline] = [record for record in audit_records(embedded, "--kind", "confirmation.declined",
                                                    "--tool", "delete_contact")
                 if (record["payload"] or {}).get("client_id") == caller.client.client_id]
    assert (decline["outcome"], decline["payload"]["channel"]) == ("declined", "page")
    told = [record["outcome"] for record in audit_records(embedded, "--kind", "tool.call", "--tool", "delete_contact")
            if (record["payload"] or {}).get("client_id") == caller.client.client_id][-3:]
    assert told == ["declined", "declined", "confirmation_required"]


def test_a_decline_is_remembered_for_a_while_only(caller, embedded):
    contact, link = ask_to_delete(caller, "Declined Then Asked Again")
    caller.answer_page(link, "decline")
    assert result_text(caller.call("delete_contact", {"contact_id": contact})).startswith(DECLINED)
    with sqlite3.connect(embedded.database_file) as db:  # the while is over
        db.execute("UPDATE ringfence_confirmations SET expires_at = 0 WHERE status = 'declined'")
    assert result_text(caller.call("delete_contact", {"contact_id": contact})).startswith("Not done yet")
