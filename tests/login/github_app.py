"""An app whose tool acts at GitHub as the person (``provider_scopes={"github": ["repo"]}``), against the
tests' stand-in of GitHub's API (tests/support/login_standin.py): ``GITHUB_API`` names it. The stand-in is
on http loopback, where ringfence.network (https only) does not go, so the tool uses httpx directly.
"""

from __future__ import annotations

import hashlib
import os

import httpx

from ringfence import App, Scope, ToolError, current_principal

app = App("repos", scopes=[Scope("repos:read", "See your repositories")])


@app.tool(effect="read", scopes=["repos:read"], returns=["personal"], provider_scopes={"github": ["repo"]})
async def my_github_login() -> dict:
    """Your login at GitHub, as its API answers with your token there."""
    token = await current_principal().provider_token("github")
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{os.environ['GITHUB_API']}/user", headers={"authorization": token.authorization})
    if answer.status_code != 200:
        raise ToolError(f"GitHub refused the token ({answer.status_code}).")
    seen = "seen-" + hashlib.sha256(token.access_token.encode()).hexdigest()[:6]
    return {"login": answer.json()["login"], "seen": seen, "scopes": sorted(token.scopes)}
