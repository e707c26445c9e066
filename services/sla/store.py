"""SLA timers in Redis, shared by every SLA instance.

A timer is a hash holding its clock's description and the names of its firings (each warning
threshold, the breach, each escalation level), which sit in the `due` sorted set scored by their due
time. An instance claims due entries atomically by moving them to `firing`; it removes them only after
the event was published. Entries left in `firing` by an instance that died are put back after a lease,
so a firing is repeated at most once (with the same event id) and never lost.

The hash also keeps the trace context of the event that started the timer (field `trace`), so its
warnings, breach and escalations join the trace of the message that opened the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from redis.asyncio import Redis

from switchboard.contract import SlaTimer
from switchboard.tracing import TraceContext, current, from_text, to_text

TOMBSTONE_SECONDS = 7 * 24 * 3600

# Starting is one atomic step, so a crash can never leave a timer without its due entries. A stop that
# arrives before the first start (activity and routing travel on different partitions) leaves a
# tombstone that keeps that late start from running a clock nobody needs.
_START = """
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if redis.call('HSETNX', KEYS[1], 'timer', ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'members', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'trace', ARGV[5]) end
if #ARGV > 5 then redis.call('ZADD', KEYS[2], unpack(ARGV, 6)) end
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('DEL', KEYS[4])
return 1
"""

_STOP = """
local timer = redis.call('HGET', KEYS[1], 'timer')
local members = redis.call('HGET', KEYS[1], 'members')
if members then
  for member in string.gmatch(members, '[^\\n]+') do redis.call('ZREM', KEYS[2], member) end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], '1', 'EX', ARGV[2])
return timer or false
"""

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #due, 2 do
  local member = due[i]
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZADD', KEYS[2], ARGV[1], member)
  redis.call('HSET', KEYS[3], member, due[i + 1])
  local sep = string.find(member, '|', 1, true)
  local rest = string.sub(member, sep + 1)
  local sep2 = string.find(rest, '|', 1, true)
  local timer = ARGV[3] .. string.sub(member, 1, sep - 1) .. '|' .. string.sub(rest, 1, sep2 - 1)
  local fields = redis.call('HMGET', timer, 'timer', 'trace')
  table.insert(out, member)
  table.insert(out, due[i + 1])
  table.insert(out, fields[1] or false)
  table.insert(out, fields[2] or false)
end
return out
"""

_RELEASE = """
for i = 1, #ARGV, 2 do
  if redis.call('ZREM', KEYS[2], ARGV[i + 1]) == 1 then redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
  redis.call('HDEL', KEYS[3], ARGV[i + 1])
end
return 1
"""

_REQUEUE = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, member in ipairs(stale) do
  redis.call('ZREM', KEYS[2], member)
  -- Due again when it was first due, so the lag of its firing counts from then, not from the requeue.
  redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[3], member) or ARGV[2], member)
  redis.call('HDEL', KEYS[3], member)
end
return #stale
"""


@dataclass(frozen=True)
class Firing:
    """One event a timer will fire: `warning:<fraction>`, `breached` or `escalated:<level>`, and when."""

    kind: str
    at: datetime


@dataclass(frozen=True)
class Claimed:
    """A due entry this instance now owns: which timer, which firing, when it was due, the timer.

    `trace` is the context of the event that started the timer (None for a timer started before the
    store kept it).
    """

    member: str
    kind: str
    due: datetime
    timer: SlaTimer | None
    trace: TraceContext | None = None


class TimerStore(Protocol):
    """Where SLA timers live."""

    async def start(self, timer: SlaTimer, firings: list[Firing], first: bool = True) -> bool:
        """Start a timer unless it runs (or, when `first`, was already stopped); True when started now.

        The current trace context (the event being handled) is kept with the timer for its firings.
        """
        ...

    async def start_many(
        self, items: Sequence[tuple[SlaTimer, list[Firing], TraceContext | None]], first: bool = True
    ) -> list[bool]:
        """Start each timer as `start` does, in order, each with its own trace context; one round trip."""
        ...

    async def stop(self, case_id: str, clock: str) -> SlaTimer | None:
        """Stop a timer; return it, or None when it was not running."""
        ...

    async def running(self, case_id: str, clock: str) -> SlaTimer | None:
        """Return a running timer, or None."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[Claimed]:
        """Take ownership of entries due at `now`."""
        ...

    async def done(self, members: list[str]) -> None:
        """Forget entries whose events were published."""
        ...

    async def release(self, claimed: list[Claimed]) -> None:
        """Give back entries this instance claimed and did not publish, due again when they were due."""
        ...

    async def requeue_stale(self, now: datetime, lease_seconds: float) -> int:
        """Give back entries claimed longer ago than the lease by an instance that did not finish."""
        ...

    async def open_count(self) -> int:
        """Count running timers."""
        ...

    async def next_due(self) -> datetime | None:
        """Return when the earliest entry not yet claimed is due, or None when nothing is."""
        ...


class RedisTimerStore:
    """The timers of every SLA instance, in one Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}sla:"
        self._due = f"{self._prefix}due"
        self._firing = f"{self._prefix}firing"
        # The due time of each claimed entry, so one handed back after a lease is due when it was.
        self._firing_due = f"{self._prefix}firing_due"
        self._open = f"{self._prefix}open"
        self._start = redis.register_script(_START)
        self._stop = redis.register_script(_STOP)
        self._claim = redis.register_script(_CLAIM)
        self._requeue = redis.register_script(_REQUEUE)
        self._release = redis.register_script(_RELEASE)

    def _timer_key(self, case_id: str, clock: str) -> str:
        return f"{self._prefix}timer:{case_id}|{clock}"

    def _tombstone_key(self, case_id: str, clock: str) -> str:
        return f"{self._prefix}stopped:{case_id}|{clock}"

    async def start(self, timer: SlaTimer, firings: list[Firing], first: bool = True) -> bool:
        """Start a timer unless it runs (or, when `first`, was already stopped); True when started now."""
        keys, args = self._start_call(timer, firings, first, current())
        return bool(await self._start(keys=keys, args=args))

    async def start_many(
        self, items: Sequence[tuple[SlaTimer, list[Firing], TraceContext | None]], first: bool = True
    ) -> list[bool]:
        """Start each timer as `start` does, in order, each with its own trace context; one round trip."""
        if not items:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for timer, firings, trace in items:
            keys, args = self._start_call(timer, firings, first, trace)
            # On a pipeline the call only queues the EVALSHA (and loads the script if Redis lacks it).
            await self._start(keys=keys, args=args, client=pipe)
        return [bool(started) for started in await pipe.execute()]

    def _start_call(
        self, timer: SlaTimer, firings: list[Firing], first: bool, trace: TraceContext | None
    ) -> tuple[list[str], list[object]]:
        base = f"{timer.case_id}|{timer.clock}"
        members = [f"{base}|{f.kind}" for f in firings]
        scored: list[object] = []
        for firing, member in zip(firings, members, strict=True):
            scored += [firing.at.timestamp(), member]
        keys = [
            self._timer_key(timer.case_id, timer.clock),
            self._due,
            self._open,
            self._tombstone_key(timer.case_id, timer.clock),
        ]
        args: list[object] = [
            "1" if first else "0",
            timer.model_dump_json(),
            base,
            "\n".join(members),
            to_text(trace) if trace is not None else "",
            *scored,
        ]
        return keys, args

    async def stop(self, case_id: str, clock: str) -> SlaTimer | None:
        """Stop a timer; return it, or None when it was not running."""
        keys = [self._timer_key(case_id, clock), self._due, self._open, self._tombstone_key(case_id, clock)]
        raw = await self._stop(keys=keys, args=[f"{case_id}|{clock}", TOMBSTONE_SECONDS])
        return SlaTimer.model_validate_json(raw) if raw else None

    async def running(self, case_id: str, clock: str) -> SlaTimer | None:
        """Return a running timer, or None."""
        raw = await self._redis.hget(self._timer_key(case_id, clock), "timer")
        return SlaTimer.model_validate_json(raw) if raw else None

    async def claim_due(self, now: datetime, limit: int) -> list[Claimed]:
        """Take ownership of entries due at `now`."""
        flat = await self._claim(
            keys=[self._due, self._firing, self._firing_due],
            args=[now.timestamp(), limit, f"{self._prefix}timer:"],
        )
        claimed = []
        for member, score, raw, trace in zip(flat[::4], flat[1::4], flat[2::4], flat[3::4], strict=True):
            name = member.decode()
            timer = SlaTimer.model_validate_json(raw) if raw else None
            due = datetime.fromtimestamp(float(score), UTC)
            claimed.append(Claimed(name, name.split("|", 2)[2], due, timer, from_text(trace)))
        return claimed

    async def done(self, members: list[str]) -> None:
        """Forget entries whose events were published."""
        if members:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zrem(self._firing, *members)
            pipe.hdel(self._firing_due, *members)
            await pipe.execute()

    async def release(self, claimed: list[Claimed]) -> None:
        """Give back entries this instance claimed and did not publish, due again when they were due."""
        args: list[object] = []
        for entry in claimed:
            args += [entry.due.timestamp(), entry.member]
        if args:
            await self._release(keys=[self._due, self._firing, self._firing_due], args=args)

    async def requeue_stale(self, now: datetime, lease_seconds: float) -> int:
        """Give back entries claimed longer ago than the lease by an instance that did not finish."""
        return int(
            await self._requeue(
                keys=[self._due, self._firing, self._firing_due],
                args=[now.timestamp() - lease_seconds, now.timestamp()],
            )
        )

    async def open_count(self) -> int:
        """Count running timers."""
        return int(await self._redis.scard(self._open))

    async def next_due(self) -> datetime | None:
        """Return when the earliest entry not yet claimed is due, or None when nothing is."""
        first = await self._redis.zrange(self._due, 0, 0, withscores=True)
        return datetime.fromtimestamp(float(first[0][1]), UTC) if first else None


class CaseState(Protocol):
    """What the SLA service remembers of a case between events: its policy and a paused clock."""

    async def remember_many(
        self, cases: Sequence[tuple[str, dict[str, str]]], *, keep_known: bool = False
    ) -> None:
        """Record each case's policy and routing (queue, channel, priority); with `keep_known`, a case
        already recorded keeps what it has."""
        ...

    async def get(self, case_id: str) -> dict[str, str] | None:
        """Return what was recorded of a case, or None."""
        ...

    async def pause(self, case_id: str, elapsed_seconds: float) -> None:
        """Keep the business time a paused resolution clock had run, while waiting on the customer."""
        ...

    async def resume(self, case_id: str) -> float | None:
        """Take back the paused clock's elapsed time, once; None when nothing was paused."""
        ...


_RESUME = """
local elapsed = redis.call('HGET', KEYS[1], 'paused_elapsed')
if elapsed then redis.call('HDEL', KEYS[1], 'paused_elapsed') end
return elapsed or false
"""


class RedisCaseState:
    """Per-case SLA state as Redis hashes that expire a while after the case's last event."""

    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int = 90 * 24 * 3600) -> None:
        self._redis = redis
        self._prefix = f"{prefix}sla:case:"
        self._ttl = ttl_seconds
        self._resume = redis.register_script(_RESUME)

    async def remember_many(
        self, cases: Sequence[tuple[str, dict[str, str]]], *, keep_known: bool = False
    ) -> None:
        """Record each case's policy and routing (queue, channel, priority): one round trip. With
        `keep_known`, a field already recorded is kept (HSETNX)."""
        if not cases:
            return
        pipe = self._redis.pipeline(transaction=True)
        for case_id, fields in cases:
            key = self._prefix + case_id
            if keep_known:
                for name, value in fields.items():
                    pipe.hsetnx(key, name, value)
            else:
                pipe.hset(key, mapping=fields)
            pipe.expire(key, self._ttl)
        await pipe.execute()

    async def get(self, case_id: str) -> dict[str, str] | None:
        """Return what was recorded of a case, or None."""
        raw = await self._redis.hgetall(self._prefix + case_id)
        return {k.decode(): v.decode() for k, v in raw.items()} or None

    async def pause(self, case_id: str, elapsed_seconds: float) -> None:
        """Keep the business time a paused resolution clock had run, while waiting on the customer."""
        await self._redis.hset(self._prefix + case_id, "paused_elapsed", repr(elapsed_seconds))

    async def resume(self, case_id: str) -> float | None:
        """Take back the paused clock's elapsed time, once; None when nothing was paused."""
        raw = await self._resume(keys=[self._prefix + case_id])
        return float(raw) if raw else None
