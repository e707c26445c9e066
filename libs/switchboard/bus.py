"""The Kafka plumbing: a publisher that waits for the broker's acks and a batched consumer loop.

The loop reads a batch (`getmany`), hands each event to its handler, sends what the handlers return
without awaiting each record, waits for every ack, records the handled ids, then commits. With
`overlap_commits` (an opt-in), the next poll is read and handled while one poll's acks and commit are
awaited; commits stay in poll order, and a poll whose acks or commit fail is read again with every poll
after it.
Delivery is at least once; the handled-id record in Redis makes redelivery after a crash harmless, and
output ids derived from their cause let downstream consumers drop the rare duplicate publish.

Each record carries W3C trace context in its headers (`traceparent`, `tracestate`): the events a handler
returns for an event carry a child of that event's context, so one message can be followed from ingest
to its SLA events. Handlers never see it; see `switchboard.tracing`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2 as _pure_murmur2
from pydantic import ValidationError
from redis.exceptions import BusyLoadingError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:
    from murmurhash2 import murmurhash2 as _murmurhash2
except ImportError:  # pragma: no cover - a platform without its wheel falls back to aiokafka's
    _murmurhash2 = None

from switchboard.config import KafkaSettings
from switchboard.contract import CloudEvent, decode, dlq_topic, encode
from switchboard.dedupe import Deduper
from switchboard.handling import BatchHandler, DeadLetter, Handler, HandlerTable
from switchboard.metrics import BusMetrics
from switchboard.tracing import (
    Spans,
    TraceContext,
    activate,
    activate_run,
    deactivate,
    deactivate_run,
    from_headers,
    handling,
)

log = logging.getLogger(__name__)

# Failures of the infrastructure, not of the record: the batch is retried, never dead-lettered.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError,
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    BusyLoadingError,
    ConnectionError,
    TimeoutError,
)

DLQ_HEADER_PREFIX = "switchboard.dlq."


Traces = Sequence[TraceContext | None]
Polled = Mapping[TopicPartition, list[ConsumerRecord]]


class Publisher(Protocol):
    """Publishes events and returns once the broker has acknowledged every one."""

    async def publish(self, events: Sequence[CloudEvent], traces: Traces | None = None) -> None:
        """Publish `events` (each with its trace context, when given) and wait for their acknowledgement."""
        ...


def make_producer(kafka: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    """Build a producer that waits for all in-sync replicas (acks=all)."""
    return AIOKafkaProducer(
        **kafka.client_options(),
        client_id=client_id,
        acks="all",
        enable_idempotence=kafka.enable_idempotence,
        linger_ms=kafka.linger_ms,
        max_batch_size=kafka.batch_bytes,
        compression_type=kafka.compression_type,
    )


def record_key(event: CloudEvent) -> bytes:
    """Return the Kafka key of an event: its partition key."""
    return event.partitionkey.encode()


def record_headers(event: CloudEvent, trace: TraceContext | None = None) -> list[tuple[str, bytes]]:
    """Return the Kafka headers of an event: its type, and its trace context when it has one."""
    if trace is None:
        return [("ce_type", event.type.encode())]
    return [("ce_type", event.type.encode()), *trace.headers]


def log_ids(event: CloudEvent) -> dict[str, str]:
    """Return the ids a log line about an event carries (`extra=`): never anything a customer wrote."""
    what = "message_id" if event.type.startswith("switchboard.message.") else "case_id"
    return {"event_id": event.id, what: event.subject}


# Kafka's murmur2 is MurmurHash2 (32-bit) seeded with 0x9747b28c.
_KAFKA_SEED = 0x9747B28C


def murmur2(key: bytes) -> int:
    """Return Kafka's murmur2 hash of a key: the same number as aiokafka's (and Java's), computed in C."""
    return _murmurhash2(key, _KAFKA_SEED) if _murmurhash2 is not None else _pure_murmur2(key)


@lru_cache(maxsize=1 << 16)
def partition_of(key: bytes, partitions: tuple[int, ...]) -> int:
    """Return the partition of a key, as aiokafka's (and Java's) default partitioner chooses it.

    `partitions` is the topic's partition ids, sorted. Keys (conversations, cases) repeat, so the choice
    is cached as well.
    """
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


class KafkaPublisher:
    """Sends events with their partition key; `publish` returns after the broker's acks."""

    def __init__(self, producer: AIOKafkaProducer, on_produced: Callable[[str, int], None] | None = None):
        self._producer = producer
        self._on_produced = on_produced

    async def send(self, event: CloudEvent, trace: TraceContext | None = None) -> asyncio.Future[Any]:
        """Queue one event and return the future of its acknowledgement."""
        return await self._producer.send(
            event.topic(), encode(event), key=record_key(event), headers=record_headers(event, trace)
        )

    async def send_many(
        self, events: Sequence[CloudEvent], traces: Traces | None = None
    ) -> list[asyncio.Future[Any]]:
        """Queue events in one record batch per partition; return the futures of their acknowledgement.

        `traces`, when given, holds each event's trace context, in order; its headers go with the record.

        One `send()` per record costs about as much Python as everything else the bus does per record;
        filling a batch per partition and handing each over once costs about half. The partition is
        the one `send()` would choose for the key, so both paths keep a key's events in order.
        """
        open_batches: dict[tuple[str, int], Any] = {}
        futures: list[asyncio.Future[Any]] = []
        cluster = self._producer.client.cluster
        if traces is None:
            traces = [None] * len(events)
        for event, trace in zip(events, traces, strict=True):
            topic = event.topic()
            partitions = cluster.partitions_for_topic(topic)
            if not partitions:
                partitions = await self._producer.partitions_for(topic)
            key = record_key(event)
            partition = partition_of(key, tuple(sorted(partitions)))
            value = encode(event)
            headers = record_headers(event, trace)
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[(topic, partition)] = self._producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                # Full: hand it over and start the next one, which takes any first record whatever its size.
                futures.append(await self._submit(batch, topic, partition))
                batch = open_batches[(topic, partition)] = self._producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        for (topic, partition), batch in open_batches.items():
            futures.append(await self._submit(batch, topic, partition))
        return futures

    async def _submit(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        batch.close()
        return await self._producer.send_batch(batch, topic, partition=partition)

    async def publish(self, events: Sequence[CloudEvent], traces: Traces | None = None) -> None:
        """Publish `events` (with their trace contexts) and wait until the broker acknowledged all of them."""
        futures = await self.send_many(events, traces)
        if futures:
            await asyncio.gather(*futures)
        if self._on_produced is not None:
            for topic, count in Tally(e.topic() for e in events).items():
                self._on_produced(topic, count)


def describe_error(error: BaseException) -> str:
    """Describe an exception for a log line: its type and message, but no input a validation error quotes.

    pydantic's message repeats the offending value, which may be what a customer wrote.
    """
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        return f"ValidationError: {problems}"
    return f"{type(error).__name__}: {error}"


def dead_letter_headers(
    record: ConsumerRecord, reason: str, error: BaseException | None, group_id: str
) -> list[tuple[str, bytes]]:
    """Describe why and from where a record was dead-lettered, in record headers."""
    detail = f"{type(error).__name__}: {error}" if error is not None else reason
    headers = {
        "reason": reason,
        "error": detail[:2000],
        "topic": record.topic,
        "partition": str(record.partition),
        "offset": str(record.offset),
        "group": group_id,
        "at": datetime.now(UTC).isoformat(),
    }
    original = [(k, v) for k, v in (record.headers or ()) if not k.startswith(DLQ_HEADER_PREFIX)]
    return original + [(DLQ_HEADER_PREFIX + k, v.encode()) for k, v in headers.items()]


class ConsumerLoop:
    """Consumes the topics of a handler table in batches, at least once, with a dead-letter topic."""

    def __init__(
        self,
        *,
        group_id: str,
        handlers: HandlerTable,
        kafka: KafkaSettings,
        producer: AIOKafkaProducer,
        deduper: Deduper,
        metrics: BusMetrics,
        client_id: str | None = None,
        spans: Spans | None = None,
    ) -> None:
        self._group_id = group_id
        self._spans = spans
        self._handlers = handlers
        self._kafka = kafka
        self._producer = producer
        self._publisher = KafkaPublisher(producer)
        self._deduper = deduper
        self._metrics = metrics
        self._client_id = client_id or group_id
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        # The poll whose outputs are being acknowledged and whose offsets are being committed.
        self._finishing: tuple[Polled, asyncio.Task[None]] | None = None
        self._stopping = asyncio.Event()
        self.last_error: str | None = None
        self.last_poll_monotonic: float | None = None

    @property
    def healthy(self) -> bool:
        """Tell whether the last poll succeeded and no batch is failing."""
        return self.last_error is None and self.last_poll_monotonic is not None

    async def start(self) -> None:
        """Join the consumer group and start consuming in the background."""
        self._consumer = AIOKafkaConsumer(
            **self._kafka.client_options(),
            group_id=self._group_id,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        self._consumer.subscribe(
            list(self._handlers),
            listener=_OnRebalance(self._metrics, self.settle, self._kafka.request_timeout_ms / 1000),
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"consumer-loop-{self._group_id}")

    async def stop(self) -> None:
        """Finish and commit the batch in hand, then leave the group."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=15)
            except TimeoutError:
                self._task.cancel()
        try:
            await asyncio.wait_for(self.settle(), timeout=15)
        except Exception as exc:
            # Not committed: the next owner of its partitions reads the poll again.
            log.warning("the last batch was not committed before stopping: %s", describe_error(exc))
            self._abandon()
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                await self.step()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A failed batch is never committed; it is read again after a pause.
                kind = "transient" if isinstance(exc, TRANSIENT_ERRORS) else "unexpected"
                self._metrics.errors.labels(kind).inc()
                self.last_error = describe_error(exc)
                log.warning(
                    "batch failed, retrying in %.1fs: %s",
                    backoff,
                    self.last_error,
                    exc_info=not isinstance(exc, ValidationError),
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def step(self) -> int:
        """Consume, handle and publish one batch, and commit it; return how many records it held.

        With `overlap_commits` the commit is still in flight when this returns: it finishes while the next
        batch is handled, and the next step waits for it before starting its own (`settle`).
        """
        assert self._consumer is not None, "start() first"
        batches = await self._consumer.getmany(
            timeout_ms=self._kafka.poll_timeout_ms, max_records=self._kafka.max_batch_records
        )
        self.last_poll_monotonic = time.monotonic()
        if not batches:
            await self.settle()
            self.last_error = None
            return 0
        started = time.perf_counter()
        earlier = self._finishing
        try:
            count, pending, offsets, handled, outputs = await self._handle_batch(batches)
        except BaseException:
            self._rewind(batches, *self._failed_earlier(earlier))
            raise
        try:
            # Commits go in poll order: this poll's waits for the one before, and is not made when that
            # one failed, even if a rebalance settled it meanwhile.
            await self.settle()
            if earlier is not None:
                earlier[1].result()
        except BaseException as exc:
            if isinstance(exc, Exception):
                # This poll's outputs are out: once acknowledged, its events are recorded as handled (not
                # committed), so reading it again skips them instead of publishing them a second time.
                try:
                    await self._finish(count, pending, offsets, handled, outputs, started, commit=False)
                except Exception as failure:
                    # Then reading the poll again publishes its outputs again, under the same ids.
                    log.warning("could not record a rewound poll as handled: %s", describe_error(failure))
            self._rewind(batches, *self._failed_earlier(earlier))
            raise
        finish = self._finish(count, pending, offsets, handled, outputs, started)
        self._finishing = (batches, asyncio.ensure_future(finish))
        if not self._kafka.overlap_commits:
            await self.settle()
        return count

    @staticmethod
    def _failed_earlier(earlier: tuple[Polled, asyncio.Task[None]] | None) -> list[Polled]:
        """The poll before, when its acks or commit failed: it is read again too."""
        return [earlier[0]] if earlier is not None and _failed(earlier[1]) else []

    async def settle(self) -> None:
        """Wait until the batch in flight is acknowledged and committed; when that fails, go back to it."""
        if self._finishing is None:
            return
        batches, task = self._finishing
        try:
            await asyncio.shield(task)
        except BaseException:
            if task.done():
                self._finishing = None
                self._rewind(batches)
            raise
        self._finishing = None
        self.last_error = None

    def _abandon(self) -> None:
        """Give up the batch in flight (its commit may retry forever against a broker that is gone)."""
        if self._finishing is not None:
            self._finishing[1].cancel()
            self._finishing = None

    def _rewind(self, *polls: Polled) -> None:
        """Seek each partition back to the first record these polls read from it, so nothing is skipped."""
        assert self._consumer is not None
        first: dict[TopicPartition, int] = {}
        for batches in polls:
            for tp, records in batches.items():
                if records:
                    first[tp] = min(first.get(tp, records[0].offset), records[0].offset)
        assigned = self._consumer.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                self._consumer.seek(tp, offset)

    async def _handle_batch(
        self, batches: Polled
    ) -> tuple[int, list[asyncio.Future[Any]], dict[TopicPartition, int], list[str], list[CloudEvent]]:
        """Handle a poll and send its outputs; return what finishing it needs (acks, offsets, ids)."""
        assert self._consumer is not None
        pending: list[asyncio.Future[Any]] = []
        offsets: dict[TopicPartition, int] = {}
        decoded: list[tuple[ConsumerRecord, CloudEvent]] = []
        count = 0
        for tp, records in batches.items():
            if not records:
                continue
            count += len(records)
            self._metrics.consumed.labels(tp.topic).inc(len(records))
            for record in records:
                try:
                    decoded.append((record, decode(record.value)))
                except (ValidationError, ValueError, TypeError) as exc:
                    pending.append(await self._dead_letter(record, "undecodable", exc))
            offsets[tp] = records[-1].offset + 1
        await self._record_lag(offsets)
        # One dedupe look-up for the whole poll: per-record Redis round trips would dominate the loop.
        seen = await self._deduper.seen([event.id for _, event in decoded])
        handled: list[str] = []
        outputs: list[CloudEvent] = []
        traces: list[TraceContext | None] = []
        for handler, run in self._runs(decoded, seen):
            # Handling an event is a span of its trace; what the handler returns for it carries that span.
            contexts = [handling(record.headers) for record, _ in run]
            started = time.time_ns() if self._spans is not None else 0
            results = await self._call_run(handler, run, contexts)
            for (record, event), context, result in zip(run, contexts, results, strict=True):
                if isinstance(result, DeadLetter):
                    pending.append(await self._dead_letter(record, result.reason, result.error, event))
                else:
                    outputs.extend(result)
                    traces.extend([context] * len(result))
                handled.append(event.id)
            if self._spans is not None:
                self._record_spans(self._spans, run, contexts, results, started)
        pending.extend(await self._publisher.send_many(outputs, traces))
        return count, pending, offsets, handled, outputs

    async def _finish(
        self,
        count: int,
        pending: list[asyncio.Future[Any]],
        offsets: dict[TopicPartition, int],
        handled: list[str],
        outputs: list[CloudEvent],
        started: float,
        commit: bool = True,
    ) -> None:
        """Wait for a poll's acks, then record its handled ids and commit its offsets (unless `commit` is
        false: a poll that will be read again, whose outputs are out all the same)."""
        assert self._consumer is not None
        if pending:
            await asyncio.gather(*pending)
        for topic, n in Tally(output.topic() for output in outputs).items():
            self._metrics.produced.labels(topic).inc(n)
        if not commit:
            await self._deduper.mark(handled)
            return
        # Once the outputs are acknowledged, mark and commit may overlap: if only the mark is lost, the
        # commit already prevents redelivery; if only the commit is lost, the mark skips the redelivered
        # events; if both are lost, the repeated outputs carry the same ids and consumers drop them.
        await asyncio.gather(self._deduper.mark(handled), self._consumer.commit(offsets))
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self._metrics.batch_records.observe(count)

    async def _record_lag(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Set the lag gauge of every assigned partition, not only of those this poll read.

        A poll often holds records of one partition only (aiokafka hands out one partition's prefetched
        records before the next one's); a gauge set only when its partition is polled kept the value of its
        last poll, and the sum across partitions missed the others' backlog.
        """
        assert self._consumer is not None
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            position = offsets[tp] if tp in offsets else await self._consumer.position(tp)
            self._metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))

    def _runs(
        self, decoded: list[tuple[ConsumerRecord, CloudEvent]], seen: set[str]
    ) -> list[tuple[Handler | BatchHandler, list[tuple[ConsumerRecord, CloudEvent]]]]:
        """Group the poll's new events into runs of consecutive events that share a handler.

        A batch handler gets a whole run in one call; consecutive runs keep the poll's order, so the
        events of one partition are handled in the order they were written.
        """
        runs: list[tuple[Handler | BatchHandler, list[tuple[ConsumerRecord, CloudEvent]]]] = []
        for record, event in decoded:
            if event.id in seen:
                self._metrics.duplicates.labels(record.topic).inc()
                continue
            seen.add(event.id)
            handler = self._handlers.get(record.topic, {}).get(event.type)
            if handler is None:
                self._metrics.ignored.labels(record.topic).inc()
                continue
            if runs and runs[-1][0] is handler:
                runs[-1][1].append((record, event))
            else:
                runs.append((handler, [(record, event)]))
        return runs

    def _record_spans(
        self,
        spans: Spans,
        run: list[tuple[ConsumerRecord, CloudEvent]],
        contexts: list[TraceContext],
        results: list[Sequence[CloudEvent] | DeadLetter],
        started: int,
    ) -> None:
        ended = time.time_ns()
        for (record, event), context, result in zip(run, contexts, results, strict=True):
            attributes: dict[str, str | int] = {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.consumer.group.name": self._group_id,
                "messaging.message.id": event.id,
                "cloudevents.event_type": event.type,
            }
            for key, value in log_ids(event).items():
                attributes[f"switchboard.{key}"] = value
            error = f"dead-lettered: {result.reason}" if isinstance(result, DeadLetter) else None
            spans.record(f"process {record.topic}", context, "consumer", started, ended, attributes, error)

    async def _call_run(
        self,
        handler: Handler | BatchHandler,
        run: list[tuple[ConsumerRecord, CloudEvent]],
        contexts: list[TraceContext],
    ) -> list[Sequence[CloudEvent] | DeadLetter]:
        """Handle a run: a batch handler in one call, else (or when that call fails) event by event."""
        if isinstance(handler, BatchHandler) and len(run) > 1:
            events = [event for _, event in run]
            # Each event's span is findable by its id (`tracing.context_of`), e.g. for a delivery made later.
            token = activate_run({event.id: context for event, context in zip(events, contexts, strict=True)})
            try:
                results = await handler.handle(events)
                if len(results) != len(events):
                    raise ValueError(f"batch handler gave {len(results)} results for {len(events)} events")
                return list(results)
            except TRANSIENT_ERRORS:
                raise
            except Exception as exc:
                # Find the event that fails by handling them one at a time; the others go through.
                problem = describe_error(exc)
                log.warning("batch handler failed on %d events, retrying one by one: %s", len(run), problem)
            finally:
                deactivate_run(token)
        return [
            await self._call_one(handler, event, context)
            for (_, event), context in zip(run, contexts, strict=True)
        ]

    async def _call_one(
        self, handler: Handler | BatchHandler, event: CloudEvent, context: TraceContext
    ) -> Sequence[CloudEvent] | DeadLetter:
        # The event's span is current while its handler runs: log lines carry its trace id, and a store
        # may keep it for what fires later (the SLA timers).
        token = activate(context)
        try:
            return await self._attempts(handler, event)
        finally:
            deactivate(token)

    async def _attempts(
        self, handler: Handler | BatchHandler, event: CloudEvent
    ) -> Sequence[CloudEvent] | DeadLetter:
        attempts = max(1, self._kafka.handler_attempts)
        for attempt in range(attempts):
            try:
                if isinstance(handler, BatchHandler):
                    (outputs,) = await handler.handle([event])
                    return outputs
                return await handler(event)
            except TRANSIENT_ERRORS:
                raise
            except DeadLetter as dead:
                return dead
            except Exception as exc:
                if attempt + 1 == attempts:
                    log.warning(
                        "handler failed %d times on %s: %s",
                        attempts,
                        event.id,
                        describe_error(exc),
                        extra=log_ids(event),
                    )
                    return DeadLetter("handler_failed", exc)
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    async def _dead_letter(
        self,
        record: ConsumerRecord,
        reason: str,
        error: BaseException | None,
        event: CloudEvent | None = None,
    ) -> asyncio.Future[Any]:
        self._metrics.dead_lettered.labels(record.topic, reason).inc()
        # The record keeps its headers, its trace context among them: the dead letter stays in its trace.
        extra = log_ids(event) if event is not None else {}
        sent = from_headers(record.headers)
        if sent is not None:
            extra["trace_id"] = sent.trace_id
        log.warning(
            "dead-lettering %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            reason,
            extra=extra,
        )
        return await self._producer.send(
            dlq_topic(record.topic),
            record.value,
            key=record.key,
            headers=dead_letter_headers(record, reason, error, self._group_id),
        )


def _failed(task: asyncio.Task[None]) -> bool:
    """Tell whether a finished task failed (or was cancelled); a running one has not failed yet."""
    return task.done() and (task.cancelled() or task.exception() is not None)


class _OnRebalance(ConsumerRebalanceListener):
    """Before partitions go: commit the batch in flight, and drop their lag gauges.

    The commit keeps the next owner from reading the batch again; dropping the gauges keeps sums across
    instances true.
    """

    def __init__(self, metrics: BusMetrics, settle: Callable[[], Awaitable[None]], timeout: float) -> None:
        self._metrics = metrics
        self._settle = settle
        self._timeout = timeout

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Bounded: the group's rebalance (and the consumer's stop) waits for this callback.
        try:
            await asyncio.wait_for(self._settle(), self._timeout)
        except Exception as exc:
            # Not committed: whoever owns the partitions next reads that batch again (at least once).
            log.warning("batch in flight not committed before a rebalance: %s", describe_error(exc))
        for tp in revoked:
            try:
                self._metrics.lag.remove(tp.topic, str(tp.partition))
            except KeyError:
                pass

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        return None


def dead_letter_reason(headers: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    """Read the dead-letter description back from a DLQ record's headers."""
    return {
        k.removeprefix(DLQ_HEADER_PREFIX): v.decode() for k, v in headers if k.startswith(DLQ_HEADER_PREFIX)
    }
