"""The preview's MCP client: stateless 2026-07-28 requests to the server being previewed, one POST each."""

from __future__ import annotations

from typing import Any

import httpx

from ringfence.jsonrpc import jsonrpc_response

PROTOCOL_VERSION = "2026-07-28"
APPS_MIME = "text/html;profile=mcp-app"
# What the preview tells the server about itself: an MCP Apps host (and, in the legacy form, ChatGPT-like).
APPS_CAPABILITIES = {"extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": [APPS_MIME]}}}
OPENAI_META = {"openai/locale": "en-US", "openai/userAgent": "ringfence-preview"}


class McpError(Exception):
    """The server answered with an error, or not in a form the preview understands."""


class McpClient:
    """Talks to one MCP endpoint with an optional bearer token (never logged, never sent to the browser)."""

    def __init__(self, mcp_url: str, token: str | None, *, timeout: float = 30) -> None:
        self.mcp_url = mcp_url
        self._token = token
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._next_id = 1

    async def close(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, params: dict[str, Any], *, form: str = "mcp-apps") -> dict[str, Any]:
        """The ``result`` of one request; :class:`McpError` for a JSON-RPC error or an unusable answer."""
        meta = {
            "io.modelcontextprotocol/protocolVersion": PROTOCOL_VERSION,
            "io.modelcontextprotocol/clientInfo": {"name": "ringfence-preview", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": APPS_CAPABILITIES,
            **(OPENAI_META if form == "openai" else {}),
        }
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                   "mcp-protocol-version": PROTOCOL_VERSION, "mcp-method": method}
        name = params.get("name", params.get("uri"))
        if isinstance(name, str):
            headers["mcp-name"] = name
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        message_id, self._next_id = self._next_id, self._next_id + 1
        body = {"jsonrpc": "2.0", "id": message_id, "method": method, "params": {**params, "_meta": meta}}
        try:
            response = await self._http.post(self.mcp_url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise McpError(f"cannot reach {self.mcp_url}: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise McpError(f"the server refused the request (HTTP {response.status_code}); "
                           "set RINGFENCE_PREVIEW_TOKEN to an access token with the scopes the tool needs")
        answer = _message(response)
        if "error" in answer:
            error = answer["error"] if isinstance(answer["error"], dict) else {}
            raise McpError(str(error.get("message", "the server answered with an error")))
        result = answer.get("result")
        if not isinstance(result, dict):
            raise McpError("the server's answer has no result")
        return result

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every tool, following pagination cursors."""
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(100):
            result = await self.request("tools/list", {"cursor": cursor} if cursor else {})
            tools += [tool for tool in result.get("tools", []) if isinstance(tool, dict)]
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        return tools

    async def read_resource(self, uri: str) -> dict[str, Any]:
        """The first content of a resource: ``{"uri", "mimeType", "text", "_meta"}``."""
        result = await self.request("resources/read", {"uri": uri})
        contents = [content for content in result.get("contents", []) if isinstance(content, dict)]
        if not contents or not isinstance(contents[0].get("text"), str):
            raise McpError(f"resource {uri} has no text content")
        return contents[0]

    async def call_tool(self, name: str, arguments: dict[str, Any], *, form: str) -> dict[str, Any]:
        return await self.request("tools/call", {"name": name, "arguments": arguments}, form=form)


def _message(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer in a JSON body or an SSE stream (its ``data:`` lines)."""
    content_type = response.headers.get("content-type", "")
    answer = jsonrpc_response(content_type, response.text)
    if answer is None:
        raise McpError(f"unexpected answer from the server (HTTP {response.status_code}, {content_type or 'no type'})")
    return answer
