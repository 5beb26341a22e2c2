"""Several ``ringfence serve`` processes acting as one deployment, and what they left behind.

- :func:`instances` builds N processes behind one public URL (a :class:`~tests.support.faults.TcpProxy`
  there is the load balancer), sharing one database, one Redis and one data folder; each also
  answers on its own port, so a test can send a request to the instance it chooses.
- :func:`start_in_turn` starts them one after another: the first creates the tables and keys.
- :class:`Caller` makes many tool calls concurrently (asyncio, one keep-alive client each).
- :func:`audited_calls`, :func:`notes` and :func:`audit_verify` read the audit log, the app's
  table and ``ringfence audit verify`` afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from ringfence.audit.log import AuditLog
from ringfence.store.database import Database
from tests.support.faults import TcpProxy
from tests.support.oauth import ringfence_cli
from tests.support.redis_dbs import INSTANCES, redis_url
from tests.support.serve import MCP_ACCEPT, MODERN_VERSION, REPO, ServeProcess

NOTES_APP = str(REPO / "tests" / "instances" / "notes_app.py")
# This suite's own Redis database: other suites flush theirs; here only our keys are deleted.
REDIS_URL = redis_url(INSTANCES)
RATE_LIMIT_KEYS = "ringfence:rl:*"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / 'ringfence.db').resolve()}"


def instances(target: str, count: int, data_dir: Path, *args: str,
              env: dict[str, str] | None = None) -> tuple[TcpProxy, list[ServeProcess]]:
    """``count`` instances of ``target`` behind one public URL, the proxy's (not started yet)."""
    servers = [ServeProcess(target, env=env) for _ in range(count)]
    balancer = TcpProxy([("127.0.0.1", server.port) for server in servers])
    public = f"http://127.0.0.1:{balancer.port}"
    for server in servers:
        server.command += ["--public-url", public, "--allowed-host", f"127.0.0.1:{server.port}",
                           "--data-dir", str(data_dir), *args]
    return balancer, servers


def start_in_turn(log_dir: Path, servers: list[ServeProcess]) -> None:
    """Start each server once the one before it answers (the first creates tables and keys)."""
    started: list[ServeProcess] = []
    try:
        for server in servers:
            server.start(log_dir, timeout=30)
            started.append(server)
    except BaseException:
        for server in started:
            server.stop()
        raise


def clear_rate_limits(url: str = REDIS_URL) -> None:
    """Delete this suite's rate-limit budgets (only ringfence's keys, only in its own database)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(RATE_LIMIT_KEYS, count=1000):
            client.delete(key)
    finally:
        client.close()


# Calls ------------------------------------------------------------------------------------------


def call_message(tool: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A 2026-07-28 stateless ``tools/call``: the JSON-RPC body and its routing headers."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "ringfence-tests", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": meta}}
    headers = {"content-type": "application/json", "accept": MCP_ACCEPT, "mcp-protocol-version": MODERN_VERSION,
               "mcp-method": "tools/call", "mcp-name": tool}
    return body, headers


def answer_of(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message in a 200 answer (plain JSON or one SSE event)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        return next(event for event in events if "result" in event or "error" in event)
    return response.json()


@dataclass
class Outcome:
    """One call as the client saw it: an HTTP status (``None``: no complete answer) and the tool result."""

    status: int | None
    result: dict[str, Any] | None = None

    @property
    def acknowledged(self) -> bool:
        """The tool ran and said so: a complete 200 answer whose result is not an error."""
        return self.status == 200 and self.result is not None and self.result.get("isError") is False


async def call_async(http: httpx.AsyncClient, url: str, tool: str, arguments: dict[str, Any], token: str) -> Outcome:
    body, headers = call_message(tool, arguments)
    try:
        response = await http.post(url, json=body, headers={**headers, "authorization": f"Bearer {token}"})
    except httpx.HTTPError:
        return Outcome(None)
    if response.status_code != 200:
        return Outcome(response.status_code)
    return Outcome(200, answer_of(response).get("result"))


@dataclass
class Caller:
    """One client: its token, the URLs it may use (in turn), and every call's outcome with its note text."""

    name: str
    token: str
    urls: list[str]
    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)

    async def add_notes(self, count: int, *, stop: asyncio.Event | None = None) -> None:
        """``count`` ``add_note`` calls one after another, each with a text naming the caller and call."""
        async with httpx.AsyncClient(timeout=30) as http:
            for n in range(count):
                if stop is not None and stop.is_set():
                    return
                note = f"{self.name}-{n}"
                url = self.urls[n % len(self.urls)]
                self.outcomes.append((note, await call_async(http, url, "add_note", {"text": note}, self.token)))

    def statuses(self) -> Counter[int | None]:
        return Counter(outcome.status for _, outcome in self.outcomes)

    def acknowledged(self) -> list[str]:
        return [note for note, outcome in self.outcomes if outcome.acknowledged]


# What was left behind ---------------------------------------------------------------------------

_PLAIN_5XX = re.compile(r'" (5\d\d)\b')


def answered_5xx(logs: str) -> list[int]:
    """The 5xx statuses in a server's access log (JSON lines, or uvicorn's plain format)."""
    statuses = []
    for line in logs.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            statuses += [int(status) for status in _PLAIN_5XX.findall(line)]
            continue
        if isinstance(entry, dict) and entry.get("logger") == "uvicorn.access" and int(entry.get("status", 0)) >= 500:
            statuses.append(int(entry["status"]))
    return statuses


def audited_calls(database_url: str, data_dir: Path, *, outcome: str = "ok") -> Counter[str]:
    """How many ``tool.call`` records with ``outcome`` each principal has."""

    async def count() -> Counter[str]:
        database = Database(database_url)
        try:
            log = AuditLog(database, data_dir)
            return Counter([record.principal async for record in log.query(kind="tool.call", outcome=outcome)])
        finally:
            await database.close()

    return asyncio.run(count())


def notes(database_url: str) -> set[str]:
    """Every note text in the app's table."""

    async def read() -> set[str]:
        database = Database(database_url)
        try:
            async with database.engine.connect() as connection:
                return {row[0] for row in await connection.execute(text("SELECT text FROM notes"))}
        finally:
            await database.close()

    return asyncio.run(read())


def audit_verify(database_url: str, data_dir: Path) -> str:
    """``ringfence audit verify``: fails the test unless it exits 0; returns its one-line summary."""
    done = ringfence_cli("audit", "verify", "--database-url", database_url, "--data-dir", str(data_dir))
    assert done.returncode == 0, f"audit verify exited {done.returncode}: {done.stdout}{done.stderr}"
    return done.stdout.strip()
