"""The classifier app against the real broker and Redis: batches, a model retrained under it, corrections."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from classifier.app import create_app
from classifier.config import Settings
from classifier.examples import corpus_files, read_examples
from classifier.store import RedisCorrectionStore
from switchboard.bus import KafkaPublisher, make_producer
from switchboard.cli import main
from switchboard.config import KafkaSettings, RedisSettings
from switchboard.contract import (
    Author,
    CaseRouted,
    Classification,
    Message,
    MessageReceived,
    Queue,
    decode,
)
from switchboard.stack import running_broker
from switchboard.testing import TopicReader, case_routed, eventually
from switchboard.topics import ensure_topics

pytestmark = pytest.mark.integration

TEXTS = [
    ("x", "public", "@NovaTel toujours pas reçu ma commande #A-48213, ça fait 10 jours !"),
    ("instagram", "public", "Love love love the new collection 😍 bravo to the whole team!"),
    ("email", "private", "Hello, I was charged twice this month. Please refund the duplicate. Paul"),
    ("sms", "private", "slt jarrive pa a me connecter a mon compte"),
    ("facebook", "public", "Participez à notre jeu concours ! #concours"),
]


def received(channel: str, visibility: str, text: str) -> MessageReceived:
    now = datetime.now(UTC)
    message_id = uuid.uuid4().hex
    conversation = f"{channel}:author:{message_id[:8]}"
    message = Message(
        message_id=message_id,
        channel=channel,
        external_id=message_id,
        conversation_id=conversation,
        author=Author(id=message_id[:6]),
        text=text,
        created_at=now,
        received_at=now,
        visibility=visibility,
    )
    return MessageReceived(source="test", subject=message_id, partitionkey=conversation, data=message)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of this module alone: the classifier's topics are the contract's fixed names, and what it
    publishes there must not reach other tests' consumers (a router test expects its own routing first).
    """
    with running_broker(tmp_path_factory.mktemp("classifier-broker")) as bootstrap:
        yield bootstrap


@pytest.fixture
async def producer(broker: str) -> AsyncIterator[AIOKafkaProducer]:
    kafka = KafkaSettings(bootstrap_servers=broker)
    await ensure_topics(kafka)
    producer = make_producer(kafka, "test-classifier")
    await producer.start()
    yield producer
    await producer.stop()


def labelled_file(path: Path, start: int) -> str:
    """Write a sixth of the corpus (every sixth line from `start`): a different model for each start."""
    lines = read_examples(corpus_files())[start::6]
    path.write_text("".join(e.model_dump_json() + "\n" for e in lines), encoding="utf-8")
    return str(path)


async def train(data: str, out: Path) -> None:
    """Run `switchboard train` as an operator would, its own process aside."""
    assert await asyncio.to_thread(main, ["train", "--data", data, "--out", str(out)]) == 0


async def test_the_classifier_classifies_batches_and_picks_up_a_retrained_model_without_a_restart(
    producer: AIOKafkaProducer, broker: str, redis_url: str, redis, key_prefix: str, tmp_path: Path
):
    served = tmp_path / "served"
    await train(labelled_file(tmp_path / "a.jsonl", 0), served)
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=broker),
        redis=RedisSettings(url=redis_url, key_prefix=key_prefix),
        model=str(served),
        shadow_model="lexicon",
        model_poll_seconds=0.05,
    )
    app = create_app(settings)
    first_version = app.state.models["live"].version
    publisher = KafkaPublisher(producer)

    async with (
        TopicReader(broker, "messages.classified") as reader,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://classifier") as api,
    ):

        async def classify(events: list[MessageReceived]) -> dict[str, Classification]:
            """Publish events in one go; return each message's classification as published."""
            await publisher.publish(events)
            ids = {e.data.message_id for e in events}
            found = await reader.wait_for(
                lambda r: decode(r.value).data.message.message_id in ids, count=len(ids), timeout=60
            )
            published = [decode(r.value).data for r in found]
            return {p.message.message_id: p.classification for p in published}

        before = [received(*row) for row in TEXTS * 4]
        assert {c.model_version for c in (await classify(before)).values()} == {first_version}

        # An operator retrains into the served directory; the service loads it by itself.
        await train(labelled_file(tmp_path / "b.jsonl", 1), served)

        async def live_version() -> str:
            return (await api.get("/v1/model")).json()["live"]["version"]

        await eventually(lambda: _changed(live_version, first_version), timeout=30)
        second_version = await live_version()
        assert second_version.startswith("tfidf-lr-") and second_version != first_version
        # The model in force shows what it was measured at when trained, behaviour checks included.
        measured = (await api.get("/v1/model")).json()["live"]["evaluation"]
        assert measured["behaviour"]["cases"] > 0 and 0.0 <= measured["behaviour"]["flip_rate"] <= 1.0
        # And what it was trained on: lines per category (no weighted lines here, so no "weight").
        counted = (await api.get("/v1/model")).json()["live"]["counts"]
        assert set(counted["category"]) == {"marketing", "support"} and "weight" not in counted

        after = [received(*row) for row in TEXTS]
        decided = await classify(after)
        assert {c.model_version for c in decided.values()} == {second_version}

        # A person moves a case to marketing: the classifier keeps it as a corrected label.
        moved = after[0].data
        reassigned = reassignment(moved, decided[moved.message_id], Queue.MARKETING)
        await publisher.publish([reassigned])
        store = RedisCorrectionStore(redis, key_prefix, 90 * 86400)

        async def kept() -> list[dict]:
            return [json.loads(line) async for line in store.export() if moved.message_id in line]

        (line,) = await eventually(kept, timeout=60)

        async def judged() -> str | None:
            # The shadow (the lexicon) judges the correction right after it is recorded.
            text = (await api.get("/metrics")).text
            return (
                text if 'corrections_judged_total{role="shadow",verdict="' in text and _judged(text) else None
            )

        scraped = await eventually(judged, timeout=30)

    assert (line["category"], line["model_version"]) == ("marketing", second_version)
    assert (line["text"], line["model_category"]) == (moved.text, decided[moved.message_id].category)
    assert f'switchboard_classifier_model_info{{role="live",version="{second_version}"}} 1.0' in scraped
    assert f'version="{first_version}"' not in scraped
    assert 'switchboard_classifier_model_reloads_total{outcome="loaded",role="live"} 1.0' in scraped
    assert 'switchboard_classifier_model_reloads_total{outcome="rejected",role="live"} 0.0' in scraped
    assert 'switchboard_classifier_model_info{role="shadow",version="lexicon-0.1.0"} 1.0' in scraped
    assert 'switchboard_classifier_inference_duration_seconds_count{role="shadow"}' in scraped
    decided_by = decided[moved.message_id].category
    counted = (
        f'switchboard_classifier_corrections_total{{from_category="{decided_by}",to_category="marketing"}}'
    )
    assert counted in scraped and f"{counted} 0.0" not in scraped
    # One correction judged for each model: the live one by the category it had given.
    live_verdict = "right" if decided_by == "marketing" else "wrong"
    judged = _judged(scraped)
    assert judged.get(("live", live_verdict)) == 1.0 and sum(judged.values()) == 2.0, judged


def _judged(scraped: str) -> dict[tuple[str, str], float]:
    """Return the judged-corrections counters that are above zero, by (role, verdict)."""
    return {
        (sample.labels["role"], sample.labels["verdict"]): sample.value
        for family in text_string_to_metric_families(scraped)
        if family.name == "switchboard_classifier_corrections_judged"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.value > 0
    }


async def _changed(read, old: str) -> bool:
    return (await read()) != old


def reassignment(message: Message, classification: Classification, queue: Queue) -> CaseRouted:
    """What the router publishes when a person moves the message's case to `queue`."""
    return case_routed(
        uuid.uuid4().hex,
        message,
        queue=queue,
        tags=["reassigned"],
        rule="reassigned",
        is_new_case=False,
        classification=classification,
    )
