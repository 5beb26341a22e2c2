"""An app with small anonymous budgets, and MCP calls sent from a chosen loopback address.

``BUDGETS_APP`` allows three requests without a valid token per address an hour (anonymous calls and
failed authentications), and five calls of ``ping`` and of ``count`` an hour from everyone together
(``hello`` has the default tool ceiling); a signed-in call spends the signed-in budgets only.
``call_from`` sends a 2026-07-28 ``tools/call`` from ``127.0.0.x`` (``local_address``), optionally
with forwarding headers, as a proxy would.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.serve import MCP_ACCEPT, MODERN_VERSION, ServeProcess

BUDGETS_APP = '''
from ringfence import App, Scope
from ringfence.ops.ratelimit import Rate
from ringfence.ops.ratelimit_keys import RateLimits

app = App("budgets", scopes=[Scope("notes:read", "Read notes")],
          rate_limits=RateLimits(per_anonymous_address=Rate(3, 3600),
                                 tools={"ping": Rate(5, 3600), "count": Rate(5, 3600)}))


@app.tool(effect="read", returns=["public"])
async def ping() -> str:
    """Answer pong, to anyone."""
    return "pong"


@app.tool(effect="read", returns=["public"])
async def hello() -> str:
    """Say hello, to anyone."""
    return "hello"


@app.tool(effect="read", scopes=["notes:read"])
async def count() -> int:
    """Count to one."""
    return 1
'''
ANONYMOUS_PER_ADDRESS = 3
TOOL_CEILING = 5  # ping and count
CHATGPT_META = {"openai/userAgent": "ChatGPT/1.0", "openai/locale": "en-US"}


def budgets_app(folder: Path) -> str:
    app = folder / "budgets.py"
    app.write_text(BUDGETS_APP)
    return str(app)


def call_from(server: ServeProcess, address: str, tool: str, *, token: str | None = None,
              meta: dict | None = None,
              headers: dict[str, str] | list[tuple[str, str]] | None = None) -> httpx.Response:
    """One 2026-07-28 ``tools/call`` of ``tool`` from ``address`` (a 127.0.0.0/8 address); ``headers``
    as pairs to send one name in several fields."""
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                  "io.modelcontextprotocol/clientInfo": {"name": "ringfence-tests", "version": "0"},
                  "io.modelcontextprotocol/clientCapabilities": {}, **(meta or {})}}}
    sent = [("content-type", "application/json"), ("accept", MCP_ACCEPT), ("mcp-protocol-version", MODERN_VERSION),
            ("mcp-method", "tools/call"), ("mcp-name", tool),
            *(headers.items() if isinstance(headers, dict) else headers or [])]
    if token is not None:
        sent.append(("authorization", f"Bearer {token}"))
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10) as client:
        return client.post(server.mcp_url, json=message, headers=httpx.Headers(sent))
