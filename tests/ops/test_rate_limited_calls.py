"""Tool calls are rate-limited (MCP tools: servers MUST rate-limit tool invocations).

Over budget a call gets 429 with Retry-After and the tool does not run; budgets are per
principal, client, address and tool; with --redis-url several instances share them; when Redis
cannot answer, calls are refused with 503 (fail closed), never let through.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import external_idp_args
from tests.support.http import tool_result
from tests.support.idp import TestIdentityProvider, free_port, new_subject
from tests.support.redis_dbs import LIMITED_CALLS, redis_url
from tests.support.serve import ServeProcess, start_together, stop_together

LIMITED_APP = '''
from ringfence import App, Scope
from ringfence.ops.ratelimit import Rate
from ringfence.ops.ratelimit_keys import RateLimits

app = App("limited", scopes=[Scope("notes:read", "Read notes")],
          rate_limits=RateLimits(per_principal=Rate(3, 3600), per_address=Rate(100, 3600)))

@app.tool(effect="read", scopes=["notes:read"])
async def count() -> int:
    """Count to one."""
    return 1
'''
REDIS = redis_url(LIMITED_CALLS)


def limited_server(tmp: Path, idp: TestIdentityProvider, *extra: str) -> ServeProcess:
    app = tmp / "limited.py"
    app.write_text(LIMITED_APP)
    args, env = external_idp_args(idp, introspection=False)
    return ServeProcess(str(app), *args, "--data-dir", str(tmp / "data"), *extra, env=env)


def call(server: ServeProcess, idp: TestIdentityProvider, subject: str):  # type: ignore[no-untyped-def]
    return server.call_tool("count", token=idp.token(server.mcp_url, sub=subject, scope="notes:read"))


@pytest.fixture
def flushed_redis() -> str:
    import redis

    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    client.close()
    return REDIS


@pytest.fixture(scope="module")
def limited(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One server for the tests whose callers are principals of their own (the address budget,
    100 an hour, is far from what they spend together)."""
    folder = tmp_path_factory.mktemp("limited")
    server = limited_server(folder, idp).start(folder)
    yield server
    server.stop()


def test_call_over_the_principals_budget_gets_429_with_retry_after(idp, limited):
    server = limited
    alice, bob = new_subject(), new_subject()
    for _ in range(3):
        assert tool_result(call(server, idp, alice))["isError"] is False
    refused = call(server, idp, alice)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 0 < int(refused.headers["retry-after"]) <= 1200  # 3 an hour: the next one within 20 minutes
    assert tool_result(call(server, idp, bob))["isError"] is False  # another principal's budget is untouched


def test_calls_to_unknown_tools_spend_the_same_budget(idp, limited):
    """Unknown tool names are no way around the limit (they share one "(unknown)" tool budget)."""
    server = limited
    alice = new_subject()
    token = idp.token(server.mcp_url, sub=alice, scope="notes:read")
    statuses = [server.call_tool(f"no_such_tool_{n}", token=token).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert call(server, idp, alice).status_code == 429  # the principal's budget is spent


def test_two_instances_sharing_redis_share_one_budget(idp, tmp_path, flushed_redis):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = limited_server(tmp_path / "a", idp, "--redis-url", flushed_redis)
    second = limited_server(tmp_path / "b", idp, "--redis-url", flushed_redis)
    start_together(tmp_path, first, second)
    try:
        alice = new_subject()
        answers = [call(server, idp, alice).status_code for server in (first, second, first, second)]
        assert answers == [200, 200, 200, 429]
    finally:
        stop_together(first, second)


def test_unreachable_redis_refuses_calls_with_503(idp, tmp_path):
    """Fail closed: when the budget cannot be checked, the call is refused, never let through."""
    server = limited_server(tmp_path, idp, "--redis-url", f"redis://127.0.0.1:{free_port()}/0").start(tmp_path)
    try:
        refused = call(server, idp, new_subject())
        assert refused.status_code == 503
        assert refused.json()["error"] == "temporarily_unavailable"
        assert refused.headers["retry-after"] == "1"
    finally:
        server.stop()
