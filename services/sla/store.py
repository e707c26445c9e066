"""SLA timers in Redis, shared by every SLA instance.

A timer is a hash with its clock's description plus entries in the `due` sorted set (one for the
warning, one for the breach) scored by their due time. An instance claims due entries atomically by
moving them to `firing`; it removes them only after the event was published. Entries left in
`firing` by an instance that died are put back after a lease, so a firing is repeated at most once
(with the same event id) and never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from redis.asyncio import Redis

from switchboard.contract import SlaTimer

KINDS = ("warning", "breached")
TOMBSTONE_SECONDS = 7 * 24 * 3600

# Starting is one atomic step, so a crash can never leave a timer without its due entries. A stop that
# arrives before the start (activity and routing travel on different partitions) leaves a tombstone
# that keeps the late start from running a clock nobody needs.
_START = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if redis.call('HSETNX', KEYS[1], 'timer', ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[6])
return 1
"""

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('ZADD', KEYS[2], ARGV[1], member)
  local sep = string.find(member, '|', 1, true)
  local rest = string.sub(member, sep + 1)
  local sep2 = string.find(rest, '|', 1, true)
  local timer = ARGV[3] .. string.sub(member, 1, sep - 1) .. '|' .. string.sub(rest, 1, sep2 - 1)
  table.insert(out, member)
  table.insert(out, redis.call('HGET', timer, 'timer') or false)
end
return out
"""

_REQUEUE = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, member in ipairs(stale) do
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZADD', KEYS[1], ARGV[2], member)
end
return #stale
"""


@dataclass(frozen=True)
class Claimed:
    """A due entry this instance now owns: which timer, which kind, and the timer (None if stopped)."""

    member: str
    kind: str
    timer: SlaTimer | None


class TimerStore(Protocol):
    """Where SLA timers live."""

    async def start(self, timer: SlaTimer, warn_at: datetime) -> bool:
        """Start a timer unless it already runs; return True when it was started now."""
        ...

    async def stop(self, case_id: str, clock: str) -> SlaTimer | None:
        """Stop a timer; return it, or None when it was not running."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[Claimed]:
        """Take ownership of entries due at `now`."""
        ...

    async def done(self, members: list[str]) -> None:
        """Forget entries whose events were published."""
        ...

    async def requeue_stale(self, now: datetime, lease_seconds: float) -> int:
        """Give back entries claimed longer ago than the lease by an instance that did not finish."""
        ...

    async def open_count(self) -> int:
        """Count running timers."""
        ...


class RedisTimerStore:
    """The timers of every SLA instance, in one Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}sla:"
        self._due = f"{self._prefix}due"
        self._firing = f"{self._prefix}firing"
        self._open = f"{self._prefix}open"
        self._start = redis.register_script(_START)
        self._claim = redis.register_script(_CLAIM)
        self._requeue = redis.register_script(_REQUEUE)

    def _timer_key(self, case_id: str, clock: str) -> str:
        return f"{self._prefix}timer:{case_id}|{clock}"

    def _tombstone_key(self, case_id: str, clock: str) -> str:
        return f"{self._prefix}stopped:{case_id}|{clock}"

    async def start(self, timer: SlaTimer, warn_at: datetime) -> bool:
        """Start a timer unless it already runs; return True when it was started now."""
        base = f"{timer.case_id}|{timer.clock}"
        keys = [
            self._timer_key(timer.case_id, timer.clock),
            self._due,
            self._open,
            self._tombstone_key(timer.case_id, timer.clock),
        ]
        args = [
            timer.model_dump_json(),
            warn_at.timestamp(),
            f"{base}|warning",
            timer.due_at.timestamp(),
            f"{base}|breached",
            base,
        ]
        return bool(await self._start(keys=keys, args=args))

    async def stop(self, case_id: str, clock: str) -> SlaTimer | None:
        """Stop a timer; return it, or None when it was not running."""
        key = self._timer_key(case_id, clock)
        base = f"{case_id}|{clock}"
        members = [f"{base}|{kind}" for kind in KINDS]
        pipe = self._redis.pipeline(transaction=True)
        pipe.hget(key, "timer")
        pipe.delete(key)
        pipe.zrem(self._due, *members)
        pipe.srem(self._open, base)
        pipe.set(self._tombstone_key(case_id, clock), b"1", ex=TOMBSTONE_SECONDS)
        raw, *_ = await pipe.execute()
        return SlaTimer.model_validate_json(raw) if raw else None

    async def claim_due(self, now: datetime, limit: int) -> list[Claimed]:
        """Take ownership of entries due at `now`."""
        flat = await self._claim(
            keys=[self._due, self._firing], args=[now.timestamp(), limit, f"{self._prefix}timer:"]
        )
        claimed = []
        for member, raw in zip(flat[::2], flat[1::2], strict=True):
            name = member.decode()
            timer = SlaTimer.model_validate_json(raw) if raw else None
            claimed.append(Claimed(name, name.rsplit("|", 1)[1], timer))
        return claimed

    async def done(self, members: list[str]) -> None:
        """Forget entries whose events were published."""
        if members:
            await self._redis.zrem(self._firing, *members)

    async def requeue_stale(self, now: datetime, lease_seconds: float) -> int:
        """Give back entries claimed longer ago than the lease by an instance that did not finish."""
        return int(
            await self._requeue(
                keys=[self._due, self._firing], args=[now.timestamp() - lease_seconds, now.timestamp()]
            )
        )

    async def open_count(self) -> int:
        """Count running timers."""
        return int(await self._redis.scard(self._open))
