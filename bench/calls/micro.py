"""In-process micro-benchmarks: what each check on the request path costs per call.

Each measurement times one operation at a time with ``time.perf_counter_ns`` over many
iterations (after a warm-up) and reports the median; "per second" is one core's worth,
1 / median. The inputs are those of the reference app: its tools, its argument schemas, a real
ES256 access token from the authorization server's key ring, results of 1 and 20 contacts.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from mcp.server.mcpserver.tools import Tool
from starlette.applications import Starlette
from starlette.routing import Route

from ringfence.audit.log import AuditLog
from ringfence.authserver.keys import KeyRing
from ringfence.authserver.oauth import KeyRingSource
from ringfence.config import MCP_PATH, Settings
from ringfence.events import Events, SecurityEvent
from ringfence.guards.output import guard_result
from ringfence.guards.screening import ArgumentScreen
from ringfence.httpio import BODY_SCOPE_KEY, send_json
from ringfence.loader import load_app
from ringfence.monitor.service import Monitoring
from ringfence.ops.ratelimit import InProcessRateLimiter
from ringfence.ops.ratelimit_keys import keys_for
from ringfence.ops.ratelimit_redis import RedisRateLimiter
from ringfence.policy import authorize
from ringfence.principal import Principal
from ringfence.resource.gate import canonical_body, parse_call
from ringfence.resource.tokens import JwtVerifier, TokenCache
from ringfence.runtime import mcp_server_for
from ringfence.server import hardened, monitoring_options, outermost
from ringfence.store.database import Database

ISSUER = "http://127.0.0.1:8000"
RESOURCE = ISSUER + "/mcp"


@dataclass(frozen=True)
class Cost:
    name: str
    what: str
    median_us: float
    iterations: int

    @property
    def per_second(self) -> float:
        return 1e6 / self.median_us if self.median_us else 0.0


async def measure(name: str, what: str, operation: Callable[[], Awaitable[Any] | Any], iterations: int) -> Cost:
    """Median wall time of ``operation`` (awaited when it returns an awaitable), after a warm-up."""
    samples = []
    for index in range(iterations + max(5, iterations // 10)):
        began = time.perf_counter_ns()
        outcome = operation()
        if asyncio.iscoroutine(outcome):
            await outcome
        elapsed = time.perf_counter_ns() - began
        if index >= max(5, iterations // 10):
            samples.append(elapsed)
    return Cost(name, what, statistics.median(samples) / 1000, iterations)


def mcp_scope(body: bytes) -> dict[str, Any]:
    """An ASGI scope of a 2025-11-25 ``POST /mcp``, as RequestLimits hands it on (body already read)."""
    return {"type": "http", "method": "POST", "path": MCP_PATH, "raw_path": MCP_PATH.encode(), "query_string": b"",
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "scheme": "http",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                        (b"accept", b"application/json, text/event-stream"),
                        (b"content-length", str(len(body)).encode()), (b"mcp-protocol-version", b"2025-11-25")],
            BODY_SCOPE_KEY: body}


def http_layers(work: Path) -> Callable[[], Awaitable[None]]:
    """One request through every HTTP layer in front of the gate (server.outermost, hardened, metrics)
    to a route that answers at once: what those layers cost a call."""
    settings = Settings(public_url=ISSUER, data_dir=work / "layers")
    monitoring = Monitoring(monitoring_options(settings), {}, Events(None, b"k" * 32))

    class Answer:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await send_json(send, 200, {"jsonrpc": "2.0", "id": 7, "result": {}})

    routes = [Route(MCP_PATH, Answer())]
    asgi = outermost(monitoring.wrap(hardened(Starlette(routes=routes), settings), routes), settings)
    body = b'{"jsonrpc":"2.0","id":7,"method":"tools/list"}'

    async def request() -> None:
        scope = mcp_scope(body)
        del scope[BODY_SCOPE_KEY]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            pass

        await asgi(scope, receive, send)

    return request


def contacts(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"Ada Lovelace {i}", "email": f"ada{i}@example.com", "phone": "+44 20 7946 0018"}
            for i in range(count)]


async def guard_costs(work: Path, *, iterations: int, postgres_url: str | None, redis_url: str | None) -> list[Cost]:
    """Every per-call check, alone; the storage-backed ones on each backend available."""
    app = load_app(str(Path(__file__).with_name("contacts_unmetered.py")))
    server = mcp_server_for(app)
    screen = ArgumentScreen(app.tools)
    await screen.load(server)
    search, add = app.tools["search_contacts"], app.tools["add_contact"]

    ring = KeyRing(work / "keys", token_lifetime=900)
    ring.load()
    verifier = JwtVerifier(issuer=ISSUER, audience=RESOURCE, algorithms=("ES256",), keys=KeyRingSource(ring), leeway=30)
    cached_verifier = JwtVerifier(issuer=ISSUER, audience=RESOURCE, algorithms=("ES256",), keys=KeyRingSource(ring),
                                  leeway=30, cache=TokenCache())
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": RESOURCE, "sub": "u-" + uuid.uuid4().hex, "client_id": "bench", "iat": now,
              "exp": now + 900, "jti": uuid.uuid4().hex, "scope": "contacts:read contacts:write"}
    token = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": ring.active.kid}, claims, ring.active.key)
    principal = Principal(subject=claims["sub"], client_id="bench", issuer=ISSUER,
                          scopes=app.catalog.expand({"contacts:write"}))

    arguments = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0018"}
    convert = Tool.from_function(search.fn, name=search.name).fn_metadata.convert_result
    convert_one = Tool.from_function(add.fn, name=add.name).fn_metadata.convert_result
    twenty, one = convert(contacts(20)), convert_one(contacts(1)[0])
    limiter = InProcessRateLimiter()
    keys = keys_for(f"{ISSUER}|{claims['sub']}", "bench", "127.0.0.1", "search_contacts", app.rate_limits)

    search_body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                              "params": {"name": "search_contacts", "arguments": {"query": "ada"}}}).encode()
    costs = [
        await measure("HTTP layers", "security headers, request id, metrics, Host/Origin, CORS, limits, router",
                      http_layers(work), iterations),
        await measure("parse", "the body into a typed call, and its canonical JSON for the SDK (gate)",
                      lambda: canonical_body(parse_call(mcp_scope(search_body)).message), iterations),
        await measure("token verification", "ES256 JWT: signature, iss, aud, exp (JwtVerifier)",
                      lambda: verifier.verify(token), iterations),
        await measure("token verification, cached", "a repeat call's token: SHA-256 lookup, key set unchanged",
                      lambda: cached_verifier.verify(token), iterations * 10),
        await measure("argument validation", "add_contact's 3 strings: strict schema, limits, NFC, injection scan",
                      lambda: screen.screen("add_contact", arguments), iterations),
        await measure("scope check", "policy.authorize", lambda: authorize(search, principal, app.catalog),
                      iterations * 10),
        await measure("output guard, 1 contact", "guard_result on add_contact's result",
                      lambda: guard_result(add, one), iterations),
        await measure("output guard, 20 contacts", "guard_result on search_contacts' result",
                      lambda: guard_result(search, twenty), iterations),
        await measure("rate limit, in-process", "4 GCRA budgets (hit_all)", lambda: limiter.hit_all(keys),
                      iterations * 10),
    ]
    if redis_url:
        redis = RedisRateLimiter.from_url(redis_url, prefix=f"ringfence-bench:{uuid.uuid4().hex[:8]}:")
        try:
            costs.append(await measure("rate limit, Redis", "4 GCRA budgets, one Lua round trip",
                                       lambda: redis.hit_all(keys), iterations))
        finally:
            await redis.aclose()
    backends = [("SQLite", f"sqlite+aiosqlite:///{(work / 'audit.db').resolve()}")]
    if postgres_url:
        backends.append(("PostgreSQL", postgres_url))
    summary = {"effect": "read", "open_world": False, "arguments_hash": "0" * 32, "argument_fields": ["query"],
               "argument_bytes": {"query": 5}}
    for label, url in backends:
        database = Database(url)
        await database.start()
        try:
            audit = AuditLog(database, work / f"audit-{label}")
            (work / f"audit-{label}").mkdir(exist_ok=True)
            costs.append(await measure(f"audit write, {label}", "AuditLog.append, committed",
                                       lambda audit=audit: audit.append("tool.call", principal=claims["sub"],
                                                                        tool="search_contacts", outcome="ok",
                                                                        latency_ms=1.5, payload=summary),
                                       max(5, iterations // 10)))
            events = Events(audit, b"k" * 32)
            event = SecurityEvent("tool.call", "ok", principal=claims["sub"], tool="search_contacts",
                                  client_id="bench", address="127.0.0.1", latency_ms=1.5, details=summary)
            costs.append(await measure(f"audit event, {label}", "Events.record: redact the details, then append",
                                       lambda events=events, event=event: events.record(event),
                                       max(5, iterations // 10)))
        finally:
            await database.close()
    return costs
