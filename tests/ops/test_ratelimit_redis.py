"""Rate limits shared through Redis: one budget for every app instance, refused when Redis cannot answer.

Tests use logical database 15 of the local Redis (scripts/services starts it) and flush only
that database; the restart test runs a Redis server of its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from ringfence.ops.ratelimit import Decision, Rate, RateLimitUnavailable
from ringfence.ops.ratelimit_keys import keys_for
from ringfence.ops.ratelimit_redis import RedisRateLimiter
from tests.support.redis_dbs import LIMITER, redis_url

pytestmark = pytest.mark.anyio

REDIS_URL = os.environ.get("RINGFENCE_TEST_REDIS") or redis_url(LIMITER)
PATIENT = 5.0  # seconds: tests of counting must not fail on a busy machine's slow answer


@pytest.fixture
def redis_db() -> Iterator[None]:
    """This worker's database of the local Redis for these tests, empty before and after the test."""
    client = Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.flushdb()
    except RedisError as exc:
        pytest.fail(f"Redis is required for these tests (scripts/services starts it): {exc}")
    yield
    client.flushdb()
    client.close()


@pytest.fixture
async def limiter(redis_db) -> AsyncIterator[RedisRateLimiter]:
    limiter = RedisRateLimiter.from_url(REDIS_URL, timeout=PATIENT)
    yield limiter
    await limiter.aclose()


@pytest.fixture
async def second_instance(limiter) -> AsyncIterator[RedisRateLimiter]:
    """Another app instance: its own client and connections to the same Redis."""
    other = RedisRateLimiter.from_url(REDIS_URL, timeout=PATIENT)
    yield other
    await other.aclose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def refused_quickly(limiter: RedisRateLimiter) -> float:
    started = time.monotonic()
    with pytest.raises(RateLimitUnavailable) as refusal:
        await limiter.hit("principal:alice", Rate(60, 60.0))
    assert refusal.value.status == 503
    return time.monotonic() - started


async def test_a_full_burst_passes_then_refusal_says_when_to_retry_and_waiting_that_long_is_enough(limiter):
    rate = Rate(5, 2.0)  # one call every 400 ms
    started = time.monotonic()
    burst = [await limiter.hit("alice", rate) for _ in range(5)]
    assert [d.allowed for d in burst] == [True] * 5

    refused = await limiter.hit("alice", rate)
    assert not refused.allowed
    assert 0.4 - (time.monotonic() - started) <= refused.retry_after <= 0.4  # on the Redis server's clock
    assert refused.retry_after_header == "1"

    await asyncio.sleep(refused.retry_after)
    assert (await limiter.hit("alice", rate)).allowed
    assert not (await limiter.hit("alice", rate)).allowed


async def test_an_idle_key_refills_to_its_burst_and_no_further(limiter):
    rate = Rate(3, 0.45)
    assert [(await limiter.hit("alice", rate)).allowed for _ in range(4)] == [True, True, True, False]
    await asyncio.sleep(0.5)
    assert [(await limiter.hit("alice", rate)).allowed for _ in range(4)] == [True, True, True, False]


async def test_a_call_refused_by_one_dimension_spends_no_other_dimension(limiter):
    tight, loose = Rate(1, 60.0), Rate(3, 60.0)
    assert (await limiter.hit("principal:alice", tight)).allowed

    refused = await limiter.hit_all([("principal:alice", tight), ("address:192.0.2.1", loose)])
    assert not refused.allowed and 59 < refused.retry_after <= 60
    assert (await limiter.hit("address:192.0.2.1", loose)).remaining == 2


async def test_an_allowed_call_spends_every_dimension(limiter):
    keys = keys_for("alice", "client-1", "192.0.2.1", "search")
    assert await limiter.hit_all(keys) == Decision(True, 0.0, 59)  # the principal's 60/min is the smallest
    for key, rate in keys:
        assert (await limiter.hit(key, rate)).remaining == rate.capacity - 2


async def test_two_instances_share_one_budget(limiter, second_instance):
    rate = Rate(10, 3600.0)
    decisions = []
    for _ in range(10):
        decisions.append(await limiter.hit("alice", rate))
        decisions.append(await second_instance.hit("alice", rate))
    assert sum(d.allowed for d in decisions) == 10
    assert not (await second_instance.hit("alice", rate)).allowed


async def test_concurrent_tasks_on_two_instances_never_exceed_the_limit(limiter, second_instance):
    rate = Rate(50, 3600.0)
    decisions = await asyncio.gather(*(
        instance.hit("shared", rate) for _ in range(100) for instance in (limiter, second_instance)
    ))
    assert sum(d.allowed for d in decisions) == 50


def count_allowed_in_child(start: Barrier, results: Queue, calls: int) -> None:
    async def hit_from_ten_tasks() -> int:
        limiter = RedisRateLimiter.from_url(REDIS_URL, timeout=PATIENT)
        await limiter.redis.ping()
        start.wait(timeout=10)

        async def task() -> int:
            return sum([(await limiter.hit("shared", Rate(100, 3600.0))).allowed for _ in range(calls // 10)])

        allowed = sum(await asyncio.gather(*(task() for _ in range(10))))
        await limiter.aclose()
        return allowed

    results.put(asyncio.run(hit_from_ten_tasks()))


def test_two_processes_hitting_at_once_never_exceed_the_limit(redis_db):
    processes = multiprocessing.get_context("fork")  # app workers, as a pre-forking server starts them
    start, results = processes.Barrier(2), processes.Queue()
    children = [processes.Process(target=count_allowed_in_child, args=(start, results, 150)) for _ in range(2)]
    for child in children:
        child.start()
    allowed = [results.get(timeout=20) for _ in children]
    for child in children:
        child.join(timeout=5)
    assert [child.exitcode for child in children] == [0, 0]
    assert sum(allowed) == 100


async def test_keys_are_namespaced_hashed_when_long_and_expire_with_their_budget(limiter):
    long_subject = "principal:" + "x" * 500
    await limiter.hit("principal:alice", Rate(10, 2.0))
    await limiter.hit(long_subject, Rate(10, 2.0))
    names = sorted(name.decode() for name in await limiter.redis.keys("*"))
    assert names[0].startswith("ringfence:rl:h:") and len(names[0]) == len("ringfence:rl:h:") + 64
    assert names[1] == "ringfence:rl:k:principal:alice"
    for name in names:
        assert 0 < await limiter.redis.pttl(name) <= 200  # one interval spent: expires when refilled


async def test_unreachable_redis_refuses_the_call_within_a_second():
    limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{free_port()}/15")  # nothing listens there
    assert await refused_quickly(limiter) < 1.0
    await limiter.aclose()


async def test_a_redis_that_never_answers_refuses_the_call_within_a_second():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{silent.getsockname()[1]}/15")
        assert await refused_quickly(limiter) < 1.0
    await limiter.aclose()


async def test_the_deadline_holds_whatever_the_clients_own_timeouts():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        no_timeouts = AsyncRedis(host="127.0.0.1", port=silent.getsockname()[1])
        limiter = RedisRateLimiter(no_timeouts, timeout=0.3)
        assert await refused_quickly(limiter) < 0.6
    await limiter.aclose()


async def test_any_redis_error_refuses_the_call(limiter):
    await limiter.redis.rpush("ringfence:rl:k:principal:alice", "not a budget")
    await refused_quickly(limiter)


async def test_a_flushed_database_starts_every_budget_afresh(limiter):
    rate = Rate(1, 3600.0)
    await limiter.hit("alice", rate)
    assert not (await limiter.hit("alice", rate)).allowed
    await limiter.redis.flushdb()
    assert (await limiter.hit("alice", rate)).allowed


@pytest.fixture
def own_redis() -> Iterator[tuple[int, list[subprocess.Popen]]]:
    """A Redis server only this test uses, so it can be stopped and started again."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required for this test (scripts/services installs it)")
    servers: list[subprocess.Popen] = []
    yield free_port(), servers
    for server in servers:
        server.terminate()
        server.wait(timeout=5)


def start_redis(port: int, servers: list[subprocess.Popen]) -> None:
    servers.append(subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    ))
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    pytest.fail(f"redis-server did not start on port {port}")


async def test_checks_refuse_while_redis_is_down_and_succeed_once_it_is_back(own_redis):
    port, servers = own_redis
    start_redis(port, servers)
    limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{port}/0")
    rate = Rate(2, 3600.0)
    assert (await limiter.hit("alice", rate)).remaining == 1

    servers[0].terminate()
    servers[0].wait(timeout=5)
    assert await refused_quickly(limiter) < 1.0

    start_redis(port, servers)  # empty: no budgets and no cached script (NOSCRIPT, then EVAL)
    assert (await limiter.hit("alice", rate)).remaining == 1
    await limiter.aclose()


async def test_a_refund_made_by_one_instance_is_seen_by_the_other(limiter, second_instance) -> None:
    """The sign-in throttle gives a successful attempt back through Redis: every instance sees it."""
    rate = Rate(3, 30.0)
    assert [(await limiter.hit("pat", rate)).allowed for _ in range(3)] == [True] * 3
    assert not (await second_instance.hit("pat", rate)).allowed
    await limiter.refund_all([("pat", rate)])
    assert (await second_instance.hit("pat", rate)).allowed  # the attempt given back, at the other instance
    assert not (await limiter.hit("pat", rate)).allowed
    await second_instance.refund_all([("never-seen", rate)])  # nothing to give back: no key is made
    client = AsyncRedis.from_url(REDIS_URL)
    try:
        assert [key async for key in client.scan_iter("*never-seen*")] == []
    finally:
        await client.aclose()
