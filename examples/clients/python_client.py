"""A small MCP client for a ringfence app, with the official Python SDK: sign in through your browser
(OAuth 2.1 with PKCE, the client registers itself), then call tools.

    pip install "mcp>=2.3,<3"
    python python_client.py https://contacts.example.com/mcp                           # list the tools
    python python_client.py https://contacts.example.com/mcp search_contacts '{"query": "ada"}' \\
                                                             add_contact '{"name": "Ada"}'

Sign-in opens your browser (``BROWSER`` names another command, as for Python's ``webbrowser``); the
answer comes back to http://127.0.0.1:PORT/callback on this computer (PORT: ``MCP_CALLBACK_PORT``,
8765 if unset). When a tool needs more access, the SDK sends you to consent again (step-up). When the
app asks you to confirm (a deletion), the question is shown here and you answer y or n. Tokens live in
memory for this run; a real app keeps them (``TokenStorage``) so the user signs in once.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.types import ElicitResult

PORT = int(os.environ.get("MCP_CALLBACK_PORT", "8765"))
REDIRECT_URI = f"http://127.0.0.1:{PORT}/callback"


class MemoryStorage:
    """Where the SDK keeps the registration and the tokens (here: for this run only)."""

    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def open_browser(url: str) -> None:
    print(f"Sign in at: {url}", file=sys.stderr)
    webbrowser.open(url)


def wait_for_callback() -> dict[str, str]:
    """The query the authorization server sends to REDIRECT_URI (``code``, ``state``, ``iss``, or ``error``)."""
    answer: dict[str, str] = {}

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer.update({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
            self.send_response(200)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Signed in. You can close this tab and go back to the app.")

        def log_message(self, *_: object) -> None:
            pass

    with HTTPServer(("127.0.0.1", PORT), Callback) as server:
        while not answer:
            server.handle_request()
    return answer


async def callback() -> AuthorizationCodeResult:
    answer = await asyncio.to_thread(wait_for_callback)
    if "error" in answer:
        raise SystemExit(f"Sign-in refused: {answer['error']} {answer.get('error_description', '')}")
    return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))


async def confirm(_context, params) -> ElicitResult:  # type: ignore[no-untyped-def]
    """The app asks the user (MCP elicitation): shown as it is, answered on the terminal."""
    print(params.message, "\nConfirm? [y/N] ", end="", file=sys.stderr, flush=True)
    said = await asyncio.to_thread(sys.stdin.readline)
    return ElicitResult(action="accept", content={"confirm": said.strip().lower() == "y"})


async def main(url: str, calls: list[str]) -> None:
    metadata = OAuthClientMetadata(client_name="My MCP client", redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
                                   grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                                   token_endpoint_auth_method="none")  # noqa: S106 (a public client: no secret)
    auth = OAuthClientProvider(url, metadata, MemoryStorage(), open_browser, callback)
    async with httpx2.AsyncClient(auth=auth, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http), elicitation_callback=confirm) as client:
            if not calls:
                for tool in (await client.list_tools()).tools:
                    print(json.dumps({"tool": tool.name, "description": tool.description}))
            for name, arguments in zip(calls[::2], calls[1::2], strict=True):
                result = await client.call_tool(name, json.loads(arguments))
                print(json.dumps({"tool": name, "is_error": result.is_error,
                                  "structured": result.structured_content,
                                  "text": [part.text for part in result.content if part.type == "text"]}))


if __name__ == "__main__":
    if len(sys.argv) < 2 or len(sys.argv) % 2:
        raise SystemExit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
