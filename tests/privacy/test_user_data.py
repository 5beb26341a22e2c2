"""Deleting and exporting one person's data, by the operator and by the person, against a real server.

One ``ringfence serve`` of the reference app with the embedded authorization server; each test links
its own users (sign-in, consent, tokens) and adds contacts through real tool calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ringfence.store.database import Database
from tests.support.http import tool_result
from tests.support.oauth import (
    Account,
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    add_user,
    audit_records,
    hidden_fields,
    jwt_claims,
    oauth_error,
    ringfence_cli,
    server_errors,
    start_embedded,
)
from tests.support.serve import CONTACTS_APP

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    data = tmp_path_factory.mktemp("privacy")
    # Rows already past retention before the server starts: its first scheduled purge removes them.
    asyncio.run(_create_schema(data))
    with sqlite3.connect(data / "ringfence.db") as db:
        db.execute("INSERT INTO ringfence_confirmations (handle_hash, page_id, tool, arguments_hash, owner, preview, "
                   "status, expires_at) VALUES ('stale', 'stale-page', 'delete_contact', 'x', 'http://x|nobody', "
                   "'delete your contact Ada', 'used', ?)", (int(time.time()) - 7200,))
        db.execute("INSERT INTO ringfence_browser_sessions VALUES ('stale-session', NULL, 'c', ?)",
                   (int(time.time()) - 1,))
    server = start_embedded(data)
    yield server
    server.stop_and_check()


async def _create_schema(data: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{data / 'ringfence.db'}")
    try:
        await database.start()
    finally:
        await database.close()


@dataclass
class Linked:
    """A user who connected a client: their browser, client, tokens and token subject."""

    account: Account
    browser: BrowserLikeUser
    client: DirectClient
    tokens: dict[str, Any]

    @property
    def access_token(self) -> str:
        return self.tokens["access_token"]

    @property
    def subject(self) -> str:
        return jwt_claims(self.access_token)["sub"]


def link(server: EmbeddedServer, username: str) -> Linked:
    account = add_user(server.data_dir, username, PASSWORD)
    browser = BrowserLikeUser(server.issuer, account)
    client = DirectClient.register(server.issuer, server.mcp_url, client_name=f"{username}'s client")
    return Linked(account, browser, client, client.tokens(browser, scope="contacts:write"))


def add_contact(server: EmbeddedServer, user: Linked, name: str, email: str) -> None:
    result = tool_result(server.process.call_tool("add_contact", {"name": name, "email": email},
                                                  token=user.access_token))
    assert not result.get("isError"), result


def search(server: EmbeddedServer, token: str, query: str) -> httpx.Response:
    return server.process.call_tool("search_contacts", {"query": query}, token=token)


def cli(server: EmbeddedServer, *args: str):  # type: ignore[no-untyped-def]
    return ringfence_cli(*args, "--data-dir", str(server.data_dir))


def stored(server: EmbeddedServer, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(server.database_file) as db:
        return db.execute(sql, params).fetchall()


def test_user_delete_removes_all_of_one_users_data_and_nothing_of_anyone_else(server: EmbeddedServer) -> None:
    alice, bob = link(server, "alice"), link(server, "bob")
    add_contact(server, alice, "Ada Lovelace", "ada@example.com")
    add_contact(server, bob, "Grace Hopper", "grace@example.com")
    pending = server.process.call_tool("delete_contact", {"contact_id": 1}, token=alice.access_token)
    assert "Not done yet" in json.dumps(tool_result(pending))  # a pending confirmation owned by alice
    assert audit_records(server, "--principal", alice.subject, "--kind", "tool.call")  # she left a trail

    done = cli(server, "user", "delete", CONTACTS_APP, "--username", "alice")
    assert done.returncode == 0, done.stderr
    assert f"deleted everything held about subject {alice.subject}" in done.stdout

    assert search(server, alice.access_token, "Ada").status_code == 401  # access token refused at once
    oauth_error(alice.client.refresh(alice.tokens["refresh_token"]), 400, "invalid_grant")
    assert alice.browser.sign_in().status_code == 401  # the account is gone
    assert stored(server, "SELECT count(*) FROM contacts WHERE owner = ?", alice.subject) == [(0,)]
    assert stored(server, "SELECT count(*) FROM ringfence_confirmations WHERE owner LIKE ?",
                  f"%|{alice.subject}") == [(0,)]
    found = tool_result(search(server, bob.access_token, "Grace"))["structuredContent"]["result"]
    assert [contact["name"] for contact in found] == ["Grace Hopper"]  # bob's data intact

    verified = cli(server, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    records = audit_records(server, "--principal", alice.subject)
    deleted = [record for record in records if record["kind"] == "user.deleted"]
    assert len(deleted) == 1 and deleted[0]["payload"]["counts"]["app:contacts"] == 1
    assert deleted[0]["payload"]["counts"]["account"] == 1
    others = [record for record in records if record["kind"] != "user.deleted"]
    assert others and all(record["payload"] is None and record["erased_at"] for record in others)
    assert any(record["payload"] for record in audit_records(server, "--principal", bob.subject))


def test_user_export_holds_the_users_data_and_no_secret(server: EmbeddedServer, tmp_path: Path) -> None:
    dave = link(server, "dave")
    add_contact(server, dave, "Edsger Dijkstra", "edsger@example.com")
    output = tmp_path / "dave.json"

    done = cli(server, "user", "export", CONTACTS_APP, "--username", "dave", "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert output.stat().st_mode & 0o777 == 0o600
    text = output.read_text()
    document = json.loads(text)
    assert document["subject"] == dave.subject and document["account"]["username"] == "dave"
    assert [contact["name"] for contact in document["app_data"]["contacts"]] == ["Edsger Dijkstra"]
    assert [consent["client_id"] for consent in document["consents"]] == [dave.client.client_id]
    assert document["refresh_tokens"] and document["audit_records"]
    assert [(grant["client_id"], grant["revoked_at"]) for grant in document["grants"]] == [
        (dave.client.client_id, None)]
    assert jwt_claims(dave.access_token)["sid"] not in text  # the grant's id is not shown
    refresh = dave.tokens["refresh_token"]
    for secret in (refresh, hashlib.sha256(refresh.encode()).hexdigest(), dave.access_token, "$argon2", PASSWORD):
        assert secret not in text
    assert "password_hash" not in text and "token_hash" not in text

    again = cli(server, "user", "export", CONTACTS_APP, "--username", "dave", "--output", str(output))
    assert again.returncode == 2 and "exists" in again.stderr  # never written over
    assert output.read_text() == text


def test_unknown_subjects_get_exit_1_and_nothing_changes(server: EmbeddedServer, tmp_path: Path) -> None:
    before = stored(server, "SELECT count(*) FROM ringfence_audit")
    deleted = cli(server, "user", "delete", CONTACTS_APP, "no-such-subject")
    assert deleted.returncode == 1
    assert deleted.stderr.strip().splitlines() == [
        "ringfence: no data is held about subject 'no-such-subject'; nothing was changed"]
    assert cli(server, "user", "delete", CONTACTS_APP, "--username", "nobody").returncode == 1
    output = tmp_path / "nobody.json"
    exported = cli(server, "user", "export", CONTACTS_APP, "no-such-subject", "--output", str(output))
    assert exported.returncode == 1 and not output.exists()
    assert stored(server, "SELECT count(*) FROM ringfence_audit") == before

    neither = cli(server, "user", "delete", CONTACTS_APP)
    assert neither.returncode == 2 and "SUBJECT or --username" in neither.stderr
    control = cli(server, "user", "delete", CONTACTS_APP, "bad\x01subject")
    assert control.returncode == 2 and "Traceback" not in control.stderr


def test_account_page_downloads_the_data_and_deletes_the_account_after_the_password(
        server: EmbeddedServer) -> None:
    carol = link(server, "carol")
    add_contact(server, carol, "Barbara Liskov", "barbara@example.com")
    page = carol.browser.http.get("/account")
    assert "Download my data" in page.text and 'href="/account/delete"' in page.text
    csrf = hidden_fields(page.text)["csrf"]

    assert carol.browser.http.post("/account/export", data={}).status_code == 403  # no CSRF token
    download = carol.browser.http.post("/account/export", data={"csrf": csrf})
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.json()["app_data"]["contacts"][0]["name"] == "Barbara Liskov"
    assert "$argon2" not in download.text and carol.tokens["refresh_token"] not in download.text

    form = carol.browser.http.get("/account/delete")
    assert form.status_code == 200 and "Enter your password" in form.text
    assert carol.browser.http.post("/account/delete", data={"password": PASSWORD}).status_code == 403  # no CSRF
    wrong = carol.browser.http.post("/account/delete", data={"csrf": csrf, "password": "not my password"})
    assert wrong.status_code == 401 and "Nothing was deleted" in wrong.text
    assert search(server, carol.access_token, "Barbara").status_code == 200  # still there

    gone = carol.browser.http.post("/account/delete", data={"csrf": csrf, "password": PASSWORD})
    assert gone.status_code == 200 and "Account deleted" in gone.text
    assert "ringfence_session=" in gone.headers["set-cookie"]  # the cookie is cleared: signed out
    assert search(server, carol.access_token, "Barbara").status_code == 401
    assert 'action="/login"' in carol.browser.http.get("/account").text
    assert stored(server, "SELECT count(*) FROM contacts WHERE owner = ?", carol.subject) == [(0,)]


def test_a_replayed_refresh_token_still_revokes_its_family_after_a_purge(server: EmbeddedServer) -> None:
    """OAuth 2.1 §4.3.1: the purge keeps every token of a family while any of it could be valid."""
    erin = link(server, "erin")
    rotated = erin.client.refresh(erin.tokens["refresh_token"])
    assert rotated.status_code == 200
    purged = cli(server, "purge", CONTACTS_APP)
    assert purged.returncode == 0, purged.stderr
    assert "refresh_tokens: removed 0" in purged.stdout

    oauth_error(erin.client.refresh(erin.tokens["refresh_token"]), 400, "invalid_grant")  # the replay
    oauth_error(erin.client.refresh(rotated.json()["refresh_token"]), 400, "invalid_grant")  # family revoked


def test_the_scheduled_purge_runs_soon_after_start(server: EmbeddedServer) -> None:
    deadline = time.monotonic() + 90
    query = "SELECT (SELECT count(*) FROM ringfence_confirmations WHERE handle_hash = 'stale') + " \
            "(SELECT count(*) FROM ringfence_browser_sessions WHERE id_hash = 'stale-session')"
    while stored(server, query) != [(0,)] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stored(server, query) == [(0,)], server.logs()[-2000:]
    assert server_errors(server.logs()) == []
