"""The home page, ``/authorize`` opened by hand, and the connected-apps page a person reads.

- ``/`` names the app, the MCP URL to connect to, and links to sign in and to the account page.
- ``/authorize`` without any parameter explains that an app opens it, instead of an OAuth error code.
- ``/account`` tells same-named apps apart (verified domain or "unverified", where each sends the
  person back, when it was approved), lists scopes by their declared descriptions, confirms a
  disconnection, and sets account deletion apart as a danger action.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, hidden_fields

pytestmark = pytest.mark.usefixtures("no_server_errors")

REGISTERING_FROM = "127.0.0.41"  # registrations are limited per address: this module's own


@pytest.fixture
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


def linked(embedded: EmbeddedServer, user: BrowserLikeUser, name: str, redirect_uri: str,
           scope: str = "contacts:read") -> DirectClient:
    client = DirectClient.register(embedded.issuer, embedded.mcp_url, client_name=name, redirect_uri=redirect_uri,
                                   local_address=REGISTERING_FROM)
    client.tokens(user, scope=scope)
    return client


def entries(account_page: str) -> dict[str, str]:
    """Each connected app's entry on the account page (up to the next one), by its client id."""
    found = {}
    for entry in account_page.split('<li class="app">')[1:]:
        client_id = re.search(r'name="client_id" value="([^"]+)"', entry)
        assert client_id is not None, entry
        found[html.unescape(client_id.group(1))] = entry
    return found


# Home page and /authorize by hand --------------------------------------------------------------


def test_home_page_names_the_app_its_mcp_url_and_where_to_sign_in(embedded: EmbeddedServer) -> None:
    response = httpx.get(f"{embedded.issuer}/", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Contacts</h1>" in response.text
    assert f"<code>{embedded.mcp_url}</code>" in response.text
    assert 'href="/login"' in response.text and 'href="/account"' in response.text
    assert "set-cookie" not in response.headers  # the same page for everyone: no session, nothing secret
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_authorize_opened_without_parameters_says_to_start_from_the_app(embedded: EmbeddedServer) -> None:
    """Not ``unsupported_response_type``: a person who opens the address is told what it is for."""
    response = httpx.get(f"{embedded.issuer}/authorize", timeout=10)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Open this page from the app you are connecting</h1>" in response.text
    assert "Start from that app" in response.text
    assert "unsupported_response_type" not in response.text


# Connected apps --------------------------------------------------------------------------------


def test_same_named_apps_show_where_each_sends_you_back_and_when_it_was_approved(
        embedded: EmbeddedServer, user: BrowserLikeUser) -> None:
    first = linked(embedded, user, "Twin App", "http://127.0.0.1:3030/callback")
    second = linked(embedded, user, "Twin App", "http://127.0.0.1:4040/callback")
    apps = entries(user.http.get("/account").text)
    for client, host, other in ((first, "127.0.0.1:3030", "127.0.0.1:4040"),
                                (second, "127.0.0.1:4040", "127.0.0.1:3030")):
        entry = apps[client.client_id]
        assert "<strong>Twin App</strong>" in entry
        assert "Unverified client" in entry  # registered, not identified by a metadata document's domain
        assert f'Sends you back to <span class="host-name">{host}</span>' in entry
        assert other not in entry
        assert re.search(r"Approved on \d{1,2} [A-Z][a-z]+ \d{4} at \d\d:\d\d UTC", entry), entry


def test_account_page_lists_scopes_by_their_declared_descriptions(embedded: EmbeddedServer,
                                                                  user: BrowserLikeUser) -> None:
    client = linked(embedded, user, "Described App", "http://127.0.0.1:3030/callback",
                    scope="contacts:read contacts:write")
    entry = entries(user.http.get("/account").text)[client.client_id]
    assert "<li>See your contacts <span" in entry
    assert "<li>Add, change and delete your contacts <span" in entry


def test_disconnecting_an_app_confirms_that_its_tokens_stopped_working(embedded: EmbeddedServer,
                                                                       user: BrowserLikeUser) -> None:
    client = linked(embedded, user, "Disconnected Notice App", "http://127.0.0.1:3030/callback")
    page = user.http.get("/account")
    answer = user.http.post("/account/revoke", data={"csrf": hidden_fields(page.text)["csrf"],
                                                     "client_id": client.client_id})
    assert answer.status_code == 303
    after = user.http.get(answer.headers["location"])
    assert '<p class="notice" role="status">Disconnected Disconnected Notice App; its tokens stopped working.</p>' \
        in after.text
    assert client.client_id not in entries(after.text)


def test_a_disconnection_notice_shows_only_in_the_session_that_disconnected(embedded: EmbeddedServer,
                                                                            user: BrowserLikeUser) -> None:
    """A crafted or forwarded link cannot put words on someone's account page."""
    client = linked(embedded, user, "Notice Owner App", "http://127.0.0.1:3030/callback")
    page = user.http.get("/account")
    location = user.http.post("/account/revoke", data={"csrf": hidden_fields(page.text)["csrf"],
                                                       "client_id": client.client_id}).headers["location"]
    query = parse_qs(urlsplit(location).query)
    other = BrowserLikeUser(embedded.issuer, embedded.account)
    try:
        assert other.sign_in().status_code == 303
        assert "notice" not in other.http.get(location).text  # another session, same signed link
    finally:
        other.close()
    forged = user.http.get("/account", params={"disconnected": "your bank", "sig": query["sig"][0]})
    assert "notice" not in forged.text and "your bank" not in forged.text


def test_deleting_the_account_is_set_apart_as_a_danger_action(user: BrowserLikeUser) -> None:
    assert user.sign_in().status_code == 303
    account = user.http.get("/account").text
    zone = account[account.index('<section class="danger-zone"'):]
    assert '<a class="button danger" href="/account/delete">Delete my account and data</a>' in zone
    assert account.index('action="/logout"') < account.index('<section class="danger-zone"')  # after everyday ones
    assert '<button class="danger" type="submit">Delete my account and data</button>' in \
        user.http.get("/account/delete").text
