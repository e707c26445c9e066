"""The consumer loop handles the next poll while the previous one is committed: commits stay in poll order,
and a poll whose commit fails is read again together with every poll handled after it.

Pure loop logic, so the consumer is a fake whose commits the test holds back or fails; the loop against
a real broker is in tests/integration/test_bus.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from switchboard.bus import ConsumerLoop, _OnRebalance
from switchboard.config import KafkaSettings
from switchboard.contract import Author, Message, MessageReceived, encode
from switchboard.dedupe import MemoryDeduper
from switchboard.metrics import BusMetrics
from switchboard.testing import captured_logs

TOPIC = "messages.received"
TP = TopicPartition(TOPIC, 0)
AT = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def record(offset: int) -> ConsumerRecord:
    message = Message(
        message_id=f"m-{offset}",
        channel="x",
        external_id=str(offset),
        conversation_id="x:author:42",
        author=Author(id="42"),
        text=f"message {offset}",
        created_at=AT,
        received_at=AT,
        visibility="public",
    )
    value = encode(MessageReceived(id=f"e-{offset}", source="t", subject="m", partitionkey="c", data=message))
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, b"c", value, None, 1, len(value), [])


class HeldConsumer:
    """Hands out the given polls in order; each commit waits until the test releases it, or fails."""

    def __init__(self, polls: list[list[int]]) -> None:
        self.polls = [{TP: [record(offset) for offset in offsets]} for offsets in polls]
        self.committed: list[int] = []
        self.releases: list[asyncio.Event] = []
        self.fail_commit: set[int] = set()
        self.seeks: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        return self.polls.pop(0) if self.polls else {}

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        release = asyncio.Event()
        self.releases.append(release)
        await release.wait()
        if offsets[TP] in self.fail_commit:
            raise KafkaConnectionError("the coordinator went away")
        self.committed.append(offsets[TP])

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)


def loop_on(
    consumer: HeldConsumer, overlap: bool = True, gate: asyncio.Event | None = None
) -> tuple[ConsumerLoop, list[str]]:
    """Build a loop on the fake consumer; its handler records each event, after `gate` opens when given."""
    handled: list[str] = []

    async def handler(event: MessageReceived) -> list:
        handled.append(event.id)
        if gate is not None:
            await gate.wait()
        return []

    loop = ConsumerLoop(
        group_id="overlap",
        handlers={TOPIC: {"switchboard.message.received": handler}},
        kafka=KafkaSettings(overlap_commits=overlap),
        # Nothing is published (the handler returns no events); the publisher only looks at the cluster.
        producer=SimpleNamespace(client=SimpleNamespace(cluster=None)),  # type: ignore[arg-type]
        deduper=MemoryDeduper(),
        metrics=BusMetrics("overlap", CollectorRegistry()),
    )
    loop._consumer = consumer  # type: ignore[assignment]
    return loop, handled


async def until(check: Callable[[], bool]) -> None:
    """Let the loop's tasks run until `check` holds (they need a few turns of the event loop, no time)."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop never got there")


async def released(consumer: HeldConsumer, index: int) -> None:
    """Let the index-th commit go, once the loop has asked for it."""
    await until(lambda: len(consumer.releases) > index)
    consumer.releases[index].set()


async def test_the_next_poll_is_handled_while_the_previous_commit_is_in_flight_and_commits_keep_poll_order():
    consumer = HeldConsumer([[0, 1], [2, 3], [4]])
    loop, handled = loop_on(consumer)

    assert await loop.step() == 2
    assert consumer.committed == []
    # The second poll is handled while the first commit is held back; its own commit waits for the first.
    second = asyncio.create_task(loop.step())
    await until(lambda: len(handled) == 4)
    assert handled == ["e-0", "e-1", "e-2", "e-3"] and consumer.committed == []
    assert not second.done()
    await released(consumer, 0)
    assert await second == 2
    assert consumer.committed == [2]
    third = asyncio.create_task(loop.step())
    await released(consumer, 1)
    assert await third == 1
    await released(consumer, 2)
    await loop.settle()
    assert consumer.committed == [2, 4, 5]
    assert consumer.seeks == []


async def test_a_failed_commit_sends_the_loop_back_to_that_poll_and_the_next_poll_is_not_committed():
    consumer = HeldConsumer([[0, 1], [2, 3]])
    consumer.fail_commit = {2}
    loop, handled = loop_on(consumer)

    assert await loop.step() == 2
    second = asyncio.create_task(loop.step())
    await released(consumer, 0)
    with pytest.raises(KafkaConnectionError):
        await second
    # Both polls are read again from the first one's first record; the second poll's offsets never committed.
    assert handled == ["e-0", "e-1", "e-2", "e-3"]
    assert consumer.committed == []
    assert min(consumer.seeks) == 0 and len(consumer.releases) == 1
    # But its events count as handled (their outputs are out): read again, they are skipped, not repeated.
    assert {"e-2", "e-3"} <= loop._deduper.handled  # type: ignore[attr-defined]
    await loop.settle()


async def test_a_failure_settled_by_a_rebalance_mid_poll_still_keeps_that_poll_from_being_committed():
    consumer = HeldConsumer([[0, 1], [2, 3]])
    consumer.fail_commit = {2}
    gate = asyncio.Event()
    gate.set()
    loop, handled = loop_on(consumer, gate=gate)

    assert await loop.step() == 2
    gate.clear()
    second = asyncio.create_task(loop.step())
    await until(lambda: len(handled) == 3)
    # While the second poll is being handled, a rebalance settles the first poll's commit, which fails.
    await released(consumer, 0)
    with pytest.raises(KafkaConnectionError):
        await loop.settle()
    assert consumer.seeks == [0]
    gate.set()
    with pytest.raises(KafkaConnectionError):
        await second
    assert consumer.committed == [] and len(consumer.releases) == 1
    assert set(consumer.seeks) == {0}


async def test_without_overlap_each_step_returns_after_its_commit():
    consumer = HeldConsumer([[0, 1], [2]])
    loop, _ = loop_on(consumer, overlap=False)

    first = asyncio.create_task(loop.step())
    await released(consumer, 0)
    assert await first == 2 and consumer.committed == [2]
    second = asyncio.create_task(loop.step())
    await released(consumer, 1)
    assert await second == 1 and consumer.committed == [2, 3]


async def test_a_rebalance_waits_for_the_commit_in_flight_but_not_forever():
    consumer = HeldConsumer([[0, 1]])
    loop, _ = loop_on(consumer)
    metrics = BusMetrics("rebalance", CollectorRegistry())
    listener = _OnRebalance(metrics, loop.settle, timeout=0.05)

    assert await loop.step() == 2
    # The commit never comes back (a coordinator gone): the rebalance goes on after the timeout.
    with captured_logs() as logs:
        await asyncio.wait_for(listener.on_partitions_revoked({TP}), 5)
    assert any("not committed before a rebalance" in r.getMessage() for r in logs)
    assert consumer.committed == []
    # Once the commit does come back, the listener has it done before the partitions go.
    await released(consumer, 0)
    await asyncio.wait_for(listener.on_partitions_revoked({TP}), 5)
    assert consumer.committed == [2]
