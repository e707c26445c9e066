"""Remember which events a consumer group has handled, so redelivery after a crash is harmless."""

from __future__ import annotations

from collections.abc import Iterable
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
    """Handled ids as expiring Redis keys, one round trip per batch for each direction."""

    def __init__(self, redis: Redis, namespace: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._namespace = namespace
        self._ttl = ttl_seconds

    def _key(self, event_id: str) -> str:
        return f"{self._namespace}{event_id}"

    async def seen(self, ids: list[str]) -> set[str]:
        """Return the ids among `ids` that were already handled."""
        if not ids:
            return set()
        values = await self._redis.mget([self._key(i) for i in ids])
        return {i for i, v in zip(ids, values, strict=True) if v is not None}

    async def mark(self, ids: Iterable[str]) -> None:
        """Record `ids` as handled for the configured time."""
        pipe = self._redis.pipeline(transaction=False)
        count = 0
        for event_id in ids:
            pipe.set(self._key(event_id), b"1", ex=self._ttl)
            count += 1
        if count:
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
