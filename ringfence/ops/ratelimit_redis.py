"""Rate limits shared by every app instance: GCRA in one Lua script, on the Redis server's clock.

Each check is one round trip (``EVALSHA``; ``EVAL`` once after the script cache was emptied) and
atomic: the script reads every key's TAT, decides, and writes all of them or none. Time comes
from the server's ``TIME``, so instances whose clocks disagree still share one budget. Every key
expires when its TAT passes (after that it would decide as an absent key does), so Redis holds
only budgets in use. Any failure to get an answer in time refuses the call: fail closed.

Needs Redis (or Valkey) 5 or later, for scripts that write after reading ``TIME``. All of one
call's keys go to one script, so on Redis Cluster give the prefix a hash tag
(``prefix="ringfence:rl:{myapp}:"``) to keep them in one slot.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ringfence.ops.ratelimit import (
    MICROSECONDS,
    UNLIMITED,
    Decision,
    Rate,
    RateLimitUnavailable,
    check_request,
    storage_key,
)

# KEYS: one per budget. ARGV[1]: cost; then per key its emission interval and tolerance (µs).
# Returns {allowed (0/1), microseconds to wait, calls remaining}. Same arithmetic as InProcessRateLimiter.
GCRA_ALL_OR_NOTHING = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local cost = tonumber(ARGV[1])
local wait = 0
local remaining = math.huge
local new_tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = math.max(tonumber(redis.call('GET', key) or now), now)
  local new_tat = tat + cost * interval
  local allow_at = new_tat - tolerance
  if allow_at > now then
    wait = math.max(wait, allow_at - now)
    remaining = math.min(remaining, math.max(0, math.floor((now - tat + tolerance) / interval)))
  else
    remaining = math.min(remaining, math.floor((now - allow_at) / interval))
  end
  new_tats[i] = new_tat
end
if wait > 0 then
  return {0, wait, remaining}
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%d', new_tats[i]), 'PX', math.ceil((new_tats[i] - now) / 1000))
end
return {1, 0, remaining}
"""
GCRA_ALL_OR_NOTHING_SHA = hashlib.sha1(GCRA_ALL_OR_NOTHING.encode(), usedforsecurity=False).hexdigest()

# Gives ``cost`` back to each key (same KEYS and ARGV as above): its TAT moves back, or it is deleted
# when that leaves a full budget.
GCRA_REFUND = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local cost = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key))
  if tat then
    local new_tat = tat - cost * tonumber(ARGV[2 * i])
    if new_tat > now then
      redis.call('SET', key, string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
    else
      redis.call('DEL', key)
    end
  end
end
return 1
"""

DEFAULT_PREFIX = "ringfence:rl:"
DEFAULT_TIMEOUT = 0.5
DEFAULT_MAX_CONNECTIONS = 32


class RedisRateLimiter:
    """GCRA budgets in Redis, shared by every process that uses the same server, database and prefix.

    ``timeout`` bounds each check whatever the client's own settings: past it, or on any Redis
    error, :class:`~ringfence.ops.ratelimit.RateLimitUnavailable` is raised and the call must be
    refused. Build the client with :meth:`from_url` to also get short socket timeouts.
    """

    def __init__(self, redis: Redis, *, prefix: str = DEFAULT_PREFIX, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.redis = redis
        self.prefix = prefix
        self.timeout = timeout

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> RedisRateLimiter:
        """A limiter on its own client, whose connect, read and pool waits fit within ``timeout``.

        At most ``max_connections`` connections: a burst of calls queues for one rather than
        opening hundreds at once (each connection takes several round trips to set up). One
        immediate retry on a broken connection lets a check succeed right after Redis restarts;
        redis-py's default retry backs off for seconds.
        """
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_connect_timeout=timeout / 2,
            socket_timeout=timeout / 2,
            retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError, RedisTimeoutError)),
        )
        return cls(Redis.from_pool(pool), prefix=prefix, timeout=timeout)

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        return await self.hit_all([(key, rate)], cost)

    async def hit_all(self, keys: Sequence[tuple[str, Rate]], cost: int = 1) -> Decision:
        check_request(keys, cost)
        if not keys:
            return UNLIMITED
        names, args = self._script_input(keys, cost)
        try:
            async with asyncio.timeout(self.timeout):
                allowed, wait, remaining = await self._run(names, args)
        except (RedisError, OSError) as exc:  # OSError includes the builtin TimeoutError of asyncio.timeout
            raise RateLimitUnavailable("The rate limit could not be checked; try again shortly.") from exc
        return Decision(allowed=bool(allowed), retry_after=int(wait) / MICROSECONDS, remaining=int(remaining))

    async def refund_all(self, keys: Sequence[tuple[str, Rate]], cost: int = 1) -> None:
        """Raises :class:`~ringfence.ops.ratelimit.RateLimitUnavailable` when Redis cannot answer in time."""
        check_request(keys, cost)
        if not keys:
            return
        names, args = self._script_input(keys, cost)
        try:
            async with asyncio.timeout(self.timeout):
                await self.redis.eval(GCRA_REFUND, len(names), *names, *args)
        except (RedisError, OSError) as exc:
            raise RateLimitUnavailable("The rate limit could not be updated; try again shortly.") from exc

    def _script_input(self, keys: Sequence[tuple[str, Rate]], cost: int) -> tuple[list[str], list[int]]:
        """The scripts' KEYS (prefixed) and ARGV (cost, then each rate's interval and tolerance)."""
        args = [cost]
        for _, rate in keys:
            args += [rate.interval_us, rate.tolerance_us]
        return [self.prefix + storage_key(key) for key, _ in keys], args

    async def _run(self, names: list[str], args: list[int]) -> list[int]:
        try:
            return await self.redis.evalsha(GCRA_ALL_OR_NOTHING_SHA, len(names), *names, *args)
        except NoScriptError:  # the script cache is empty after a restart or SCRIPT FLUSH
            return await self.redis.eval(GCRA_ALL_OR_NOTHING, len(names), *names, *args)
