"""`switchboard sample` against the real broker: the same random sample of recent messages for a seed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from classifier.sampling import draw
from switchboard.config import KafkaSettings
from switchboard.contract import Author, ClassifiedMessage, Message, MessageClassified, encode
from switchboard.testing import support_classification
from switchboard.topics import ensure_topics

pytestmark = pytest.mark.integration


def classified(n: int, at: datetime) -> MessageClassified:
    message = Message(
        message_id=f"m{n}",
        channel="x",
        external_id=str(n),
        conversation_id=f"conv-{n % 7}",
        author=Author(id="a"),
        text=f"message number {n}",
        created_at=at,
        received_at=at,
        visibility="public",
    )
    data = ClassifiedMessage(message=message, classification=support_classification(language="fr"))
    return MessageClassified(
        id=f"ev-{n}", source="test", subject=message.message_id, partitionkey="k", data=data
    )


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    """A topic of three partitions: 30 messages of last month, 50 of today, a poison record, a redelivery."""
    name = f"messages.classified.{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_partitions=3)
    await ensure_topics(kafka, [name])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    now = datetime.now(UTC)
    old = int((now - timedelta(days=30)).timestamp() * 1000)
    try:
        for n in range(80):
            stamp = old if n < 30 else None
            await producer.send_and_wait(
                name, encode(classified(n, now)), partition=n % 3, timestamp_ms=stamp
            )
        await producer.send_and_wait(name, b"{not an event", partition=0)
        # The same message published again after a redelivery: one message in the sample.
        await producer.send_and_wait(name, encode(classified(79, now)), partition=1)
    finally:
        await producer.stop()
    return name


async def test_the_sample_is_drawn_from_the_window_reproducibly_and_each_message_once(
    kafka_bootstrap: str, topic: str
):
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    week = datetime.now(UTC) - timedelta(days=7)
    first = await draw(kafka, 20, week, seed=1, topic=topic)
    assert first.read == 52  # today's 50, the poison record and the redelivery; not last month's 30
    ids = [line["id"] for line in first.lines]
    # A few more records are drawn than wanted: the poison one or a second copy does not shrink it.
    assert len(set(ids)) == len(ids) == 20
    assert all(30 <= int(i[1:]) < 80 for i in ids)
    assert first.lines[0] == {
        "id": ids[0],
        "text": f"message number {ids[0][1:]}",
        "channel": "x",
        "language": "fr",
    }
    again = await draw(kafka, 20, week, seed=1, topic=topic)
    assert again == first
    assert (await draw(kafka, 20, week, seed=2, topic=topic)).lines != first.lines
    # More than there is: every message of the window once, the poison record counted, not written.
    everything = await draw(kafka, 1000, week, seed=1, topic=topic)
    assert sorted(int(line["id"][1:]) for line in everything.lines) == list(range(30, 80))
    assert everything.undecodable == 1
    assert (await draw(kafka, 10, datetime.now(UTC) - timedelta(days=60), seed=1, topic=topic)).read == 82
    assert (await draw(kafka, 10, datetime.now(UTC) + timedelta(hours=1), seed=1, topic=topic)).lines == []
    # A fresh sample beside one labelled before: none of its messages again, as many drawn.
    fresh = await draw(kafka, 20, week, seed=1, topic=topic, exclude=frozenset(ids))
    assert not {line["id"] for line in fresh.lines} & set(ids)
    assert len({line["id"] for line in fresh.lines}) == len(fresh.lines) == 20
    rest = await draw(kafka, 100, week, seed=1, topic=topic, exclude=frozenset(ids))
    assert len(rest.lines) == 50 - len(ids)


async def test_a_topic_that_does_not_exist_gives_an_empty_sample(kafka_bootstrap: str):
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    sample = await draw(kafka, 10, datetime.now(UTC), topic=f"nothing.{uuid.uuid4().hex[:8]}")
    assert sample.lines == [] and sample.read == 0


async def test_the_commands_draw_then_label_lines_retrain_reads(
    kafka_bootstrap: str, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import asyncio

    from classifier.examples import read_examples
    from switchboard.cli import main

    monkeypatch.setenv("SWITCHBOARD_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    sampled, labelled = tmp_path / "sample.jsonl", tmp_path / "labelled.jsonl"
    command = ["sample", "--out", str(sampled), "--size", "5", "--topic", topic]
    assert await asyncio.to_thread(main, command) == 0
    lines = [json.loads(raw) for raw in sampled.read_text().splitlines()]
    assert len(lines) == 5 and all("category" not in line for line in lines)
    again = tmp_path / "fresh.jsonl"
    command = ["sample", "--out", str(again), "--size", "5", "--topic", topic, "--exclude", str(sampled)]
    assert await asyncio.to_thread(main, command) == 0
    fresh = [json.loads(raw)["id"] for raw in again.read_text().splitlines()]
    assert len(fresh) == 5 and not set(fresh) & {line["id"] for line in lines}
    answers = iter(["m", "x", "s", "k", "q"])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(answers))
    assert main(["label", str(sampled), "--out", str(labelled)]) == 0
    examples = read_examples([labelled])
    assert [e.category for e in examples] == ["marketing", "support"]
    # Resumed: the two labelled are not asked again; the skipped one and the rest are.
    answers = iter(["s"] * 3)
    assert main(["label", str(sampled), "--out", str(labelled)]) == 0
    labels = [e.category for e in read_examples([labelled])]
    assert labels == ["marketing", "support", "support", "support", "support"]
