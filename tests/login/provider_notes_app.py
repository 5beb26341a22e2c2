"""An app whose tools act at the login provider the tests name "corp" (``provider_scopes=``): they call
its userinfo endpoint, an API that takes the person's access token there.

The provider runs on http loopback, where ringfence.network (https only) does not go: the tools use
httpx directly, and ``CORP_USERINFO`` names the endpoint. A tool never returns the token itself,
only a fingerprint of it, so the tests see when it changed.
"""

from __future__ import annotations

import hashlib
import os

import httpx

from ringfence import App, Scope, ToolError, current_principal

app = App("notes", scopes=[Scope("notes:read", "Read your notes at Example Corp")])


def fingerprint(token: str) -> str:
    return "seen-" + hashlib.sha256(token.encode()).hexdigest()[:6]


@app.tool(effect="read", scopes=["notes:read"], returns=["personal"], open_world=True,
          provider_scopes={"corp": ["notes:read"]})
async def whoami_at_corp() -> dict:
    """Who the caller is at Example Corp, as its userinfo endpoint answers with the caller's token there."""
    token = await current_principal().provider_token("corp")
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(os.environ["CORP_USERINFO"], headers={"authorization": token.authorization})
    if answer.status_code != 200:
        raise ToolError(f"Example Corp refused the token ({answer.status_code}).")
    return {"subject": answer.json()["sub"], "seen": fingerprint(token.access_token), "scopes": sorted(token.scopes)}


@app.tool(effect="read", scopes=["notes:read"], provider_scopes={"corp": ["notes:read"]})
async def echo_corp_token() -> str:
    """A careless tool: it puts the caller's token at Example Corp in its result."""
    return f"your token is {(await current_principal().provider_token('corp')).access_token}"


@app.tool(effect="read", scopes=["notes:read"])
async def borrow_corp_token() -> str:
    """A tool that declares no provider_scopes, asking for the token all the same."""
    token = await current_principal().provider_token("corp")
    return fingerprint(token.access_token)
