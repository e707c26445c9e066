"""Property-based fuzz of the event decoder and of the consumer loop's handling of what it cannot decode.

`switchboard.contract.decode` may refuse a record only with pydantic's ValidationError, whatever the bytes:
arbitrary bytes, JSON of the contract's shape with a field of the wrong type, huge strings, deep nesting.
What it accepts must encode back to the same event. The consumer loop, fed any mix of such records, must
dead-letter each one it cannot decode (reason `undecodable`), hand the others to their handler in order,
commit past all of them and never raise nor log an error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from switchboard.bus import ConsumerLoop, dead_letter_reason
from switchboard.config import KafkaSettings
from switchboard.contract import (
    MAX_SAFE_INTEGER,
    Author,
    CaseActivity,
    CaseActivityRecorded,
    CaseRouted,
    Classification,
    ClassifiedMessage,
    CloudEvent,
    Message,
    MessageClassified,
    MessageReceived,
    RoutedCase,
    SlaBreached,
    SlaTimer,
    decode,
    dlq_topic,
    encode,
)
from switchboard.dedupe import MemoryDeduper
from switchboard.metrics import BusMetrics
from switchboard.testing import captured_logs, errors_in

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
AT = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)
TOPIC = "messages.received"


def message(text: str = "toujours pas reçu ma commande", **changes: Any) -> Message:
    fields: dict[str, Any] = {
        "message_id": "m-1",
        "channel": "x",
        "external_id": "1790000000000000001",
        "conversation_id": "x:author:42",
        "author": Author(id="42", handle="@marie_l", name="Marie L.", followers=1873),
        "text": text,
        "created_at": AT,
        "received_at": AT,
        "visibility": "public",
        "metadata": {"page": "/aide", "tags": ["a", "b"]},
    }
    return Message(**{**fields, **changes})


CLASSIFICATION = Classification(
    category="support",
    intent="delivery",
    is_complaint=True,
    language="fr",
    sentiment="negative",
    sentiment_score=-0.6,
    priority="P2",
    reply_privately=False,
    confidence=0.9,
    model_version="test",
    explanation=["commande"],
)
TIMER = SlaTimer(
    case_id="case-1",
    clock="first_response",
    policy="x-support",
    queue="customer-service",
    channel="x",
    priority="P2",
    started_at=AT,
    due_at=AT + timedelta(minutes=30),
    target_seconds=1800.0,
    elapsed_seconds=1800.0,
    level=1,
)
SAMPLES: list[CloudEvent] = [
    MessageReceived(id="e-1", source="t", subject="m-1", partitionkey="c", data=message()),
    MessageClassified(
        id="e-2",
        source="t",
        subject="m-1",
        partitionkey="c",
        data=ClassifiedMessage(message=message(), classification=CLASSIFICATION),
    ),
    CaseRouted(
        id="e-3",
        source="t",
        subject="case-1",
        partitionkey="case-1",
        data=RoutedCase(
            case_id="case-1",
            message_id="m-1",
            conversation_id="c",
            channel="x",
            external_id="1",
            text="t",
            author=Author(id="42"),
            visibility="public",
            queue="customer-service",
            priority="P2",
            rule="delivery",
            is_new_case=True,
            message_created_at=AT,
            classification=CLASSIFICATION,
        ),
    ),
    CaseActivityRecorded(
        id="e-4",
        source="t",
        subject="case-1",
        partitionkey="case-1",
        data=CaseActivity(activity_id="a-1", case_id="case-1", type="reassigned", at=AT, to_queue="review"),
    ),
    SlaBreached(id="e-5", source="t", subject="case-1", partitionkey="case-1", data=TIMER),
]

# Any JSON value, including what JSON allows and the contract does not expect: huge integers, lone
# surrogates (as escapes), floats at the edges.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
    | st.sampled_from(["\ud800", "x\udfff", "\x00", "<script>alert(1)</script>"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside nested objects and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event's JSON with one place replaced by any JSON value, removed, or given an extra key."""
    document = json.loads(encode(draw(st.sampled_from(SAMPLES))))
    path = draw(st.sampled_from([p for p in paths(document) if p]))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "remove", "extra"]))
    if action == "replace":
        parent[path[-1]] = draw(json_values)
    elif action == "remove" and isinstance(parent, dict):
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return json.dumps(document).encode()


def nested(depth: int, opening: str = "[", closing: str = "]", middle: str = "") -> bytes:
    return (opening * depth + middle + closing * depth).encode()


def deep_metadata(depth: int) -> bytes:
    document = json.loads(encode(SAMPLES[0]))
    document["data"]["metadata"] = {"a": "@"}
    return json.dumps(document).encode().replace(b'"@"', nested(depth))


def decoded_or_refused(raw: bytes | None) -> CloudEvent | None:
    """Decode a record value; None when the decoder refused it as it may (ValidationError only)."""
    try:
        event = decode(raw)  # type: ignore[arg-type]
    except ValidationError:
        return None
    assert decode(encode(event)) == event
    return event


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_refused_with_a_validation_error_and_nothing_else(raw: bytes):
    decoded_or_refused(raw)


@FUZZ
@given(mutated_events())
def test_an_event_with_a_field_of_the_wrong_type_decodes_whole_or_is_refused(raw: bytes):
    decoded_or_refused(raw)


@FUZZ
@given(
    text=st.text(st.characters(exclude_categories=["Cs"]), min_size=1),
    name=st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=512),
    followers=st.none() | st.integers(min_value=0, max_value=MAX_SAFE_INTEGER),
    created_at=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        # Offsets in whole minutes: the JSON form of a datetime has no seconds of offset.
        timezones=st.builds(
            lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60)
        ),
    ),
    metadata=st.dictionaries(st.text(max_size=8), st.text(max_size=20) | st.integers() | st.booleans()),
)
def test_any_valid_message_event_survives_the_wire_unchanged(text, name, followers, created_at, metadata):
    author = Author(id="42", name=name, followers=followers)
    data = message(text, author=author, created_at=created_at, metadata=metadata)
    event = MessageReceived(id="e", source="t", subject="m-1", partitionkey="c", data=data)
    assert decode(encode(event)) == event


@pytest.mark.parametrize("size", [1_000_000, 10_000_000])
def test_a_huge_text_decodes_and_a_huge_string_where_an_enum_goes_is_refused(size: int):
    event = MessageReceived(id="e", source="t", subject="m", partitionkey="c", data=message("é" * size))
    assert decode(encode(event)).data.text == "é" * size
    document = json.loads(encode(event))
    document["data"]["channel"] = "x" * size
    assert decoded_or_refused(json.dumps(document).encode()) is None


@pytest.mark.parametrize("depth", [150, 250, 1_000, 100_000])
def test_deep_nesting_is_refused_fast_without_a_recursion_error(depth: int):
    started = time.perf_counter()
    assert decoded_or_refused(nested(depth)) is None
    assert decoded_or_refused(nested(depth, '{"a":', "}", "1")) is None
    if depth >= 250:
        assert decoded_or_refused(deep_metadata(depth)) is None
    else:
        assert decoded_or_refused(deep_metadata(depth)) is not None
    # A bound on pathological work, not a benchmark.
    assert time.perf_counter() - started < 5


# --- The consumer loop ---------------------------------------------------------------------------------


class FakeConsumer:
    """Hands out one batch, then nothing; remembers commits."""

    def __init__(self, records: list[ConsumerRecord]) -> None:
        self.tp = TopicPartition(TOPIC, 0)
        self.batches = [{self.tp: records}]
        self.committed: dict[TopicPartition, int] = {}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        return self.batches.pop(0) if self.batches else {}

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        raise AssertionError(f"the batch was rewound to {offset}: it failed")


class FakeProducer:
    """Takes dead letters; each is acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        # The loop's publisher reads the cluster's partitions only when a handler returns events.
        self.client = SimpleNamespace(cluster=None)

    async def send(
        self, topic: str, value: bytes | None, key: bytes | None = None, headers: Any = None
    ) -> asyncio.Future[None]:
        assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in headers)
        self.sent.append((topic, value, key, list(headers)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def record(offset: int, value: bytes | None, headers: Sequence[tuple[str, bytes]] = ()) -> ConsumerRecord:
    size = len(value) if value is not None else -1
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, b"key", value, None, 3, size, list(headers))


def valid(n: int, text: str) -> bytes:
    event = MessageReceived(id=f"ok-{n}", source="t", subject="m", partitionkey="c", data=message(text))
    return encode(event)


hostile_values = st.one_of(
    st.none(),
    st.binary(max_size=512),
    mutated_events(),
    st.sampled_from([nested(100_000), deep_metadata(300), b"", b"null", b"{}", b"\xff\xfe", b'"\\ud800"']),
    st.builds(valid, st.integers(0, 10**6), st.text(min_size=1, max_size=40)),
)
headers = st.lists(
    st.tuples(
        st.sampled_from(["ce_type", "traceparent", "switchboard.dlq.reason"]) | st.text(max_size=10),
        st.binary(max_size=20),
    ),
    max_size=3,
)


async def consume(
    records: list[ConsumerRecord], fail_on: str, error: Exception | None = None
) -> tuple[FakeConsumer, FakeProducer, list[str]]:
    handled: list[str] = []

    async def handler(event: MessageReceived) -> list[CloudEvent]:
        handled.append(event.id)
        if event.data.text == fail_on:
            raise error or ValueError("this message always fails")
        return []

    consumer, producer = FakeConsumer(records), FakeProducer()
    loop = ConsumerLoop(
        group_id="fuzz",
        handlers={TOPIC: {"switchboard.message.received": handler}},
        kafka=KafkaSettings(handler_attempts=1),
        producer=producer,  # type: ignore[arg-type]
        deduper=MemoryDeduper(),
        metrics=BusMetrics("fuzz", CollectorRegistry()),
    )
    # The loop's consumer is built by start(), against a broker; the fake stands in for it.
    loop._consumer = consumer  # type: ignore[assignment]
    assert await loop.step() == len(records)
    await loop.settle()
    return consumer, producer, handled


@FUZZ
@given(st.lists(st.tuples(hostile_values, headers), min_size=1, max_size=12), st.text(max_size=3))
def test_whatever_a_batch_holds_each_undecodable_record_is_dead_lettered_and_the_rest_handled(
    batch: list[tuple[bytes | None, list[tuple[str, bytes]]]], fail_on: str
):
    records = [record(offset, value, extra) for offset, (value, extra) in enumerate(batch, start=100)]
    with captured_logs() as logs:
        consumer, producer, handled = asyncio.run(consume(records, fail_on))
    decoded = [(r, decoded_or_refused(r.value)) for r in records]
    undecodable = [r for r, event in decoded if event is None]
    # The first event of each id is handled when it is a received message; later copies are duplicates.
    firsts: dict[str, CloudEvent] = {}
    for _, event in decoded:
        if event is not None:
            firsts.setdefault(event.id, event)
    received = [e for e in firsts.values() if isinstance(e, MessageReceived)]
    assert handled == [e.id for e in received]
    dead = {
        (value, dead_letter_reason(h)["offset"]): dead_letter_reason(h) for _, value, _, h in producer.sent
    }
    assert all(topic == dlq_topic(TOPIC) for topic, *_ in producer.sent)
    for r in undecodable:
        reason = dead[(r.value, str(r.offset))]
        assert reason["reason"] == "undecodable" and reason["error"].startswith("ValidationError")
    failing = [e for e in received if e.data.text == fail_on]
    assert len(producer.sent) == len(undecodable) + len(failing)
    assert consumer.committed == {consumer.tp: records[-1].offset + 1}
    assert errors_in(logs) == []


@pytest.mark.parametrize(
    "error",
    [
        RecursionError("maximum recursion depth exceeded"),
        OverflowError("date value out of range"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        KeyError("queue"),
        ValidationError.from_exception_data("Message", []),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_handler_that_fails_on_hostile_data_dead_letters_that_record_and_handles_the_next(error):
    records = [record(1, valid(1, "boom")), record(2, valid(2, "fine"))]
    with captured_logs() as logs:
        consumer, producer, handled = await consume(records, "boom", error)
    assert handled == ["ok-1", "ok-2"]
    ((topic, value, _, headers),) = producer.sent
    assert (topic, value, dead_letter_reason(headers)["reason"]) == (
        dlq_topic(TOPIC),
        records[0].value,
        "handler_failed",
    )
    assert consumer.committed == {consumer.tp: 3}
    assert errors_in(logs) == []
