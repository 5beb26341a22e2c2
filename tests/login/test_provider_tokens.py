"""Tools that act as the person at their login provider (``provider_scopes=``), against ``oidc-provider``.

The app (tests/login/provider_notes_app.py) declares a tool that calls the provider's userinfo endpoint
with the caller's token there. The sign-in asks for the tool's scope and a refresh token; the tokens
are kept sealed (AES-256-GCM, key file 0600) and reach tools only through the principal; they are
refreshed before they expire, withheld from results, never logged, and deleted (and revoked at the
provider) when the person removes the access, disconnects their last app or deletes their account.
The provider's access tokens live 62 seconds here, so a token is refreshed two seconds after it is
issued (it is renewed 60 seconds before it expires).
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import httpx
import pytest

from ringfence.authserver.provider_tokens import KEY_NAME
from ringfence.store.sealed import Sealer
from tests.clients.support import ticked_boxes
from tests.support.browser import low_contrast, screenshot
from tests.support.http import tool_result
from tests.support.idp import free_port
from tests.support.login import CORP_CALLBACK, PROVIDER_PASSWORD, NodeOpenIdProvider, ProviderUser, continue_link
from tests.support.oauth import (
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    audit_records,
    hidden_fields,
    page_kind,
    query_of,
    ringfence_cli,
    server_errors,
    start_embedded,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

APP = str(Path(__file__).with_name("provider_notes_app.py"))
ALICE_AT_CORP = "248289761001"


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeOpenIdProvider, EmbeddedServer]]:
    data_dir = tmp_path_factory.mktemp("provider-tokens")
    port = free_port()
    provider = NodeOpenIdProvider(f"http://127.0.0.1:{port}{CORP_CALLBACK}", access_token_seconds=62).start()
    try:
        server = start_embedded(data_dir, "--login-provider",
                                provider.spec(data_dir / "corp.secret", "allowed-domain=example.com"),
                                port=port, target=APP, env={"CORP_USERINFO": f"{provider.issuer}/me"})
        yield provider, server
        server.stop()
        # The one traceback expected: borrow_corp_token's, a tool that asks for a token it did not declare.
        unexpected = [line for line in server_errors(server.logs()) if "borrow_corp_token" not in line]
        assert unexpected == [], "\n".join(unexpected)
    finally:
        provider.stop()


@pytest.fixture
def provider(linked: tuple[NodeOpenIdProvider, EmbeddedServer]) -> NodeOpenIdProvider:
    return linked[0]


@pytest.fixture
def server(linked: tuple[NodeOpenIdProvider, EmbeddedServer]) -> EmbeddedServer:
    return linked[1]


def link(provider: NodeOpenIdProvider, server: EmbeddedServer, login: str) -> tuple[ProviderUser, str]:
    """A person signs in at the provider while linking an MCP client: their browser, and the client's token."""
    client = DirectClient.register(server.issuer, server.mcp_url, client_name=f"Notes client of {login}")
    request = client.authorization_request(scope="notes:read")
    user = ProviderUser(provider.issuer, login)
    login_page = user.go(request.url)
    assert page_kind(login_page) == "login"
    consent = user.go(urljoin(server.issuer, continue_link(login_page.text)), stop_at=client.redirect_uri)
    assert page_kind(consent) == "consent", consent.text[:500]
    assert "Lets the app use your account where you sign in, as you" in consent.text  # derived from provider_scopes
    answer = user.http.post(f"{server.issuer}/authorize",
                            data={**hidden_fields(consent.text), **ticked_boxes(consent.text), "decision": "allow"})
    token = client.redeem(query_of(answer.headers["location"])["code"], request.verifier)
    assert token.status_code == 200, token.text
    return user, token.json()["access_token"]


def call(server: EmbeddedServer, tool: str, token: str) -> dict:
    return tool_result(server.process.call_tool(tool, {}, token=token))


def text_of(result: dict) -> str:
    return result["content"][0]["text"]


def answered(result: dict) -> dict:
    """What an open-world tool returned, from inside the untrusted-data marking of its text."""
    text = text_of(result)
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def kept_row(server: EmbeddedServer) -> list[tuple]:
    with sqlite3.connect(server.data_dir / "ringfence.db") as db:
        return db.execute("SELECT user_id, provider, scope, access_token, refresh_token, expires_at "
                          "FROM ringfence_provider_tokens").fetchall()


def row_of(server: EmbeddedServer, username: str) -> tuple:
    (row,) = [row for row in kept_row(server) if row[0] == _user_id(server, username)]
    return row


def opened_tokens(server: EmbeddedServer, row: tuple) -> tuple[str, str | None]:
    """What the test (never the client) can read with the data folder's key: the row's two tokens."""
    sealer = Sealer.in_data_dir(server.data_dir, KEY_NAME)
    context = f"ringfence_provider_tokens|{row[0]}|{row[1]}"
    refresh = sealer.open(row[4], f"{context}|refresh_token") if row[4] else None
    return sealer.open(row[3], f"{context}|access_token"), refresh


def userinfo(provider: NodeOpenIdProvider, access_token: str) -> httpx.Response:
    return httpx.get(f"{provider.issuer}/me", headers={"authorization": f"Bearer {access_token}"}, timeout=10)


def account_csrf(user: ProviderUser, server: EmbeddedServer) -> tuple[str, str]:
    page = user.http.get(f"{server.issuer}/account")
    assert page.status_code == 200
    return page.text, hidden_fields(page.text)["csrf"]


def test_a_tool_acts_as_the_person_at_their_provider_with_their_token_there(provider: NodeOpenIdProvider,
                                                                            server: EmbeddedServer) -> None:
    user, token = link(provider, server, "alice")
    # The provider's consent page asked for the tool's scope.
    assert any("notes:read" in page.text for page in user.provider_pages)
    found = call(server, "whoami_at_corp", token)
    assert found["isError"] is False, found
    answer = answered(found)
    assert answer["subject"] == ALICE_AT_CORP and "notes:read" in answer["scopes"]
    assert "offline_access" in answer["scopes"]  # a refresh token was asked for (OpenID Connect Core §11)
    assert "access_token" not in json.dumps(found)


def test_the_tokens_are_kept_sealed_under_a_private_key_file(provider: NodeOpenIdProvider,
                                                             server: EmbeddedServer) -> None:
    link(provider, server, "alice")
    key = server.data_dir / f"{KEY_NAME}.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    row = row_of(server, "corp:alice@example.com")
    assert row[3].startswith("v1.") and row[4].startswith("v1.")  # sealed, and a refresh token was given
    access, refresh = opened_tokens(server, row)
    assert access not in row[3] and refresh not in row[4]
    assert userinfo(provider, access).json()["sub"] == ALICE_AT_CORP
    database = (server.data_dir / "ringfence.db").read_bytes()
    assert access.encode() not in database and refresh.encode() not in database


def test_an_access_token_about_to_expire_is_refreshed_before_the_tool_gets_it(provider: NodeOpenIdProvider,
                                                                              server: EmbeddedServer) -> None:
    _, token = link(provider, server, "alice")
    first = answered(call(server, "whoami_at_corp", token))
    time.sleep(3)  # 62-second tokens are renewed 60 seconds before they expire
    second = call(server, "whoami_at_corp", token)
    assert second["isError"] is False, second
    assert answered(second)["subject"] == ALICE_AT_CORP
    assert answered(second)["seen"] != first["seen"]  # a new access token, and it works there


def test_a_result_that_carries_the_token_is_withheld_from_the_client(provider: NodeOpenIdProvider,
                                                                     server: EmbeddedServer) -> None:
    _, token = link(provider, server, "alice")
    leaked = call(server, "echo_corp_token", token)
    assert leaked["isError"] is True and "withheld" in text_of(leaked)
    access, _ = opened_tokens(server, row_of(server, "corp:alice@example.com"))
    assert access not in json.dumps(leaked)
    assert "put the caller's login-provider token in its result" in server.logs()


def test_a_tool_that_declares_no_provider_scopes_gets_no_token(provider: NodeOpenIdProvider,
                                                               server: EmbeddedServer) -> None:
    _, token = link(provider, server, "alice")
    refused = call(server, "borrow_corp_token", token)
    assert refused["isError"] is True and "failed unexpectedly" in text_of(refused)
    assert "borrow_corp_token declares no provider_scopes for login provider 'corp'" in server.logs()


def test_the_tokens_are_never_logged_nor_audited(provider: NodeOpenIdProvider, server: EmbeddedServer) -> None:
    _, token = link(provider, server, "alice")
    assert call(server, "whoami_at_corp", token)["isError"] is False
    shown = ringfence_cli("audit", "show", "--data-dir", str(server.data_dir)).stdout
    for row in kept_row(server):
        for secret in opened_tokens(server, row):
            assert secret and secret not in server.logs() and secret not in shown


def test_removing_the_access_on_the_account_page_deletes_the_tokens_and_revokes_them(
        provider: NodeOpenIdProvider, server: EmbeddedServer) -> None:
    user, token = link(provider, server, "bob")
    access, _ = opened_tokens(server, row_of(server, "corp:bob@example.com"))
    page, csrf = account_csrf(user, server)
    assert "Access at Example Corp" in page and "<code>notes:read</code>" in page
    removed = user.http.post(f"{server.issuer}/account/provider-access", data={"csrf": csrf})
    assert removed.status_code == 303
    assert _user_id(server, "corp:bob@example.com") not in [row[0] for row in kept_row(server)]
    assert userinfo(provider, access).status_code == 401  # RFC 7009: revoked at the provider too
    again = call(server, "whoami_at_corp", token)
    assert again["isError"] is True
    assert "Sign in with Example Corp again" in text_of(again) and f"{server.issuer}/login/corp?next=" in text_of(again)
    assert audit_records(server, "--kind", "consent.revoked")


def test_removing_the_access_needs_the_page_form(provider: NodeOpenIdProvider, server: EmbeddedServer) -> None:
    user, _ = link(provider, server, "alice")
    forged = user.http.post(f"{server.issuer}/account/provider-access", data={"csrf": "not-the-token"})
    assert forged.status_code in (400, 403)
    assert _user_id(server, "corp:alice@example.com") in [row[0] for row in kept_row(server)]


def test_disconnecting_the_last_app_deletes_the_tokens(provider: NodeOpenIdProvider, server: EmbeddedServer) -> None:
    user, _ = link(provider, server, "bob")
    bob = _user_id(server, "corp:bob@example.com")
    page, csrf = account_csrf(user, server)
    for client_id in _connected_client_ids(page):
        user.http.post(f"{server.issuer}/account/revoke", data={"csrf": csrf, "client_id": client_id})
    assert bob not in [row[0] for row in kept_row(server)]


def test_the_export_says_what_access_is_kept_but_never_the_tokens(provider: NodeOpenIdProvider,
                                                                  server: EmbeddedServer) -> None:
    user, _ = link(provider, server, "alice")
    _, csrf = account_csrf(user, server)
    exported = user.http.post(f"{server.issuer}/account/export", data={"csrf": csrf})
    access = json.loads(exported.text)["account"]["provider_access"]
    assert access["provider"] == "corp" and "notes:read" in access["scopes"] and access["renewable"] is True
    for row in kept_row(server):
        for secret in opened_tokens(server, row):
            assert secret not in exported.text


def test_deleting_the_account_deletes_the_tokens(provider: NodeOpenIdProvider, server: EmbeddedServer) -> None:
    user, _ = link(provider, server, "bob")
    bob = _user_id(server, "corp:bob@example.com")
    page = user.http.get(f"{server.issuer}/account/delete")
    sent = user.http.post(f"{server.issuer}/account/delete", data={"csrf": hidden_fields(page.text)["csrf"]})
    deleted = user.follow(sent)
    assert "Account deleted" in deleted.text
    assert bob not in [row[0] for row in kept_row(server)]


def test_a_refresh_token_the_provider_refuses_ends_the_access_and_asks_the_person_back(
        provider: NodeOpenIdProvider, server: EmbeddedServer) -> None:
    _, token = link(provider, server, "alice")
    alice = _user_id(server, "corp:alice@example.com")
    _, refresh = opened_tokens(server, row_of(server, "corp:alice@example.com"))
    revoked = httpx.post(f"{provider.issuer}/token/revocation", data={"token": refresh},
                         auth=(provider.client_id, provider.client_secret), timeout=10)
    assert revoked.status_code == 200
    time.sleep(3)  # the access token is now due for renewal, which the provider refuses
    refused = call(server, "whoami_at_corp", token)
    assert refused["isError"] is True and "Sign in with Example Corp again" in text_of(refused)
    assert alice not in [row[0] for row in kept_row(server)]
    assert "refresh token of an account was refused" in server.logs()


def _user_id(server: EmbeddedServer, username: str) -> int:
    with sqlite3.connect(server.data_dir / "ringfence.db") as db:
        (found,) = db.execute("SELECT id FROM ringfence_users WHERE username = ?", (username,)).fetchone()
    return found


def _connected_client_ids(page: str) -> list[str]:
    marker, found = 'name="client_id" value="', []
    for part in page.split(marker)[1:]:
        found.append(part[:part.index('"')].replace("&amp;", "&"))
    return found


def test_serving_tools_that_act_at_an_unnamed_provider_is_refused(provider: NodeOpenIdProvider,
                                                                  tmp_path: Path) -> None:
    spec = provider.spec(tmp_path / "secret", "allowed-domain=example.com", name="other")
    refused = ringfence_cli("serve", APP, "--data-dir", str(tmp_path), "--login-provider", spec, "--port", "1")
    assert refused.returncode != 0
    assert "act at login provider corp (provider_scopes=), but no --login-provider is named so" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_serving_tools_that_act_at_a_provider_without_the_embedded_server_is_refused(tmp_path: Path) -> None:
    refused = ringfence_cli("serve", APP, "--data-dir", str(tmp_path), "--issuer", "https://idp.example.com",
                           "--jwks-url", "https://idp.example.com/jwks", "--port", "1")
    assert refused.returncode != 0 and "needs the embedded authorization server" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_an_account_that_signs_in_elsewhere_is_told_the_tool_cannot_act_for_it(server: EmbeddedServer) -> None:
    """The local password account: no token at the provider, and signing in there would make another
    account (accounts are never linked), so the tool says it cannot act for it rather than sending it there."""
    client = DirectClient.register(server.issuer, server.mcp_url, client_name="Owner's notes client")
    user = BrowserLikeUser(server.issuer, server.account)
    try:
        token = client.tokens(user, scope="notes:read")["access_token"]
    finally:
        user.close()
    refused = call(server, "whoami_at_corp", token)
    assert refused["isError"] is True
    assert "does not sign in with Example Corp" in text_of(refused) and "/login/corp" not in text_of(refused)


_SET = {"scope": "UPDATE ringfence_provider_tokens SET scope = ? WHERE user_id = ?",
        "access_token": "UPDATE ringfence_provider_tokens SET access_token = ? WHERE user_id = ?"}


def _set_row(server: EmbeddedServer, username: str, **values: str) -> None:
    with sqlite3.connect(server.data_dir / "ringfence.db") as db:
        for column, value in values.items():
            db.execute(_SET[column], (value, _user_id(server, username)))


def test_a_token_not_granted_the_scopes_the_tool_declares_is_not_handed_out(provider: NodeOpenIdProvider,
                                                                            server: EmbeddedServer) -> None:
    _, token = link(provider, server, "alice")
    _set_row(server, "corp:alice@example.com", scope="openid email")  # the person granted less at the provider
    refused = call(server, "whoami_at_corp", token)
    assert refused["isError"] is True and "was not granted what this needs" in text_of(refused)
    assert f"{server.issuer}/login/corp?next=" in text_of(refused)


def test_a_sealed_token_moved_from_another_row_does_not_open_and_is_deleted(provider: NodeOpenIdProvider,
                                                                           server: EmbeddedServer) -> None:
    """Each value is bound to its row: bob's sealed token copied into alice's row opens for no one."""
    link(provider, server, "bob")
    _, token = link(provider, server, "alice")
    _set_row(server, "corp:alice@example.com", access_token=row_of(server, "corp:bob@example.com")[3])
    refused = call(server, "whoami_at_corp", token)
    assert refused["isError"] is True and "Sign in with Example Corp again" in text_of(refused)
    assert _user_id(server, "corp:alice@example.com") not in [row[0] for row in kept_row(server)]
    assert "do not open with provider-tokens.key" in server.logs()


def test_the_account_page_shows_the_access_kept_and_removes_it_in_a_browser(provider: NodeOpenIdProvider,
                                                                           server: EmbeddedServer, page: Page) -> None:
    from playwright.sync_api import expect

    link(provider, server, "alice")  # an app is connected: the link a tool gives asks for its access again
    page.goto(f"{server.issuer}/login/corp?next=%2Faccount%23provider-access")
    page.locator("input[name=login]").fill("alice")
    page.locator("input[name=password]").fill(PROVIDER_PASSWORD)
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # the provider's consent: notes:read, offline access
    page.wait_for_url(f"{server.issuer}/account#provider-access")
    heading = page.get_by_role("heading", name="Access at Example Corp")
    expect(heading).to_be_visible()
    expect(page.locator("p", has_text="can act as you at Example Corp")).to_contain_text("notes:read")
    assert low_contrast(page) == []
    screenshot(page, "account-provider-access")
    page.get_by_role("button", name="Remove access at Example Corp").click()
    page.wait_for_url(f"{server.issuer}/account")
    expect(heading).to_have_count(0)
    assert _user_id(server, "corp:alice@example.com") not in [row[0] for row in kept_row(server)]
