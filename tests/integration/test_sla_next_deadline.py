"""The next-deadline gauge read from the real Redis: the earliest entry still to fire, as seconds from now."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from sla.app import report_next_deadline
from sla.handlers import Deps
from sla.metrics import SlaMetrics
from sla.policies import parse_policies
from sla.store import Firing, RedisCaseState, RedisTimerStore
from switchboard.contract import Queue, SlaTimer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
POLICIES = parse_policies("policies:\n  - name: x-support\n    first_response: 60s\n")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def timer(case_id: str, seconds: float) -> SlaTimer:
    return SlaTimer(
        case_id=case_id,
        clock="first_response",
        policy="x-support",
        queue=Queue.CUSTOMER_SERVICE,
        channel="x",
        priority="P3",
        started_at=NOW,
        due_at=NOW + timedelta(seconds=seconds),
        target_seconds=seconds,
        elapsed_seconds=0,
    )


def plan(warn: float, breach: float) -> list[Firing]:
    return [
        Firing("warning:0.5", NOW + timedelta(seconds=warn)),
        Firing("breached", NOW + timedelta(seconds=breach)),
    ]


async def test_the_next_due_entry_is_the_earliest_one_not_yet_claimed(redis: Redis, key_prefix: str):
    store = RedisTimerStore(redis, key_prefix)
    assert await store.next_due() is None
    await store.start(timer("slow", 600), plan(300, 600))
    await store.start(timer("fast", 60), plan(30, 60))
    assert await store.next_due() == NOW + timedelta(seconds=30)
    # Claimed by an instance: no longer ahead, whether or not it is published yet.
    (warning,) = await store.claim_due(NOW + timedelta(seconds=31), 10)
    assert await store.next_due() == NOW + timedelta(seconds=60)
    await store.done([warning.member])
    await store.stop("fast", "first_response")
    assert await store.next_due() == NOW + timedelta(seconds=300)
    await store.stop("slow", "first_response")
    assert await store.next_due() is None


async def test_the_ticker_reports_seconds_until_the_earliest_entry_in_redis(redis: Redis, key_prefix: str):
    registry, clock = CollectorRegistry(), Clock()
    metrics = SlaMetrics(registry)
    timers = RedisTimerStore(redis, key_prefix)
    deps = Deps(
        timers=timers, cases=RedisCaseState(redis, key_prefix), policies=lambda: POLICIES, clock=clock
    )

    def gauge() -> float:
        return registry.get_sample_value("switchboard_sla_next_deadline_seconds")

    await report_next_deadline(timers, deps, metrics)
    assert math.isnan(gauge())
    await timers.start(timer("c1", 60), plan(30.25, 60))
    clock.now = NOW + timedelta(seconds=10)
    await report_next_deadline(timers, deps, metrics)
    assert gauge() == 20.25
    # Not claimed in time (no instance is firing): the entry shows as overdue.
    clock.now = NOW + timedelta(seconds=40)
    await report_next_deadline(timers, deps, metrics)
    assert gauge() == -9.75
