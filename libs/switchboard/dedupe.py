"""Remember which events a consumer group has handled, so redelivery after a crash is harmless."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from redis.asyncio import Redis


class Deduper(Protocol):
    """Tells which event ids were already handled and records new ones."""

    async def seen(self, ids: list[str]) -> set[str]:
        """Return the ids among `ids` that were already handled."""
        ...

    async def mark(self, ids: Iterable[str]) -> None:
        """Record `ids` as handled."""
        ...


class RedisDeduper:
    """Handled ids in one Redis set per time bucket: one command marks a whole batch.

    A bucket spans `ttl_seconds` and expires one bucket after it closes, so an id is remembered for
    between one and two TTLs. One set per bucket (not one key per id) keeps a batch to a single SADD
    and a check to a single SMISMEMBER per live bucket, which is what keeps the bus near the speed of
    a bare consume-produce loop.
    """

    def __init__(
        self, redis: Redis, namespace: str, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self._ttl = max(1, ttl_seconds)
        self._clock = clock

    def _bucket(self, offset: int = 0) -> str:
        return f"{self._namespace}{int(self._clock() // self._ttl) - offset}"

    async def seen(self, ids: list[str]) -> set[str]:
        """Return the ids among `ids` that were already handled."""
        if not ids:
            return set()
        pipe = self._redis.pipeline(transaction=False)
        pipe.smismember(self._bucket(0), ids)
        pipe.smismember(self._bucket(1), ids)
        current, previous = await pipe.execute()
        return {i for i, a, b in zip(ids, current, previous, strict=True) if a or b}

    async def mark(self, ids: Iterable[str]) -> None:
        """Record `ids` as handled."""
        members = list(ids)
        if not members:
            return
        bucket = self._bucket(0)
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(bucket, *members)
        pipe.expire(bucket, 2 * self._ttl)
        await pipe.execute()


class MemoryDeduper:
    """An in-process deduper for unit tests and benchmarks of pure logic."""

    def __init__(self) -> None:
        self.handled: set[str] = set()

    async def seen(self, ids: list[str]) -> set[str]:
        """Return the ids among `ids` that were already handled."""
        return self.handled.intersection(ids)

    async def mark(self, ids: Iterable[str]) -> None:
        """Record `ids` as handled."""
        self.handled.update(ids)
