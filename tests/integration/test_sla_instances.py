"""The SLA firing step shared by several instances, in one process: real Redis, real broker, a moved clock.

The process-level proof (three `switchboard serve sla` processes, one killed) is in
tests/e2e/test_sla_instances.py; here the crash windows are reproduced exactly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from sla import app as sla_app
from sla.app import CLAIM_LIMIT, LEASE_SECONDS, fire_due, run_ticker
from sla.config import Settings
from sla.handlers import Deps, fired_events, on_routed
from sla.metrics import SlaMetrics
from sla.policies import parse_policies
from sla.store import Firing, RedisCaseState, RedisTimerStore
from switchboard.bus import ConsumerLoop, KafkaPublisher, make_producer
from switchboard.config import KafkaSettings, RedisSettings
from switchboard.contract import (
    CaseRouted,
    CloudEvent,
    SlaTimer,
    Topic,
    decode,
)
from switchboard.testing import TopicReader, case_routed, eventually
from switchboard.topics import ensure_topics

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
POLICIES = parse_policies(
    """
policies:
  - name: fast
    first_response: 30m
    resolution: 4h
    warn_at: [0.5]
    escalate_after_breach: [1h]
"""
)
FIRINGS_PER_CASE = 6  # two clocks, each a warning, a breach and an escalation


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Recording:
    """A publisher that remembers what it published, after the broker acknowledged it."""

    def __init__(self, publisher: KafkaPublisher) -> None:
        self._publisher = publisher
        self.ids: list[str] = []

    async def publish(self, events: Sequence[CloudEvent], traces: Sequence[object] | None = None) -> None:
        await self._publisher.publish(events, traces)
        self.ids += [e.id for e in events]


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    await ensure_topics(kafka)
    p = make_producer(kafka, "test-sla")
    await p.start()
    yield p
    await p.stop()


def instance(redis: Redis, key_prefix: str, clock: Clock) -> Deps:
    return Deps(
        timers=RedisTimerStore(redis, key_prefix),
        cases=RedisCaseState(redis, key_prefix),
        policies=lambda: POLICIES,
        clock=clock,
    )


def routed(case_id: str) -> CaseRouted:
    return case_routed(case_id, message_created_at=START)


async def open_cases(deps: Deps, count: int) -> list[str]:
    case_ids = [f"inst-{uuid.uuid4().hex[:6]}-{n:04d}" for n in range(count)]
    for case_id in case_ids:
        assert len(await on_routed(routed(case_id), deps)) == 2
    return case_ids


async def test_a_crash_between_publish_and_done_repeats_the_firing_once_under_the_same_id(
    redis: Redis, redis_url: str, key_prefix: str, producer: AIOKafkaProducer, kafka_bootstrap: str
):
    clock = Clock()
    first = instance(redis, key_prefix, clock)
    case_ids = await open_cases(first, 5)
    clock.now = START + timedelta(hours=6)
    # The first instance's firing step, up to the moment it is killed: claimed, published, not forgotten.
    claimed = await first.timers.claim_due(clock.now, CLAIM_LIMIT)
    published = fired_events(claimed, clock.now, POLICIES)
    await KafkaPublisher(producer).publish(published)
    assert len(published) == 5 * FIRINGS_PER_CASE
    assert await redis.zcard(f"{key_prefix}sla:firing") == 5 * FIRINGS_PER_CASE

    # Another instance, its own connection: nothing comes back before the lease, everything after it.
    other_redis = Redis.from_url(redis_url)
    try:
        second = instance(other_redis, key_prefix, clock)
        survivor = Recording(KafkaPublisher(producer))
        metrics = SlaMetrics(CollectorRegistry())
        assert (
            await second.timers.requeue_stale(clock.now + timedelta(seconds=LEASE_SECONDS - 1), LEASE_SECONDS)
            == 0
        )
        assert await fire_due(second.timers, survivor, second, metrics) == 0
        clock.now += timedelta(seconds=LEASE_SECONDS + 1)
        assert await second.timers.requeue_stale(clock.now, LEASE_SECONDS) == 5 * FIRINGS_PER_CASE
        assert await fire_due(second.timers, survivor, second, metrics) == 5 * FIRINGS_PER_CASE
        assert await second.timers.requeue_stale(clock.now + timedelta(hours=1), LEASE_SECONDS) == 0
        assert await fire_due(second.timers, survivor, second, metrics) == 0
    finally:
        await other_redis.aclose()
    assert sorted(survivor.ids) == sorted(e.id for e in published)

    async with TopicReader(kafka_bootstrap, Topic.SLA_EVENTS.value) as reader:

        async def both_copies() -> list[CloudEvent] | None:
            await reader.poll()
            mine = [decode(r.value) for r in reader.records]
            mine = [e for e in mine if e.data.case_id in case_ids and e.type != "switchboard.sla.started"]
            return mine if len(mine) >= 2 * len(published) else None

        events = await eventually(both_copies, timeout=20)
    copies = Counter(e.id for e in events)
    assert set(copies.values()) == {2}
    # A consumer that drops what it has seen keeps one of each.
    assert len({e.id: e for e in events}) == 5 * FIRINGS_PER_CASE


async def test_instances_claiming_at_the_same_time_fire_each_entry_once(
    redis: Redis, redis_url: str, key_prefix: str, producer: AIOKafkaProducer
):
    clock = Clock()
    case_ids = await open_cases(instance(redis, key_prefix, clock), 400)
    clock.now = START + timedelta(hours=6)
    clients = [Redis.from_url(redis_url) for _ in range(3)]
    try:
        instances = [instance(client, key_prefix, clock) for client in clients]
        publishers = [Recording(KafkaPublisher(producer)) for _ in instances]

        async def run(deps: Deps, publisher: Recording) -> None:
            metrics = SlaMetrics(CollectorRegistry())
            # Each call awaits Redis and the broker, so the three interleave at every step.
            while await fire_due(deps.timers, publisher, deps, metrics):
                pass

        await asyncio.gather(*(run(d, p) for d, p in zip(instances, publishers, strict=True)))
    finally:
        for client in clients:
            await client.aclose()
    fired = [i for p in publishers for i in p.ids]
    assert sum(1 for p in publishers if p.ids) >= 2, "the instances did not compete"
    assert len(fired) == len(set(fired)) == len(case_ids) * FIRINGS_PER_CASE
    assert await redis.zcard(f"{key_prefix}sla:due") == 0
    assert await redis.zcard(f"{key_prefix}sla:firing") == 0


# Defects found while proving multi-instance firing; each failed before its fix.


async def test_a_routed_case_redelivered_after_a_crash_before_publishing_still_gets_its_started_events(
    redis: Redis, key_prefix: str
):
    deps = instance(redis, key_prefix, Clock())
    lost = await on_routed(routed("c-1"), deps)  # the instance dies before these are published
    again = await on_routed(routed("c-1"), deps)  # the uncommitted record goes to another instance
    assert [e.id for e in again] == [e.id for e in lost]


class Hangs:
    """A publisher whose broker never answers."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def publish(self, events: Sequence[CloudEvent], traces: Sequence[object] | None = None) -> None:
        self.entered.set()
        await asyncio.sleep(3600)


class Remembering:
    """A publisher that only remembers the ids it was given."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def publish(self, events: Sequence[CloudEvent], traces: Sequence[object] | None = None) -> None:
        self.ids += [e.id for e in events]


async def test_a_graceful_stop_mid_publish_leaves_nothing_for_the_lease_to_bring_back(
    redis: Redis, key_prefix: str
):
    clock = Clock()
    deps = instance(redis, key_prefix, clock)
    await open_cases(deps, 3)
    clock.now = START + timedelta(hours=6)
    hanging = Hangs()
    stopping = asyncio.create_task(
        run_ticker(deps.timers, hanging, deps, SlaMetrics(CollectorRegistry()), 0.05)
    )
    await hanging.entered.wait()
    stopping.cancel()  # what the lifespan does on SIGTERM
    await asyncio.gather(stopping, return_exceptions=True)
    # The next instance, a moment later (well inside the 30 s lease): the entries must be firable.
    clock.now += timedelta(seconds=1)
    survivor = Remembering()
    await fire_due(deps.timers, survivor, deps, SlaMetrics(CollectorRegistry()))
    assert len(survivor.ids) == 3 * FIRINGS_PER_CASE


async def test_due_timers_fire_while_the_consumer_group_is_still_rebalancing(
    redis: Redis, redis_url: str, key_prefix: str, kafka_bootstrap: str, monkeypatch
):
    timers = RedisTimerStore(redis, key_prefix)
    now = datetime.now(UTC)
    timer = SlaTimer(
        case_id="c-join",
        clock="first_response",
        policy="fast",
        queue="customer-service",
        channel="email",
        priority="P3",
        started_at=now - timedelta(hours=1),
        due_at=now,
        target_seconds=1800,
        elapsed_seconds=0,
    )
    await timers.start(timer, [Firing("breached", now)])

    joined = asyncio.Event()

    async def slow_join(self):  # a rebalance that takes a while (Kafka's initial delay, a stuck member)
        await joined.wait()

    monkeypatch.setattr(ConsumerLoop, "start", slow_join)
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        redis=RedisSettings(url=redis_url, key_prefix=key_prefix),
        tick_seconds=0.05,
    )
    application = sla_app.create_app(settings)
    lifespan = asyncio.create_task(application.router.lifespan_context(application).__aenter__())
    try:

        async def fired() -> bool:
            return await redis.zcard(f"{key_prefix}sla:due") == 0

        await eventually(fired, timeout=5)
    finally:
        joined.set()
        lifespan.cancel()
        await asyncio.gather(lifespan, return_exceptions=True)
