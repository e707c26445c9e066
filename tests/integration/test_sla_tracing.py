"""SLA firings carry the trace of the event that started their clock: the real bus, handlers and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from sla import handlers
from sla.app import fire_due
from sla.handlers import Deps, on_routed
from sla.metrics import SlaMetrics
from sla.policies import parse_policies
from sla.store import RedisCaseState, RedisTimerStore
from switchboard.bus import ConsumerLoop, Traces, make_producer
from switchboard.config import KafkaSettings
from switchboard.contract import (
    CaseRouted,
    CloudEvent,
    Topic,
    decode,
    dlq_topic,
    encode,
)
from switchboard.dedupe import RedisDeduper
from switchboard.metrics import BusMetrics
from switchboard.testing import TopicReader, case_routed
from switchboard.topics import ensure_topics
from switchboard.tracing import TraceContext, from_headers

pytestmark = pytest.mark.integration

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
POLICIES = parse_policies(
    """
policies:
  - name: x-support
    first_response: 30m
    warn_at: [0.5]
"""
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Recording:
    """A publisher that keeps each event with its trace context."""

    def __init__(self) -> None:
        self.published: list[tuple[CloudEvent, TraceContext]] = []

    async def publish(self, events: Sequence[CloudEvent], traces: Traces | None = None) -> None:
        assert traces is not None
        for event, trace in zip(events, traces, strict=True):
            assert trace is not None
            self.published.append((event, trace))


def routed(case_id: str) -> CaseRouted:
    return case_routed(case_id, channel="x", external_id="1", visibility="public")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deps(redis: Redis, key_prefix: str, clock: Clock) -> Deps:
    return Deps(
        timers=RedisTimerStore(redis, key_prefix),
        cases=RedisCaseState(redis, key_prefix),
        policies=lambda: POLICIES,
        clock=clock,
    )


async def test_a_breach_carries_the_trace_of_the_routed_case_that_started_its_clock(
    kafka_bootstrap: str, redis: Redis, key_prefix: str, suffix: str, deps: Deps, clock: Clock
):
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_partitions=1)
    source = f"cases-{suffix}"
    await ensure_topics(kafka, [source, dlq_topic(source), Topic.SLA_EVENTS.value])
    producer = make_producer(kafka, "test")
    await producer.start()
    case_id = f"case-{uuid.uuid4().hex[:8]}"
    table = handlers.handler_table(deps)[Topic.CASES_CUSTOMER_SERVICE.value]
    loop = ConsumerLoop(
        group_id=f"sla-{suffix}",
        handlers={source: table},
        kafka=kafka,
        producer=producer,
        deduper=RedisDeduper(redis, f"{key_prefix}handled:", 60),
        metrics=BusMetrics("test", CollectorRegistry()),
    )
    try:
        async with TopicReader(kafka_bootstrap, Topic.SLA_EVENTS.value) as reader:
            await producer.send_and_wait(
                source,
                encode(routed(case_id)),
                key=case_id.encode(),
                headers=[("traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-01".encode())],
            )
            await loop.start()
            (started,) = await reader.wait_for(lambda r: decode(r.value).subject == case_id)
    finally:
        await loop.stop()
        await producer.stop()
    handled = from_headers(started.headers)
    assert decode(started.value).type == "switchboard.sla.started"
    assert handled is not None and handled.trace_id == CALLER_TRACE and handled.span_id != CALLER_SPAN

    clock.now += timedelta(minutes=31)
    publisher = Recording()
    assert await fire_due(deps.timers, publisher, deps, SlaMetrics(CollectorRegistry())) == 2
    kinds = []
    for event, trace in publisher.published:
        kinds.append(event.type)
        # A span of its own, under the span that handled the routed case (and published SlaStarted).
        assert trace.trace_id == CALLER_TRACE
        assert trace.parent_id == handled.span_id
        assert trace.span_id != handled.span_id
    assert sorted(kinds) == ["switchboard.sla.breached", "switchboard.sla.warning"]


async def test_a_clock_started_outside_any_trace_fires_in_a_new_trace(deps: Deps, clock: Clock):
    await on_routed(routed("untraced"), deps)
    (claimed,) = [c for c in await deps.timers.claim_due(deps.clock() + timedelta(minutes=16), 10)]
    assert claimed.trace is None
    await deps.timers.release([claimed])
    clock.now += timedelta(minutes=16)
    publisher = Recording()
    assert await fire_due(deps.timers, publisher, deps, SlaMetrics(CollectorRegistry())) == 1
    ((event, trace),) = publisher.published
    assert event.subject == "untraced"
    assert trace.parent_id is None and trace.sampled
