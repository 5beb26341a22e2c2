"""Rate limits on tool calls (MCP: servers MUST rate limit tool invocations): GCRA, in process.

A controllable clock makes every decision exact: a burst, then a refusal whose Retry-After is
the time until the next call would pass, then refill at the sustained rate.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringfence.ops.ratelimit import Decision, InProcessRateLimiter, Rate, storage_key
from ringfence.ops.ratelimit_keys import RateLimits, keys_for

pytestmark = pytest.mark.anyio


class Clock:
    """Counts whole microseconds, so a test can land exactly on a boundary."""

    def __init__(self) -> None:
        self.now_us = 1_000_000_000

    def __call__(self) -> float:
        return self.now_us / 1_000_000

    def advance(self, seconds: float) -> None:
        self.now_us += round(seconds * 1_000_000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> InProcessRateLimiter:
    return InProcessRateLimiter(clock=clock)


async def hits(limiter: InProcessRateLimiter, key: str, rate: Rate, count: int) -> list[Decision]:
    return [await limiter.hit(key, rate) for _ in range(count)]


async def test_a_full_burst_passes_then_the_next_call_is_refused_with_retry_after_one_interval(limiter):
    rate = Rate(5, 10.0)  # one call every 2 s, bursts of 5
    burst = await hits(limiter, "alice", rate, 5)
    assert [d.allowed for d in burst] == [True] * 5
    assert [d.remaining for d in burst] == [4, 3, 2, 1, 0]

    refused = await limiter.hit("alice", rate)
    assert refused == Decision(allowed=False, retry_after=2.0, remaining=0)
    assert refused.retry_after_header == "2"


async def test_retry_after_header_rounds_up_to_whole_seconds(limiter, clock):
    rate = Rate(1, 10.0)
    await limiter.hit("alice", rate)
    clock.advance(9.75)
    refused = await limiter.hit("alice", rate)
    assert refused.retry_after == pytest.approx(0.25)
    assert refused.retry_after_header == "1"  # RFC 9110 §10.2.3: whole seconds; never invite an early retry


async def test_budget_refills_at_the_sustained_rate_and_never_beyond_the_burst(limiter, clock):
    rate = Rate(5, 10.0)
    await hits(limiter, "alice", rate, 5)

    clock.advance(1.999)
    assert not (await limiter.hit("alice", rate)).allowed
    clock.advance(0.001)
    assert (await limiter.hit("alice", rate)).allowed
    assert not (await limiter.hit("alice", rate)).allowed

    clock.advance(3600)
    assert [d.allowed for d in await hits(limiter, "alice", rate, 6)] == [True] * 5 + [False]


async def test_a_refused_call_spends_nothing(limiter, clock):
    rate = Rate(1, 10.0)
    await limiter.hit("alice", rate)
    for _ in range(100):
        clock.advance(0.05)
        assert not (await limiter.hit("alice", rate)).allowed
    clock.advance(5.0)  # 10 s after the first call, however many refusals came between
    assert (await limiter.hit("alice", rate)).allowed


async def test_burst_can_be_smaller_than_the_limit(limiter):
    rate = Rate(60, 60.0, burst=10)
    assert [d.allowed for d in await hits(limiter, "alice", rate, 11)] == [True] * 10 + [False]


async def test_a_call_with_a_cost_spends_that_many_calls(limiter):
    rate = Rate(5, 10.0)
    assert (await limiter.hit("alice", rate, cost=3)) == Decision(True, 0.0, 2)
    refused = await limiter.hit("alice", rate, cost=3)
    assert refused == Decision(allowed=False, retry_after=2.0, remaining=2)  # two left, three asked
    with pytest.raises(ValueError, match="could never pass"):
        await limiter.hit("alice", rate, cost=6)


async def test_keys_have_separate_budgets(limiter):
    rate = Rate(1, 60.0)
    assert (await limiter.hit("alice", rate)).allowed
    assert (await limiter.hit("bob", rate)).allowed
    assert not (await limiter.hit("alice", rate)).allowed


async def test_a_call_refused_by_one_dimension_spends_no_other_dimension(limiter):
    tight, loose = Rate(1, 60.0), Rate(3, 60.0)
    assert (await limiter.hit("principal:alice", tight)).allowed

    refused = await limiter.hit_all([("principal:alice", tight), ("address:192.0.2.1", loose)])
    assert refused == Decision(allowed=False, retry_after=60.0, remaining=0)
    assert (await limiter.hit("address:192.0.2.1", loose)).remaining == 2  # untouched by the refusal


async def test_an_allowed_call_spends_every_dimension_and_reports_the_smallest_remainder(limiter, clock):
    keys = [("principal:alice", Rate(2, 60.0)), ("tool:search", Rate(10, 60.0))]
    assert await limiter.hit_all(keys) == Decision(True, 0.0, 1)
    assert await limiter.hit_all(keys) == Decision(True, 0.0, 0)
    refused = await limiter.hit_all(keys)
    assert not refused.allowed and refused.retry_after == 30.0
    assert (await limiter.hit("tool:search", Rate(10, 60.0))).remaining == 7


async def test_retry_after_across_dimensions_is_the_longest_wait(limiter):
    keys = [("a", Rate(1, 10.0)), ("b", Rate(1, 40.0))]
    await limiter.hit_all(keys)
    assert (await limiter.hit_all(keys)).retry_after == 40.0


async def test_concurrent_tasks_never_exceed_the_limit(limiter):
    rate = Rate(50, 3600.0)
    decisions = await asyncio.gather(*(limiter.hit("shared", rate) for _ in range(500)))
    assert sum(d.allowed for d in decisions) == 50


async def test_spraying_keys_never_holds_more_than_max_keys(clock):
    limiter = InProcessRateLimiter(max_keys=1_000, clock=clock)
    rate = Rate(1, 3600.0)
    for i in range(20_000):
        await limiter.hit(f"address:10.0.{i // 256}.{i % 256}", rate)
    assert len(limiter) == 1_000


async def test_a_key_in_use_keeps_its_budget_while_others_are_sprayed(clock):
    limiter = InProcessRateLimiter(max_keys=100, clock=clock)
    rate = Rate(1, 3600.0)
    await limiter.hit("principal:mallory", rate)
    for i in range(10_000):
        await limiter.hit(f"address:sprayed-{i}", rate)
        assert not (await limiter.hit("principal:mallory", rate)).allowed  # evicting it would reset its budget
    assert len(limiter) == 100


async def test_expired_keys_are_dropped_as_calls_arrive(limiter, clock):
    rate = Rate(10, 1.0)
    for i in range(100):
        await limiter.hit(f"key-{i}", rate)
    assert len(limiter) == 100
    clock.advance(1.0)  # every TAT has passed: those keys would decide as absent ones
    for _ in range(50):
        await limiter.hit("active", rate)
        clock.advance(0.1)
    assert len(limiter) == 1


def test_long_or_unusual_keys_are_stored_by_their_hash():
    assert storage_key("principal:alice@example.com") == "k:principal:alice@example.com"
    for key in ("principal:" + "a" * 200, "principal:{tag}", "principal:a b", "principal:\udcff"):
        stored = storage_key(key)
        assert stored.startswith("h:") and len(stored) == 66


def test_rates_that_cannot_work_are_refused_when_declared():
    for bad in (lambda: Rate(0, 60), lambda: Rate(10, 0), lambda: Rate(10, 60, burst=0),
                lambda: Rate(2_000_000, 1)):
        with pytest.raises(ValueError):
            bad()


# Token bucket, in exact fractions: tokens refill at limit/period, capped at the burst.
@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 100),
    period=st.sampled_from([0.5, 1.0, 7.0, 60.0]),
    burst=st.one_of(st.none(), st.integers(1, 20)),
    steps=st.lists(st.tuples(st.integers(0, 3_000_000), st.integers(1, 3)), max_size=40),
)
def test_decisions_equal_a_token_bucket_with_the_same_rate(limit, period, burst, steps):
    asyncio.run(compare_with_token_bucket(Rate(limit, period, burst), steps))


async def compare_with_token_bucket(rate: Rate, steps: list[tuple[int, int]]) -> None:
    clock = Clock()
    limiter = InProcessRateLimiter(clock=clock)
    interval = Fraction(rate.interval_us)
    tokens = Fraction(rate.capacity)
    for advance_us, cost in steps:
        if cost > rate.capacity:
            continue
        clock.now_us += advance_us
        tokens = min(Fraction(rate.capacity), tokens + Fraction(advance_us) / interval)
        decision = await limiter.hit("k", rate, cost)
        if tokens >= cost:
            tokens -= cost
            assert decision.allowed
        else:
            assert not decision.allowed
            assert decision.retry_after == pytest.approx(float((cost - tokens) * interval / 1_000_000), abs=1e-6)
        assert decision.remaining == int(tokens)


def test_keys_for_an_authenticated_call_cover_principal_client_address_and_tool():
    limits = RateLimits()
    assert keys_for("alice", "https://chatgpt.com/client", "192.0.2.1", "search", limits) == [
        ("principal:alice", limits.per_principal),
        ("client:https://chatgpt.com/client", limits.per_client),
        ("address:192.0.2.1", limits.per_address),
        ("tool:search", limits.per_tool),
    ]


def test_keys_for_an_anonymous_call_are_its_own_address_and_tool_budgets():
    """Unauthenticated calls never spend a budget a signed-in call spends (keys apart from theirs)."""
    limits = RateLimits()
    assert keys_for(None, None, "192.0.2.1", "app_info", limits) == [
        ("anonymous:192.0.2.1", limits.per_anonymous_address), ("anonymous-tool:app_info", limits.per_tool)]
    signed_in = {key for key, _ in keys_for("alice", "c", "192.0.2.1", "app_info", limits)}
    assert signed_in.isdisjoint(key for key, _ in keys_for(None, None, "192.0.2.1", "app_info", limits))


def test_calls_from_an_unknown_address_share_one_budget():
    assert keys_for(None, None, None, "t")[0][0] == "anonymous:unknown"
    assert keys_for("alice", None, None, "t")[1][0] == "address:unknown"


def test_ipv6_callers_are_counted_per_64_and_mapped_ipv4_as_ipv4():
    key = keys_for(None, None, "2001:db8:1:2:aaaa::1", "t")[0][0]
    assert key == keys_for(None, None, "2001:db8:1:2:bbbb::9", "t")[0][0] == "anonymous:2001:db8:1:2::/64"
    assert keys_for(None, None, "::ffff:192.0.2.1", "t")[0][0] == "anonymous:192.0.2.1"
    assert keys_for("alice", None, "2001:db8:1:2:aaaa::1", "t")[1][0] == "address:2001:db8:1:2::/64"


def test_a_tool_rate_overrides_the_default_and_none_turns_a_dimension_off():
    send = Rate(10, 3600.0)
    limits = RateLimits(per_address=None, per_tool=None, tools={"send_email": send})
    assert keys_for("alice", None, "192.0.2.1", "send_email", limits) == [
        ("principal:alice", limits.per_principal), ("tool:send_email", send)]
    assert keys_for("alice", None, "192.0.2.1", "search", limits) == [("principal:alice", limits.per_principal)]


async def test_refund_gives_back_spent_calls_and_forgets_a_key_it_leaves_full(limiter, clock):
    """The sign-in throttle spends before checking a password and gives a success back: only failures count."""
    rate = Rate(3, 30.0)
    assert [d.allowed for d in await hits(limiter, "pat", rate, 3)] == [True] * 3
    await limiter.refund_all([("pat", rate)])
    assert (await limiter.hit("pat", rate)).allowed  # the call given back is available again
    assert not (await limiter.hit("pat", rate)).allowed
    await limiter.refund_all([("pat", rate)], cost=3)
    assert len(limiter) == 0  # a full budget is no entry at all
    await limiter.refund_all([("never-seen", rate)])  # nothing to give back: no entry is made
    assert len(limiter) == 0
