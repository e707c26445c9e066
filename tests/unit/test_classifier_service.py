"""The classifier service's handlers, with fake models: batches, metrics, model swaps, shadow, prior."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from classifier import artefact, handlers
from classifier import model as lexicon
from classifier.app import create_app
from classifier.artefact import ArtefactError
from classifier.choice import LIVE, SHADOW, Lexicon, load_model, support_shift
from classifier.config import Settings
from classifier.examples import Inbound, corpus_files, read_examples
from classifier.holder import ModelHolder, ReloadError
from classifier.learning import TrainedModel
from classifier.metrics import ClassifierMetrics
from classifier.training import train
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
from switchboard.testing import eventually, running

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


# Step 2: a new model without a restart, only when it loads


class Shelf:
    """Model directories on disk, and a loader that reads the version written in their meta.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.threads: list[int] = []
        self.loads = 0

    def write(self, name: str, version: str, *, broken: bool = False) -> str:
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / artefact.MODEL_FILE).write_bytes(f"weights of {version}".encode())
        (directory / "meta.json").write_text(json.dumps({"version": version, "broken": broken}))
        return str(directory)

    def load(self, spec: str) -> Counting:
        self.threads.append(threading.get_ident())
        self.loads += 1
        if spec in ("learned", "lexicon"):
            return Counting(spec)
        meta = json.loads((Path(spec) / "meta.json").read_text())
        weights = (Path(spec) / artefact.MODEL_FILE).read_bytes()
        if meta["broken"] or weights != f"weights of {meta['version']}".encode():
            raise ArtefactError(f"{spec}: {artefact.MODEL_FILE} does not match meta.json (damaged or edited)")
        return Counting(meta["version"])


@pytest.fixture
def shelf(tmp_path: Path) -> Shelf:
    return Shelf(tmp_path)


class Outcomes:
    """What a holder reported: reloads by outcome and the models marked in force, as the metrics see them."""

    def __init__(self) -> None:
        self.reloads: list[tuple[str, str]] = []
        self.in_force: set[tuple[str, str]] = set()

    def reloaded(self, role: str, outcome: str) -> None:
        self.reloads.append((role, outcome))

    def swapped(self, role: str, old: str | None, new: str | None) -> None:
        self.in_force.discard((role, old))
        if new is not None:
            self.in_force.add((role, new))


def holder(shelf: Shelf, spec: str, outcomes: Outcomes, role: str = LIVE) -> ModelHolder:
    return ModelHolder(role, spec, shelf.load, on_reload=outcomes.reloaded, on_swap=outcomes.swapped)


async def test_a_reload_swaps_in_the_new_model_and_says_where_it_came_from(shelf: Shelf):
    outcomes = Outcomes()
    directory = shelf.write("model", "v1")
    live = holder(shelf, directory, outcomes)
    first = live.describe()
    assert (first["version"], first["source"], first["last_error"]) == ("v1", directory, None)
    assert outcomes.in_force == {("live", "v1")}

    shelf.write("model", "v2")
    loaded = await live.reload()
    assert live.model is loaded.model and live.model.version == "v2"
    assert live.describe()["loaded_at"] >= first["loaded_at"]
    assert outcomes.reloads == [("live", "loaded")]
    assert outcomes.in_force == {("live", "v2")}
    # The model is read in a worker thread: the event loop keeps consuming meanwhile.
    assert shelf.threads[-1] != threading.get_ident()


async def test_a_model_that_fails_to_load_is_refused_and_the_old_one_keeps_deciding(shelf: Shelf):
    outcomes = Outcomes()
    directory = shelf.write("model", "v1")
    live = holder(shelf, directory, outcomes)
    before = live.model
    shelf.write("model", "v2", broken=True)
    with pytest.raises(ReloadError, match="does not match"):
        await live.reload()
    assert live.model is before
    assert "does not match" in live.describe()["last_error"]
    assert outcomes.reloads == [("live", "rejected")] and outcomes.in_force == {("live", "v1")}
    shelf.write("model", "v3")
    await live.reload()
    assert live.model.version == "v3" and live.describe()["last_error"] is None


def test_a_service_never_starts_without_a_model(shelf: Shelf):
    directory = shelf.write("model", "v1", broken=True)
    with pytest.raises(ArtefactError):
        holder(shelf, directory, Outcomes())


async def test_the_watcher_loads_a_new_model_directory_and_refuses_a_broken_one_once(shelf: Shelf):
    outcomes = Outcomes()
    directory = shelf.write("model", "v1")
    live = holder(shelf, directory, outcomes)
    async with running(live.watch(0.01)):
        shelf.write("model", "v2", broken=True)
        await eventually(lambda: live.last_error is not None, timeout=5)
        loads = shelf.loads
        await asyncio.sleep(0.1)
        assert shelf.loads == loads, "a refused directory is not read again until it changes"
        assert live.model.version == "v1"
        shelf.write("model", "v3")
        await eventually(lambda: live.model.version == "v3", timeout=5)
        assert outcomes.reloads == [("live", "rejected"), ("live", "loaded")]
        assert live.describe()["digest"] == live.current.stamp.meta


async def test_the_watcher_waits_for_the_meta_json_that_vouches_for_a_new_model_file(shelf: Shelf):
    outcomes = Outcomes()
    directory = Path(shelf.write("model", "v1"))
    live = holder(shelf, str(directory), outcomes)
    async with running(live.watch(0.01)):
        # `switchboard train` replaces the model file first: with the old meta.json it is no model to load.
        (directory / artefact.MODEL_FILE).write_bytes(b"weights of v2")
        await asyncio.sleep(0.1)
        assert outcomes.reloads == [] and live.model.version == "v1"
        (directory / "meta.json").write_text(json.dumps({"version": "v2", "broken": False}))
        await eventually(lambda: live.model.version == "v2", timeout=5)
        # A copy that brings meta.json before the model file is refused at worst once, then loaded.
        (directory / "meta.json").write_text(json.dumps({"version": "v3", "broken": False}))
        await asyncio.sleep(0.1)
        (directory / artefact.MODEL_FILE).write_bytes(b"weights of v3")
        await eventually(lambda: live.model.version == "v3", timeout=5)
        assert outcomes.reloads[-1] == ("live", "loaded")
        assert outcomes.reloads.count(("live", "rejected")) <= 1


async def test_a_shadow_follows_its_directory_from_no_model_to_a_model_and_back(shelf: Shelf):
    outcomes = Outcomes()
    directory = shelf.root / "shadow"  # not there yet: a volume's directory before the first promotion
    shadow = ModelHolder(
        SHADOW,
        str(directory),
        shelf.load,
        required=False,
        on_reload=outcomes.reloaded,
        on_swap=outcomes.swapped,
    )
    # No model yet is no fault: nothing refused, nothing counted, nothing to say.
    assert shadow.model is None and shadow.describe()["last_error"] is None
    assert outcomes.reloads == [] and outcomes.in_force == set() and shelf.loads == 0
    async with running(shadow.watch(0.01)):
        shelf.write("shadow", "c1")
        await eventually(lambda: shadow.model is not None, timeout=5)
        assert shadow.model.version == "c1" and outcomes.in_force == {("shadow", "c1")}
        # Its files removed, the shadow stops deciding; a live model would stay (below).
        for path in directory.iterdir():
            path.unlink()
        await eventually(lambda: shadow.model is None, timeout=5)
        assert outcomes.in_force == set() and outcomes.reloads == [("shadow", "loaded")]
        assert shadow.describe()["version"] is None
        shelf.write("shadow", "c2")
        await eventually(lambda: shadow.model is not None and shadow.model.version == "c2", timeout=5)


async def test_the_live_model_stays_when_its_directory_is_emptied(shelf: Shelf):
    outcomes = Outcomes()
    directory = Path(shelf.write("live", "v1"))
    live = holder(shelf, str(directory), outcomes)
    async with running(live.watch(0.01)):
        for path in directory.iterdir():
            path.unlink()
        await asyncio.sleep(0.1)
        assert live.model.version == "v1" and outcomes.in_force == {("live", "v1")}


async def test_only_a_model_directory_is_watched(shelf: Shelf):
    live = holder(shelf, "lexicon", Outcomes())
    await asyncio.wait_for(live.watch(0.01), timeout=1)
    assert live.describe()["source"] == "lexicon"


def test_the_info_gauge_shows_one_series_per_model_in_force():
    registry = CollectorRegistry()
    metrics = ClassifierMetrics(registry)
    metrics.swapped("live", None, "v1")
    metrics.swapped("shadow", None, "v1")
    metrics.swapped("live", "v1", "v2")
    metrics.swapped("live", "v2", "v2")
    metrics.swapped("shadow", "v1", None)  # the shadow left: its series goes
    info = {
        (s.labels["role"], s.labels["version"]): s.value
        for family in registry.collect()
        if family.name == "switchboard_classifier_model_info"
        for s in family.samples
    }
    assert info == {("live", "v2"): 1.0}


@pytest.fixture
async def api(shelf: Shelf):
    directory = shelf.write("model", "v1")
    app = create_app(Settings(model=directory), load=shelf.load)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://classifier") as c:
        yield c


async def test_the_model_endpoint_tells_the_version_source_and_load_time(api, shelf: Shelf):
    body = (await api.get("/v1/model")).json()
    assert body["live"]["version"] == "v1"
    assert body["live"]["source"] == str(shelf.root / "model")
    assert datetime.fromisoformat(body["live"]["loaded_at"]).tzinfo is not None
    # These fakes were never measured; a trained model shows its held-out scores and behaviour checks.
    assert "evaluation" in body["live"] and body["live"]["evaluation"] is None
    assert "counts" in body["live"] and body["live"]["counts"] is None
    assert body.get("shadow") is None


async def test_a_reload_over_http_answers_the_new_version_or_the_reason_it_was_refused(api, shelf: Shelf):
    shelf.write("model", "v2", broken=True)
    refused = await api.post("/v1/model/reload")
    assert refused.status_code == 422
    assert "live model refused, v1 stays in force" in refused.json()["detail"]
    assert "does not match" in refused.json()["detail"]
    assert (await api.get("/v1/model")).json()["live"]["version"] == "v1"

    shelf.write("model", "v2")
    loaded = await api.post("/v1/model/reload", params={"role": "live"})
    assert loaded.status_code == 200 and loaded.json()["live"]["version"] == "v2"
    scraped = (await api.get("/metrics")).text
    assert 'switchboard_classifier_model_reloads_total{outcome="rejected",role="live"} 1.0' in scraped
    assert 'switchboard_classifier_model_reloads_total{outcome="loaded",role="live"} 1.0' in scraped
    assert 'switchboard_classifier_model_info{role="live",version="v2"} 1.0' in scraped
    assert 'version="v1"' not in scraped
    assert (await api.post("/v1/model/reload", params={"role": "shadow"})).status_code == 404


async def test_a_dry_run_answers_what_the_service_would_publish_and_counts_nothing(trained):
    def load(spec: str):
        return trained if spec == "learned" else Contrary("candidate-1")

    app = create_app(Settings(model="learned", shadow_model="lexicon"), load=load)
    messages = [
        {"text": text, "channel": channel, "visibility": visibility, "followers": followers, "language": hint}
        for channel, visibility, followers, hint, text in TEXTS
    ]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://classifier") as c:
        answer = await c.post("/v1/classify", json={"messages": messages})
        scraped = (await c.get("/metrics")).text
    assert answer.status_code == 200
    body = answer.json()
    # The same decisions the consumer publishes for these messages, in their order.
    expected = [one_by_one(e, trained.classify).data.classification.model_dump(mode="json") for e in EVENTS]
    assert body["live"] == {"version": trained.version, "classifications": expected}
    assert body["shadow"]["version"] == "candidate-1" and len(body["shadow"]["classifications"]) == len(TEXTS)
    assert body["shadow"]["classifications"] != expected and body["shadow_error"] is None
    # A dry run is not traffic: no decision, confidence or shadow comparison is counted.
    assert f"{CLASSIFIED}{{" not in scraped
    assert "switchboard_classifier_shadow_decisions_total{" not in scraped


async def test_a_dry_run_hands_the_model_what_the_channel_tells_and_answers_with_a_reloaded_model(
    api, shelf: Shelf
):
    refund, damaged = "still no refund for my cancelled order, disappointed", "my order arrived damaged"
    tried = [
        {"text": refund, "channel": "review"},  # a review is public unless said otherwise
        {"text": refund, "channel": "review", "visibility": "private"},
        {"text": damaged, "channel": "x", "followers": 250_000},  # a loud complaint: a large audience
        {"text": damaged, "channel": "x"},
    ]
    first = await api.post("/v1/classify", json={"messages": tried})
    assert first.json()["live"]["version"] == "v1" and first.json()["shadow"] is None
    assert [c["priority"] for c in first.json()["live"]["classifications"]] == ["P1", "P2", "P1", "P2"]
    shelf.write("model", "v2")
    assert (await api.post("/v1/model/reload")).status_code == 200
    second = await api.post("/v1/classify", json={"messages": tried[:1]})
    assert second.json()["live"]["version"] == "v2"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"messages": []}, "at least 1 item"),
        ({"messages": [{"text": ""}]}, "at least 1 character"),
        ({"messages": [{"text": "x" * 20_001}]}, "at most 20000 characters"),
        ({"messages": [{"text": "hi"}] * 101}, "at most 100 items"),
        ({"messages": [{"text": "hi", "channel": "pigeon"}]}, "Input should be"),
        ({"messages": [{"text": "hi", "followers": -1}]}, "greater than or equal to 0"),
        ({"messages": [{"text": "hi", "author": "me"}]}, "Extra inputs are not permitted"),
        ({"text": "hi"}, "Field required"),
    ],
)
async def test_a_dry_run_refuses_bad_input_with_the_reason(api, body: dict, reason: str):
    answer = await api.post("/v1/classify", json=body)
    assert answer.status_code == 422
    assert reason in json.dumps(answer.json()["detail"])


async def test_a_dry_run_whose_shadow_fails_still_answers_the_live_decision(shelf: Shelf):
    app = create_app(
        Settings(model="learned", shadow_model="lexicon"),
        load=lambda spec: Counting("live-1") if spec == "learned" else Broken("candidate-1"),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://classifier") as c:
        answer = await c.post("/v1/classify", json={"messages": [{"text": "my parcel never came"}]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["live"]["version"] == "live-1" and body["live"]["classifications"][0]["category"] == "support"
    assert body["shadow"] is None
    assert body["shadow_error"] == "RuntimeError: the candidate is broken"


# Step 3: a shadow decides too, only the live decision is published


class Contrary(Counting):
    """A shadow that sees every other message as the other category, and every message one priority up."""

    def classify_many(self, items: Sequence[Inbound]) -> list[Classification]:
        decisions = super().classify_many(items)
        flipped = []
        for i, d in enumerate(decisions):
            update = {"priority": "P1" if d.priority != "P1" else "P2"}
            if i % 2 == 0:
                category = "marketing" if d.category == "support" else "support"
                update |= {
                    "category": category,
                    "intent": "chatter" if category == "marketing" else "delivery",
                }
                update |= {"is_complaint": False}
            flipped.append(d.model_copy(update=update))
        return flipped


class Broken(Counting):
    """A shadow that fails."""

    def classify_many(self, items: Sequence[Inbound]) -> list[Classification]:
        raise RuntimeError("the candidate is broken")


def shadow_deps(shadow, registry: CollectorRegistry) -> handlers.Deps:
    metrics = ClassifierMetrics(registry)
    return handlers.Deps(
        model=lambda: Counting("live-1"),
        shadow=lambda: shadow,
        on_classified=metrics.observe,
        on_timed=metrics.timed,
        on_compared=metrics.compared,
        on_shadow_failed=metrics.shadow_failed,
    )


async def test_the_shadow_decides_every_batch_and_only_the_live_decision_is_published():
    registry = CollectorRegistry()
    shadow = Contrary("shadow-1")
    batch = await handlers.classify_messages(EVENTS, shadow_deps(shadow, registry))
    assert shadow.batches == [len(EVENTS)]
    assert {outputs[0].data.classification.model_version for outputs in batch} == {"live-1"}
    live = Lexicon().classify_many([handlers.inbound(e.data) for e in EVENTS])
    expected = {
        "category": (len(EVENTS) + 1) // 2,
        # The other category never has the same intent.
        "intent": (len(EVENTS) + 1) // 2,
        "is_complaint": sum(1 for i, d in enumerate(live) if i % 2 == 0 and d.is_complaint),
        "priority": len(EVENTS),
    }
    assert sample(registry, "switchboard_classifier_shadow_decisions_total") == len(EVENTS)
    for field, n in expected.items():
        assert sample(registry, "switchboard_classifier_shadow_disagreements_total", field=field) == n, field
    for role in ("live", "shadow"):
        assert sample(registry, "switchboard_classifier_inference_duration_seconds_count", role=role) == 1


async def test_a_shadow_that_agrees_counts_decisions_and_no_disagreement():
    registry = CollectorRegistry()
    await handlers.classify_messages(EVENTS, shadow_deps(Counting("shadow-1"), registry))
    assert sample(registry, "switchboard_classifier_shadow_decisions_total") == len(EVENTS)
    for field in ("category", "intent", "is_complaint", "priority"):
        assert sample(registry, "switchboard_classifier_shadow_disagreements_total", field=field) == 0


class Short(Counting):
    """A shadow that loses a decision on the way."""

    def classify_many(self, items: Sequence[Inbound]) -> list[Classification]:
        return super().classify_many(items)[1:]


@pytest.mark.parametrize("shadow", [Broken("shadow-x"), Short("shadow-y")], ids=["raises", "short"])
async def test_a_failing_shadow_is_counted_and_logged_and_the_live_path_goes_on(
    shadow, caplog: pytest.LogCaptureFixture
):
    registry = CollectorRegistry()
    deps = shadow_deps(shadow, registry)
    batch = await handlers.classify_messages(EVENTS, deps)
    expected = await handlers.classify_messages(EVENTS, handlers.Deps(model=lambda: Counting("live-1")))
    assert published([o[0] for o in batch]) == published([o[0] for o in expected])
    assert sample(registry, "switchboard_classifier_shadow_failures_total") == 1
    assert sample(registry, "switchboard_classifier_shadow_decisions_total") == 0
    assert sample(registry, "switchboard_classifier_inference_duration_seconds_count", role="shadow") is None
    assert f"shadow model {shadow.version} failed on {len(EVENTS)} messages" in caplog.text


async def test_without_a_shadow_only_the_live_model_runs_and_is_timed():
    registry = CollectorRegistry()
    await handlers.classify_messages(EVENTS, shadow_deps(None, registry))
    assert sample(registry, "switchboard_classifier_inference_duration_seconds_count", role="live") == 1
    assert sample(registry, "switchboard_classifier_shadow_decisions_total") == 0


async def test_a_shadow_that_cannot_load_leaves_the_live_model_running_until_a_reload_fills_it(shelf: Shelf):
    live_dir = shelf.write("live", "v1")
    shadow_dir = shelf.write("candidate", "c1", broken=True)
    app = create_app(Settings(model=live_dir, shadow_model=shadow_dir), load=shelf.load)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://classifier") as api:
        body = (await api.get("/v1/model")).json()
        assert body["live"]["version"] == "v1"
        assert body["shadow"]["version"] is None and "does not match" in body["shadow"]["last_error"]
        assert body["shadow"]["source"] == shadow_dir

        shelf.write("candidate", "c2")
        reloaded = await api.post("/v1/model/reload", params={"role": "shadow"})
        assert reloaded.status_code == 200
        assert reloaded.json()["shadow"]["version"] == "c2" and reloaded.json()["live"]["version"] == "v1"
        scraped = (await api.get("/metrics")).text
    assert 'switchboard_classifier_model_info{role="shadow",version="c2"} 1.0' in scraped
    assert 'switchboard_classifier_model_info{role="live",version="v1"} 1.0' in scraped
    assert 'switchboard_classifier_model_reloads_total{outcome="rejected",role="shadow"} 1.0' in scraped
    assert 'switchboard_classifier_model_reloads_total{outcome="loaded",role="shadow"} 1.0' in scraped


def test_a_blank_shadow_setting_means_no_shadow(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLASSIFIER_SHADOW_MODEL", " ")
    assert Settings().shadow_model is None


# Step 4: the learned model moved to the share of support the traffic carries


def support_odds(decisions: Sequence[Classification]) -> list[float]:
    # Confidence is rounded to four places: a saturated one (1.0) has no finite odds.
    p = [d.confidence if d.category == "support" else 1 - d.confidence for d in decisions]
    return [x / (1 - x) if 0 < x < 1 else math.inf for x in p]


def test_a_support_prior_multiplies_the_odds_of_support_by_prior_over_one_minus_prior(
    trained, tmp_path: Path
):
    directory = tmp_path / "model"
    artefact.save(trained, directory)
    items = [handlers.inbound(e.data) for e in EVENTS]
    even = load_model(str(directory), support_prior=0.5)
    assert even.support_shift == 0.0
    as_trained = even.classify_many(items)
    assert [d.model_dump() for d in as_trained] == [d.model_dump() for d in trained.classify_many(items)]
    mostly_support = load_model(str(directory), support_prior=0.8).classify_many(items)
    assert mostly_support[0].model_version == as_trained[0].model_version
    compared = 0
    for before, after in zip(support_odds(as_trained), support_odds(mostly_support), strict=True):
        if math.isfinite(before) and 0.02 < before / (1 + before) < 0.98:
            assert after / before == pytest.approx(4.0, rel=0.02)
            compared += 1
    assert compared, "no decision was far enough from certain to compare odds"
    mostly_marketing = load_model(str(directory), support_prior=0.1).classify_many(items)
    assert sum(d.category == "support" for d in mostly_marketing) <= sum(
        d.category == "support" for d in as_trained
    )
    assert support_shift(0.8) == pytest.approx(math.log(4.0))


def test_the_lexicon_ignores_the_support_prior():
    items = [handlers.inbound(e.data) for e in EVENTS]
    shifted = load_model("lexicon", support_prior=0.9).classify_many(items)
    assert [d.model_dump() for d in shifted] == [d.model_dump() for d in Lexicon().classify_many(items)]


@pytest.mark.parametrize("prior", ["0", "1", "1.5", "-0.2", "half"])
def test_a_support_prior_outside_zero_to_one_is_refused_at_start(prior: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLASSIFIER_SUPPORT_PRIOR", prior)
    with pytest.raises(ValidationError, match="support_prior"):
        Settings()


async def test_the_service_applies_the_prior_to_live_and_shadow_and_tells_it(trained, tmp_path: Path):
    artefact.save(trained, tmp_path / "live")
    artefact.save(trained, tmp_path / "shadow")
    settings = Settings(
        model=str(tmp_path / "live"), shadow_model=str(tmp_path / "shadow"), support_prior=0.75
    )
    app = create_app(settings)
    assert {role: h.model.support_shift for role, h in app.state.models.items()} == {
        "live": pytest.approx(math.log(3.0)),
        "shadow": pytest.approx(math.log(3.0)),
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://classifier") as api:
        await api.post("/v1/model/reload")
        body = (await api.get("/v1/model")).json()
    assert body["support_prior"] == 0.75
    assert app.state.models["live"].model.support_shift == pytest.approx(math.log(3.0))
