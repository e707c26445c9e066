"""Hand-off to the contact centre: a real HTTP endpoint, the real Redis and the real broker."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from router import handoff
from router.app import create_app
from router.config import Settings
from router.delivery import HandoffConfig, HandoffWorker
from router.metrics import RouterMetrics
from router.outbox import Enqueued, RedisOutbox
from switchboard.bus import KafkaPublisher, dead_letter_reason, make_producer
from switchboard.config import KafkaSettings, RedisSettings
from switchboard.contract import (
    Author,
    CaseActivity,
    CaseActivityRecorded,
    CaseRouted,
    Message,
    MessageClassified,
    Queue,
    decode,
    dlq_topic,
    encode,
)
from switchboard.stack import free_port, wait_until
from switchboard.testing import (
    TopicReader,
    case_routed,
    eventually,
    message_classified,
    support_classification,
)
from switchboard.topics import ensure_topics
from switchboard.tracing import extract, from_headers, new_trace

pytestmark = pytest.mark.integration
SECRET = b"s3cret"
CS, MARKETING = Queue.CUSTOMER_SERVICE, Queue.MARKETING


@dataclass
class Step:
    """How the endpoint answers one request."""

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Endpoint:
    """A contact-centre endpoint that answers as scripted, per path, and records what it got."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.completed: list[str] = []
        self.scripts: dict[str, list[Step]] = {}
        self.default: dict[str, Step] = {}
        self.overlaps: list[str] = []
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self.base = ""
        self.app = FastAPI()
        self.app.post("/{path}")(self._answer)

    def script(self, path: str, *steps: Step, then: Step | None = None) -> str:
        self.scripts[path] = list(steps)
        self.default[path] = then or Step()
        return f"{self.base}/{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _answer(self, path: str, request: Request) -> Response:
        body = await request.body()
        event_id = request.headers.get(handoff.EVENT_ID_HEADER, "")
        with self._lock:
            self.received.append(Received(path, dict(request.headers), body, time.monotonic()))
            if event_id in self._inflight:
                self.overlaps.append(event_id)
            self._inflight.add(event_id)
            steps = self.scripts.get(path, [])
            step = steps.pop(0) if steps else self.default.get(path, Step())
        try:
            await asyncio.sleep(step.delay)
        finally:
            with self._lock:
                self._inflight.discard(event_id)
        self.completed.append(path)
        return Response(status_code=step.status, headers=step.headers)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()
    port = free_port()
    config = uvicorn.Config(
        ep.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "endpoint")
    ep.base = f"http://127.0.0.1:{port}"
    yield ep
    server.should_exit = True
    thread.join(10)


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    await ensure_topics(kafka, [dlq_topic(q.topic.value) for q in Queue])
    producer = make_producer(kafka, "test-handoff")
    await producer.start()
    yield producer
    await producer.stop()


class Lanes:
    """Builds workers over the test's Redis prefix and stops them afterwards."""

    def __init__(self, redis: Redis, prefix: str, producer: AIOKafkaProducer) -> None:
        self.redis, self.prefix, self.producer = redis, prefix, producer
        self.outbox = RedisOutbox(redis, prefix, 3600)
        self.workers: list[HandoffWorker] = []
        self.dead: list[str] = []

    async def dead_letter(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        await self.producer.send_and_wait(topic, value, key=key, headers=headers)
        self.dead.append(decode(value).id)

    def start(self, urls: dict[Queue, str], **options) -> tuple[HandoffWorker, CollectorRegistry]:
        options = {"timeout": 3.0, "base": 0.05, "cap": 0.5, "poll": 0.05, "lease": 10.0, **options}
        registry = CollectorRegistry()
        config = HandoffConfig(urls=urls, secret=SECRET, **options)
        worker = HandoffWorker(
            RedisOutbox(self.redis, self.prefix, 3600), config, RouterMetrics(registry), self.dead_letter
        )
        worker.start()
        self.workers.append(worker)
        return worker, registry

    async def idle(self, queues=tuple(Queue)) -> None:
        await eventually(lambda: self._empty(queues), timeout=15)

    async def _empty(self, queues) -> bool:
        return await self.outbox.pending(queues) == 0


@pytest.fixture
async def lanes(redis: Redis, key_prefix: str, producer: AIOKafkaProducer) -> AsyncIterator[Lanes]:
    lanes = Lanes(redis, key_prefix, producer)
    yield lanes
    await asyncio.gather(*(w.stop(grace=0) for w in lanes.workers))


def routed(queue: Queue = CS) -> CaseRouted:
    case_id = uuid.uuid4().hex
    return case_routed(
        case_id,
        message_id=f"m-{case_id[:6]}",
        conversation_id="conv",
        channel="x",
        external_id="1",
        text="my parcel never came",
        author=Author(id="x:1"),
        visibility="public",
        queue=queue,
        rule="default",
        classification=support_classification(is_complaint=True, sentiment="negative", sentiment_score=-0.5),
    )


def count(registry: CollectorRegistry, queue: Queue, outcome: str) -> float:
    labels = {"queue": queue.value, "outcome": outcome}
    return registry.get_sample_value("switchboard_router_handoff_deliveries_total", labels) or 0.0


async def counted(registry: CollectorRegistry, queue: Queue, **expected: float) -> None:
    """Wait until a worker's delivery counts for a queue are `expected`, and fail with them if they never are.

    A worker counts an outcome just after Redis has recorded it, and a test that has seen the outbox
    settle (or the dead letter arrive) on another connection can look a moment before the count.
    """

    def check() -> bool:
        found = {outcome: count(registry, queue, outcome) for outcome in expected}
        assert found == expected, found
        return True

    await eventually(check, timeout=5)


async def test_a_routed_case_is_delivered_once_with_a_valid_signature(endpoint: Endpoint, lanes: Lanes):
    worker, registry = lanes.start({CS: endpoint.script("cs")})
    event = routed()
    assert await worker.enqueue(event)
    await eventually(lambda: endpoint.on("cs"))
    await lanes.idle()
    (got,) = endpoint.on("cs")
    assert got.body == encode(event)
    assert handoff.verify(got.body, SECRET, got.headers["x-switchboard-signature"])
    assert got.headers["x-switchboard-event-id"] == event.id
    assert got.headers["x-switchboard-delivery-attempt"] == "1"
    assert got.headers["content-type"] == "application/cloudevents+json"
    await counted(registry, CS, delivered=1)
    assert not await worker.enqueue(event), "a delivered event queued again must not be sent again"
    assert await lanes.outbox.pending(Queue) == 0


async def test_a_delivery_answered_503_is_retried_then_delivered(endpoint: Endpoint, lanes: Lanes):
    url = endpoint.script("cs", Step(503), Step(503))
    worker, registry = lanes.start({CS: url})
    event = routed()
    await worker.enqueue(event)
    await eventually(lambda: len(endpoint.on("cs")) == 3)
    await lanes.idle()
    attempts = [r.headers["x-switchboard-delivery-attempt"] for r in endpoint.on("cs")]
    assert attempts == ["1", "2", "3"]
    assert {r.headers["x-switchboard-event-id"] for r in endpoint.on("cs")} == {event.id}
    await counted(registry, CS, retried=2, delivered=1)
    assert lanes.dead == []


async def test_a_retry_after_longer_than_the_backoff_is_waited_for(endpoint: Endpoint, lanes: Lanes):
    url = endpoint.script("cs", Step(429, headers={"Retry-After": "1"}))
    worker, _ = lanes.start({CS: url}, base=0.01, cap=5.0)
    await worker.enqueue(routed())
    await eventually(lambda: len(endpoint.on("cs")) == 2, timeout=10)
    first, second = endpoint.on("cs")
    assert second.at - first.at >= 0.9


async def test_a_400_is_dead_lettered_at_once_with_the_bus_headers(
    endpoint: Endpoint, lanes: Lanes, kafka_bootstrap: str
):
    worker, registry = lanes.start({CS: endpoint.script("cs", then=Step(400))})
    event = routed()
    async with TopicReader(kafka_bootstrap, "cases.customer-service.dlq") as reader:
        await worker.enqueue(event)
        (record,) = await reader.wait_for(lambda r: r.key == event.partitionkey.encode())
    assert record.value == encode(event)
    reason = dead_letter_reason(record.headers)
    assert reason["reason"] == "delivery_failed"
    assert reason["error"].startswith("HTTP 400")
    assert (reason["topic"], reason["group"], reason["attempts"]) == ("cases.customer-service", "router", "1")
    assert dict(record.headers)["ce_type"] == b"switchboard.case.routed"
    await lanes.idle()
    assert len(endpoint.on("cs")) == 1
    await counted(registry, CS, rejected=1, retried=0)


async def test_a_delivery_that_keeps_failing_is_dead_lettered_after_its_last_attempt(
    endpoint: Endpoint, lanes: Lanes, kafka_bootstrap: str
):
    worker, registry = lanes.start({MARKETING: endpoint.script("mk", then=Step(503))}, max_attempts=3)
    event = routed(MARKETING)
    async with TopicReader(kafka_bootstrap, "cases.marketing.dlq") as reader:
        await worker.enqueue(event)
        (record,) = await reader.wait_for(lambda r: r.key == event.partitionkey.encode())
    reason = dead_letter_reason(record.headers)
    assert (reason["attempts"], reason["error"][:8]) == ("3", "HTTP 503")
    assert len(endpoint.on("mk")) == 3
    await counted(registry, MARKETING, retried=2, dead_lettered=1)


async def test_an_unreachable_endpoint_is_retried_then_dead_lettered(lanes: Lanes):
    worker, registry = lanes.start({CS: f"http://127.0.0.1:{free_port()}/cs"}, max_attempts=2)
    event = routed()
    await worker.enqueue(event)
    await eventually(lambda: lanes.dead == [event.id])
    await counted(registry, CS, retried=1, dead_lettered=1)


async def test_a_hanging_endpoint_for_one_queue_does_not_delay_another(endpoint: Endpoint, lanes: Lanes):
    hanging = endpoint.script("mk", then=Step(200, delay=30))
    worker, registry = lanes.start({MARKETING: hanging, CS: endpoint.script("cs")}, concurrency=2)
    for _ in range(6):
        await worker.enqueue(routed(MARKETING))
    await eventually(lambda: len(endpoint.on("mk")) == 2)
    await worker.enqueue(routed(CS))
    await eventually(lambda: count(registry, CS, "delivered") == 1, timeout=2)
    assert endpoint.completed.count("mk") == 0, "the marketing endpoint had not answered anything yet"
    assert len(endpoint.on("mk")) == 2, "a lane never holds more than its concurrency in flight"


async def test_two_workers_share_the_deliveries_and_never_send_one_twice(endpoint: Endpoint, lanes: Lanes):
    url = endpoint.script("cs", then=Step(200, delay=0.1))
    (_, first), (_, second) = lanes.start({CS: url}, concurrency=4), lanes.start({CS: url}, concurrency=4)
    events = [routed() for _ in range(40)]
    for event in events:
        await lanes.outbox.enqueue([Enqueued(CS, event.id, event.partitionkey, encode(event))], time.time())
    await lanes.idle()
    ids = [r.headers["x-switchboard-event-id"] for r in endpoint.on("cs")]
    assert sorted(ids) == sorted(e.id for e in events)
    assert endpoint.overlaps == []
    # A worker counts a delivery right after Redis has taken it out of the outbox, so the test can see an
    # empty outbox (read on another connection) a moment before the last count: wait for the counts too.
    await eventually(lambda: count(first, CS, "delivered") + count(second, CS, "delivered") >= 40)
    assert count(first, CS, "delivered") > 0 and count(second, CS, "delivered") > 0
    assert count(first, CS, "delivered") + count(second, CS, "delivered") == 40


async def test_a_delivery_left_by_a_crashed_worker_is_sent_after_its_lease(endpoint: Endpoint, lanes: Lanes):
    event = routed()
    await lanes.outbox.enqueue([Enqueued(CS, event.id, event.partitionkey, encode(event))], time.time())
    (lost,) = await lanes.outbox.claim(CS, time.time(), 10, 0.5, "crashed-worker")
    lanes.start({CS: endpoint.script("cs")})
    await eventually(lambda: endpoint.on("cs"), timeout=5)
    await lanes.idle()
    assert [r.headers["x-switchboard-delivery-attempt"] for r in endpoint.on("cs")] == ["2"]
    assert not await lanes.outbox.finish(lost), "the crashed worker's claim no longer counts"


async def test_a_case_of_a_queue_without_an_endpoint_is_not_queued(endpoint: Endpoint, lanes: Lanes):
    worker, _ = lanes.start({CS: endpoint.script("cs")})
    assert not await worker.enqueue(routed(MARKETING))
    assert await lanes.outbox.pending(Queue) == 0


def classified_praise() -> MessageClassified:
    now = datetime.now(UTC)
    conversation = f"instagram:author:{uuid.uuid4().hex[:8]}"
    message = Message(
        message_id=uuid.uuid4().hex,
        channel="instagram",
        external_id=uuid.uuid4().hex,
        conversation_id=conversation,
        author=Author(id="instagram:7"),
        text="Love the new collection, bravo to the whole team!",
        created_at=now,
        received_at=now,
        visibility="public",
    )
    classification = routed().data.classification.model_copy(
        update={"category": "marketing", "intent": "praise", "is_complaint": False, "sentiment": "positive"}
    )
    return message_classified(message, classification)


async def router_settings(
    bootstrap: str, redis_url: str, key_prefix: str, urls: dict[Queue, str]
) -> Settings:
    """Return the settings of a router app handing off to `urls`, its topics created."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    await ensure_topics(kafka)
    return Settings(
        kafka=kafka,
        redis=RedisSettings(url=redis_url, key_prefix=key_prefix),
        handoff_urls=urls,
        handoff_secret="s3cret",
        handoff_poll_seconds=0.05,
    )


async def test_the_router_hands_off_what_it_routes_and_what_a_person_reassigns(
    endpoint: Endpoint,
    producer: AIOKafkaProducer,
    redis: Redis,
    redis_url: str,
    key_prefix: str,
    kafka_bootstrap: str,
):
    settings = await router_settings(
        kafka_bootstrap, redis_url, key_prefix, {MARKETING: endpoint.script("mk"), CS: endpoint.script("cs")}
    )
    app = create_app(settings)
    publisher = KafkaPublisher(producer)
    async with app.router.lifespan_context(app):
        message = classified_praise()
        await publisher.publish([message])
        await eventually(lambda: endpoint.on("mk"), timeout=30)
        opened = decode(endpoint.on("mk")[0].body)
        assert opened.data.message_id == message.data.message.message_id
        assert opened.data.queue == MARKETING and opened.data.is_new_case

        case_id = opened.data.case_id
        activity = CaseActivity(
            activity_id=uuid.uuid4().hex,
            case_id=case_id,
            type="reassigned",
            at=datetime.now(UTC),
            to_queue=CS,
        )
        await publisher.publish(
            [CaseActivityRecorded(source="test", subject=case_id, partitionkey=case_id, data=activity)]
        )
        await eventually(lambda: endpoint.on("cs"), timeout=30)
        moved = decode(endpoint.on("cs")[0].body)
        assert (moved.data.case_id, moved.data.queue, moved.data.rule) == (case_id, CS, "reassigned")
        assert handoff.verify(
            endpoint.on("cs")[0].body, SECRET, endpoint.on("cs")[0].headers["x-switchboard-signature"]
        )

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://router"
        ) as client:
            case = (await client.get(f"/v1/cases/{case_id}")).json()
            scraped = (await client.get("/metrics")).text
    assert case["queue"] == "customer-service"
    assert (
        'switchboard_router_cases_rerouted_total{from_queue="marketing",to_queue="customer-service"} 1.0'
        in scraped
    )
    assert 'switchboard_router_handoff_deliveries_total{outcome="delivered",queue="marketing"} 1.0' in scraped


async def test_each_delivery_carries_the_trace_of_the_message_it_routes(
    endpoint: Endpoint,
    producer: AIOKafkaProducer,
    redis: Redis,
    redis_url: str,
    key_prefix: str,
    kafka_bootstrap: str,
):
    # Three messages of one conversation, published together so the router's batch handler gets them in
    # one run where it can: each hand-off request continues its own message's trace, not a neighbour's.
    settings = await router_settings(
        kafka_bootstrap, redis_url, key_prefix, {MARKETING: endpoint.script("mk")}
    )
    app = create_app(settings)
    first = classified_praise()
    messages = [first]
    for _ in range(2):
        m = classified_praise()
        data = m.data.model_copy(
            update={"message": m.data.message.model_copy(update={"conversation_id": first.partitionkey})}
        )
        messages.append(m.model_copy(update={"partitionkey": first.partitionkey, "data": data}))
    traces = [new_trace(state="cc=1") for _ in messages]
    async with app.router.lifespan_context(app):
        await KafkaPublisher(producer).publish(messages, traces)
        await eventually(lambda: len(endpoint.on("mk")) == len(messages), timeout=30)
    by_message = {decode(r.body).data.message_id: r.headers for r in endpoint.on("mk")}
    for message, trace in zip(messages, traces, strict=True):
        headers = by_message[message.data.message.message_id]
        sent = extract(headers["traceparent"], headers.get("tracestate"))
        assert sent is not None and sent.trace_id == trace.trace_id
        # The span that routed it, a child of the published message's span.
        assert sent.span_id != trace.span_id
        assert sent.state == "cc=1"


async def test_a_dead_lettered_delivery_keeps_its_trace_context(
    endpoint: Endpoint, lanes: Lanes, kafka_bootstrap: str
):
    worker, _ = lanes.start({CS: endpoint.script("cs", then=Step(400))})
    event, trace = routed(), new_trace()
    await worker.enqueue_many([event], [trace])
    async with TopicReader(kafka_bootstrap, dlq_topic(CS.topic.value)) as reader:
        (record,) = await reader.wait_for(lambda r: decode(r.value).id == event.id)
    (got,) = endpoint.on("cs")
    assert got.headers["traceparent"] == trace.traceparent
    assert from_headers(record.headers) == trace
