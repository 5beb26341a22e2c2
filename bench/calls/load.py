"""The load generator: MCP clients over raw HTTP/1.1 keep-alive connections, or over httpx.

Each client opens one connection, performs the 2025-11-25 handshake (``initialize`` and
``notifications/initialized``: a session, as most clients use today), waits for every other
client to be ready, then makes its ``tools/call`` requests one after another. Latency is the
time from writing a request to having read its whole answer; throughput is all calls over the
wall time from the start signal to the last answer. A call whose answer is not a successful tool
result stops the run: a benchmark of refusals would measure nothing.

The raw client exists because the generator shares the machine with the servers: it spends a
fraction of httpx's CPU per call (``generator_cpu`` measures both).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

PROTOCOL_VERSION = "2025-11-25"
ACCEPT = "application/json, text/event-stream"
Arguments = Callable[[int, int], dict[str, Any]]  # (client, call index) -> tool arguments


class CallFailed(RuntimeError):
    """An answer that is not a successful tool result."""


@dataclass
class Phase:
    """What one run of ``clients`` concurrent clients measured."""

    latencies_ns: list[int] = field(default_factory=list)
    wall_ns: int = 0

    @property
    def calls(self) -> int:
        return len(self.latencies_ns)

    @property
    def throughput(self) -> float:
        return self.calls / (self.wall_ns / 1e9) if self.wall_ns else 0.0


def tool_result(body: bytes) -> dict[str, Any]:
    """The JSON-RPC message in an answer: a JSON body, or the ``data:`` of a one-event SSE stream."""
    text = body.decode()
    if not text.lstrip().startswith("{"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        data = [chunk for chunk in data if chunk]
        if not data:
            raise CallFailed(f"no JSON-RPC message in the answer: {text[:200]!r}")
        text = data[-1]
    return json.loads(text)


def check_call(status: int, body: bytes) -> None:
    if status != 200:
        raise CallFailed(f"HTTP {status}: {body[:300]!r}")
    message = tool_result(body)
    result = message.get("result")
    if not isinstance(result, dict) or result.get("isError"):
        raise CallFailed(f"not a successful tool result: {json.dumps(message)[:300]}")


def _initialize(request_id: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize",
            "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                       "clientInfo": {"name": "ringfence-bench", "version": "0"}}}


def _call(request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}


# A minimal HTTP/1.1 client ---------------------------------------------------------------------


class RawConnection:
    """One keep-alive HTTP/1.1 connection: POST a JSON body, read the status and the whole body."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
        self.headers = {"host": parts.netloc, "content-type": "application/json", "accept": ACCEPT, **headers}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass

    async def post(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None and self.writer is not None, "open() first"
        body = json.dumps(message).encode()
        head = f"POST {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        self.writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            payload = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            payload = await self._chunked()
        else:
            raise CallFailed(f"answer without a length (HTTP {status})")
        return status, headers, payload

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        chunks = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


class HttpxConnection:
    """The same interface over ``httpx.AsyncClient`` (one pooled connection per client)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = {"content-type": "application/json", "accept": ACCEPT, **headers}
        self.client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        self.client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=1))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def post(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        assert self.client is not None, "open() first"
        response = await self.client.post(self.url, content=json.dumps(message).encode(), headers=self.headers)
        return response.status_code, dict(response.headers), response.content


CLIENTS: dict[str, type[RawConnection] | type[HttpxConnection]] = {"raw": RawConnection, "httpx": HttpxConnection}


# Running a phase -------------------------------------------------------------------------------


async def _client(index: int, url: str, token: str | None, tool: str, arguments: Arguments, calls: int,
                  ready: asyncio.Barrier, start: asyncio.Event, phase: Phase, kind: str) -> None:
    auth = {"authorization": f"Bearer {token}"} if token else {}
    connection = CLIENTS[kind](url, auth)
    await connection.open()
    try:
        status, headers, body = await connection.post(_initialize(0))
        if status != 200 or "mcp-session-id" not in headers:
            raise CallFailed(f"initialize: HTTP {status}: {body[:300]!r}")
        connection.headers["mcp-session-id"] = headers["mcp-session-id"]
        connection.headers["mcp-protocol-version"] = PROTOCOL_VERSION
        status, _, body = await connection.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status != 202:
            raise CallFailed(f"notifications/initialized: HTTP {status}: {body[:300]!r}")
        await ready.wait()
        await start.wait()
        for n in range(calls):
            message = _call(n + 1, tool, arguments(index, n))
            began = time.perf_counter_ns()
            status, _, body = await connection.post(message)
            phase.latencies_ns.append(time.perf_counter_ns() - began)
            check_call(status, body)
    finally:
        await connection.close()


async def run_phase(urls: list[str], token: str | None, tool: str, arguments: Arguments, *, clients: int,
                    calls_per_client: int, kind: str = "raw") -> Phase:
    """``clients`` concurrent clients (client i on ``urls[i % len(urls)]``), each making its calls in turn."""
    phase = Phase()
    ready = asyncio.Barrier(clients + 1)
    start = asyncio.Event()
    tasks = [asyncio.create_task(_client(i, urls[i % len(urls)], token, tool, arguments, calls_per_client, ready,
                                         start, phase, kind)) for i in range(clients)]
    try:
        async with asyncio.timeout(120):
            waiting = asyncio.create_task(ready.wait())
            done, _ = await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if waiting not in done:  # a client failed during its handshake
                waiting.cancel()
                for task in done:
                    task.result()
            began = time.perf_counter_ns()
            start.set()
            await asyncio.gather(*tasks)
            phase.wall_ns = time.perf_counter_ns() - began
    finally:
        for task in tasks:
            task.cancel()
    return phase
