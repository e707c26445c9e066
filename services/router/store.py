"""Cases in Redis: which open case a conversation belongs to, and each case's state."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

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
    """The case a message was attached to, and how: the queue a person moved it to, linked, reopened."""

    case_id: str
    is_new: bool
    pinned_queue: Queue | None = None
    linked: bool = False
    reopened: bool = False


@dataclass(frozen=True)
class Reassigned:
    """What a reassignment did: `moved` now, `repeated` (this activity had moved it) or `unchanged`."""

    outcome: Literal["moved", "repeated", "unchanged"]
    from_queue: Queue
    last_routed: str | None


class CaseStore(Protocol):
    """Where cases live."""

    async def attach(
        self,
        message: Message,
        decision: Decision,
        window_seconds: int,
        now: datetime,
        last: str = "",
        links: Sequence[str] = (),
    ) -> Attached:
        """Attach a message to its conversation's open case, opening one when there is none.

        Without one, an open case that one of the `links` (identifiers) names is joined. `last` is kept
        as the case's last routing, for a later reassignment to publish again.
        """
        ...

    async def reassign(
        self, case_id: str, to_queue: Queue, activity_id: str, at: datetime
    ) -> Reassigned | None:
        """Move a case to another queue; return None when the case is unknown."""
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

    async def queue_depth(self, queue: Queue) -> tuple[int, float | None]:
        """Return how many cases a queue holds open and when its oldest was opened (epoch), if any."""
        ...


# Choosing the case is one atomic step: two routers handling one conversation, or one customer on two
# channels, must agree on one case. KEYS[1] is the conversation's pointer, the other keys the pointers of
# the message's identifiers (order numbers, addresses, phones): a message of a new conversation joins the
# open case one of them points to. The case id derives from the opening message, so redelivering that
# message finds it is still the opener. Every pointer then names the case for another window. A message
# on a resolved case opens it again. The result adds the queue a person moved the case to (later
# messages follow it), whether an identifier linked it, and whether it was reopened.
_ATTACH = """
local case = redis.call('GET', KEYS[1])
local linked = 0
if not case then
  for i = 2, #KEYS do
    local other = redis.call('GET', KEYS[i])
    if other and redis.call('HGET', ARGV[3] .. other, 'status') ~= 'resolved' then
      case = other
      linked = 1
      break
    end
  end
end
local created = 0
if not case or case == ARGV[1] then
  case = ARGV[1]
  created = 1
end
for i = 1, #KEYS do redis.call('SET', KEYS[i], case, 'EX', ARGV[2]) end
local key = ARGV[3] .. case
local reopened = 0
if created == 0 and redis.call('HGET', key, 'status') == 'resolved' then
  redis.call('HSET', key, 'status', 'open', 'reopened_at', ARGV[4])
  redis.call('ZADD', ARGV[5] .. redis.call('HGET', key, 'queue'), ARGV[6], case)
  reopened = 1
end
return {case, created, redis.call('HGET', key, 'pinned_queue') or '', linked, reopened}
"""

# A move is one step: the queue field and the queue sets change together, and the activity that moved
# the case is recorded, so its redelivery is told apart from a request to move to where the case is.
# The case keeps its place (its opening time) in the new queue; a resolved case moved is open again.
_REASSIGN = """
local from = redis.call('HGET', KEYS[1], 'queue')
if not from then return false end
local last = redis.call('HGET', KEYS[1], 'last_routed') or ''
if from == ARGV[1] then
  if redis.call('HGET', KEYS[1], 'reassigned_by') == ARGV[2] then return {'repeated', from, last} end
  return {'unchanged', from, last}
end
local score = redis.call('ZSCORE', ARGV[5] .. from, ARGV[6])
redis.call('ZREM', ARGV[5] .. from, ARGV[6])
redis.call('ZADD', ARGV[5] .. ARGV[1], score or ARGV[4], ARGV[6])
redis.call('HSET', KEYS[1], 'queue', ARGV[1], 'pinned_queue', ARGV[1], 'previous_queue', from,
  'skill_group', '', 'status', 'open', 'reassigned_by', ARGV[2], 'reassigned_at', ARGV[3],
  'updated_at', ARGV[3])
return {'moved', from, last}
"""


class RedisCaseStore:
    """Cases as Redis hashes, conversations as expiring pointers, queues as sorted sets by age."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}router:"
        self._attach = redis.register_script(_ATTACH)
        self._reassign = redis.register_script(_REASSIGN)

    def _case_key(self, case_id: str) -> str:
        return f"{self._prefix}case:{case_id}"

    def _queue_key(self, queue: str) -> str:
        return f"{self._prefix}queue:{queue}"

    def _link_key(self, identifier: str) -> str:
        # Hashed, so the index keys do not spell out customers' addresses and phone numbers.
        return f"{self._prefix}link:{hashlib.sha256(identifier.encode()).hexdigest()[:32]}"

    async def attach(
        self,
        message: Message,
        decision: Decision,
        window_seconds: int,
        now: datetime,
        last: str = "",
        links: Sequence[str] = (),
    ) -> Attached:
        """Attach a message to its conversation's open case, opening one when there is none.

        Without one, an open case that one of the `links` (identifiers) names is joined. `last` is kept
        as the case's last routing, for a later reassignment to publish again.
        """
        candidate = derive_id(message.message_id, "case")
        keys = [f"{self._prefix}conversation:{message.conversation_id}", *map(self._link_key, links)]
        case_id, created, pinned, linked, reopened = await self._attach(
            keys=keys,
            args=[
                candidate,
                window_seconds,
                f"{self._prefix}case:",
                now.isoformat(),
                f"{self._prefix}queue:",
                now.timestamp(),
            ],
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
        latest = {"updated_at": stamp, "last_message_id": message.message_id}
        if last:
            latest["last_routed"] = last
        pipe.hset(key, mapping=latest)
        pipe.sadd(f"{key}:channels", message.channel.value)
        pipe.rpush(f"{key}:messages", message.message_id)
        await pipe.execute()
        return Attached(
            case_id, bool(created), Queue(pinned.decode()) if pinned else None, bool(linked), bool(reopened)
        )

    async def reassign(
        self, case_id: str, to_queue: Queue, activity_id: str, at: datetime
    ) -> Reassigned | None:
        """Move a case to another queue; return None when the case is unknown."""
        result = await self._reassign(
            keys=[self._case_key(case_id)],
            args=[
                to_queue.value,
                activity_id,
                at.isoformat(),
                at.timestamp(),
                f"{self._prefix}queue:",
                case_id,
            ],
        )
        if not result:
            return None
        outcome, from_queue, last = (v.decode() for v in result)
        return Reassigned(outcome, Queue(from_queue), last or None)  # type: ignore[arg-type]

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
        # The stored routing is the raw material of a re-route, not part of the case's description.
        case.pop("last_routed", None)
        case["channels"] = sorted(c.decode() for c in channels)
        # A redelivered message may have been pushed twice; list each message once, in order.
        case["message_ids"] = list(dict.fromkeys(m.decode() for m in messages))
        return case

    async def open_cases(self, queue: Queue, limit: int) -> list[dict[str, Any]]:
        """Return the open cases of a queue, oldest first."""
        entries = await self._redis.zrange(self._queue_key(queue.value), 0, limit - 1, withscores=True)
        return [{"case_id": m.decode(), "opened_at_epoch": score} for m, score in entries]

    async def queue_depth(self, queue: Queue) -> tuple[int, float | None]:
        """Return how many cases a queue holds open and when its oldest was opened (epoch), if any."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(self._queue_key(queue.value))
        pipe.zrange(self._queue_key(queue.value), 0, 0, withscores=True)
        count, oldest = await pipe.execute()
        return int(count), (oldest[0][1] if oldest else None)
