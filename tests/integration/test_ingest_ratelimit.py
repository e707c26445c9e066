"""The Redis token bucket against the real Redis: atomic, shared by every ingest instance."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from ingest.ratelimit import RedisRateLimiter
from switchboard.testing import eventually

pytestmark = pytest.mark.integration


async def test_a_key_may_burst_up_to_its_rate_then_is_told_when_to_retry(redis: Redis, key_prefix: str):
    limiter = RedisRateLimiter(redis, key_prefix)
    decisions = [await limiter.acquire("webchat", 6) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 6 + [False]
    # Six a minute is a token every ten seconds; a few milliseconds passed since the bucket was full.
    assert 9.0 < decisions[-1].retry_after <= 10.0
    assert decisions[-1].retry_after_header() == "10"


async def test_instances_share_each_keys_bucket(redis_url: str, redis: Redis, key_prefix: str):
    other = Redis.from_url(redis_url)
    try:
        first, second = RedisRateLimiter(redis, key_prefix), RedisRateLimiter(other, key_prefix)
        allowed = [(await (first if i % 2 else second).acquire("webchat", 4)).allowed for i in range(6)]
        assert allowed == [True] * 4 + [False] * 2
        assert (await first.acquire("crm", 4)).allowed
    finally:
        await other.aclose()


async def test_concurrent_requests_never_take_more_tokens_than_the_bucket_holds(
    redis: Redis, key_prefix: str
):
    limiter = RedisRateLimiter(redis, key_prefix)
    decisions = await asyncio.gather(*(limiter.acquire("webchat", 20) for _ in range(60)))
    assert sum(d.allowed for d in decisions) == 20


async def test_tokens_come_back_as_time_passes(redis: Redis, key_prefix: str):
    limiter = RedisRateLimiter(redis, key_prefix)
    # 600 a minute is a token every 100 ms.
    while (await limiter.acquire("webchat", 600)).allowed:
        pass

    async def refilled() -> bool:
        return (await limiter.acquire("webchat", 600)).allowed

    assert await eventually(refilled, timeout=5)


async def test_a_bucket_expires_once_it_would_be_full_again(redis: Redis, key_prefix: str):
    await RedisRateLimiter(redis, key_prefix).acquire("webchat", 60)
    ttl = await redis.pttl(f"{key_prefix}ingest:ratelimit:webchat")
    assert 60_000 <= ttl <= 61_000


async def test_requests_sharing_a_round_trip_are_told_what_they_would_be_told_one_by_one(
    redis: Redis, key_prefix: str
):
    limiter = RedisRateLimiter(redis, key_prefix)
    # Concurrent requests of two keys go to Redis together; each key's bucket is its own.
    decisions = await asyncio.gather(
        *(limiter.acquire("webchat", 6) for _ in range(9)), *(limiter.acquire("crm", 60) for _ in range(3))
    )
    webchat, crm = decisions[:9], decisions[9:]
    assert [d.allowed for d in webchat] == [True] * 6 + [False] * 3
    assert all(d.allowed for d in crm)
    # Six a minute: a token every ten seconds, a few milliseconds after the bucket was full.
    assert all(9.0 < d.retry_after <= 10.0 for d in webchat[6:])
    # Each allowed request sees what was left after its own token.
    assert [round(d.remaining) for d in webchat[:6]] == [5, 4, 3, 2, 1, 0]
    assert [round(d.remaining) for d in crm] == [59, 58, 57]
