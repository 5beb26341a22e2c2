"""The official MCP Python SDK client pointed at a `ringfence serve` process, with the wire recorded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.serve import ServeProcess


@dataclass
class Exchange:
    method: str | None  # the JSON-RPC method of a POST, None for GET / DELETE
    status: int
    www_authenticate: str | None


@dataclass
class Wire:
    """Every HTTP exchange the SDK made, in order."""

    exchanges: list[Exchange] = field(default_factory=list)

    def methods(self) -> list[str | None]:
        return [exchange.method for exchange in self.exchanges]

    def last(self, method: str) -> Exchange:
        return [exchange for exchange in self.exchanges if exchange.method == method][-1]


@asynccontextmanager
async def sdk_client(server: ServeProcess, token: str | None, *, mode: str,
                     elicitation_callback: Any = None) -> AsyncIterator[tuple[Client, Wire]]:
    """``Client(streamable_http_client(...), mode=mode)`` sending ``token`` as a Bearer header."""
    wire = Wire()

    async def record(response: httpx2.Response) -> None:
        request = response.request
        method = None
        if request.method == "POST" and request.content:
            method = json.loads(request.content).get("method")
        wire.exchanges.append(Exchange(method, response.status_code, response.headers.get("www-authenticate")))

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, event_hooks={"response": [record]}, timeout=10) as http:
        async with Client(streamable_http_client(server.mcp_url, http_client=http), mode=mode,
                          elicitation_callback=elicitation_callback) as client:
            yield client, wire
