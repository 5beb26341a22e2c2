"""The consent page says what each scope unlocks (issue #17 item 4), and the privacy disclosure is served
as a page and advertised (item 5): ``/privacy``, linked from the consent, account and home pages,
``resource_policy_uri`` in the protected-resource metadata (RFC 9728 §2) and ``op_policy_uri`` in the
authorization-server metadata (RFC 8414 §2), with an external identity provider too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ringfence.authserver.pages import security_headers
from ringfence.privacy.page import disclosure_html
from tests.conftest import served_trusting
from tests.support.idp import TestIdentityProvider, free_port
from tests.support.oauth import (
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    ringfence_cli,
    start_auth_server,
    start_embedded,
)

OUTBOX_APP = str(Path(__file__).parent / "apps.py")
PAGE_CSP = security_headers()["content-security-policy"]
_SCOPE_ITEM = re.compile(r"<code>([^<]+)</code></span>\s*(?:<ul>(.*?)</ul>)?\s*</li>", re.DOTALL)
_SAID = re.compile(r"<li>([^<]+?) <span class=\"muted\">\((.*?)\)</span></li>", re.DOTALL)


@pytest.fixture(scope="module")
def outbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = start_embedded(tmp_path_factory.mktemp("outbox"), target=OUTBOX_APP)
    yield server
    server.stop_and_check()


@pytest.fixture(scope="module")
def person(outbox: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    user = BrowserLikeUser(outbox.issuer, outbox.account)
    assert user.sign_in().status_code == 303
    yield user
    user.close()


def consent_page(outbox: EmbeddedServer, person: BrowserLikeUser, scope: str) -> str:
    client = DirectClient.register(outbox.issuer, outbox.mcp_url, client_name="Chat")
    page = person.http.get(client.authorization_request(scope=scope).url)
    assert page.status_code == 200 and '<form method="post" action="/authorize">' in page.text, page.text
    return page.text


def said_under_each_scope(page: str) -> dict[str, list[tuple[str, str]]]:
    """Each scope on the consent page: the sentences under it, each with the tools it names."""
    return {scope: [(sentence, re.sub(r"</?code>", "", tools)) for sentence, tools in _SAID.findall(items or "")]
            for scope, items in _SCOPE_ITEM.findall(page)}


# The consent page ------------------------------------------------------------------------------------


def test_the_consent_page_says_what_each_scope_lets_the_app_do(outbox, person):
    said = said_under_each_scope(consent_page(outbox, person, "outbox:send outbox:drafts"))
    assert said == {
        "outbox:drafts": [("Lets the app delete your data (you confirm each deletion)", "delete_drafts"),
                          ("Lets the app change your data", "save_draft")],
        "outbox:send": [("Lets the app do things that cannot be undone (you confirm each one)", "send_message"),
                        ("Lets the app act outside your account (for example, send messages)", "send_message")],
    }


def test_a_read_only_scope_is_said_to_only_read(outbox, person):
    said = said_under_each_scope(consent_page(outbox, person, "outbox:read"))
    assert said == {"outbox:read": [("Lets the app read your data, not change it", "list_sent")]}


def test_the_consent_page_shows_the_authors_scope_text_escaped_and_links_the_disclosure(outbox, person):
    page = consent_page(outbox, person, "outbox:read")
    assert "See your &lt;b&gt;sent&lt;/b&gt; messages" in page and "<b>sent</b>" not in page
    assert '<a href="/privacy" target="_blank" rel="noopener noreferrer">privacy and data handling</a>' in page


def test_the_account_and_home_pages_link_the_disclosure(outbox, person):
    assert '<a href="/privacy">privacy and data handling</a>' in person.http.get("/account").text
    assert '<a href="/privacy">privacy and data handling</a>' in httpx.get(f"{outbox.issuer}/").text


# The disclosure page ---------------------------------------------------------------------------------


def test_privacy_serves_the_disclosure_ringfence_privacy_writes(outbox):
    written = ringfence_cli("privacy", OUTBOX_APP)
    assert written.returncode == 0, written.stderr
    page = httpx.get(f"{outbox.issuer}/privacy")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert str(disclosure_html(written.stdout)) in page.text
    assert "<td><code>send_message</code></td>\n<td>sends or changes data in a way that cannot be undone (you " \
           "confirm each call), reaches outside your account</td>" in page.text
    assert '<a href="/account">Your account</a>' in page.text


def test_the_disclosure_page_has_the_pages_csp_and_security_headers(outbox):
    page = httpx.get(f"{outbox.issuer}/privacy")
    assert page.headers["content-security-policy"] == PAGE_CSP
    assert (page.headers["x-frame-options"], page.headers["x-content-type-options"]) == ("DENY", "nosniff")
    assert page.headers["referrer-policy"] == "no-referrer"


def test_the_disclosure_page_escapes_the_authors_text_and_links_the_authors_policy(outbox):
    page = httpx.get(f"{outbox.issuer}/privacy").text
    assert "See your &lt;b&gt;sent&lt;/b&gt; messages" in page and "<b>sent</b>" not in page
    assert '<a href="https://outbox.example.com/privacy">https://outbox.example.com/privacy</a>' in page


def test_the_disclosure_page_takes_no_query_and_no_post(outbox):
    assert httpx.post(f"{outbox.issuer}/privacy").status_code == 405
    assert httpx.get(f"{outbox.issuer}/privacy", params={"x": "<script>"}).text == \
        httpx.get(f"{outbox.issuer}/privacy").text


# Where it is advertised --------------------------------------------------------------------------------


def test_rfc9728_resource_policy_uri_names_the_served_disclosure(outbox):
    document = httpx.get(outbox.process.metadata_url).json()
    assert document["resource_policy_uri"] == f"{outbox.issuer}/privacy"
    assert httpx.get(document["resource_policy_uri"]).status_code == 200


def test_rfc8414_op_policy_uri_names_the_served_disclosure(outbox):
    document = httpx.get(f"{outbox.issuer}/.well-known/oauth-authorization-server").json()
    assert document["op_policy_uri"] == f"{outbox.issuer}/privacy"


def test_with_an_external_identity_provider_the_page_and_resource_policy_uri_are_still_served(
        idp: TestIdentityProvider, tmp_path: Path):
    with served_trusting(idp, tmp_path, target=OUTBOX_APP, introspection=False) as server:
        page = httpx.get(f"{server.base_url}/privacy")
        stylesheet = httpx.get(f"{server.base_url}/static/ringfence.css")
        document = httpx.get(server.metadata_url).json()
        no_server_metadata = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server")
    assert page.status_code == 200 and page.headers["content-security-policy"] == PAGE_CSP
    assert "Accounts are managed by the identity provider" in page.text and 'href="/account"' not in page.text
    assert stylesheet.status_code == 200 and stylesheet.headers["content-type"].startswith("text/css")
    assert document["resource_policy_uri"] == f"{server.base_url}/privacy"
    assert no_server_metadata.status_code == 404


def test_the_standalone_authorization_server_serves_its_own_disclosure(tmp_path: Path):
    auth = start_auth_server(tmp_path, resource=f"http://127.0.0.1:{free_port()}/mcp", scopes_from=OUTBOX_APP)
    try:
        document = httpx.get(f"{auth.issuer}/.well-known/oauth-authorization-server").json()
        page = httpx.get(document["op_policy_uri"])
    finally:
        auth.stop_and_check()
    assert document["op_policy_uri"] == f"{auth.issuer}/privacy"
    assert page.status_code == 200 and "has no tools of its own" in page.text
    assert "<td><code>outbox:send</code></td>" in page.text  # the permissions it grants
