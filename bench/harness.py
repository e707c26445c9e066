"""What the benchmarks share: the bare aiokafka consume-transform-produce loop they compare against."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from switchboard.config import KafkaSettings
from switchboard.contract import CloudEvent, decode, encode

VARIANT_TIMEOUT_S = 300.0


class Timing(NamedTuple):
    """Wall and CPU seconds from the first non-empty poll to the last commit, and the non-empty polls."""

    wall: float
    cpu: float
    polls: int


async def bare_loop(
    kafka: KafkaSettings,
    source: str,
    group: str,
    transform: Callable[[Any], CloudEvent],
    messages: int,
    batched: bool = True,
) -> Timing:
    """Consume `messages` records, transform each, produce and commit with bare aiokafka; time it.

    `getmany` a poll, decode and transform each record, produce every output without awaiting it, wait
    for the acks, commit. With `batched`, the outputs are written into one aiokafka record batch per
    partition (`create_batch` / `send_batch`), the cheapest way aiokafka produces; without it, one
    `send()` per record. Nothing of Switchboard's runs here but the contract's decode and encode.
    """
    consumer = AIOKafkaConsumer(
        source,
        **kafka.client_options(),
        group_id=group,
        client_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    producer = AIOKafkaProducer(
        **kafka.client_options(),
        client_id=group,
        acks="all",
        enable_idempotence=False,
        linger_ms=kafka.linger_ms,
        compression_type=kafka.compression_type,
    )
    await producer.start()
    await consumer.start()
    try:
        done = polls = 0
        started = cpu_started = None
        deadline = time.monotonic() + VARIANT_TIMEOUT_S
        while done < messages:
            if time.monotonic() > deadline:
                raise TimeoutError(f"bare loop handled {done}/{messages}")
            before, cpu_before = time.perf_counter(), time.process_time()
            batches = await consumer.getmany(
                timeout_ms=kafka.poll_timeout_ms, max_records=kafka.max_batch_records
            )
            if not batches:
                continue
            polls += 1
            if started is None:
                started, cpu_started = before, cpu_before
            outputs, offsets = [], {}
            for tp, records in batches.items():
                outputs += [transform(decode(record.value)) for record in records]
                offsets[tp] = records[-1].offset + 1
                done += len(records)
            produce = produce_batched if batched else produce_one_by_one
            await asyncio.gather(*await produce(producer, outputs))
            await consumer.commit(offsets)
        assert started is not None and cpu_started is not None
        return Timing(time.perf_counter() - started, time.process_time() - cpu_started, polls)
    finally:
        await consumer.stop()
        await producer.stop()


async def produce_one_by_one(producer: AIOKafkaProducer, outputs: list[CloudEvent]) -> list[asyncio.Future]:
    """Queue each output with its own `send()`; return the acknowledgement futures."""
    return [
        await producer.send(
            out.topic(), encode(out), key=out.partitionkey.encode(), headers=[("ce_type", out.type.encode())]
        )
        for out in outputs
    ]


async def produce_batched(producer: AIOKafkaProducer, outputs: list[CloudEvent]) -> list[asyncio.Future]:
    """Write the outputs into one record batch per partition (a new one when full); return the futures."""
    partitioner = producer._partitioner  # the producer's own, so keys land where send() would put them
    batches: dict[tuple[str, int], Any] = {}
    known: dict[str, list[int]] = {}
    futures = []
    for out in outputs:
        topic, key = out.topic(), out.partitionkey.encode()
        partitions = known.get(topic) or known.setdefault(topic, sorted(await producer.partitions_for(topic)))
        partition = partitioner(key, partitions, partitions)
        record = {
            "key": key,
            "value": encode(out),
            "timestamp": None,
            "headers": [("ce_type", out.type.encode())],
        }
        batch = batches.get((topic, partition))
        if batch is None or batch.append(**record) is None:
            if batch is not None:
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = batches[(topic, partition)] = producer.create_batch()
            batch.append(**record)
    for (topic, partition), batch in batches.items():
        batch.close()
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures
