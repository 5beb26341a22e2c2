"""The consent page offers the scopes the app's tools need besides the request, ticked, to untick.

Derived from the tool declarations alone (``policy.scopes_beyond``); granted only when the signed-in
person posts the box the page showed (CSRF-protected form); the token response says the scope
granted (RFC 6749 §3.3); a refresh never widens it (RFC 6749 §6). The challenges are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ringfence.app import App
from ringfence.policy import scopes_beyond
from tests.clients.support import KeepsTickedUser, ticked_boxes
from tests.support.oauth import DirectClient, EmbeddedServer, hidden_fields, oauth_error, page_kind, query_of

pytestmark = pytest.mark.usefixtures("embedded")


@pytest.fixture
def user(embedded: EmbeddedServer) -> Iterator[KeepsTickedUser]:
    person = KeepsTickedUser(embedded.issuer, embedded.account, local_address="127.0.0.3")
    yield person
    person.close()


def client_of(embedded: EmbeddedServer, name: str) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url, client_name=name, local_address="127.0.0.3")


def consent_form(user: KeepsTickedUser, url: str) -> dict[str, str]:
    """The consent page's form for ``url`` as the browser would post it with Allow, boxes as shown."""
    page = user.http.get(url)
    if page_kind(page) == "login":
        user.submit_login(page)
        page = user.http.get(url)
    assert page_kind(page) == "consent", page.text[:300]
    return {**hidden_fields(page.text), **ticked_boxes(page.text), "decision": "allow"}


def redeem(client: DirectClient, user: KeepsTickedUser, request, form: dict[str, str]) -> dict:  # type: ignore[no-untyped-def]
    answer = user.http.post("/authorize", data=form)
    assert answer.status_code == 302, answer.text[:300]
    token = client.redeem(query_of(answer.headers["location"])["code"], request.verifier)
    assert token.status_code == 200, token.text
    return token.json()


def test_the_offer_is_what_the_tools_need_beyond_the_request_and_what_it_implies(contacts_app: App) -> None:
    """``contacts:write`` implies ``contacts:read``: asked for read, write is offered; asked for write,
    nothing; asked for nothing, write alone (read comes with it)."""
    tools = contacts_app.tools.values()
    assert scopes_beyond(["contacts:read"], contacts_app.catalog, tools) == {"contacts:write"}
    assert scopes_beyond(["contacts:write"], contacts_app.catalog, tools) == frozenset()
    assert scopes_beyond([], contacts_app.catalog, tools) == {"contacts:write"}


def test_a_request_for_read_is_offered_write_ticked_and_keeping_it_grants_both(embedded: EmbeddedServer,
                                                                               user: KeepsTickedUser) -> None:
    """RFC 6749 §3.3: the scope granted differs from the request, and the token response says so."""
    client = client_of(embedded, "Offer Client")
    request = client.authorization_request(scope="contacts:read")
    form = consent_form(user, request.url)
    assert form["also:contacts:write"] == "yes"
    assert form["scope"] == "contacts:read"
    token = redeem(client, user, request, form)
    assert set(token["scope"].split()) == {"contacts:read", "contacts:write"}


def test_unticking_keeps_the_request_only(embedded: EmbeddedServer, user: KeepsTickedUser) -> None:
    """A box the person unticked is not posted: the grant is the request, no more."""
    client = client_of(embedded, "Untick Client")
    request = client.authorization_request(scope="contacts:read")
    form = consent_form(user, request.url)
    del form["also:contacts:write"]
    assert redeem(client, user, request, form)["scope"] == "contacts:read"


def test_a_box_the_page_did_not_offer_is_ignored(embedded: EmbeddedServer, user: KeepsTickedUser) -> None:
    """Never more than the person saw: boxes for an undeclared scope, for ``offline_access`` or for a
    scope the page did not offer add nothing (the server recomputes the offer)."""
    client = client_of(embedded, "Forging Client")
    request = client.authorization_request(scope="contacts:read")
    form = {**consent_form(user, request.url), "also:admin": "yes", "also:offline_access": "yes"}
    del form["also:contacts:write"]
    assert redeem(client, user, request, form)["scope"] == "contacts:read"


def test_the_kept_scopes_are_remembered_and_a_refresh_never_widens(embedded: EmbeddedServer,
                                                                   user: KeepsTickedUser) -> None:
    """The consent remembered is what the person allowed (a later request for write is not asked again);
    a refresh asking to widen a read-only grant is refused (RFC 6749 §6: ``invalid_scope``)."""
    client = client_of(embedded, "Remember Client")
    request = client.authorization_request(scope="contacts:read")
    redeem(client, user, request, consent_form(user, request.url))
    later = user.http.get(client.authorization_request(scope="contacts:write").url)
    assert later.status_code == 302 and "code" in query_of(later.headers["location"])

    narrow = client_of(embedded, "Narrow Client")
    request = narrow.authorization_request(scope="contacts:read")
    form = consent_form(user, request.url)
    del form["also:contacts:write"]
    refresh_token = redeem(narrow, user, request, form)["refresh_token"]
    widened = narrow.refresh(refresh_token, scope="contacts:read contacts:write")
    oauth_error(widened, 400, "invalid_scope")


def test_the_offer_needs_the_forms_csrf_token(embedded: EmbeddedServer, user: KeepsTickedUser) -> None:
    """MCP security best practices: the consent form is CSRF-protected, the offer with it."""
    client = client_of(embedded, "CSRF Client")
    request = client.authorization_request(scope="contacts:read")
    form = {**consent_form(user, request.url), "csrf": "forged"}
    answer = user.http.post("/authorize", data=form)
    assert answer.status_code == 403
    assert "location" not in answer.headers
