"""Measure the router's real path against a bare consume-transform-produce loop, in the same run.

Each round pre-fills a fresh `messages.classified`-shaped topic with MessageClassified events, then runs,
interleaved (order rotating by round), each with its own consumer group:

    baseline   getmany -> decode -> build one CaseRouted (fixed routing) -> encode -> send -> commit
    router     ConsumerLoop with the router's handler table: the shipped rules (parse_rules), the
               RedisCaseStore against a real Redis (a key prefix of its own), case linking on as by
               default, hand-off off, RedisDeduper; CaseRouted goes to the three queue topics

Every CaseRouted is read back: each input message must have produced exactly one. Then the stages of
the handler are timed one by one outside Kafka, and one more round of each variant runs under cProfile.
The issue's target is 10,000 routed messages/s per router process on this machine.

    .venv/bin/python bench/router_bench.py [--messages 30000] [--rounds 3] [--no-profile] [--own-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from bus_bench import (
    TimedLoop,
    machine_info,
    redis_server,
    tansu,
    top_functions,
    tottime_difference,
)
from harness import VARIANT_TIMEOUT_S, Timing, bare_loop
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from redis.asyncio import Redis

from router import handlers
from router.config import Settings
from router.identifiers import LinkPolicy, identify
from router.metrics import RouterMetrics
from router.rules import SHIPPED_RULES, RuleSet, parse_rules
from router.store import Attached, Attachment, RedisCaseStore
from switchboard.bus import make_producer
from switchboard.config import KafkaSettings, RedisSettings
from switchboard.contract import (
    MARKETING_INTENTS,
    SUPPORT_INTENTS,
    Author,
    CaseRouted,
    Channel,
    Classification,
    ClassifiedMessage,
    CloudEvent,
    Message,
    MessageClassified,
    Queue,
    RoutedCase,
    Topic,
    decode,
    default_visibility,
    derive_id,
    dlq_topic,
    encode,
    event_type,
)
from switchboard.dedupe import RedisDeduper
from switchboard.metrics import BusMetrics
from switchboard.service import redis_client, settle_heap
from switchboard.stack import free_port, port_open, redis_server_binary, wait_until
from switchboard.topics import ensure_topics

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("baseline", "router")
TARGET_RATE = 10_000
PARTITIONS = 3
CLASSIFIED = event_type(MessageClassified)
QUEUE_TOPICS = tuple(q.topic.value for q in Queue)
STAGE_MESSAGES = 10_000
BATCH = 500
# The stages timed alone.
TRANSFORM_STAGE = "baseline transform (RoutedCase + CaseRouted, fixed routing)"
HANDLER_STAGE = f"route_messages with a no-I/O store, {BATCH} per call (rules, links, pydantic, metrics)"
ATTACH_STAGE = "RedisCaseStore.attach_many alone, one message per call"
ATTACH_MANY_STAGE = f"RedisCaseStore.attach_many alone, {BATCH} messages per call"

# The moment of routing cycles through a weekday morning, a weekday night and a Saturday afternoon (Paris),
# so the shipped rules' after-hours paths are taken too whatever time the bench runs.
ROUTING_TIMES = (
    datetime(2026, 5, 5, 8, 0, tzinfo=UTC),
    datetime(2026, 5, 5, 20, 30, tzinfo=UTC),
    datetime(2026, 5, 9, 13, 0, tzinfo=UTC),
)

# What customers write, by language and intent. {order}, {email} and {phone} draw from small pools, so
# messages of different conversations name the same order or address and the router links them.
TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "complaint": (
            "the replacement you sent is broken as well, this is unacceptable",
            "third time I write about this and still no answer, very disappointed",
        ),
        "outage": (
            "your website is down again, I cannot pay my bill",
            "the app has been failing since this morning, error 503 everywhere",
        ),
        "delivery": (
            "my parcel for order {order} was supposed to arrive on Monday and it is still not here",
            "tracking says delivered but there is nothing at my door, order {order}",
        ),
        "billing": (
            "I was charged twice for order {order}, please refund one of them",
            "why is there a second invoice on my card this month?",
        ),
        "account": (
            "I cannot log in any more, please write to me at {email}",
            "my account was locked after the password reset, call me on {phone}",
        ),
        "technical": (
            "the app keeps logging me out every time I open the basket",
            "checkout freezes on the payment page with Safari",
        ),
        "returns_refund": (
            "I sent the jacket back two weeks ago, where is my money for order {order}?",
            "how do I return a pair of shoes that are too small?",
        ),
        "product_question": (
            "does the blue jacket come in size M?",
            "is the leather sofa available in green?",
        ),
        "praise": ("love the new collection, great job team", "the delivery was super fast, thanks!"),
        "campaign": (
            "any chance of a discount code for loyal customers?",
            "when does the winter sale start?",
        ),
        "partnership_press": (
            "who do I talk to about a partnership for our podcast?",
            "journalist here, could I get a quote for an article on your stores?",
        ),
        "chatter": ("this ad is everywhere on my feed lol", "who else is watching the live stream tonight?"),
        "spam": ("WIN FREE FOLLOWERS now, click the link in bio", "crypto giveaway, send 1 BTC get 2 back"),
    },
    "fr": {
        "complaint": (
            "le produit de remplacement est cassé aussi, c'est inadmissible",
            "troisième message sans réponse, je suis très déçue",
        ),
        "outage": (
            "le site est en panne depuis ce matin, impossible de payer",
            "l'appli affiche une erreur à chaque connexion depuis hier",
        ),
        "delivery": (
            "bonjour, ma commande {order} n'est toujours pas arrivée, pouvez-vous vérifier ?",
            "le suivi indique livré mais je n'ai rien reçu, commande {order}",
        ),
        "billing": (
            "vous m'avez débité deux fois pour la commande {order}, je veux être remboursée",
            "pourquoi une deuxième facture ce mois-ci ?",
        ),
        "account": (
            "je n'arrive plus à me connecter, écrivez-moi à {email}",
            "mon compte est bloqué, rappelez-moi au {phone}",
        ),
        "technical": (
            "l'application plante à chaque fois que j'ouvre le panier",
            "le paiement reste bloqué sur la page de validation",
        ),
        "returns_refund": (
            "j'ai renvoyé la veste il y a deux semaines, où en est la commande {order} ?",
            "comment retourner des chaussures trop petites ?",
        ),
        "product_question": (
            "est-ce que la veste bleue existe en taille M ?",
            "le canapé en cuir existe-t-il en vert ?",
        ),
        "praise": ("bravo pour la nouvelle collection, j'adore", "livraison super rapide, merci !"),
        "campaign": (
            "vous avez un code promo pour les clients fidèles ?",
            "les soldes d'hiver commencent quand ?",
        ),
        "partnership_press": (
            "je suis journaliste, qui contacter pour une interview ?",
            "nous aimerions vous proposer un partenariat pour notre podcast",
        ),
        "chatter": ("cette pub passe partout en ce moment mdr", "qui regarde le live ce soir ?"),
        "spam": (
            "GAGNEZ des abonnés gratuits, cliquez sur le lien",
            "cadeau crypto, envoyez 1 BTC recevez-en 2",
        ),
    },
}
# Asides that make the keyword rules (outage-words, billing, press-words) match other intents too.
ASIDES = {
    "en": (
        "and by the way the site is down",
        "I was overcharged last month too",
        "we would love an interview",
    ),
    "fr": (
        "et au passage le site est hors service",
        "j'ai aussi été prélevé deux fois",
        "une interview presse ?",
    ),
}
# Authors of the shipped rules' `brand-vips` list: (channel, id, handle).
VIPS = (
    (Channel.X, "x:1000001", "@lemondefr"),
    (Channel.FACEBOOK, "facebook:2000002", None),
    (Channel.X, "x:3000003", "@BFMTV"),
    (Channel.INSTAGRAM, "instagram:4000004", "hugodecrypte"),
)
CHANNEL_WEIGHTS = {
    Channel.X: 20,
    Channel.FACEBOOK: 10,
    Channel.INSTAGRAM: 10,
    Channel.MESSENGER: 8,
    Channel.WHATSAPP: 10,
    Channel.EMAIL: 20,
    Channel.CHAT: 10,
    Channel.SMS: 5,
    Channel.REVIEW: 7,
}
INTENTS = SUPPORT_INTENTS + MARKETING_INTENTS
INTENT_WEIGHTS = (8, 4, 14, 10, 6, 6, 7, 6, 8, 6, 3, 6, 4)  # SUPPORT_INTENTS, then MARKETING_INTENTS
NEGATIVE = {"complaint": 0.95, "outage": 0.9, "delivery": 0.7, "billing": 0.7, "returns_refund": 0.5}


# --- The input ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """One customer thread: its channel, author, language and what it is mostly about."""

    id: str
    channel: Channel
    author: Author
    language: str
    theme: str
    visibility: str


def conversations(count: int, tag: str, rng: random.Random) -> list[Conversation]:
    """Return `count` conversations; authors repeat across a few, so some link through their account."""
    channels, weights = list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values())
    authors = max(1, count * 3 // 4)
    out = []
    for k in range(count):
        if rng.random() < 0.01:
            channel, author_id, handle = rng.choice(VIPS)
        else:
            channel, a = rng.choices(channels, weights)[0], rng.randrange(authors)
            author_id = {
                Channel.EMAIL: f"client{a}@mail.example",
                Channel.SMS: f"+336{a:08d}",
                Channel.WHATSAPP: f"+336{a:08d}",
            }.get(channel, f"{channel.value}:{a}")
            handle = f"@user{a}" if channel in (Channel.X, Channel.INSTAGRAM) else None
        author = Author(
            id=author_id,
            handle=handle,
            name=f"Customer {k}",
            followers=rng.choice([None, rng.randrange(500), rng.randrange(200_000)]),
        )
        language = rng.choices(("fr", "en", "other"), (55, 40, 5))[0]
        visibility = default_visibility(channel)
        if channel == Channel.X and rng.random() < 0.3:
            visibility = "private"
        theme = rng.choices(INTENTS, INTENT_WEIGHTS)[0]
        out.append(Conversation(f"{channel.value}:{tag}:c{k}", channel, author, language, theme, visibility))
    return out


SHIPPED = parse_rules(SHIPPED_RULES.read_text(encoding="utf-8"), "bundled routing rules")
# The confidence under which the shipped rules send a message of each category to review.
UNSURE_BELOW = {category: SHIPPED.unsure_below(category) for category in ("support", "marketing")}


def classification(
    intent: str, language: str, visibility: str, text: str, rng: random.Random
) -> Classification:
    """Return a plausible classification of a message about `intent`, unsure about one time in seven.

    Unsure means below the shipped rules' review threshold for the category (marketing asks for more).
    """
    category = "support" if intent in SUPPORT_INTENTS else "marketing"
    threshold = UNSURE_BELOW[category]
    if intent == "praise":
        sentiment = "positive"
    elif rng.random() < NEGATIVE.get(intent, 0.25 if category == "support" else 0.1):
        sentiment = "negative"
    else:
        sentiment = rng.choice(("neutral", "neutral", "positive"))
    score = {"negative": (-1.0, -0.2), "neutral": (-0.2, 0.2), "positive": (0.2, 1.0)}[sentiment]
    priority = {"outage": "P1", "complaint": "P2"}.get(
        intent, rng.choice(("P2", "P3", "P3", "P4")) if category == "support" else rng.choice(("P3", "P4"))
    )
    complaint = intent == "complaint" or (
        sentiment == "negative" and category == "support" and rng.random() < 0.5
    )
    unsure = rng.random() < 1 / 7
    return Classification(
        category=category,
        intent=intent,
        is_complaint=complaint,
        language=language,
        sentiment=sentiment,
        sentiment_score=round(rng.uniform(*score), 3),
        priority=priority,
        reply_privately=category == "support" and visibility == "public",
        confidence=round(rng.uniform(0.30, threshold - 0.001) if unsure else rng.uniform(threshold, 0.99), 3),
        model_version="bench-0",
        explanation=rng.sample(text.split(), min(3, len(text.split()))),
    )


def classified_events(n: int, seed: int, tag: str) -> list[MessageClassified]:
    """Return `n` classified messages (FR/EN) of about n/3 conversations, in the order they arrive."""
    rng = random.Random(seed)
    threads = conversations(max(1, n // 3), tag, rng)
    orders, people = max(1, n // 6), max(1, n // 10)
    base = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
    events = []
    for i in range(n):
        conv = threads[rng.randrange(len(threads))]
        intent = conv.theme if rng.random() < 0.75 else rng.choices(INTENTS, INTENT_WEIGHTS)[0]
        texts = TEXTS["fr" if conv.language == "fr" else "en"]
        order = 10_000 + rng.randrange(orders)
        person = rng.randrange(people)
        digits = f"{person:08d}"
        text = rng.choice(texts[intent]).format(
            order=rng.choice((f"#A-{order}", f"A-{order}", f"{order}0")),
            email=f"client{person}@mail.example",
            phone="06 " + " ".join(digits[j : j + 2] for j in range(0, 8, 2)),
        )
        if rng.random() < 0.1:
            text += ", " + rng.choice(ASIDES["fr" if conv.language == "fr" else "en"])
        created = base + timedelta(seconds=i * 0.5)
        message = Message(
            message_id=f"msg-{tag}-{i}",
            channel=conv.channel,
            external_id=f"{conv.channel.value}-{rng.getrandbits(48):x}",
            conversation_id=conv.id,
            author=conv.author,
            text=text,
            created_at=created,
            received_at=created + timedelta(milliseconds=rng.randrange(50, 3000)),
            visibility=conv.visibility,
            in_reply_to=None if rng.random() < 0.6 else f"{conv.channel.value}-{rng.getrandbits(48):x}",
            language=rng.choice([None, conv.language if conv.language != "other" else None]),
            metadata={"ingest_batch": i // 100, "source_ip_country": rng.choice(["FR", "BE", "GB", "US"])},
        )
        data = ClassifiedMessage(
            message=message,
            classification=classification(intent, conv.language, conv.visibility, text, rng),
        )
        events.append(
            MessageClassified(
                id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                source="switchboard/classifier",
                subject=message.message_id,
                time=message.received_at + timedelta(milliseconds=40),
                partitionkey=conv.id,
                data=data,
            )
        )
    return events


# --- The run -----------------------------------------------------------------------------------------------


@dataclass
class Run:
    """The broker, Redis and rules one benchmark run shares between rounds."""

    bootstrap: str
    redis_url: str
    redis: Redis
    messages: int
    rules: RuleSet
    # Whether Redis is this bench's alone: only then are its command counts and CPU the router's.
    private_redis: bool = False
    # The router handles the next poll while the previous one is committed (the opt-in overlap).
    overlap_commits: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def kafka(self) -> KafkaSettings:
        """Return the bus settings, library defaults but for the broker address (and the overlap)."""
        return KafkaSettings(
            bootstrap_servers=self.bootstrap,
            topic_partitions=PARTITIONS,
            overlap_commits=self.overlap_commits,
        )

    @property
    def key_space(self) -> str:
        """Return the prefix of every Redis key this run writes."""
        return f"bench:router:{self.run_id}:"

    def name(self, *parts: object) -> str:
        """Return a topic or group name unique to this run."""
        return "-".join(["bench", self.run_id, *map(str, parts)])

    def settings(self, label: str) -> Settings:
        """Return the router's settings (defaults: linking on, no hand-off) on this run's broker and keys."""
        redis = RedisSettings(url=SecretStr(self.redis_url), key_prefix=f"{self.key_space}{label}:")
        return Settings(kafka=self.kafka, redis=redis)


@dataclass
class Round:
    """A round's input: its topic, the routed ids it must produce, and the encoded events."""

    number: int
    source: str
    activity: str
    expected: set[str]
    raw: list[bytes]


async def prepare_round(run: Run, number: int, keep_raw: bool = False) -> Round:
    """Create and fill the round's input topic (and an empty activity topic) with fresh messages."""
    source, activity = run.name(number, "classified"), run.name(number, "activity")
    await ensure_topics(run.kafka, [source, dlq_topic(source), activity, dlq_topic(activity)])
    events = classified_events(run.messages, seed=number, tag=f"{run.run_id}-{number}")
    raws = [encode(e) for e in events]
    producer = AIOKafkaProducer(
        **run.kafka.client_options(), client_id="bench-prefill", acks="all", enable_idempotence=False
    )
    await producer.start()
    try:
        pending = []
        for event, raw in zip(events, raws, strict=True):
            key, headers = event.partitionkey.encode(), [("ce_type", CLASSIFIED.encode())]
            pending.append(await producer.send(source, raw, key=key, headers=headers))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    expected = {derive_id(e.id, "routed") for e in events}
    return Round(number, source, activity, expected, raws if keep_raw else [])


@dataclass
class Readback:
    """What a variant's output topics hold for one round."""

    records: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    queues: Counter[str] = field(default_factory=Counter)
    new_cases: int = 0
    linked: int = 0

    @property
    def exactly_once(self) -> bool:
        """Tell whether every expected id came out once and nothing else did."""
        return not (self.missing or self.duplicates or self.unexpected)


class Reader:
    """Reads topics from the start and, call after call, checks what arrived since the last call."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        self._bootstrap, self._topics = bootstrap, topics
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> Reader:
        """Assign every partition of the topics, from their first offset."""
        # Tansu answers ListOffsets(latest) with the last batch's base offset, so end_offsets()
        # undercounts: records are counted by reading them.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        await self._consumer.start()
        self._consumer.assign([TopicPartition(t, p) for t in self._topics for p in range(PARTITIONS)])
        return self

    async def stop(self) -> None:
        """Close the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()

    async def collect(self, expected: set[str], timeout: float = 60.0) -> Readback:
        """Read until every expected id arrived and a poll comes back empty; tally what was read."""
        assert self._consumer is not None
        seen: Counter[str] = Counter()
        out = Readback()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=10_000)
            records = [r for rs in batches.values() for r in rs]
            for record in records:
                event = json.loads(record.value)
                data = event["data"]
                seen[event["id"]] += 1
                out.rules[data["rule"]] += 1
                out.queues[data["queue"]] += 1
                out.new_cases += data["is_new_case"]
                out.linked += "linked" in data.get("tags", ())
            out.records += len(records)
            if not records and len(seen.keys() & expected) == len(expected):
                break
        out.missing = len(expected - seen.keys())
        out.duplicates = sum(n - 1 for i, n in seen.items() if i in expected and n > 1)
        out.unexpected = sum(n for i, n in seen.items() if i not in expected)
        return out


@dataclass
class Measurement:
    """One variant's run in one round."""

    variant: str
    round: int
    messages: int
    seconds: float
    cpu_seconds: float
    polls: int
    outputs: int
    exactly_once: bool
    redis_cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Return messages per second."""
        return self.messages / self.seconds


# --- The baseline ------------------------------------------------------------------------------------------


class SinkRouted(CaseRouted):
    """A CaseRouted published to the baseline's own sink topic."""

    sink: ClassVar[str] = ""

    def topic(self) -> str:
        """Return the baseline's sink topic."""
        return self.sink


def baseline_transform(sink: str) -> Callable[[MessageClassified], CloudEvent]:
    """Build the bare transform: one CaseRouted per message, a fixed routing, no rules and no Redis."""
    out = type(f"Sink_{sink.replace('-', '_')}", (SinkRouted,), {"sink": sink})

    def transform(event: MessageClassified) -> CloudEvent:
        message, c = event.data.message, event.data.classification
        case_id = derive_id(message.conversation_id, "case")
        return out(
            id=derive_id(event.id, "routed"),
            source=handlers.SOURCE,
            subject=case_id,
            partitionkey=case_id,
            data=RoutedCase(
                case_id=case_id,
                message_id=message.message_id,
                conversation_id=message.conversation_id,
                channel=message.channel,
                external_id=message.external_id,
                text=message.text,
                author=message.author,
                visibility=message.visibility,
                queue=Queue.CUSTOMER_SERVICE if c.category == "support" else Queue.MARKETING,
                priority=c.priority,
                rule="baseline",
                is_new_case=False,
                message_created_at=message.created_at,
                classification=c,
            ),
        )

    return transform


async def run_baseline(run: Run, source: str, sink: str, group: str) -> Timing:
    """Consume, transform, produce and commit with bare aiokafka, as bus_bench's baseline does."""
    return await bare_loop(run.kafka, source, group, baseline_transform(sink), run.messages)


# --- The router --------------------------------------------------------------------------------------------


def router_deps(run: Run, settings: Settings, cases: Any, metrics: RouterMetrics) -> handlers.Deps:
    """Wire the router's handler dependencies as its app does, hand-off off, with a cycling clock."""
    policy = LinkPolicy.from_entries(settings.link_ignore, settings.link_cases)
    return handlers.Deps(
        cases=cases,
        rules=lambda: run.rules,
        window_seconds=settings.case_window_seconds,
        clock=itertools.cycle(ROUTING_TIMES).__next__,
        on_routed=metrics.observe,
        on_rerouted=metrics.observe_reroute,
        identify=lambda classified: identify(classified, policy),
        on_linked=metrics.observe_link,
        handoff=None,
    )


async def redis_cpu(redis: Redis) -> float:
    """Return the Redis server's CPU seconds so far (user + system)."""
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def run_router(run: Run, rnd: Round, group: str) -> tuple[Timing, float]:
    """Run the router's ConsumerLoop and handler table until every record is committed.

    Returns its timing and the Redis server's CPU seconds meanwhile (a shared Redis counts others too).
    """
    settings = run.settings(f"r{rnd.number}")
    redis = redis_client(settings)
    registry = CollectorRegistry()
    bus_metrics = BusMetrics("router", registry)
    deps = router_deps(
        run, settings, RedisCaseStore(redis, settings.redis.key_prefix), RouterMetrics(registry)
    )
    table = handlers.handler_table(deps)
    # The router's own table; only the topic names are this round's.
    table = {
        rnd.source: table[Topic.MESSAGES_CLASSIFIED.value],
        rnd.activity: table[Topic.CASES_ACTIVITY.value],
    }
    deduper = RedisDeduper(
        redis, f"{settings.redis.key_prefix}router:handled:", settings.redis.dedupe_ttl_seconds
    )
    producer = make_producer(settings.kafka, "router")
    await producer.start()
    loop = TimedLoop(
        target=run.messages,
        group_id=group,
        handlers=table,
        kafka=settings.kafka,
        producer=producer,
        deduper=deduper,
        metrics=bus_metrics,
    )
    cpu_before = await redis_cpu(run.redis)
    await loop.start()
    try:
        await asyncio.wait_for(loop.finished.wait(), VARIANT_TIMEOUT_S)
        assert loop.elapsed is not None
        cpu = await redis_cpu(run.redis) - cpu_before
        consumed = registry.get_sample_value(
            "switchboard_router_records_consumed_total", {"topic": rnd.source}
        )
        failures = sum(
            s.value
            for metric in registry.collect()
            for s in metric.samples
            if s.name
            in ("switchboard_router_records_dead_lettered_total", "switchboard_router_bus_errors_total")
        )
        if consumed != run.messages or failures:
            raise RuntimeError(
                f"router consumed {consumed}/{run.messages}, {failures:.0f} errors or dead letters"
            )
        return loop.elapsed, cpu
    finally:
        await loop.stop()
        await producer.stop()
        await redis.aclose()


async def run_variant(
    run: Run, variant: str, rnd: Round, queues: Reader, profiler: cProfile.Profile | None = None
) -> tuple[Measurement, Readback]:
    """Run one variant on the round's input and read back what it produced."""
    group = run.name(rnd.number, variant)
    redis_seconds = 0.0
    # Only the loop itself is profiled, not the topic set-up nor the read-back.
    if variant == "baseline":
        sink = run.name(rnd.number, "baseline-out")
        await ensure_topics(run.kafka, [sink])
        with profiler if profiler is not None else contextlib.nullcontext():
            timing = await run_baseline(run, rnd.source, sink, group)
        reader = await Reader(run.bootstrap, [sink]).start()
        try:
            back = await reader.collect(rnd.expected)
        finally:
            await reader.stop()
    else:
        with profiler if profiler is not None else contextlib.nullcontext():
            timing, redis_seconds = await run_router(run, rnd, group)
        back = await queues.collect(rnd.expected)
    if not back.exactly_once or back.records != run.messages:
        raise RuntimeError(
            f"{variant}: {back.records} records for {run.messages} messages, {back.missing} missing, "
            f"{back.duplicates} duplicated, {back.unexpected} unexpected"
        )
    m = Measurement(
        variant,
        rnd.number,
        run.messages,
        timing.wall,
        timing.cpu,
        timing.polls,
        back.records,
        True,
        redis_seconds,
    )
    return m, back


async def run_rounds(
    run: Run, rounds: int, queues: Reader, say: Callable[[str], None]
) -> tuple[list[Measurement], dict[str, Any]]:
    """Run both variants in every round, alternating which goes first; tally the router's outputs."""
    results: list[Measurement] = []
    rules: Counter[str] = Counter()
    routed = {"records": 0, "new_cases": 0, "linked": 0, "queues": Counter()}
    for number in range(1, rounds + 1):
        rnd = await prepare_round(run, number)
        order = VARIANTS if number % 2 else VARIANTS[::-1]
        for variant in order:
            m, back = await run_variant(run, variant, rnd, queues)
            say(
                f"round {number} {variant:<9} {m.rate:>6.0f} msg/s  {m.seconds:6.2f}s  "
                f"cpu {m.cpu_seconds / m.messages * 1e6:5.1f} us/msg  "
                f"{m.messages / m.polls:5.1f} records/poll  "
                f"{back.records} outputs, exactly once"
            )
            results.append(m)
            if variant == "router":
                rules.update(back.rules)
                routed["queues"].update(back.queues)
                for key in ("records", "new_cases", "linked"):
                    routed[key] += getattr(back, key)
    return results, {"rules": dict(rules.most_common()), **routed, "queues": dict(routed["queues"])}


# --- Stages in isolation and the profile ------------------------------------------------------------------


class NoStore:
    """A case store that opens a case per message without I/O: the handler minus Redis."""

    async def attach_many(
        self, attachments: Sequence[Attachment], window_seconds: int, now: datetime
    ) -> list[Attached]:
        """Return a new case derived from each message."""
        return [Attached(derive_id(a.message.message_id, "case"), True) for a in attachments]


async def time_stages(run: Run, raws: list[bytes], say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Time each stage of the router's per-message work alone, outside Kafka; return µs per message."""
    n = len(raws)
    rows: list[dict[str, Any]] = []

    def row(stage: str, started: float, round_trips: float | None = None, note: str = "") -> None:
        us = (time.perf_counter() - started) / n * 1e6
        rows.append({"stage": stage, "us_per_msg": us, "round_trips": round_trips, "note": note})
        say(f"stage {stage:<62} {us:7.1f} us/msg")

    t = time.perf_counter()
    events = [decode(raw) for raw in raws]
    row("decode (validate_json)", t)
    transform = baseline_transform("unused")
    t = time.perf_counter()
    for e in events:
        transform(e)
    row(TRANSFORM_STAGE, t)
    clock = itertools.cycle(ROUTING_TIMES).__next__
    t = time.perf_counter()
    decisions = [run.rules.decide(e.data, clock()) for e in events]
    row("rules: RuleSet.decide", t)
    settings = run.settings("stages")
    window = settings.case_window_seconds
    policy = LinkPolicy.from_entries(settings.link_ignore, settings.link_cases)
    t = time.perf_counter()
    links = [identify(e.data, policy) for e in events]
    row("links: identify", t)
    deps = router_deps(run, settings, NoStore(), RouterMetrics(CollectorRegistry()))
    t = time.perf_counter()
    outputs = [
        out
        for i in range(0, n, BATCH)
        for (out,) in await handlers.route_messages(events[i : i + BATCH], deps)
    ]
    row(HANDLER_STAGE, t)
    t = time.perf_counter()
    for out in outputs:
        encode(out)
    row("encode (model_dump_json)", t)

    redis = redis_client(settings)
    try:
        store = RedisCaseStore(redis, f"{run.key_space}stages-handler:")
        deps = router_deps(run, settings, store, RouterMetrics(CollectorRegistry()))
        t = time.perf_counter()
        for i in range(0, n, BATCH):
            await handlers.route_messages(events[i : i + BATCH], deps)
        row(f"route_messages with RedisCaseStore, {BATCH} per call", t, 1 / BATCH)

        lasts = [o.data.model_dump_json(exclude=handlers.CASE_FIELDS) for o in outputs]
        items = [
            Attachment(e.data.message, d, last, ids)
            for e, d, last, ids in zip(events, decisions, lasts, links, strict=True)
        ]
        nows = [ROUTING_TIMES[i % len(ROUTING_TIMES)] for i in range(n)]
        store = RedisCaseStore(redis, f"{run.key_space}stages-attach:")
        t = time.perf_counter()
        for item, now in zip(items, nows, strict=True):
            await store.attach_many([item], window, now)
        row(ATTACH_STAGE, t, 1.0)
        store = RedisCaseStore(redis, f"{run.key_space}stages-attach-many:")
        t = time.perf_counter()
        for i in range(0, n, BATCH):
            await store.attach_many(items[i : i + BATCH], window, nows[i])
        row(ATTACH_MANY_STAGE, t, 1 / BATCH)
    finally:
        await redis.aclose()
    return rows


# (label, file suffix, function names); cumulative time per message under cProfile.
COMPONENTS = (
    ("route_messages (the handler)", "router/handlers.py", ("route_messages",)),
    ("  rules: RuleSet.decide", "router/rules.py", ("decide",)),
    ("  links: identify", "router/identifiers.py", ("identify",)),
    ("  cases: RedisCaseStore.attach_many", "router/store.py", ("attach_many",)),
    ("    EVALSHA: AsyncScript.__call__", "redis/commands/core.py", ("__call__",)),
    ("  metrics: RouterMetrics.observe", "router/metrics.py", ("observe",)),
    ("redis-py pipelines: Pipeline.execute", "redis/asyncio/client.py", ("execute",)),
    ("dedupe: RedisDeduper.seen + mark", "switchboard/dedupe.py", ("seen", "mark")),
    ("pydantic: BaseModel.__init__ (all)", "pydantic/main.py", ("__init__",)),
    ("pydantic: model_dump_json (all)", "pydantic/main.py", ("model_dump_json",)),
    ("pydantic: model_copy", "pydantic/main.py", ("model_copy",)),
    ("decode (validate_json)", "switchboard/contract.py", ("decode",)),
    ("encode", "switchboard/contract.py", ("encode",)),
    ("produce: KafkaPublisher.send_many", "switchboard/bus.py", ("send_many",)),
    ("consume: AIOKafkaConsumer.getmany", "aiokafka/consumer/consumer.py", ("getmany",)),
)
EPOLL = "<method 'poll' of 'select.epoll' objects>"


def components(stats: pstats.Stats, n: int) -> list[dict[str, Any]]:
    """Return the cumulative time per message of the router's parts, and the time spent waiting."""
    table = stats.stats  # type: ignore[attr-defined]
    rows = []
    for label, suffix, names in COMPONENTS:
        ct = sum(v[3] for (file, _, name), v in table.items() if file.endswith(suffix) and name in names)
        rows.append({"part": label, "us_per_msg": ct / n * 1e6})
    wait = sum(v[2] for (_, _, name), v in table.items() if name == EPOLL)
    rows.append({"part": "waiting: epoll (broker, Redis), own time", "us_per_msg": wait / n * 1e6})
    return rows


def redis_calls(stats: pstats.Stats) -> tuple[int, int]:
    """Count the commands redis-py packed and the round trips it made (one per command or pipeline)."""
    commands = trips = 0
    for (file, _, name), (_cc, nc, _tt, _ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if not file.endswith("redis/asyncio/connection.py"):
            continue
        if name == "pack_commands":
            trips += nc
        elif name == "pack_command":
            commands += nc
            for (_, _, caller), value in callers.items():
                if caller != "pack_commands":
                    trips += value[1] if isinstance(value, tuple) else value
    return commands, trips


def produce_requests(stats: pstats.Stats) -> int:
    """Count the requests the producer sent (aiokafka builds one per request with a sync create_request)."""
    return sum(
        nc
        for (file, _, name), (_cc, nc, *_rest) in stats.stats.items()  # type: ignore[attr-defined]
        if file.endswith("aiokafka/producer/sender.py") and name == "create_request"
    )


async def profile_round(run: Run, queues: Reader, say: Callable[[str], None]) -> dict[str, Any]:
    """Time the stages alone, then run each variant once more under cProfile; return the findings."""
    rnd = await prepare_round(run, 0, keep_raw=True)
    stages = await time_stages(run, rnd.raw[:STAGE_MESSAGES], say)
    stats: dict[str, pstats.Stats] = {}
    rates: dict[str, float] = {}
    server: dict[str, float] = {}
    for variant in VARIANTS:
        profiler = cProfile.Profile()
        before = await run.redis.info("commandstats")
        m, _ = await run_variant(run, variant, rnd, queues, profiler)
        after = await run.redis.info("commandstats")
        if variant == "router":
            server = {
                name.removeprefix("cmdstat_"): (
                    after[name]["calls"] - before.get(name, {"calls": 0})["calls"]
                )
                / run.messages
                for name in after
            }
        rates[variant] = m.rate
        stats[variant] = pstats.Stats(profiler)
        say(f"profiled {variant}: {m.rate:.0f} msg/s under cProfile")
    commands, trips = redis_calls(stats["router"])
    router = stats["router"]
    return {
        "stages": stages,
        "stage_messages": len(rnd.raw[:STAGE_MESSAGES]),
        "rates_under_profile": rates,
        "components": components(router, run.messages),
        "wall_us_per_msg_under_profile": 1e6 / rates["router"],
        "redis_client_commands_per_msg": commands / run.messages,
        "produce_requests_per_msg": {v: produce_requests(stats[v]) / run.messages for v in VARIANTS},
        "redis_round_trips_per_msg": trips / run.messages,
        "redis_server_calls_per_msg": {
            k: round(v, 3) for k, v in sorted(server.items(), key=lambda kv: -kv[1]) if v >= 0.005
        },
        "top": top_functions(router, "tottime", 20) + top_functions(router, "cumulative", 25),
        "minus_baseline": tottime_difference(stats["baseline"], router, "router", 20),
    }


# --- Report ------------------------------------------------------------------------------------------------


def summarise(results: list[Measurement], rounds: int) -> dict[str, Any]:
    """Compute per-variant medians and the median of the per-round router/baseline ratios."""
    by = {(m.variant, m.round): m for m in results}
    span = range(1, rounds + 1)

    def median(value: Callable[[Measurement], float]) -> dict[str, float]:
        return {v: statistics.median(value(by[v, r]) for r in span) for v in VARIANTS}

    ratios = [by["router", r].rate / by["baseline", r].rate for r in span]
    return {
        "median_msg_per_s": median(lambda m: m.rate),
        "ratios_per_round": ratios,
        "median_ratio": statistics.median(ratios),
        "cpu_us_per_msg_median": median(lambda m: m.cpu_seconds / m.messages * 1e6),
        "wall_us_per_msg_median": median(lambda m: m.seconds / m.messages * 1e6),
        "records_per_poll_median": median(lambda m: m.messages / m.polls),
        "redis_cpu_us_per_msg_median": statistics.median(
            by["router", r].redis_cpu_seconds / by["router", r].messages * 1e6 for r in span
        ),
    }


def render_table(results: list[Measurement], summary: dict[str, Any], rounds: int, private: bool) -> str:
    """Return the markdown table of rates per variant and round, medians and the ratio."""
    by = {(m.variant, m.round): m for m in results}
    head = ["variant", *(f"round {r} msg/s" for r in range(1, rounds + 1))]
    head += [
        "median msg/s",
        "client CPU us/msg",
        "Redis CPU us/msg" + ("" if private else " (shared Redis: others' too)"),
        "records/poll",
        "router/baseline: median (per round)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in VARIANTS:
        ratio, redis = "-", "-"
        if v == "router":
            per_round = ", ".join(f"{x:.2f}" for x in summary["ratios_per_round"])
            ratio = f"**{summary['median_ratio']:.2f}** ({per_round})"
            redis = f"{summary['redis_cpu_us_per_msg_median']:.0f}"
        cells = [v, *(f"{by[v, r].rate:,.0f}" for r in range(1, rounds + 1))]
        cells += [
            f"**{summary['median_msg_per_s'][v]:,.0f}**",
            f"{summary['cpu_us_per_msg_median'][v]:.0f}",
            redis,
            f"{summary['records_per_poll_median'][v]:.0f}",
            ratio,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_profile(profile: dict[str, Any], private: bool) -> str:
    """Return the stage timings and the profile's breakdown as markdown."""
    lines = [
        f"## Where the time goes, per message ({profile['stage_messages']} messages, stages timed alone)",
        "",
        "| stage | us/msg | Redis round trips/msg | |",
        "|---|---|---|---|",
    ]
    for row in profile["stages"]:
        trips = "-" if row["round_trips"] is None else f"{row['round_trips']:.3g}"
        lines.append(f"| {row['stage']} | {row['us_per_msg']:.1f} | {trips} | {row['note']} |")
    rate = profile["rates_under_profile"]["router"]
    lines += [
        "",
        f"## cProfile of one router round ({rate:,.0f} msg/s under the profiler, "
        f"{profile['wall_us_per_msg_under_profile']:.0f} us/msg wall)",
        "",
        f"redis-py: {profile['redis_client_commands_per_msg']:.2f} commands and "
        f"**{profile['redis_round_trips_per_msg']:.2f} round trips per message**. Redis server calls per "
        "message (scripts' inner calls included"
        + ("" if private else "; a shared Redis: other clients' calls too")
        + "): "
        + ", ".join(f"{k} {v:g}" for k, v in profile["redis_server_calls_per_msg"].items())
        + ".",
        "",
        "Kafka produce requests per message: "
        + ", ".join(f"{v} {n:.3f}" for v, n in profile["produce_requests_per_msg"].items())
        + ".",
        "",
        "| part (cumulative, a coroutine counts only while it runs) | us/msg |",
        "|---|---|",
    ]
    lines += [f"| {row['part']} | {row['us_per_msg']:.1f} |" for row in profile["components"]]
    lines += ["", "```", profile["minus_baseline"].rstrip(), "```", "", "```", profile["top"].rstrip(), "```"]
    return "\n".join(lines)


def verdict_lines(summary: dict[str, Any]) -> list[str]:
    """Say plainly whether the target is met."""
    rate, base = summary["median_msg_per_s"]["router"], summary["median_msg_per_s"]["baseline"]
    met = "meets" if rate >= TARGET_RATE else "DOES NOT MEET"
    lines = [
        f"- router: {rate:,.0f} msg/s median, {summary['median_ratio']:.0%} of the bare loop "
        f"({base:,.0f} msg/s) in the same rounds: it {met} the {TARGET_RATE:,} msg/s target."
    ]
    if base < TARGET_RATE:
        lines.append(
            f"- The bare consume-transform-produce loop itself ran at {base:,.0f} msg/s: on this machine "
            f"{TARGET_RATE:,} msg/s is at or above what one Python process moves through Kafka at all."
        )
    return lines


def render_markdown(report: dict[str, Any], table: str) -> str:
    """Return the markdown summary of a run."""
    info, routed = report["machine"], report["routed"]
    lines = [
        f"# Router throughput, {report['started_at']}",
        "",
        f"`{report['command']}`: {report['messages']} messages per round ({report['conversations']} "
        f"conversations), {report['rounds']} rounds, {PARTITIONS} partitions, max_records "
        f"{report['settings']['max_batch_records']}, linger_ms {report['settings']['linger_ms']}, acks=all. "
        "Shipped rules, RedisCaseStore, linking on, hand-off off. The router "
        + (
            "handles the next poll while the previous one is committed (`--overlap-commits`)."
            if report["settings"].get("overlap_commits", False)
            else "commits each poll before reading the next."
        ),
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"aiokafka {info['aiokafka']}, "
        f"pydantic {info['pydantic']}, redis-py {info['redis_py']} (hiredis parser: "
        f"{'yes' if info['hiredis_parser'] else 'no'}), Redis {report['redis_version']} "
        f"({'private to the bench' if report['private_redis'] else 'shared, 127.0.0.1:6379'}), "
        "load average at start "
        f"{info['loadavg_at_start'][0]:.2f}.",
        "",
        table,
        "",
        *verdict_lines(report["summary"]),
        "",
        f"Every message produced exactly one CaseRouted (read back: {routed['records']:,} records over "
        f"{report['rounds']} rounds; {routed['new_cases']:,} opened a case, "
        f"{routed['records'] - routed['new_cases']:,} joined one, "
        f"{routed['linked']:,} of them by an identifier). "
        "Queues: " + ", ".join(f"{k} {v:,}" for k, v in routed["queues"].items()) + ".",
        "",
        "Rules that decided: " + ", ".join(f"{k} {v:,}" for k, v in routed["rules"].items()) + ".",
        "",
    ]
    if report.get("profile"):
        lines += [render_profile(report["profile"], report["private_redis"]), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_reports(report: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write the JSON and markdown reports under bench/results/; return their paths."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path, md_path = RESULTS / f"router-{stamp}.json", RESULTS / f"router-{stamp}.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


async def delete_keys(redis: Redis, prefix: str) -> int:
    """Delete every key under `prefix` with SCAN + UNLINK; return how many there were."""
    deleted, batch = 0, []
    async for key in redis.scan_iter(match=f"{prefix}*", count=10_000):
        batch.append(key)
        if len(batch) >= 5000:
            deleted += await redis.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await redis.unlink(*batch)
    return deleted


async def main_async(args: argparse.Namespace, redis_url: str, bootstrap: str) -> dict[str, Any]:
    """Run the rounds (and the profile) against the given broker and Redis; return the report."""
    # As `switchboard serve` does for a service; every variant of the run shares it.
    settle_heap()
    say = lambda line: print(line, flush=True)  # noqa: E731
    redis = Redis.from_url(redis_url)
    rules = SHIPPED
    run = Run(
        bootstrap,
        redis_url,
        redis,
        args.messages,
        rules,
        private_redis=args.own_redis,
        overlap_commits=args.overlap_commits,
    )
    await ensure_topics(run.kafka, [*QUEUE_TOPICS, *map(dlq_topic, QUEUE_TOPICS)])
    queues = await Reader(bootstrap, QUEUE_TOPICS).start()
    try:
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        results, routed = await run_rounds(run, args.rounds, queues, say)
        profile = await profile_round(run, queues, say) if args.profile else {}
        version = (await redis.info("server"))["redis_version"]
    finally:
        await queues.stop()
        deleted = await delete_keys(redis, run.key_space)
        left = [k async for k in redis.scan_iter(match=f"{run.key_space}*", count=10_000)]
        say(f"deleted {deleted} Redis keys under {run.key_space}; {len(left)} left")
        await redis.aclose()
    summary = summarise(results, args.rounds)
    report: dict[str, Any] = {
        "started_at": started_at,
        "command": " ".join([".venv/bin/python", "bench/router_bench.py", *sys.argv[1:]]),
        "messages": args.messages,
        "conversations": max(1, args.messages // 3),
        "rounds": args.rounds,
        "target_msg_per_s": TARGET_RATE,
        "machine": machine_info(),
        "redis_version": version,
        "private_redis": args.own_redis,
        "settings": run.kafka.model_dump(
            include={"linger_ms", "max_batch_records", "poll_timeout_ms", "overlap_commits"}
        ),
        "results": [asdict(m) | {"msg_per_s": m.rate} for m in results],
        "summary": summary,
        "routed": routed,
        "profile": profile,
        "redis_keys_deleted": deleted,
    }
    return report


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """Run a redis-server of this bench's own on a free port, without persistence; yield its URL."""
    port = free_port()
    command = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen([*command, "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 15, "redis")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30_000, help="messages per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the ratio is the median over them")
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the stages alone and run each variant once more under cProfile (default on)",
    )
    parser.add_argument(
        "--own-redis",
        action="store_true",
        help="start a private redis-server on a free port instead of using the one on 127.0.0.1:6379, "
        "so other clients neither slow it down nor show up in its command counts",
    )
    parser.add_argument(
        "--overlap-commits",
        action="store_true",
        help="the router handles the next poll while the previous one is acknowledged and committed "
        "(SWITCHBOARD_KAFKA_OVERLAP_COMMITS=true); by default each poll is committed before the next",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables and write the reports."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        workdir = Path(tmp)
        redis = private_redis(workdir) if args.own_redis else redis_server(workdir)
        with redis as redis_url, tansu(workdir) as bootstrap:
            print(
                f"broker {bootstrap}, redis {redis_url}, {args.messages} messages x {args.rounds} rounds",
                flush=True,
            )
            report = asyncio.run(main_async(args, redis_url, bootstrap))
    results = [Measurement(**{k: r[k] for k in Measurement.__dataclass_fields__}) for r in report["results"]]
    table = render_table(results, report["summary"], args.rounds, args.own_redis)
    markdown = render_markdown(report, table)
    json_path, md_path = write_reports(report, markdown)
    print()
    print(markdown)
    repo = RESULTS.parent.parent
    print(f"wrote {json_path.relative_to(repo)} and {md_path.relative_to(repo)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
