"""Which channel messages ingest has already stored, so a retried webhook is not published twice.

A key is claimed as `pending` before publishing and confirmed once the broker acknowledged the record;
a failed publish releases it, so the channel's retry goes through.
"""

from __future__ import annotations

import json
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


# One call per batch, the keys in one JSON argument: a dozen arguments per key cost the client more than
# the work. Claiming is SET NX GET per key; a pending claim expires on its own, so a process that died
# mid-publish blocks no retry for long. The scripts reach keys they are not given in KEYS, so ingest's
# Redis must be a single node or a replicated primary, not a cluster.
_CLAIM = """
local out = {}
for i, key in ipairs(cjson.decode(ARGV[1])) do
  out[i] = redis.call('SET', ARGV[3] .. key, ARGV[2], 'NX', 'EX', ARGV[4], 'GET') or ''
end
return out
"""
_CONFIRM = """
for _, key in ipairs(cjson.decode(ARGV[1])) do
  redis.call('SET', ARGV[3] .. key, ARGV[2], 'EX', ARGV[4])
end
return 1
"""


class RedisSeenStore:
    """Claims as Redis keys that expire after the dedupe window."""

    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int, pending_seconds: int = 30) -> None:
        self._redis = redis
        self._prefix = f"{prefix}ingest:seen:"
        self._ttl = ttl_seconds
        self._pending_ttl = pending_seconds
        self._claim = redis.register_script(_CLAIM)
        self._confirm = redis.register_script(_CONFIRM)

    async def claim(self, keys: list[str]) -> list[bytes | None]:
        """Claim each key; return None where the claim is new, else the state it already had."""
        if not keys:
            return []
        found = await self._claim(
            args=[json.dumps(keys, ensure_ascii=False), PENDING, self._prefix, self._pending_ttl]
        )
        return [state or None for state in found]

    async def confirm(self, keys: list[str]) -> None:
        """Mark claimed keys as published."""
        if keys:
            await self._confirm(args=[json.dumps(keys, ensure_ascii=False), DONE, self._prefix, self._ttl])

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
