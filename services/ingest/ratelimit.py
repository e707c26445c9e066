"""Per-key rate limits: a token bucket per API key, shared by every ingest instance through Redis.

A bucket holds up to `rate_per_minute` tokens and refills continuously at `rate_per_minute / 60` per
second; each request takes one token, and a request that finds none is told how long to wait.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from switchboard.groupcommit import GroupCommit


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


# One round trip, atomic, for the requests of every key waiting: read each bucket, refill it for the
# time elapsed on Redis' own clock (the same for every instance, whatever their clocks say), take a token
# for as many of its requests as it holds, write it back. KEYS[i] is a bucket, ARGV[2i-1] its capacity
# and ARGV[2i] how many requests want a token from it. A bucket untouched for a minute is full again, so
# it may expire then. Floats are returned as strings because Redis truncates Lua numbers to integers.
_TOKEN_BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[2 * i - 1])
  local wanted = tonumber(ARGV[2 * i])
  local rate = capacity / 60.0
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = capacity
    ts = now
  end
  local elapsed = now - ts
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(capacity, tokens + elapsed * rate)
  local granted = math.min(wanted, math.floor(tokens))
  if granted < 0 then granted = 0 end
  tokens = tokens - granted
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, 61000)
  out[#out + 1] = granted
  out[#out + 1] = tostring(tokens)
end
return out
"""


def share_out(wanted: int, granted: int, left: float, capacity: float) -> list[Decision]:
    """Decide `wanted` requests of one bucket of which the first `granted` got a token, `left` remaining.

    What the same requests would have been told one after the other: each allowed one sees the tokens
    left after its own, each refused one when the next token will be there.
    """
    rate = capacity / 60.0
    decisions = [Decision(True, 0.0, left + (granted - 1 - i)) for i in range(granted)]
    decisions += [Decision(False, (1.0 - left) / rate, left)] * (wanted - granted)
    return decisions


class RedisRateLimiter:
    """Buckets in Redis, so that several ingest instances share each key's limit.

    Concurrent requests share one round trip (`GroupCommit`): under load a request pays a share of one
    script call instead of one of its own.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = f"{prefix}ingest:ratelimit:"
        self._script = redis.register_script(_TOKEN_BUCKETS)
        self._requests: GroupCommit[tuple[str, int], Decision] = GroupCommit(self._take)

    async def acquire(self, key: str, rate_per_minute: int) -> Decision:
        """Take a token for `key` if there is one; say when there will be one otherwise."""
        (decision,) = await self._requests.submit([(key, rate_per_minute)])
        return decision

    async def _take(self, requests: list[tuple[str, int]]) -> list[Decision]:
        """Take a token for each request, in one call; return the decisions in the requests' order."""
        wanted = Counter(requests)  # in the order each key first asked
        args: list[int] = []
        for (_, rate), count in wanted.items():
            args += [rate, count]
        reply = await self._script(keys=[self._prefix + key for key, _ in wanted], args=args)
        decided: dict[tuple[str, int], list[Decision]] = {}
        for i, (request, count) in enumerate(wanted.items()):
            granted, left = int(reply[2 * i]), float(reply[2 * i + 1])
            # Reversed, so that popping from the end hands them out first to last.
            decided[request] = share_out(count, granted, left, float(request[1]))[::-1]
        return [decided[request].pop() for request in requests]
