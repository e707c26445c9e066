"""Which channel messages ingest has already stored, so a retried webhook is not published twice.

A key is claimed as `pending` before publishing and confirmed once the broker acknowledged the record;
a failed publish releases it, so the channel's retry goes through.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

PENDING = b"pending"
DONE = b"done"


class SeenStore(Protocol):
    """Claims channel message ids before publishing them."""

    async def claim(self, keys: list[str]) -> list[bytes | None]:
        """Claim each key; return None where the claim is new, else the state it already had."""
        ...

    async def confirm(self, keys: list[str]) -> None:
        """Mark claimed keys as published."""
        ...

    async def release(self, keys: list[str]) -> None:
        """Forget claimed keys whose publish failed."""
        ...


class RedisSeenStore:
    """Claims as Redis keys that expire after the dedupe window."""

    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._prefix = f"{prefix}ingest:seen:"
        self._ttl = ttl_seconds
        self._pending_ttl = 120

    async def claim(self, keys: list[str]) -> list[bytes | None]:
        """Claim each key; return None where the claim is new, else the state it already had."""
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            # A pending claim expires on its own, so a process that died mid-publish blocks no retry.
            pipe.set(self._prefix + key, PENDING, nx=True, ex=self._pending_ttl, get=True)
        return list(await pipe.execute())

    async def confirm(self, keys: list[str]) -> None:
        """Mark claimed keys as published."""
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.set(self._prefix + key, DONE, ex=self._ttl)
        await pipe.execute()

    async def release(self, keys: list[str]) -> None:
        """Forget claimed keys whose publish failed."""
        if keys:
            await self._redis.delete(*(self._prefix + k for k in keys))


class MemorySeenStore:
    """An in-process seen store for unit tests."""

    def __init__(self) -> None:
        self.state: dict[str, bytes] = {}

    async def claim(self, keys: list[str]) -> list[bytes | None]:
        """Claim each key; return None where the claim is new, else the state it already had."""
        out: list[bytes | None] = []
        for key in keys:
            out.append(self.state.get(key))
            self.state.setdefault(key, PENDING)
        return out

    async def confirm(self, keys: list[str]) -> None:
        """Mark claimed keys as published."""
        self.state.update(dict.fromkeys(keys, DONE))

    async def release(self, keys: list[str]) -> None:
        """Forget claimed keys whose publish failed."""
        for key in keys:
            self.state.pop(key, None)
