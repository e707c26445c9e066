"""Deliveries waiting for the contact centre, in Redis, shared by every router instance.

Each queue has a `due` sorted set (scored by the time of the next attempt) and an `inflight` one
(scored by the end of the claim's lease); each delivery is a hash holding the signed body's source,
its attempt count and the token of the claim that owns it. Claiming moves due entries to `inflight`
in one script, so two instances never hold the same delivery; an entry whose lease ran out (its
instance died or stalled) is handed back by the next claim, so a crash repeats an attempt at most once
and loses nothing. Finishing or rescheduling checks the token, so a late owner cannot undo a newer
claim. A delivered id is remembered for a while, so enqueueing the same event again is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from switchboard.contract import Queue

_ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'queue', ARGV[2], 'key', ARGV[3], 'body', ARGV[4], 'attempts', 0,
  'enqueued_at', ARGV[5], 'trace', ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
return 1
"""

_CLAIM = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
end
local out = {}
if tonumber(ARGV[2]) < 1 then return out end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local key = ARGV[5] .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[3], id)
    local attempts = redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'claim', ARGV[4])
    local fields = redis.call('HMGET', key, 'key', 'body', 'failure', 'trace')
    table.insert(out, id)
    table.insert(out, attempts)
    table.insert(out, fields[1] or '')
    table.insert(out, fields[2] or '')
    table.insert(out, fields[3] or '')
    table.insert(out, fields[4] or '')
  end
end
return out
"""

_FINISH = """
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
return 1
"""

_RETRY = """
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[1], 'claim', '', 'last_error', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'failure', ARGV[5]) end
return 1
"""


@dataclass(frozen=True)
class Enqueued:
    """A delivery to queue: the event's id, its queue, its Kafka key, its body and its trace context.

    `trace` is `switchboard.tracing.to_text` of the span that routed the case, or empty.
    """

    queue: Queue
    event_id: str
    key: str
    body: bytes
    trace: str = ""


@dataclass(frozen=True)
class Delivery:
    """One claimed delivery: the event, its Kafka key, the attempt about to be made and the claim token.

    `failure` is set when an earlier attempt already gave up and only the dead letter is left to write.
    """

    id: str
    queue: Queue
    key: str
    body: bytes
    attempt: int
    token: str
    failure: str = ""
    trace: str = ""


class Outbox(Protocol):
    """Where deliveries wait."""

    async def enqueue(self, items: Sequence[Enqueued], now: float) -> list[bool]:
        """Add deliveries due now; False for each already waiting or delivered recently."""
        ...

    async def claim(
        self, queue: Queue, now: float, limit: int, lease_seconds: float, token: str
    ) -> list[Delivery]:
        """Take up to `limit` due deliveries of a queue for `lease_seconds`."""
        ...

    async def finish(self, delivery: Delivery) -> bool:
        """Forget a delivery that was delivered or dead-lettered; False when the claim was lost."""
        ...

    async def retry(self, delivery: Delivery, at: float, error: str, failure: str = "") -> bool:
        """Put a delivery back, due at `at`; False when the claim was lost."""
        ...

    async def pending(self, queues: Iterable[Queue]) -> int:
        """Count deliveries waiting or in flight."""
        ...


class RedisOutbox:
    """The deliveries of every router instance, in one Redis."""

    def __init__(self, redis: Redis, prefix: str, remember_seconds: int) -> None:
        self._redis = redis
        self._prefix = f"{prefix}router:handoff:"
        self._remember = max(1, remember_seconds)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._retry = redis.register_script(_RETRY)

    def _due(self, queue: Queue | str) -> str:
        return f"{self._prefix}{Queue(queue).value}:due"

    def _inflight(self, queue: Queue | str) -> str:
        return f"{self._prefix}{Queue(queue).value}:inflight"

    def _item(self, event_id: str) -> str:
        return f"{self._prefix}item:{event_id}"

    def _done(self, event_id: str) -> str:
        return f"{self._prefix}done:{event_id}"

    async def enqueue(self, items: Sequence[Enqueued], now: float) -> list[bool]:
        """Add deliveries due now; False for each already waiting or delivered recently.

        One round trip for them all: the router queues a whole poll's routings at once.
        """
        pipe = self._redis.pipeline(transaction=False)
        for item in items:
            keys = [self._item(item.event_id), self._done(item.event_id), self._due(item.queue)]
            args = [item.event_id, item.queue.value, item.key, item.body, now, item.trace]
            # On a pipeline the call only queues the EVALSHA (and loads the script if Redis lacks it).
            await self._enqueue(keys=keys, args=args, client=pipe)
        return [bool(added) for added in await pipe.execute()]

    async def claim(
        self, queue: Queue, now: float, limit: int, lease_seconds: float, token: str
    ) -> list[Delivery]:
        """Take up to `limit` due deliveries of a queue for `lease_seconds`."""
        flat = await self._claim(
            keys=[self._due(queue), self._inflight(queue)],
            args=[now, limit, now + lease_seconds, token, f"{self._prefix}item:"],
        )
        return [
            Delivery(
                id=event_id.decode(),
                queue=queue,
                key=key.decode(),
                body=body,
                attempt=int(attempts),
                token=token,
                failure=failure.decode(),
                trace=trace.decode(),
            )
            for event_id, attempts, key, body, failure, trace in zip(
                flat[::6], flat[1::6], flat[2::6], flat[3::6], flat[4::6], flat[5::6], strict=True
            )
        ]

    async def finish(self, delivery: Delivery) -> bool:
        """Forget a delivery that was delivered or dead-lettered; False when the claim was lost."""
        keys = [self._item(delivery.id), self._inflight(delivery.queue), self._done(delivery.id)]
        return bool(await self._finish(keys=keys, args=[delivery.id, delivery.token, self._remember]))

    async def retry(self, delivery: Delivery, at: float, error: str, failure: str = "") -> bool:
        """Put a delivery back, due at `at`; False when the claim was lost."""
        keys = [self._item(delivery.id), self._inflight(delivery.queue), self._due(delivery.queue)]
        args = [delivery.id, delivery.token, at, error[:2000], failure[:2000]]
        return bool(await self._retry(keys=keys, args=args))

    async def pending(self, queues: Iterable[Queue]) -> int:
        """Count deliveries waiting or in flight."""
        pipe = self._redis.pipeline(transaction=False)
        for queue in queues:
            pipe.zcard(self._due(queue))
            pipe.zcard(self._inflight(queue))
        return sum(await pipe.execute())
