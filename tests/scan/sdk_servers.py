"""Two servers written with the official ``mcp`` SDK the way tutorials write them, for ``ringfence scan`` to audit.

- :func:`insecure_notes`: ``token_verifier=`` with a verifier that decodes the JWT without checking its
  signature or audience (PyJWT ``verify_signature: False``, a common tutorial shortcut), ``AuthSettings``
  with ``required_scopes`` and no ``validate_token_resource``, per-tool scopes declared in ``_meta`` but
  never enforced, and a delete tool without ``destructiveHint``.
- :func:`apps_sdk_pizzaz`: like the OpenAI Apps SDK examples: no auth, a ``text/html+skybridge`` widget
  named by ``openai/outputTemplate``, no CSP and no widget domain.

Each is an app factory for ``python -m uvicorn --factory tests.scan.sdk_servers:<name>``; the port and the
issuer come from the environment (``SCAN_SDK_PORT``, ``SCAN_SDK_ISSUER``).
"""

from __future__ import annotations

import os
from typing import Any

import jwt
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import AnyHttpUrl
from starlette.applications import Starlette

PIZZA_WIDGET = "ui://widget/pizza-map.html"
PIZZA_HTML = """<div id="pizzaz-root"></div>
<link rel="stylesheet" href="https://persistent.oaistatic.com/ecosystem-built-assets/pizzaz-0038.css">
<script type="module" src="https://persistent.oaistatic.com/ecosystem-built-assets/pizzaz-0038.js"></script>
"""


class UnverifiedJwtVerifier:
    """Reads the token's claims without checking the signature (and so without issuer or audience)."""

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        scope = claims.get("scope", "")
        return AccessToken(token=token, client_id=str(claims.get("client_id", "unknown")),
                           scopes=scope.split() if isinstance(scope, str) else [],
                           expires_at=claims.get("exp") if isinstance(claims.get("exp"), int) else None)


def insecure_notes() -> Starlette:
    port = os.environ["SCAN_SDK_PORT"]
    mcp = MCPServer(
        "notes",
        token_verifier=UnverifiedJwtVerifier(),
        auth=AuthSettings(issuer_url=AnyHttpUrl(os.environ["SCAN_SDK_ISSUER"]),
                          resource_server_url=AnyHttpUrl(f"http://127.0.0.1:{port}/mcp"),
                          required_scopes=["notes:read"]),
    )
    notes = {1: "Buy milk", 2: "Call Alice"}

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True),
              meta={"securitySchemes": [{"type": "oauth2", "scopes": ["notes:read"]}]})
    def search_notes(query: str) -> list[str]:
        """Search the user's notes by a word in them."""
        return [text for text in notes.values() if query.lower() in text.lower()]

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False),
              meta={"securitySchemes": [{"type": "oauth2", "scopes": ["notes:write"]}]})
    def delete_note(note_id: int) -> str:
        """Delete one of the user's notes by its number."""
        notes.pop(note_id, None)
        return f"deleted {note_id}"

    return mcp.streamable_http_app()


def apps_sdk_pizzaz() -> Starlette:
    mcp = MCPServer("pizzaz")

    @mcp.resource(PIZZA_WIDGET, name="pizza-map", mime_type="text/html+skybridge")
    def pizza_map() -> str:
        return PIZZA_HTML

    @mcp.tool(title="Show Pizza Map", annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                                                  idempotent_hint=True, open_world_hint=False),
              meta={"openai/outputTemplate": PIZZA_WIDGET, "openai/widgetAccessible": True,
                    "openai/toolInvocation/invoking": "Hand-tossing a map", "openai/toolInvocation/invoked":
                    "Served a fresh map"})
    def pizza_map_tool(pizza_topping: str) -> str:
        """Show a map of pizza places that serve the given topping."""
        return f"Rendered a pizza map for {pizza_topping}!"

    return mcp.streamable_http_app()
