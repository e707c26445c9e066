"""The consumer loop against the real broker and the real Redis server."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError

from switchboard.bus import ConsumerLoop, KafkaPublisher, dead_letter_reason, make_producer
from switchboard.config import KafkaSettings
from switchboard.contract import (
    Author,
    CloudEvent,
    Message,
    MessageReceived,
    decode,
    dlq_topic,
    encode,
)
from switchboard.dedupe import RedisDeduper
from switchboard.handling import BatchHandler
from switchboard.metrics import BusMetrics
from switchboard.stack import free_port, port_open, redis_server_binary, wait_until
from switchboard.testing import TopicReader, eventually
from switchboard.topics import ensure_topics
from switchboard.tracing import TraceContext, from_headers

pytestmark = pytest.mark.integration


def received(n: int, conversation: str = "conv") -> MessageReceived:
    now = datetime.now(UTC)
    message = Message(
        message_id=f"m{n}",
        channel="chat",
        external_id=str(n),
        conversation_id=conversation,
        author=Author(id="a"),
        text=f"message {n}",
        created_at=now,
        received_at=now,
        visibility="private",
    )
    return MessageReceived(
        id=f"ev-{n}", source="test", subject=f"m{n}", partitionkey=conversation, data=message
    )


class Echo(MessageReceived):
    """The same event, published to the test's output topic."""

    sink: ClassVar[str] = ""

    def topic(self) -> str:
        return self.sink


def echo_to(topic: str):
    """A handler that republishes each message to `topic` with an id derived from its cause."""
    calls: list[str] = []
    echo = type("EchoTo", (Echo,), {"sink": topic})

    async def handler(event: MessageReceived) -> list[CloudEvent]:
        calls.append(event.id)
        if event.data.text == "explode":
            raise ValueError("this record always fails")
        return [
            echo(
                id=f"{event.id}/out",
                source="test",
                subject=event.subject,
                partitionkey=event.partitionkey,
                data=event.data,
            )
        ]

    return handler, calls


class Harness:
    """A consumer loop on the test's own topics and group."""

    def __init__(self, bootstrap: str, redis: Redis, prefix: str, suffix: str) -> None:
        self.kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_partitions=2, handler_attempts=2)
        self.source = f"in-{suffix}"
        self.sink = f"out-{suffix}"
        self.group = f"group-{suffix}"
        self.redis = redis
        self.prefix = prefix
        self.registry = CollectorRegistry()
        self.metrics = BusMetrics("test", self.registry)
        self.handler, self.calls = echo_to(self.sink)

    async def topics(self) -> None:
        await ensure_topics(self.kafka, [self.source, self.sink, dlq_topic(self.source)])

    async def loop(self, producer: AIOKafkaProducer, spans=None) -> ConsumerLoop:
        loop = ConsumerLoop(
            group_id=self.group,
            handlers={self.source: {"switchboard.message.received": self.handler}},
            kafka=self.kafka,
            producer=producer,
            deduper=RedisDeduper(self.redis, f"{self.prefix}handled:", 60),
            metrics=self.metrics,
            spans=spans,
        )
        await loop.start()
        return loop

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def harness(kafka_bootstrap: str, redis: Redis, key_prefix: str, suffix: str):
    h = Harness(kafka_bootstrap, redis, key_prefix, suffix)
    await h.topics()
    return h


@pytest.fixture
async def producer(kafka_bootstrap: str):
    p = make_producer(KafkaSettings(bootstrap_servers=kafka_bootstrap), "test")
    await p.start()
    yield p
    await p.stop()


async def test_each_event_is_handled_and_its_output_published_with_the_same_key(harness, producer):
    for n in range(50):
        await producer.send(
            harness.source, encode(received(n, f"conv-{n % 5}")), key=f"conv-{n % 5}".encode()
        )
    await producer.flush()
    loop = await harness.loop(producer)
    try:
        async with TopicReader(producer.client._bootstrap_servers, harness.sink) as reader:
            out = await reader.wait_for(lambda r: True, count=50)
        events = {decode(r.value).id: (r.key, decode(r.value)) for r in out}
        assert set(events) == {f"ev-{n}/out" for n in range(50)}
        for n in range(50):
            key, event = events[f"ev-{n}/out"]
            assert key == f"conv-{n % 5}".encode()
            assert event.data.text == f"message {n}"
        assert harness.metric("switchboard_test_records_produced_total", topic=harness.sink) == 50
        consumed = harness.metric("switchboard_test_records_consumed_total", topic=harness.source)
        assert consumed == 50
        lags = [
            harness.registry.get_sample_value(
                "switchboard_test_consumer_lag_records", {"topic": harness.source, "partition": str(p)}
            )
            for p in range(2)
        ]
        # Caught up: every partition that delivered records reports no lag left.
        assert [lag for lag in lags if lag is not None] and all(lag == 0 for lag in lags if lag is not None)
    finally:
        await loop.stop()


async def test_the_lag_gauges_count_the_backlog_of_partitions_the_poll_did_not_read(harness, producer):
    total = 1200
    for n in range(total):
        await producer.send(
            harness.source, encode(received(n, f"conv-{n % 7}")), key=f"conv-{n % 7}".encode()
        )
    await producer.flush()
    harness.kafka = harness.kafka.model_copy(update={"max_batch_records": 100})
    seen: list[tuple[float, float]] = []
    echo = harness.handler

    async def handler(event: MessageReceived) -> list[CloudEvent]:
        # Mid-way, while polls still hand out one partition's records at a time.
        if len(harness.calls) == 300:
            consumed = harness.metric("switchboard_test_records_consumed_total", topic=harness.source)
            lags = [
                harness.metric(
                    "switchboard_test_consumer_lag_records", topic=harness.source, partition=str(p)
                )
                for p in range(2)
            ]
            seen.append((consumed, sum(lags)))
        return await echo(event)

    harness.handler = handler
    loop = await harness.loop(producer)
    try:
        await eventually(
            lambda: harness.metric("switchboard_test_records_produced_total", topic=harness.sink) == total
        )
        ((consumed, lag),) = seen
        assert lag == total - consumed
    finally:
        await loop.stop()


async def test_committed_records_are_not_handled_again_after_a_restart(harness, producer):
    for n in range(20):
        await producer.send(harness.source, encode(received(n)), key=b"conv")
    await producer.flush()
    first = await harness.loop(producer)
    await eventually(lambda: len(harness.calls) >= 20, timeout=20)
    await first.stop()
    await producer.send_and_wait(harness.source, encode(received(99)), key=b"conv")
    second = await harness.loop(producer)
    try:
        await eventually(lambda: "ev-99" in harness.calls, timeout=20)
        await asyncio.sleep(0.5)
        assert harness.calls.count("ev-0") == 1
        assert len(harness.calls) == 21
    finally:
        await second.stop()


async def test_a_redelivered_event_is_skipped_as_a_duplicate(harness, producer):
    await producer.send_and_wait(harness.source, encode(received(1)), key=b"conv")
    # The same event again, as after a crash between publishing and committing.
    await producer.send_and_wait(harness.source, encode(received(1)), key=b"conv")
    loop = await harness.loop(producer)
    try:
        await eventually(
            lambda: harness.metric("switchboard_test_duplicates_skipped_total", topic=harness.source) == 1,
            timeout=20,
        )
        assert harness.calls == ["ev-1"]
    finally:
        await loop.stop()


async def test_an_undecodable_record_goes_to_the_dead_letter_topic_with_its_reason(harness, producer):
    await producer.send_and_wait(harness.source, b"{not json", key=b"conv")
    await producer.send_and_wait(harness.source, encode(received(7)), key=b"conv")
    loop = await harness.loop(producer)
    try:
        async with TopicReader(producer.client._bootstrap_servers, dlq_topic(harness.source)) as reader:
            (dead,) = await reader.wait_for(lambda r: True)
        assert dead.value == b"{not json"
        headers = dead_letter_reason(dead.headers)
        assert headers["reason"] == "undecodable"
        assert headers["topic"] == harness.source
        assert headers["offset"].isdigit()
        # The partition is not blocked: the next record was handled.
        await eventually(lambda: "ev-7" in harness.calls, timeout=20)
    finally:
        await loop.stop()


async def test_a_record_whose_handler_keeps_failing_is_dead_lettered_after_its_attempts(harness, producer):
    bad = received(3)
    bad.data.text = "explode"
    await producer.send_and_wait(harness.source, encode(bad), key=b"conv")
    await producer.send_and_wait(harness.source, encode(received(4)), key=b"conv")
    loop = await harness.loop(producer)
    try:
        async with TopicReader(producer.client._bootstrap_servers, dlq_topic(harness.source)) as reader:
            (dead,) = await reader.wait_for(lambda r: True)
        headers = dead_letter_reason(dead.headers)
        assert headers["reason"] == "handler_failed"
        assert "this record always fails" in headers["error"]
        await eventually(lambda: "ev-4" in harness.calls, timeout=20)
        assert harness.calls.count("ev-3") == 2
        assert (
            harness.metric(
                "switchboard_test_records_dead_lettered_total", topic=harness.source, reason="handler_failed"
            )
            == 1
        )
    finally:
        await loop.stop()


class FlakyDeduper(RedisDeduper):
    """The real Redis deduper, but Redis 'goes away' for the first few calls."""

    def __init__(self, inner: RedisDeduper, failures: int) -> None:
        self.__dict__.update(inner.__dict__)
        self.failures = failures

    async def seen(self, ids: list[str]) -> set[str]:
        if self.failures > 0:
            self.failures -= 1
            raise RedisConnectionError("redis went away")
        return await super().seen(ids)


async def test_a_redis_outage_retries_the_batch_instead_of_dead_lettering_it(harness, producer):
    for n in range(5):
        await producer.send(harness.source, encode(received(n)), key=b"conv")
    await producer.flush()
    loop = ConsumerLoop(
        group_id=harness.group,
        handlers={harness.source: {"switchboard.message.received": harness.handler}},
        kafka=harness.kafka,
        producer=producer,
        deduper=FlakyDeduper(RedisDeduper(harness.redis, f"{harness.prefix}handled:", 60), failures=3),
        metrics=harness.metrics,
    )
    await loop.start()
    try:
        await eventually(lambda: len(set(harness.calls)) == 5, timeout=30)
        assert sorted(harness.calls) == sorted(f"ev-{n}" for n in range(5))
        assert harness.metric("switchboard_test_bus_errors_total", kind="transient") == 3
        assert (
            harness.metric(
                "switchboard_test_records_dead_lettered_total", topic=harness.source, reason="undecodable"
            )
            == 0
        )
        await eventually(lambda: loop.healthy, timeout=10)
    finally:
        await loop.stop()


@pytest.fixture
def demoted_redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis of this test alone that is a replica, as a primary is once a failover demoted it.

    It follows a primary that never answers, so it stays a replica (writes answer READONLY) until the
    test promotes it, as the failover's new primary would take the writes.
    """
    port, nowhere = free_port(), free_port()
    server = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    process = subprocess.Popen(
        [*server, "--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", str(nowhere)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 15, "redis replica")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


async def test_a_demoted_redis_primary_retries_the_batch_instead_of_dead_lettering_it(
    harness, producer, demoted_redis_url
):
    for n in range(5):
        await producer.send(harness.source, encode(received(n)), key=b"conv")
    await producer.flush()
    state = Redis.from_url(demoted_redis_url)
    refused: list[str] = []

    async def write_then_echo(event: MessageReceived) -> list[CloudEvent]:
        # Handlers write their state to Redis (cases, timers); a client still connected to the old
        # primary gets READONLY until the failover is over.
        try:
            await state.set(f"{harness.prefix}state:{event.id}", "handled")
        except ReadOnlyError:
            refused.append(event.id)
            if len(refused) == 3:
                await state.replicaof("NO", "ONE")
            raise
        return await harness.handler(event)

    loop = ConsumerLoop(
        group_id=harness.group,
        handlers={harness.source: {"switchboard.message.received": write_then_echo}},
        kafka=harness.kafka,
        producer=producer,
        deduper=RedisDeduper(harness.redis, f"{harness.prefix}handled:", 60),
        metrics=harness.metrics,
    )
    await loop.start()
    try:
        async with TopicReader(producer.client._bootstrap_servers, harness.sink) as reader:
            out = await reader.wait_for(lambda r: True, count=5)
        assert sorted(decode(r.value).id for r in out) == sorted(f"ev-{n}/out" for n in range(5))
        assert refused == ["ev-0"] * 3
        assert harness.metric("switchboard_test_bus_errors_total", kind="transient") == 3
        assert (
            harness.metric(
                "switchboard_test_records_dead_lettered_total", topic=harness.source, reason="handler_failed"
            )
            == 0
        )
        for n in range(5):
            assert await state.get(f"{harness.prefix}state:ev-{n}") == b"handled"
        await eventually(lambda: loop.healthy, timeout=10)
    finally:
        await loop.stop()
        await state.aclose()


async def test_a_redis_still_loading_its_data_retries_the_batch_instead_of_dead_lettering_it(
    harness, producer
):
    # A restarting Redis answers LOADING while it reads its append-only file; a test cannot hold a real
    # server in that state for a known time, so the handler answers as redis-py would.
    for n in range(3):
        await producer.send(harness.source, encode(received(n)), key=b"conv")
    await producer.flush()
    loading = [True, True, True]
    echo = harness.handler

    async def handler(event: MessageReceived) -> list[CloudEvent]:
        if loading:
            loading.pop()
            raise BusyLoadingError("Redis is loading the dataset in memory")
        return await echo(event)

    harness.handler = handler
    loop = await harness.loop(producer)
    try:
        await eventually(lambda: len(set(harness.calls)) == 3, timeout=30)
        assert harness.metric("switchboard_test_bus_errors_total", kind="transient") == 3
        assert (
            harness.metric(
                "switchboard_test_records_dead_lettered_total", topic=harness.source, reason="handler_failed"
            )
            == 0
        )
    finally:
        await loop.stop()


def batch_echo_to(topic: str):
    """A batch handler that republishes each message to `topic`; one poison text fails the whole call."""
    single, _ = echo_to(topic)
    calls: list[list[str]] = []

    async def handle(events: list[MessageReceived]) -> list[list[CloudEvent]]:
        calls.append([e.id for e in events])
        if any(e.data.text == "explode" for e in events):
            raise ValueError("this record always fails")
        return [await single(e) for e in events]

    return BatchHandler(handle), calls


async def test_a_batch_handler_gets_a_poll_in_one_call_and_its_outputs_keep_their_keys_and_order(
    harness, producer
):
    for n in range(60):
        await producer.send(
            harness.source, encode(received(n, f"conv-{n % 3}")), key=f"conv-{n % 3}".encode()
        )
    await producer.flush()
    handler, calls = batch_echo_to(harness.sink)
    harness.handler = handler
    loop = await harness.loop(producer)
    try:
        async with TopicReader(producer.client._bootstrap_servers, harness.sink) as reader:
            out = await reader.wait_for(lambda r: True, count=60)
        assert sum(len(c) for c in calls) == 60
        assert len(calls) < 60, "the bus called the batch handler once per event"
        by_key: dict[bytes, list[int]] = {}
        for record in out:
            by_key.setdefault(record.key, []).append(int(decode(record.value).data.external_id))
        for k in range(3):
            assert by_key[f"conv-{k}".encode()] == [n for n in range(60) if n % 3 == k]
    finally:
        await loop.stop()


async def test_a_failing_batch_is_retried_one_event_at_a_time_and_only_the_poison_event_is_dead_lettered(
    harness, producer
):
    for n in range(10):
        event = received(n)
        if n == 4:
            event.data.text = "explode"
        await producer.send(harness.source, encode(event), key=b"conv")
    await producer.flush()
    handler, calls = batch_echo_to(harness.sink)
    harness.handler = handler
    loop = await harness.loop(producer)
    try:
        async with TopicReader(producer.client._bootstrap_servers, harness.sink) as reader:
            out = await reader.wait_for(lambda r: True, count=9)
        assert sorted(decode(r.value).id for r in out) == sorted(f"ev-{n}/out" for n in range(10) if n != 4)
        async with TopicReader(producer.client._bootstrap_servers, dlq_topic(harness.source)) as reader:
            (dead,) = await reader.wait_for(lambda r: True)
        assert decode(dead.value).id == "ev-4"
        assert "this record always fails" in dead_letter_reason(dead.headers)["error"]
        # The poison event was tried as many times as a plain handler would be, alone.
        assert calls.count(["ev-4"]) == harness.kafka.handler_attempts
    finally:
        await loop.stop()


async def test_published_batches_land_on_the_partition_send_would_choose_for_the_key(harness, producer):
    events = [received(n, f"key-{n}") for n in range(40)]
    for event in events:
        event.__class__ = type("EchoTo", (Echo,), {"sink": harness.source})
    await KafkaPublisher(producer).publish(events)
    async with TopicReader(producer.client._bootstrap_servers, harness.source) as reader:
        out = await reader.wait_for(lambda r: True, count=40)
    partitions = sorted(await producer.partitions_for(harness.source))
    for record in out:
        expected = await producer.send(harness.source, b"probe", key=record.key)
        assert (await expected).partition == record.partition
    assert {r.partition for r in out} == set(partitions)


CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def traced(trace_id: str = CALLER_TRACE, span_id: str = CALLER_SPAN, state: str | None = None):
    """Headers of a record sent by a traced producer."""
    headers = [
        ("ce_type", b"switchboard.message.received"),
        ("traceparent", f"00-{trace_id}-{span_id}-01".encode()),
    ]
    return headers + ([("tracestate", state.encode())] if state else [])


class RecordedSpans:
    """Keeps what the loop would export."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, TraceContext, str | None]] = []

    def record(self, name, context, kind, start_ns, end_ns=None, attributes=None, error=None) -> None:
        self.spans.append((name, context, error))


async def test_an_output_carries_the_trace_of_its_input_in_a_span_of_its_own(harness, producer):
    await producer.send_and_wait(
        harness.source, encode(received(1)), key=b"conv", headers=traced(state="congo=t61rcWkgMzE")
    )
    spans = RecordedSpans()
    loop = await harness.loop(producer, spans=spans)
    try:
        async with TopicReader(producer.client._bootstrap_servers, harness.sink) as reader:
            (out,) = await reader.wait_for(lambda r: True)
    finally:
        await loop.stop()
    sent = from_headers(out.headers)
    assert sent is not None
    assert sent.trace_id == CALLER_TRACE and sent.span_id != CALLER_SPAN
    assert sent.state == "congo=t61rcWkgMzE"
    assert dict(out.headers)["ce_type"] == b"switchboard.message.received"
    # The output's span is the handling of the input: its parent is the span that sent the input.
    ((name, handled, error),) = spans.spans
    assert (name, error) == (f"process {harness.source}", None)
    assert (handled.span_id, handled.parent_id) == (sent.span_id, CALLER_SPAN)


async def test_a_batch_handlers_outputs_each_carry_the_trace_of_their_own_input(harness, producer):
    traces = {n: f"{n + 1:032x}" for n in range(30)}
    for n, trace_id in traces.items():
        await producer.send(
            harness.source,
            encode(received(n, f"conv-{n % 3}")),
            key=f"conv-{n % 3}".encode(),
            headers=traced(trace_id),
        )
    await producer.flush()
    handler, calls = batch_echo_to(harness.sink)
    harness.handler = handler
    loop = await harness.loop(producer)
    try:
        async with TopicReader(producer.client._bootstrap_servers, harness.sink) as reader:
            out = await reader.wait_for(lambda r: True, count=30)
    finally:
        await loop.stop()
    assert any(len(c) > 1 for c in calls), "the batch handler never got more than one event"
    span_ids = set()
    for record in out:
        n = int(decode(record.value).data.external_id)
        sent = from_headers(record.headers)
        assert sent is not None and sent.trace_id == traces[n] and sent.span_id != CALLER_SPAN
        span_ids.add(sent.span_id)
    assert len(span_ids) == 30


async def test_an_untraced_input_gets_a_new_trace(harness, producer):
    await producer.send_and_wait(harness.source, encode(received(1)), key=b"conv")
    loop = await harness.loop(producer)
    try:
        async with TopicReader(producer.client._bootstrap_servers, harness.sink) as reader:
            (out,) = await reader.wait_for(lambda r: True)
    finally:
        await loop.stop()
    sent = from_headers(out.headers)
    assert sent is not None and sent.sampled and sent.trace_id != CALLER_TRACE


async def test_a_dead_lettered_record_keeps_its_trace_context(harness, producer):
    bad = received(3)
    bad.data.text = "explode"
    await producer.send_and_wait(
        harness.source, encode(bad), key=b"conv", headers=traced(state="congo=t61rcWkgMzE")
    )
    await producer.send_and_wait(harness.source, b"{not json", key=b"conv", headers=traced("ab" * 16))
    spans = RecordedSpans()
    loop = await harness.loop(producer, spans=spans)
    try:
        async with TopicReader(producer.client._bootstrap_servers, dlq_topic(harness.source)) as reader:
            dead = await reader.wait_for(lambda r: True, count=2)
    finally:
        await loop.stop()
    by_reason = {dead_letter_reason(r.headers)["reason"]: r for r in dead}
    failed, undecodable = by_reason["handler_failed"], by_reason["undecodable"]
    assert dict(failed.headers)["traceparent"] == f"00-{CALLER_TRACE}-{CALLER_SPAN}-01".encode()
    assert dict(failed.headers)["tracestate"] == b"congo=t61rcWkgMzE"
    assert dict(undecodable.headers)["traceparent"] == f"00-{'ab' * 16}-{CALLER_SPAN}-01".encode()
    ((_, handled, error),) = spans.spans
    assert handled.trace_id == CALLER_TRACE and error == "dead-lettered: handler_failed"
