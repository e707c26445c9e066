"""A poison record on every topic a service consumes: it is dead-lettered and the partition moves on.

Records are produced straight to the topics with aiokafka, as a faulty or hostile producer would: bytes
that are not JSON, and JSON that is not a valid event, each followed on the same partition (same key)
by a valid event that the consuming service must then handle.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from switchboard.bus import dead_letter_reason, record_key
from switchboard.contract import (
    Author,
    CaseActivity,
    CaseActivityRecorded,
    CaseRouted,
    Classification,
    CloudEvent,
    Message,
    MessageReceived,
    Queue,
    Topic,
    decode,
    derive_id,
    dlq_topic,
    encode,
)
from switchboard.testing import (
    TopicReader,
    case_routed,
    eventually,
    message_classified,
    support_classification,
)

pytestmark = pytest.mark.e2e

QUEUE_TOPICS = tuple(q.topic.value for q in Queue)
# The consumer groups that read each topic: each dead-letters a poison record on its own.
GROUPS = {
    Topic.MESSAGES_RECEIVED.value: ("classifier",),
    Topic.MESSAGES_CLASSIFIED.value: ("router",),
    # The classifier reads the routings of customer service and marketing for agents' corrections.
    Topic.CASES_CUSTOMER_SERVICE.value: ("sla", "classifier"),
    Topic.CASES_MARKETING.value: ("sla", "classifier"),
    Topic.CASES_REVIEW.value: ("sla",),
    Topic.CASES_ACTIVITY.value: ("router", "sla"),
}


@dataclass(frozen=True)
class Poison:
    """A poison record as produced: where it landed and what it held."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


def poison_values(event: CloudEvent) -> list[bytes]:
    """Return the two poison values put before a valid event: not JSON, and JSON that is no valid event."""
    not_json = b"\xff\xfe\x00{not json " + event.id.encode()
    # The right type for the topic and an envelope that looks right, but data that is not what the type needs.
    invalid = {
        "specversion": "1.0",
        "id": f"poison-{event.id}",
        "source": "test/poison",
        "type": event.type,
        "subject": event.subject,
        "partitionkey": event.partitionkey,
        "data": {"text": 42},
    }
    return [not_json, json.dumps(invalid).encode()]


def valid_event(record: ConsumerRecord) -> CloudEvent | None:
    """Return the event a record holds, or None for a poison record (the input topics are read too)."""
    try:
        return decode(record.value)
    except ValueError:
        return None


def event_with(topic: str, **attributes: str) -> Callable[[ConsumerRecord], bool]:
    """Match the valid events of a topic whose envelope or data has these values."""

    def match(record: ConsumerRecord) -> bool:
        event = valid_event(record) if record.topic == topic else None
        return event is not None and all(
            getattr(event, k, None) == v or getattr(event.data, k, None) == v for k, v in attributes.items()
        )

    return match


def classification() -> Classification:
    """Return a confident support classification."""
    return support_classification(confidence=0.95)


def message(run: str, name: str) -> Message:
    """Return a chat message of its own conversation."""
    now = datetime.now(UTC)
    return Message(
        message_id=f"{run}-{name}",
        channel="chat",
        external_id=f"{run}-{name}",
        conversation_id=f"chat:{run}-{name}",
        author=Author(id=f"{run}-{name}"),
        text="where is my parcel? it should have arrived on monday",
        created_at=now,
        received_at=now,
        visibility="private",
    )


def routed_case(run: str, queue: Queue) -> CaseRouted:
    """Return the routing of a new case to `queue`, as the router publishes it."""
    m = message(run, f"case-{queue.value}")
    return case_routed(
        f"{run}-case-{queue.value}", m, queue=queue, rule="test", classification=classification()
    )


async def produce_with_poison(producer: AIOKafkaProducer, event: CloudEvent) -> list[Poison]:
    """Produce two poison records then `event`, all with its key (so on one partition, in this order)."""
    key = record_key(event)
    poisons = []
    for value in poison_values(event):
        sent = await producer.send_and_wait(event.topic(), value, key=key)
        poisons.append(Poison(event.topic(), sent.partition, sent.offset, key, value))
    await producer.send_and_wait(
        event.topic(), encode(event), key=key, headers=[("ce_type", event.type.encode())]
    )
    return poisons


async def test_a_poison_record_on_every_consumed_topic_is_dead_lettered_and_the_records_behind_it_handled(
    failure_stack,
):
    """Put an undecodable record and a valid-JSON-but-invalid event before a valid event on
    messages.received, messages.classified, the three queue topics and cases.activity: it proves

    - each poison record is in `<topic>.dlq` once per consumer group that reads the topic, unchanged
      (same key and value), with the reason (`undecodable`), the error, and its topic, partition, offset
      and group in the headers;
    - the valid event behind it on the same partition is handled: the classifier classifies the message,
      the router opens and routes the case, the SLA service starts the clocks of each queue's case, and
      both the router (the case's status) and the SLA service (the clock stopped) apply the activity.
    """
    stack = await failure_stack()
    bootstrap = stack.config.bootstrap
    run = uuid.uuid4().hex[:8]
    received = message(run, "received")
    received_event = MessageReceived(
        id=derive_id(received.message_id, "received"),
        source="test",
        subject=received.message_id,
        partitionkey=received.conversation_id,
        data=received,
    )
    classified = message(run, "classified")
    classified_event = message_classified(classified, classification())
    routed_events = {queue: routed_case(run, queue) for queue in Queue}
    case_of_classified = derive_id(classified.message_id, "case")

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    outputs = (
        Topic.MESSAGES_CLASSIFIED.value,
        *QUEUE_TOPICS,
        Topic.SLA_EVENTS.value,
        *(dlq_topic(topic) for topic in GROUPS),
    )
    try:
        async with TopicReader(bootstrap, *outputs) as reader:
            poisons = []
            for event in (received_event, classified_event, *routed_events.values()):
                poisons += await produce_with_poison(producer, event)

            await reader.wait_for(
                event_with(Topic.MESSAGES_CLASSIFIED.value, id=derive_id(received_event.id, "classified")),
                timeout=30,
            )
            routing_id = derive_id(classified_event.id, "routed")
            await reader.wait_for(
                lambda r: any(event_with(topic, id=routing_id)(r) for topic in QUEUE_TOPICS), timeout=30
            )
            for case in (case_of_classified, *(e.data.case_id for e in routed_events.values())):
                await reader.wait_for(
                    event_with(Topic.SLA_EVENTS.value, type="switchboard.sla.started", case_id=case),
                    count=2,
                    timeout=30,
                )

            # The router and the SLA service both know the case now: an agent answers it.
            at = datetime.now(UTC)
            activity = CaseActivityRecorded(
                id=f"{run}-answered",
                source="test",
                subject=case_of_classified,
                partitionkey=case_of_classified,
                data=CaseActivity(
                    activity_id=f"{run}-answered",
                    case_id=case_of_classified,
                    type="responded",
                    at=at,
                    agent="a",
                ),
            )
            poisons += await produce_with_poison(producer, activity)
            stopped = await reader.wait_for(
                event_with(
                    Topic.SLA_EVENTS.value, type="switchboard.sla.stopped", case_id=case_of_classified
                ),
                timeout=30,
            )
            assert decode(stopped[0].value).data.reason == "responded"

            async def router_applied() -> bool:
                async with httpx.AsyncClient(timeout=5) as client:
                    case = (await client.get(f"{stack.url('router')}/v1/cases/{case_of_classified}")).json()
                return case.get("responded_at") == at.isoformat()

            await eventually(router_applied, timeout=30)

            expected = [(p, group) for p in poisons for group in GROUPS[p.topic]]
            dead = await reader.wait_for(lambda r: r.topic.endswith(".dlq"), count=len(expected), timeout=30)
    finally:
        await producer.stop()

    lettered = {}
    for record in dead:
        reason = dead_letter_reason(record.headers)
        lettered.setdefault(
            (reason["topic"], int(reason["partition"]), int(reason["offset"]), reason["group"]), []
        ).append((record, reason))
    for poison, group in expected:
        copies = lettered.get((poison.topic, poison.partition, poison.offset, group), [])
        assert len(copies) == 1, f"{poison} dead-lettered {len(copies)} times by {group}"
        ((record, reason),) = copies
        assert record.topic == dlq_topic(poison.topic)
        assert (record.key, record.value) == (poison.key, poison.value)
        assert reason["reason"] == "undecodable", reason
        assert reason["error"].startswith("ValidationError"), reason
    assert len(dead) == len(expected), "records dead-lettered that were not poison"
    print(
        f"\n{len(poisons)} poison records on {len(GROUPS)} topics, {len(dead)} dead-lettered (one per group)"
    )
