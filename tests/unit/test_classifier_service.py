"""The classifier service's handlers, with fake models: batches, metrics, model swaps, shadow, prior."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from classifier import handlers
from classifier import model as lexicon
from classifier.choice import Lexicon
from classifier.examples import Inbound, corpus_files, read_examples
from classifier.learning import TrainedModel, train
from classifier.metrics import ClassifierMetrics
from switchboard.contract import (
    Author,
    Classification,
    ClassifiedMessage,
    Message,
    MessageClassified,
    MessageReceived,
    Topic,
    derive_id,
    event_type,
)
from switchboard.handling import BatchHandler

CLASSIFIED = "switchboard_classifier_messages_classified_total"
CONFIDENCE = "switchboard_classifier_confidence"
NOW = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
TEXTS = [
    ("x", "public", 120, None, "@NovaTel toujours pas reçu ma commande #A-48213, ça fait 10 jours !"),
    ("instagram", "public", 250_000, None, "Love love love the new collection 😍 bravo to the whole team!"),
    ("email", "private", None, "en", "Hello, I was charged twice this month. Please refund me. Paul"),
    ("sms", "private", None, "fr", "slt jarrive pa a me connecter a mon compte, mdp oublié"),
    ("chat", "private", None, None, "how do I export my data?"),
    ("review", "public", 3, None, "★☆☆☆☆ livraison en retard, produit cassé, service client injoignable"),
    ("facebook", "public", 40, None, "Participez à notre jeu concours ! #concours"),
    ("whatsapp", "private", None, None, "👍"),
]


def received(i: int, channel: str, visibility: str, followers: int | None, hint: str | None, text: str):
    message = Message(
        message_id=f"m{i}",
        channel=channel,
        external_id=str(i),
        conversation_id=f"conv-{i}",
        author=Author(id=f"a{i}", followers=followers),
        text=text,
        created_at=NOW,
        received_at=NOW,
        visibility=visibility,
        language=hint,
    )
    return MessageReceived(source="test", subject=message.message_id, partitionkey=f"conv-{i}", data=message)


EVENTS = [received(i, *row) for i, row in enumerate(TEXTS)]


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    """A learned model on a sixth of the corpus: every head has its labels, training takes a second."""
    return train(read_examples(corpus_files())[::6], seed=0, holdout=0)


def one_by_one(event: MessageReceived, classify) -> MessageClassified:
    """What the classifier published before batches: one `classify` call per received message."""
    message = event.data
    classification = classify(
        message.text,
        channel=message.channel.value,
        visibility=message.visibility,
        followers=message.author.followers,
        language_hint=message.language,
    )
    return MessageClassified(
        id=derive_id(event.id, "classified"),
        source=handlers.SOURCE,
        subject=message.message_id,
        partitionkey=event.partitionkey,
        data=ClassifiedMessage(message=message, classification=classification),
    )


def published(events: Sequence[MessageClassified]) -> list[dict]:
    """The events as they go on the wire, without the time they were made."""
    return [e.model_dump(mode="json", exclude={"time"}) for e in events]


class Counting:
    """A model that counts its calls and batches, and classifies with the lexicon."""

    def __init__(self, version: str = "fake-1") -> None:
        self.version = version
        self.batches: list[int] = []

    def classify_many(self, items: Sequence[Inbound]) -> list[Classification]:
        self.batches.append(len(items))
        return [c.model_copy(update={"model_version": self.version}) for c in Lexicon().classify_many(items)]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


# Step 1: one model call per batch, the same decisions as one call per message


@pytest.mark.parametrize("which", ["lexicon", "learned"])
async def test_a_batch_publishes_exactly_what_one_call_per_message_published(which: str, trained):
    model = Lexicon() if which == "lexicon" else trained
    classify = lexicon.classify if which == "lexicon" else trained.classify
    deps = handlers.Deps(model=lambda: model)
    batch = await handlers.classify_messages(EVENTS, deps)
    assert [len(outputs) for outputs in batch] == [1] * len(EVENTS)
    expected = [one_by_one(event, classify) for event in EVENTS]
    assert published([outputs[0] for outputs in batch]) == published(expected)
    (single,) = await handlers.classify_message(EVENTS[0], deps)
    assert published([single]) == published(expected[:1])


async def test_the_model_is_asked_once_per_run_of_received_messages():
    model = Counting()
    calls: list[None] = []

    def current():
        calls.append(None)
        return model

    table = handlers.handler_table(handlers.Deps(model=current))
    handler = table[Topic.MESSAGES_RECEIVED.value][event_type(MessageReceived)]
    assert isinstance(handler, BatchHandler)
    results = await handler.handle(EVENTS)
    assert model.batches == [len(EVENTS)] and len(calls) == 1
    assert [r[0].data.classification.model_version for r in results] == ["fake-1"] * len(EVENTS)


async def test_decisions_are_counted_per_category_and_language_with_their_confidence():
    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry)
    deps = handlers.Deps(on_classified=metrics.observe)
    batch = await handlers.classify_messages(EVENTS, deps)
    decisions = [outputs[0].data.classification for outputs in batch]
    for category in ("support", "marketing"):
        for language in ("fr", "en", "other"):
            n = sum(1 for d in decisions if (d.category, d.language) == (category, language))
            got = sample(registry, CLASSIFIED, category=category, language=language)
            assert (got or 0) == n
        confidences = [d.confidence for d in decisions if d.category == category]
        assert sample(registry, f"{CONFIDENCE}_count", category=category) == len(confidences)
        assert sample(registry, f"{CONFIDENCE}_sum", category=category) == pytest.approx(sum(confidences))
    await handlers.classify_messages(EVENTS, deps)
    total = sum(sample(registry, f"{CONFIDENCE}_count", category=c) or 0 for c in ("support", "marketing"))
    assert total == 2 * len(EVENTS)
