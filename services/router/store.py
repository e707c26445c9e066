"""Cases in Redis: which open case a conversation belongs to, and each case's state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from redis.asyncio import Redis

from router.routing import Decision
from switchboard.contract import ActivityType, Message, Queue, derive_id

STATUS_AFTER: dict[str, str] = {
    "responded": "open",
    "resolved": "resolved",
    "waiting_on_customer": "waiting_on_customer",
    "reopened": "open",
    "reassigned": "open",
}


@dataclass(frozen=True)
class Attached:
    """The case a message was attached to."""

    case_id: str
    is_new: bool


class CaseStore(Protocol):
    """Where cases live."""

    async def attach(
        self, message: Message, decision: Decision, window_seconds: int, now: datetime
    ) -> Attached:
        """Attach a message to its conversation's open case, opening one when there is none."""
        ...

    async def record_activity(self, case_id: str, activity: ActivityType, at: datetime) -> bool:
        """Apply an activity to a case; return False when the case is unknown."""
        ...

    async def get(self, case_id: str) -> dict[str, Any] | None:
        """Return a case, or None."""
        ...

    async def open_cases(self, queue: Queue, limit: int) -> list[dict[str, Any]]:
        """Return the open cases of a queue, oldest first."""
        ...


# Opening a case must be atomic: two routers handling one conversation must agree on one case. The
# case id derives from the opening message, so redelivering that message finds it is still the opener.
_ATTACH = """
local existing = redis.call('GET', KEYS[1])
if existing then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  if existing == ARGV[1] then return {existing, 1} end
  return {existing, 0}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {ARGV[1], 1}
"""


class RedisCaseStore:
    """Cases as Redis hashes, conversations as expiring pointers, queues as sorted sets by age."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}router:"
        self._attach = redis.register_script(_ATTACH)

    def _case_key(self, case_id: str) -> str:
        return f"{self._prefix}case:{case_id}"

    def _queue_key(self, queue: str) -> str:
        return f"{self._prefix}queue:{queue}"

    async def attach(
        self, message: Message, decision: Decision, window_seconds: int, now: datetime
    ) -> Attached:
        """Attach a message to its conversation's open case, opening one when there is none."""
        candidate = derive_id(message.message_id, "case")
        case_id, created = await self._attach(
            keys=[f"{self._prefix}conversation:{message.conversation_id}"], args=[candidate, window_seconds]
        )
        case_id = case_id.decode() if isinstance(case_id, bytes) else case_id
        key = self._case_key(case_id)
        pipe = self._redis.pipeline(transaction=True)
        stamp = now.isoformat()
        if created:
            pipe.hset(
                key,
                mapping={
                    "case_id": case_id,
                    "conversation_id": message.conversation_id,
                    "queue": decision.queue.value,
                    "skill_group": decision.skill_group or "",
                    "priority": decision.priority or "",
                    "status": "open",
                    "opened_at": stamp,
                },
            )
            pipe.zadd(self._queue_key(decision.queue.value), {case_id: now.timestamp()}, nx=True)
        pipe.hset(key, mapping={"updated_at": stamp, "last_message_id": message.message_id})
        pipe.sadd(f"{key}:channels", message.channel.value)
        pipe.rpush(f"{key}:messages", message.message_id)
        await pipe.execute()
        return Attached(case_id, bool(created))

    async def record_activity(self, case_id: str, activity: ActivityType, at: datetime) -> bool:
        """Apply an activity to a case; return False when the case is unknown."""
        key = self._case_key(case_id)
        queue = await self._redis.hget(key, "queue")
        if queue is None:
            return False
        status = STATUS_AFTER[activity]
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            key, mapping={"status": status, "updated_at": at.isoformat(), f"{activity}_at": at.isoformat()}
        )
        if status == "resolved":
            pipe.zrem(self._queue_key(queue.decode()), case_id)
        elif activity == "reopened":
            pipe.zadd(self._queue_key(queue.decode()), {case_id: at.timestamp()}, nx=True)
        await pipe.execute()
        return True

    async def get(self, case_id: str) -> dict[str, Any] | None:
        """Return a case, or None."""
        key = self._case_key(case_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.smembers(f"{key}:channels")
        pipe.lrange(f"{key}:messages", 0, -1)
        fields, channels, messages = await pipe.execute()
        if not fields:
            return None
        case = {k.decode(): v.decode() for k, v in fields.items()}
        case["channels"] = sorted(c.decode() for c in channels)
        # A redelivered message may have been pushed twice; list each message once, in order.
        case["message_ids"] = list(dict.fromkeys(m.decode() for m in messages))
        return case

    async def open_cases(self, queue: Queue, limit: int) -> list[dict[str, Any]]:
        """Return the open cases of a queue, oldest first."""
        entries = await self._redis.zrange(self._queue_key(queue.value), 0, limit - 1, withscores=True)
        return [{"case_id": m.decode(), "opened_at_epoch": score} for m, score in entries]
