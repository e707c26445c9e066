"""Helpers for tests of services built on Switchboard: wait with a deadline, read a topic, watch the logs,
stand in for the broker, and build the events a service consumes with only the fields a test cares about."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from switchboard.contract import (
    Author,
    CaseRouted,
    Classification,
    ClassifiedMessage,
    CloudEvent,
    Message,
    MessageClassified,
    Queue,
    RoutedCase,
)


async def eventually(
    check: Callable[[], Any | Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Return the first truthy result of `check`, or fail with its last error after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                result = await result
            if result:
                return result
            last = None
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s") from last
        await asyncio.sleep(interval)


class TopicReader:
    """Read everything published to some topics since the reader started, without a consumer group."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        self.records: list[ConsumerRecord] = []

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self) -> list[ConsumerRecord]:
        """Fetch what arrived since the last poll and return all records read so far."""
        batches = await self._consumer.getmany(timeout_ms=100)
        for records in batches.values():
            self.records.extend(records)
        return self.records

    async def wait_for(
        self, predicate: Callable[[ConsumerRecord], bool], count: int = 1, timeout: float = 20.0
    ):
        """Wait until `count` records match `predicate`; return them."""

        async def enough() -> list[ConsumerRecord] | None:
            matching = [r for r in await self.poll() if predicate(r)]
            return matching if len(matching) >= count else None

        return await eventually(enough, timeout=timeout)


@contextmanager
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Collect every log record emitted inside the block, whatever its logger or thread."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, root = Keep(logging.DEBUG), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def errors_in(records: list[logging.LogRecord]) -> list[str]:
    """Describe the records that say something went wrong: an error, or any record with a traceback."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in records
        if r.levelno >= logging.ERROR or r.exc_info is not None
    ]


class FakePublisher:
    """Record what was published; can be told to fail like a broker that is down."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.down = False

    async def publish(self, events: Sequence[CloudEvent], traces: Sequence[object] | None = None) -> None:
        """Keep `events`, or raise ConnectionError while `down` is set."""
        if self.down:
            raise ConnectionError("broker unreachable")
        self.events.extend(events)


def support_classification(**overrides: Any) -> Classification:
    """Return a confident, neutral English support classification (a delivery); `overrides` replace fields."""
    fields: dict[str, Any] = {
        "category": "support",
        "intent": "delivery",
        "is_complaint": False,
        "language": "en",
        "sentiment": "neutral",
        "sentiment_score": 0.0,
        "priority": "P3",
        "reply_privately": False,
        "confidence": 0.9,
        "model_version": "test",
    }
    return Classification(**{**fields, **overrides})


def message_classified(message: Message, classification: Classification | None = None) -> MessageClassified:
    """Return `message` classified (by default as `support_classification()`), keyed by its conversation."""
    if classification is None:
        classification = support_classification()
    return MessageClassified(
        source="test",
        subject=message.message_id,
        partitionkey=message.conversation_id,
        data=ClassifiedMessage(message=message, classification=classification),
    )


def said(
    message_id: str,
    text: str,
    category: str,
    intent: str,
    *,
    at: datetime,
    channel: str = "x",
    conversation: str = "conv-1",
    confidence: float = 0.9,
) -> MessageClassified:
    """Return a public message of one customer in `conversation`, classified as given: a support one as a
    negative complaint, a marketing one as positive."""
    message = Message(
        message_id=message_id,
        channel=channel,
        external_id=message_id,
        conversation_id=conversation,
        author=Author(id=f"{channel}:7", handle="@lea"),
        text=text,
        created_at=at,
        received_at=at,
        visibility="public",
    )
    support = category == "support"
    classification = support_classification(
        category=category,
        intent=intent,
        is_complaint=support,
        sentiment="negative" if support else "positive",
        sentiment_score=-0.6 if support else 0.6,
        confidence=confidence,
    )
    return message_classified(message, classification)


def case_routed(case_id: str, message: Message | None = None, **overrides: Any) -> CaseRouted:
    """Return the routing of a new customer-service case, keyed by the case, as the router publishes it.

    The case carries the fields of `message` when one is given (else a private email of its own), a
    `support_classification()`, priority P3 and rule "r"; `overrides` replace fields of the routed case.
    """
    fields: dict[str, Any] = {
        "case_id": case_id,
        "message_id": f"{case_id}-m",
        "conversation_id": case_id,
        "channel": "email",
        "external_id": case_id,
        "text": "t",
        "author": Author(id="a"),
        "visibility": "private",
        "message_created_at": datetime.now(UTC),
    }
    if message is not None:
        fields.update(
            message_id=message.message_id,
            conversation_id=message.conversation_id,
            channel=message.channel,
            external_id=message.external_id,
            text=message.text,
            author=message.author,
            visibility=message.visibility,
            message_created_at=message.created_at,
        )
    fields.update(
        queue=Queue.CUSTOMER_SERVICE,
        priority="P3",
        rule="r",
        is_new_case=True,
        classification=support_classification(),
    )
    data = RoutedCase(**{**fields, **overrides})
    return CaseRouted(source="test", subject=case_id, partitionkey=case_id, data=data)


@contextmanager
def keys_removed(redis_url: str, prefix: str) -> Iterator[str]:
    """Yield `prefix`; afterwards delete every key under it from the Redis at `redis_url`.

    For a stack run against the shared Redis: its keys go when the test is done, not left to pile up.
    """
    from redis import Redis

    try:
        yield prefix
    finally:
        client = Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.unlink(*keys[start : start + 1000])
        finally:
            client.close()


@asynccontextmanager
async def running(coroutine: Coroutine[Any, Any, Any]) -> AsyncIterator[asyncio.Task]:
    """Run `coroutine` as a task for the block (a watcher, a loop); cancel it and wait for it after."""
    task = asyncio.create_task(coroutine)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
