"""Cases in Redis: which open case a conversation belongs to, and each case's state."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import pydantic_core
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
    """The case a message was attached to, and how: the queue a person moved it to, linked, reopened;
    the case's queue and skill group once the message joined it, and the queue it left if the message
    escalated it to customer service."""

    case_id: str
    is_new: bool
    pinned_queue: Queue | None = None
    linked: bool = False
    reopened: bool = False
    queue: Queue | None = None
    skill_group: str | None = None
    escalated_from: Queue | None = None


@dataclass(frozen=True)
class Attachment:
    """A message to attach, the decision about it, its routing (kept for a later reassignment to publish
    again) and the identifiers that may link it to another conversation's case."""

    message: Message
    decision: Decision
    last: bytes | str = ""
    links: Sequence[str] = ()
    # A message the rules send to customer service moves the open, unpinned case it joins there.
    escalate: bool = False


@dataclass(frozen=True)
class Reassigned:
    """What a reassignment did: `moved` now, `repeated` (this activity had moved it) or `unchanged`; and
    the routing to publish again: the message that put the case in its queue (see `_ATTACH`)."""

    outcome: Literal["moved", "repeated", "unchanged"]
    from_queue: Queue
    routing: str | None


class CaseStore(Protocol):
    """Where cases live."""

    async def attach_many(
        self, attachments: Sequence[Attachment], window_seconds: int, now: datetime
    ) -> list[Attached]:
        """Attach each message, in order, to its conversation's open case, opening one when there is none.

        Without one, an open case that one of the message's `links` (identifiers) names is joined.
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


# Attaching a poll's messages is one script call, one Redis round trip for the whole poll, and each
# message's attachment is atomic: two routers handling one conversation, or one customer on two channels,
# must agree on one case. Messages are attached in order, so a conversation's second message in the same
# poll joins the case its first message opened.
# ARGV[4] is a JSON array with, per message: the conversation's pointer, the pointers of its identifiers
# (order numbers, addresses, phones), the candidate case id, then the fields below. One JSON argument costs
# the client far less than a dozen arguments per message. Each message's last routing, itself JSON, is an
# argument of its own after ARGV[6] (ARGV[6 + i] for the i-th message): inside the array it would be
# escaped by the client and unescaped by the script, four times the encoding work. The script reaches
# keys it computes (the case a pointer names), so the router's Redis must be a single node or a
# replicated primary, not a cluster.
# A message of a new conversation joins the open case one of its identifiers points to. The case id
# derives from the opening message, so redelivering that message finds it is still the opener. Every
# pointer then names the case for another window. A message on a resolved case opens it again, and the
# case no longer expires (PERSIST: resolving gave it and its lists a retention TTL). Each result
# adds the queue a person moved the case to (later messages follow it), whether an identifier linked it,
# and whether it was reopened; then the case's queue and skill group, and the queue it left when this
# message escalated it: with `escalate` set, a message decided for customer service moves a marketing or
# review case there, unless a person chose the case's queue. The case keeps its place (its opening time).
# The escalating message is recorded, so its redelivery (a router that died before publishing) is routed
# as an escalation again and the SLA service still learns of it.
_ATTACH = """
local window, cp, qp, stamp, score = ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6]
local out = {}
for i, m in ipairs(cjson.decode(ARGV[4])) do
  local conv, links, candidate, message_id, channel = m[1], m[2], m[3], m[4], m[5]
  local queue, skill, priority, conversation, escalate = m[6], m[7], m[8], m[9], m[10]
  local last = ARGV[6 + i]
  local case = redis.call('GET', conv)
  local linked = 0
  if not case then
    for _, link in ipairs(links) do
      local other = redis.call('GET', link)
      if other and redis.call('HGET', cp .. other, 'status') ~= 'resolved' then
        case = other
        linked = 1
        break
      end
    end
  end
  local created = 0
  if not case or case == candidate then
    case = candidate
    created = 1
  end
  redis.call('SET', conv, case, 'EX', window)
  for _, link in ipairs(links) do redis.call('SET', link, case, 'EX', window) end
  local key = cp .. case
  local reopened = 0
  if created == 0 and redis.call('HGET', key, 'status') == 'resolved' then
    redis.call('HSET', key, 'status', 'open', 'reopened_at', stamp)
    redis.call('ZADD', qp .. redis.call('HGET', key, 'queue'), score, case)
    redis.call('PERSIST', key)
    redis.call('PERSIST', key .. ':channels')
    redis.call('PERSIST', key .. ':messages')
    reopened = 1
  end
  if created == 1 and redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'case_id', case, 'conversation_id', conversation, 'queue', queue,
      'skill_group', skill, 'priority', priority, 'status', 'open', 'opened_at', stamp)
    redis.call('ZADD', qp .. queue, 'NX', score, case)
  end
  local pinned = redis.call('HGET', key, 'pinned_queue') or ''
  local held = redis.call('HGET', key, 'queue') or queue
  local escalated = ''
  if created == 0 and escalate == 1 and pinned == '' and queue == 'customer-service' and held ~= queue then
    local kept = redis.call('ZSCORE', qp .. held, case)
    redis.call('ZREM', qp .. held, case)
    redis.call('ZADD', qp .. queue, kept or score, case)
    redis.call('HSET', key, 'queue', queue, 'skill_group', skill, 'previous_queue', held,
      'escalated_from', held, 'escalated_at', stamp, 'escalated_by', message_id)
    escalated = held
    held = queue
  elseif created == 0 and redis.call('HGET', key, 'escalated_by') == message_id then
    -- The message that escalated the case, read again: its routing says so again.
    escalated = redis.call('HGET', key, 'escalated_from')
  end
  redis.call('HSET', key, 'updated_at', stamp, 'last_message_id', message_id)
  if last ~= '' then
    redis.call('HSET', key, 'last_routed', last)
    -- The message that put the case in its queue (it opened the case, or escalated it): what a person
    -- who moves the case disagrees with, so a reassignment publishes it again.
    if created == 1 or escalated ~= '' then redis.call('HSET', key, 'deciding_routed', last) end
  end
  redis.call('SADD', key .. ':channels', channel)
  redis.call('RPUSH', key .. ':messages', message_id)
  out[#out + 1] = {case, created, pinned, linked, reopened, held,
    redis.call('HGET', key, 'skill_group') or '', escalated}
end
return out
"""

# A move is one step: the queue field and the queue sets change together, and the activity that moved
# the case is recorded, so its redelivery is told apart from a request to move to where the case is.
# The case keeps its place (its opening time) in the new queue; a resolved case moved is open again and
# no longer expires. It returns the routing of the message that put the case where it was (cases attached
# before that was recorded: the last message's).
_REASSIGN = """
local from = redis.call('HGET', KEYS[1], 'queue')
if not from then return false end
local last = redis.call('HGET', KEYS[1], 'deciding_routed')
  or redis.call('HGET', KEYS[1], 'last_routed') or ''
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
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[1] .. ':channels')
redis.call('PERSIST', KEYS[1] .. ':messages')
return {'moved', from, last}
"""


class RedisCaseStore:
    """Cases as Redis hashes, conversations as expiring pointers, queues as sorted sets by age.

    A resolved case, its channels and its messages expire `resolved_retention_seconds` after it was
    resolved, unless it is opened again first.
    """

    def __init__(self, redis: Redis, prefix: str, resolved_retention_seconds: int = 30 * 24 * 3600) -> None:
        self._redis = redis
        self._prefix = f"{prefix}router:"
        self._resolved_retention = resolved_retention_seconds
        self._attach = redis.register_script(_ATTACH)
        self._reassign = redis.register_script(_REASSIGN)

    def _case_key(self, case_id: str) -> str:
        return f"{self._prefix}case:{case_id}"

    def _queue_key(self, queue: str) -> str:
        return f"{self._prefix}queue:{queue}"

    def _link_key(self, identifier: str) -> str:
        # Hashed, so the index keys do not spell out customers' addresses and phone numbers.
        return f"{self._prefix}link:{hashlib.sha256(identifier.encode()).hexdigest()[:32]}"

    async def attach_many(
        self, attachments: Sequence[Attachment], window_seconds: int, now: datetime
    ) -> list[Attached]:
        """Attach each message, in order, to its conversation's open case, opening one when there is none.

        Without one, an open case that one of the message's `links` (identifiers) names is joined.
        """
        if not attachments:
            return []
        batch = [
            [
                f"{self._prefix}conversation:{item.message.conversation_id}",
                [self._link_key(link) for link in item.links],
                derive_id(item.message.message_id, "case"),
                item.message.message_id,
                item.message.channel.value,
                item.decision.queue.value,
                item.decision.skill_group or "",
                item.decision.priority or "",
                item.message.conversation_id,
                int(item.escalate),
            ]
            for item in attachments
        ]
        args = [
            window_seconds,
            f"{self._prefix}case:",
            f"{self._prefix}queue:",
            # UTF-8 JSON, as json.dumps(batch, ensure_ascii=False) writes it, at a third of the cost.
            pydantic_core.to_json(batch),
            now.isoformat(),
            now.timestamp(),
            *(item.last for item in attachments),
        ]
        results = await self._attach(args=args)
        return [
            Attached(
                case_id.decode(),
                bool(created),
                Queue(pinned.decode()) if pinned else None,
                bool(linked),
                bool(reopened),
                Queue(held.decode()),
                skill.decode() or None,
                Queue(escalated.decode()) if escalated else None,
            )
            for case_id, created, pinned, linked, reopened, held, skill, escalated in results
        ]

    async def attach(
        self,
        message: Message,
        decision: Decision,
        window_seconds: int,
        now: datetime,
        last: str = "",
        links: Sequence[str] = (),
        escalate: bool = False,
    ) -> Attached:
        """Attach one message (see `attach_many`)."""
        (attached,) = await self.attach_many(
            [Attachment(message, decision, last, links, escalate)], window_seconds, now
        )
        return attached

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
        # Every activity but a resolution leaves the case unresolved, so none of them may let it expire.
        for part in (key, f"{key}:channels", f"{key}:messages"):
            if status == "resolved":
                pipe.expire(part, self._resolved_retention)
            else:
                pipe.persist(part)
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
        # The stored routings are the raw material of a re-route, not part of the case's description.
        case.pop("last_routed", None)
        case.pop("deciding_routed", None)
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
