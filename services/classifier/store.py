"""Agents' corrections kept in Redis as labelled examples for retraining, behind a Protocol.

One hash per corrected message (its id is the key, so a redelivered reassignment changes nothing and a
later one replaces the earlier), and an index scored by the correction's time, from which the export
reads them in order. Each hash expires when its retention ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from redis.asyncio import Redis

EXPORT_CHUNK = 500

# KEYS: the correction's hash, the index. ARGV: event id, time (ms), the example line, when it expires
# (ms), the message id, the oldest time kept (ms). Returns 1 when recorded, 0 when the same event was
# recorded already or a later correction of the message is.
_RECORD = """
if redis.call('HGET', KEYS[1], 'event') == ARGV[1] then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'at') or '-1') > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'event', ARGV[1], 'at', ARGV[2], 'line', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[6])
return 1
"""


@dataclass(frozen=True, slots=True)
class Correction:
    """A person moved a message's case to the other team: the category the message should have had."""

    event_id: str
    message_id: str
    case_id: str
    text: str
    channel: str
    language: str
    category: str
    model_category: str
    model_version: str
    at: datetime

    def line(self) -> str:
        """Write the correction as a category-only labelled line, as `switchboard train --data` reads it."""
        return json.dumps(
            {
                "text": self.text,
                "channel": self.channel,
                "language": self.language,
                "category": self.category,
                "message_id": self.message_id,
                "case_id": self.case_id,
                "model_category": self.model_category,
                "model_version": self.model_version,
                "corrected_at": self.at.isoformat(),
            },
            ensure_ascii=False,
        )


class CorrectionStore(Protocol):
    """Keeps corrections for retraining."""

    async def record_many(self, corrections: Sequence[Correction]) -> list[bool]:
        """Keep each correction; tell for each whether it was new (not a redelivery, nor outdated)."""
        ...

    def export(self) -> AsyncIterator[str]:
        """Yield the corrections kept, oldest first, as labelled JSON lines."""
        ...


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class RedisCorrectionStore:
    """Corrections in Redis, each kept `retention_seconds` after it was made."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        retention_seconds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}classifier:"
        self._index = f"{self._prefix}corrections"
        self._retention_ms = retention_seconds * 1000
        self._clock = clock
        self._record = redis.register_script(_RECORD)

    def _key(self, message_id: str) -> str:
        return f"{self._prefix}correction:{message_id}"

    async def record_many(self, corrections: Sequence[Correction]) -> list[bool]:
        """Keep each correction until its retention ends, in one round trip for them all."""
        now = _ms(self._clock())
        oldest = now - self._retention_ms
        kept = [c for c in corrections if _ms(c.at) > oldest]
        recorded: dict[int, bool] = {}
        if kept:
            async with self._redis.pipeline(transaction=False) as pipe:
                for c in kept:
                    at = _ms(c.at)
                    args = [c.event_id, at, c.line(), at + self._retention_ms, c.message_id, oldest]
                    await self._record(keys=[self._key(c.message_id), self._index], args=args, client=pipe)
                results = await pipe.execute()
            recorded = {id(c): bool(r) for c, r in zip(kept, results, strict=True)}
        return [recorded.get(id(c), False) for c in corrections]

    async def export(self) -> AsyncIterator[str]:
        """Yield the corrections kept, oldest first; forget index entries whose correction expired."""
        start = 0
        while True:
            ids = await self._redis.zrange(self._index, start, start + EXPORT_CHUNK - 1)
            if not ids:
                return
            start += len(ids)
            async with self._redis.pipeline(transaction=False) as pipe:
                for message_id in ids:
                    pipe.hget(self._key(message_id.decode()), "line")
                lines = await pipe.execute()
            gone = [m for m, line in zip(ids, lines, strict=True) if line is None]
            for line in lines:
                if line is not None:
                    yield line.decode()
            if gone:
                await self._redis.zrem(self._index, *gone)
                start -= len(gone)
