"""Per-key rate limits: a token bucket per API key, shared by every ingest instance through Redis.

A bucket holds up to `rate_per_minute` tokens and refills continuously at `rate_per_minute / 60` per
second; each request takes one token, and a request that finds none is told how long to wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis


@dataclass(frozen=True)
class Decision:
    """Whether a request may go on, and if not, after how many seconds a token will be there."""

    allowed: bool
    retry_after: float = 0.0
    remaining: float = 0.0

    def retry_after_header(self) -> str:
        """Return `Retry-After` in whole seconds, at least one."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter(Protocol):
    """Takes one token from a key's bucket."""

    async def acquire(self, key: str, rate_per_minute: int) -> Decision:
        """Take a token for `key` if there is one; say when there will be one otherwise."""
        ...


def take(tokens: float, elapsed: float, capacity: float) -> tuple[Decision, float]:
    """Refill a bucket for `elapsed` seconds and take one token; return the decision and what is left."""
    rate = capacity / 60.0
    tokens = min(capacity, tokens + max(0.0, elapsed) * rate)
    if tokens >= 1.0:
        return Decision(True, 0.0, tokens - 1.0), tokens - 1.0
    return Decision(False, (1.0 - tokens) / rate, tokens), tokens


class MemoryRateLimiter:
    """Buckets in this process, for unit tests and a single instance."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._buckets: dict[str, tuple[float, float]] = {}

    async def acquire(self, key: str, rate_per_minute: int) -> Decision:
        """Take a token for `key` if there is one; say when there will be one otherwise."""
        now = self._now()
        tokens, last = self._buckets.get(key, (float(rate_per_minute), now))
        decision, left = take(tokens, now - last, float(rate_per_minute))
        self._buckets[key] = (left, now)
        return decision


# One round trip, atomic: read the bucket, refill it for the time elapsed on Redis' own clock (the same
# for every instance, whatever their clocks say), take a token if there is one, write it back.
# A bucket untouched for a minute is full again, so it may expire then. Floats are returned as
# strings because Redis truncates Lua numbers to integers.
_TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local rate = capacity / 60.0
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(capacity, tokens + elapsed * rate)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 61000)
return {allowed, tostring(retry), tostring(tokens)}
"""


class RedisRateLimiter:
    """Buckets in Redis, so that several ingest instances share each key's limit."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = f"{prefix}ingest:ratelimit:"
        self._script = redis.register_script(_TOKEN_BUCKET)

    async def acquire(self, key: str, rate_per_minute: int) -> Decision:
        """Take a token for `key` if there is one; say when there will be one otherwise."""
        allowed, retry, remaining = await self._script(keys=[self._prefix + key], args=[rate_per_minute])
        return Decision(bool(int(allowed)), float(retry), float(remaining))
