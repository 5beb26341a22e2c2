"""A signed-in person and their client, calling destructive tools and answering the confirmation page."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.http import result_text, tool_result
from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, hidden_fields

_PAGE_LINK = re.compile(r"\S+/confirm/[A-Za-z0-9_-]+")


class SignedInCaller:
    """One person of an embedded-server app, with a token their client got through sign-in and consent."""

    def __init__(self, server: EmbeddedServer, user: BrowserLikeUser, *, client_name: str, scope: str) -> None:
        self.server, self.user = server, user
        self.client = DirectClient.register(server.issuer, server.mcp_url, client_name=client_name)
        self.token = self.client.tokens(user, scope=scope)["access_token"]

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return tool_result(self.server.process.call_tool(tool, arguments, token=self.token))

    def page_link(self, pending: dict[str, Any]) -> str:
        """The confirmation page a pending result names (the one link in its text)."""
        [link] = _PAGE_LINK.findall(result_text(pending))
        return link

    def answer_page(self, link: str, decision: str) -> httpx.Response:
        """Open the confirmation page signed in, and press ``confirm`` or ``decline``."""
        page = self.user.http.get(link)
        assert page.status_code == 200, page.text
        return self.user.http.post(link, data={"csrf": hidden_fields(page.text)["csrf"], "decision": decision})
