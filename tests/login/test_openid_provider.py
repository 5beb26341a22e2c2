"""Sign-in through a real OpenID provider nobody here wrote: ``oidc-provider`` under Node, on loopback.

The person follows the provider's own sign-in and consent pages (its development pages take any
password); ringfence checks the ID token and who may sign in (``allowed-domain=example.com``,
verified addresses only), provisions the account at the first sign-in, keyed by the provider's
issuer and subject, and links MCP clients for it like any other account.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urljoin

import pytest

from tests.clients.support import ticked_boxes
from tests.support.http import tool_result
from tests.support.idp import free_port
from tests.support.login import CORP_CALLBACK, NodeOpenIdProvider, ProviderUser, continue_link
from tests.support.oauth import (
    DirectClient,
    EmbeddedServer,
    audit_records,
    hidden_fields,
    page_kind,
    query_of,
    ringfence_cli,
    start_embedded,
)
from tests.support.serve import CONTACTS_APP, ServeProcess


def person(provider: NodeOpenIdProvider, login: str) -> ProviderUser:
    return ProviderUser(provider.issuer, login)


def signed_in(provider: NodeOpenIdProvider, server: EmbeddedServer, login: str) -> ProviderUser:
    user = person(provider, login)
    account = user.go(f"{server.issuer}/login/corp?next=/account")
    assert account.status_code == 200 and f"corp:{login}@example.com" in account.text, account.text[:500]
    return user


def provisioned(server: EmbeddedServer) -> list[dict]:
    return audit_records(server, "--kind", "user.provisioned")


def test_the_sign_in_page_offers_the_provider_beside_the_password_form(server: EmbeddedServer) -> None:
    page = ProviderUser(server.issuer, "").http.get(f"{server.issuer}/login?next=/account")
    assert page.status_code == 200
    assert '<a class="button primary" href="/login/corp?next=%2Faccount">Continue with Example Corp</a>' in page.text
    assert 'name="password"' in page.text  # local passwords stay on unless turned off


def test_a_colleague_signs_in_at_the_provider_and_is_provisioned_once(provider: NodeOpenIdProvider,
                                                                      server: EmbeddedServer) -> None:
    before = len(provisioned(server))
    first = person(provider, "alice").go(f"{server.issuer}/login/corp?next=/account")
    assert first.status_code == 200 and "corp:alice@example.com" in first.text
    # The provider asked for the identity scopes, with PKCE and a nonce, at its own pages.
    again = person(provider, "alice").go(f"{server.issuer}/login/corp?next=/account")
    assert again.status_code == 200 and "corp:alice@example.com" in again.text
    assert len(provisioned(server)) == before + 1  # the second sign-in found the account by (issuer, subject)


def test_an_mcp_client_links_through_the_provider_sign_in_and_calls_a_tool(provider: NodeOpenIdProvider,
                                                                           server: EmbeddedServer) -> None:
    client = DirectClient.register(server.issuer, server.mcp_url, client_name="Provider Linked Client")
    request = client.authorization_request(scope="contacts:read")
    user = person(provider, "bob")
    login_page = user.go(request.url)
    assert page_kind(login_page) == "login"
    start = urljoin(server.issuer, continue_link(login_page.text))
    consent = user.go(start, stop_at=client.redirect_uri)
    assert page_kind(consent) == "consent", consent.text[:500]
    answer = user.http.post(f"{server.issuer}/authorize",
                            data={**hidden_fields(consent.text), **ticked_boxes(consent.text), "decision": "allow"})
    assert answer.status_code == 302 and answer.headers["location"].startswith(client.redirect_uri)
    token = client.redeem(query_of(answer.headers["location"])["code"], request.verifier)
    assert token.status_code == 200, token.text
    found = tool_result(server.process.call_tool("search_contacts", {"query": "x"},
                                                 token=token.json()["access_token"]))
    assert found["isError"] is False


@pytest.mark.parametrize("login", ["mallory", "eve"], ids=["other-domain", "unverified-address"])
def test_an_account_the_rules_do_not_admit_is_refused_and_nothing_is_made(provider: NodeOpenIdProvider,
                                                                          server: EmbeddedServer, login: str) -> None:
    """mallory@elsewhere.test is outside example.com; eve@example.com is not verified by the provider."""
    before = len(provisioned(server))
    refused = person(provider, login).go(f"{server.issuer}/login/corp?next=/account")
    assert refused.status_code == 403
    assert "may not sign in" in refused.text and "access_denied" in refused.text
    assert len(provisioned(server)) == before
    assert audit_records(server, "--kind", "auth.failure", "--outcome", "login_not_allowed")


def test_the_provider_answer_counts_only_in_the_browser_that_started_the_sign_in_and_only_once(
        provider: NodeOpenIdProvider, server: EmbeddedServer) -> None:
    user = person(provider, "alice")
    callback = user.go(f"{server.issuer}/login/corp?next=/account", stop_at=server.issuer + CORP_CALLBACK)
    location = urljoin(server.issuer, callback.headers["location"])
    elsewhere = person(provider, "alice")  # another browser: login CSRF, or a code that leaked
    elsewhere.http.get(f"{server.issuer}/login")  # with a session of its own
    refused = elsewhere.http.get(location)
    assert refused.status_code == 400 and "invalid_state" in refused.text
    assert user.http.get(location).status_code == 303  # the browser that started it is signed in
    assert user.http.get(location).status_code == 400  # once


def test_the_export_names_where_the_account_signs_in(provider: NodeOpenIdProvider, server: EmbeddedServer) -> None:
    user = signed_in(provider, server, "alice")
    account = user.http.get(f"{server.issuer}/account")
    exported = user.http.post(f"{server.issuer}/account/export", data={"csrf": _csrf(account.text)})
    assert exported.status_code == 200
    signs_in_at = json.loads(exported.text)["account"]["signs_in_at"]
    assert signs_in_at["issuer"] == provider.issuer and signs_in_at["subject"] == "248289761001"
    assert signs_in_at["email"] == "alice@example.com" and signs_in_at["provider"] == "corp"


def _csrf(page: str) -> str:
    return hidden_fields(page)["csrf"]


def test_deleting_a_provider_account_has_the_provider_sign_the_person_in_again(provider: NodeOpenIdProvider,
                                                                               server: EmbeddedServer) -> None:
    before = len(provisioned(server))
    user = signed_in(provider, server, "bob")
    page = user.http.get(f"{server.issuer}/account/delete")
    assert "Sign in again with Example Corp and delete" in page.text and 'name="password"' not in page.text
    assert f"form-action 'self' {provider.issuer}" in page.headers["content-security-policy"]
    sent = user.http.post(f"{server.issuer}/account/delete", data={"csrf": _csrf(page.text)})
    assert sent.status_code == 303
    assert query_of(sent.headers["location"])["prompt"] == "login"
    assert query_of(sent.headers["location"])["max_age"] == "0"  # OpenID Connect Core §3.1.2.1
    deleted = user.follow(sent)
    assert deleted.status_code == 200 and "Account deleted" in deleted.text
    assert audit_records(server, "--kind", "user.deleted")
    signed_in(provider, server, "bob")  # a new sign-in makes a new account
    assert len(provisioned(server)) >= before + 1


def test_signing_in_again_as_someone_else_deletes_nothing(provider: NodeOpenIdProvider,
                                                          server: EmbeddedServer) -> None:
    user = signed_in(provider, server, "alice")
    page = user.http.get(f"{server.issuer}/account/delete")
    sent = user.http.post(f"{server.issuer}/account/delete", data={"csrf": _csrf(page.text)})
    user.login = "bob"
    refused = user.follow(sent)
    assert refused.status_code == 403 and "Nothing was deleted" in refused.text
    assert "corp:alice@example.com" in user.http.get(f"{server.issuer}/account").text


def test_the_provider_being_unreachable_fails_closed_with_a_page_that_says_so(tmp_path: Path) -> None:
    dead = NodeOpenIdProvider("http://127.0.0.1:1/unused")  # never started: nothing listens on its port
    spec = dead.spec(tmp_path / "secret", "allowed-domain=example.com")
    server = start_embedded(tmp_path, "--login-provider", spec)
    try:
        page = ProviderUser(dead.issuer, "alice").http.get(f"{server.issuer}/login/corp?next=/account")
        assert page.status_code == 503 and page.headers["retry-after"] == "60"
        assert "Signing in with Example Corp is not possible right now" in page.text
        assert "Traceback" not in page.text and "127.0.0.1" not in page.text
    finally:
        server.stop()
    assert "Traceback" not in server.logs() and "login provider corp unavailable" in server.logs()


def test_a_provider_account_gets_no_password(provider: NodeOpenIdProvider, server: EmbeddedServer) -> None:
    """It signs in at its provider only: the operator cannot give it a password, and none is accepted."""
    signed_in(provider, server, "alice")
    refused = ringfence_cli("users", "passwd", "corp:alice@example.com", "--password-stdin",
                            "--data-dir", str(server.data_dir), stdin="a-long-enough-password\n")
    assert refused.returncode != 0 and "signs in at a login provider" in refused.stderr
    login = ProviderUser(provider.issuer, "").http
    page = login.get(f"{server.issuer}/login")
    wrong = login.post(f"{server.issuer}/login", data={**hidden_fields(page.text), "username": "corp:alice@example.com",
                                                       "password": ""})
    assert wrong.status_code == 401 and "The username or password is wrong" in wrong.text


def test_accounts_the_narrowed_rules_no_longer_admit_lose_their_access_at_start_up(tmp_path: Path) -> None:
    """A provider's rules narrowed (``allowed-domain=`` to one address): at the next start the accounts they
    no longer admit lose their apps' grants and sign-in sessions; the one still admitted keeps them."""
    port = free_port()
    provider = NodeOpenIdProvider(f"http://127.0.0.1:{port}{CORP_CALLBACK}").start()
    try:
        server = start_embedded(tmp_path, "--login-provider",
                                provider.spec(tmp_path / "corp.secret", "allowed-domain=example.com"), port=port)
        tokens = {login: linked_token(provider, server, login) for login in ("alice", "bob")}
        browser = signed_in(provider, server, "alice")
        server.stop()
        narrowed = provider.spec(tmp_path / "corp.secret", "allowed-email=bob@example.com")
        server = EmbeddedServer(ServeProcess(CONTACTS_APP, "--login-provider", narrowed, "--data-dir", str(tmp_path),
                                             port=port).start(tmp_path), server.account, tmp_path)
        try:
            refused = server.process.call_tool("search_contacts", {"query": "x"}, token=tokens["alice"])
            assert refused.status_code == 401
            kept = tool_result(server.process.call_tool("search_contacts", {"query": "x"}, token=tokens["bob"]))
            assert kept["isError"] is False
            assert page_kind(browser.http.get(f"{server.issuer}/account")) == "login"  # signed out
            assert server.logs().count("ended the access of account") == 1  # alice's (the log redacts addresses)
            assert "corp's rules no longer admit it" in server.logs()
            assert audit_records(server, "--kind", "consent.revoked", "--outcome", "not_admitted")
        finally:
            server.stop_and_check()
        # The provider removed from the configuration: its last admitted account loses its access too.
        server = EmbeddedServer(ServeProcess(CONTACTS_APP, "--data-dir", str(tmp_path), port=port).start(tmp_path),
                                server.account, tmp_path)
        try:
            assert server.process.call_tool("search_contacts", {"query": "x"}, token=tokens["bob"]).status_code == 401
            assert "login provider corp is no longer offered" in server.logs()
        finally:
            server.stop_and_check()
    finally:
        provider.stop()


def linked_token(provider: NodeOpenIdProvider, server: EmbeddedServer, login: str) -> str:
    client = DirectClient.register(server.issuer, server.mcp_url, client_name=f"Client of {login}")
    request = client.authorization_request(scope="contacts:read")
    user = person(provider, login)
    consent = user.go(urljoin(server.issuer, continue_link(user.go(request.url).text)), stop_at=client.redirect_uri)
    answer = user.http.post(f"{server.issuer}/authorize",
                            data={**hidden_fields(consent.text), **ticked_boxes(consent.text), "decision": "allow"})
    token = client.redeem(query_of(answer.headers["location"])["code"], request.verifier)
    assert token.status_code == 200, token.text
    return token.json()["access_token"]
