"""The server under fuzz and the real credentials the fuzzers use.

One ``ringfence serve`` of the reference app with the embedded authorization server, its rate-limit
budgets raised the way the benchmark does (bench/calls/contacts_unmetered.py), so tools really run.
Credentials come from the OAuth flow as a client gets them (tests/support/oauth.py):

- the owner's ``writer`` and ``reader`` access tokens, for /mcp: never sent to /token, /revoke or
  the pages, so they stay valid for the whole run;
- a confidential client's grant (``spare``: access and refresh token, client secret, an unredeemed
  code and its PKCE verifier), for the OAuth endpoints to revoke, rotate and replay as they like;
- a second person (``pages``) signed in with a browser session and its CSRF token, with a pending
  confirmation of their own, for the pages; the owner's account is never offered to them.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.http import result_text, tool_result
from tests.support.oauth import (
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    add_user,
    hidden_fields,
    start_embedded,
)
from tests.support.serve import REPO

UNMETERED_APP = str(REPO / "bench" / "calls" / "contacts_unmetered.py")
_CONFIRM_PAGE = re.compile(r"/confirm/([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class SpareGrant:
    """A confidential client's credentials that the OAuth-endpoint fuzzers may spend."""

    client: DirectClient
    access_token: str
    refresh_token: str
    code: str
    code_verifier: str

    @property
    def client_secret(self) -> str:
        assert self.client.client_secret is not None
        return self.client.client_secret


@dataclass(frozen=True)
class BrowserSession:
    """The second person's signed-in browser: cookie name and value, and the session's CSRF token."""

    cookie_name: str
    cookie: str
    csrf: str
    password: str
    confirm_page: str

    def cookie_header(self) -> str:
        return f"{self.cookie_name}={self.cookie}"


@dataclass(frozen=True, repr=False)
class FuzzTarget:
    server: EmbeddedServer
    writer: str
    reader: str
    caller_client_id: str
    tool_schemas: dict[str, dict[str, Any]]
    spare: SpareGrant
    pages: BrowserSession

    def __repr__(self) -> str:  # failure reports show the request, not every credential
        return f"FuzzTarget({self.base_url})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # what Hypothesis's reports use
        printer.text(repr(self))

    @property
    def base_url(self) -> str:
        return self.server.issuer

    @property
    def host(self) -> str:
        return self.base_url.removeprefix("http://")

    def tools_reached(self) -> Counter[str]:
        """How many calls of each tool got past the gate to the tool's guard (its ``tool.call``
        events in the server log: authenticated, in scope, within budget), whatever the outcome."""
        reached: Counter[str] = Counter()
        for line in self.server.logs().splitlines():
            if line.startswith("{") and '"tool.call"' in line:
                event = json.loads(line)
                if event.get("event") == "tool.call":
                    reached[event.get("tool")] += 1
        return reached

    def secrets(self) -> list[str]:
        spare = self.spare
        return [self.writer, self.reader, spare.access_token, spare.refresh_token, spare.client_secret,
                spare.code, spare.code_verifier, self.server.account.password, self.pages.password]


def start_target(data_dir: Path) -> FuzzTarget:
    server = start_embedded(data_dir, target=UNMETERED_APP)
    try:
        return FuzzTarget(server, *owner_tokens(server), tool_schemas(server), spare_grant(server),
                          second_person(server))
    except BaseException:
        server.stop()
        raise


def owner_tokens(server: EmbeddedServer) -> tuple[str, str, str]:
    """The owner's writer and reader access tokens from one public client, and its client id."""
    owner = BrowserLikeUser(server.issuer, server.account)
    try:
        client = DirectClient.register(server.issuer, server.mcp_url, client_name="Fuzz caller")
        writer = client.tokens(owner, scope="contacts:read contacts:write")["access_token"]
        reader = client.tokens(owner, scope="contacts:read")["access_token"]
    finally:
        owner.close()
    return writer, reader, client.client_id


def tool_schemas(server: EmbeddedServer) -> dict[str, dict[str, Any]]:
    """Each tool's ``inputSchema``, as ``tools/list`` declares it."""
    tools = tool_result(server.process.request("tools/list"))["tools"]
    return {tool["name"]: tool["inputSchema"] for tool in tools}


def spare_grant(server: EmbeddedServer) -> SpareGrant:
    owner = BrowserLikeUser(server.issuer, server.account)
    try:
        client = DirectClient.register(server.issuer, server.mcp_url, client_name="Fuzz spare",
                                       token_endpoint_auth_method="client_secret_post")
        tokens = client.tokens(owner, scope="contacts:read")
        code, request = client.code(owner, scope="contacts:read")
    finally:
        owner.close()
    return SpareGrant(client, tokens["access_token"], tokens["refresh_token"], code, request.verifier)


def second_person(server: EmbeddedServer) -> BrowserSession:
    """A second account, signed in, with a contact and a pending confirmation to delete it."""
    password = "pages-" + secrets.token_urlsafe(18)
    account = add_user(server.data_dir, "page-fuzzer", password)
    person = BrowserLikeUser(server.issuer, account)
    try:
        client = DirectClient.register(server.issuer, server.mcp_url, client_name="Fuzz pages")
        writer = client.tokens(person, scope="contacts:write")["access_token"]
        added = tool_result(server.process.call_tool("add_contact", {"name": "Page Person"}, token=writer))
        pending = tool_result(server.process.call_tool(
            "delete_contact", {"contact_id": added["structuredContent"]["id"]}, token=writer))
        page = _CONFIRM_PAGE.search(result_text(pending))
        assert page is not None, f"no confirmation page in {pending}"
        account_page = person.http.get("/account")
        assert account_page.status_code == 200, account_page.text[:300]
        cookie_name, cookie = next(iter(person.http.cookies.items()))
        csrf = hidden_fields(account_page.text)["csrf"]
    finally:
        person.close()
    return BrowserSession(cookie_name, cookie, csrf, password, page.group(1))

