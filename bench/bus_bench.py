"""Measure the shared consumer loop against a bare aiokafka consume-transform-produce loop, same run.

Each round pre-fills a fresh input topic with MessageReceived events, then runs every variant on it,
each with its own consumer group and sink topic:

    baseline     getmany -> decode -> transform -> one record batch per partition (send_batch) -> commit
    bare-send    the same with one send() per record (futures gathered), as most aiokafka code does
    bus-redis    ConsumerLoop with RedisDeduper against a real Redis (the production configuration)
    bus-memory   ConsumerLoop with MemoryDeduper (the bus minus the two Redis round trips per batch)

Throughput is timed from just before the poll that returned the first records to the commit of the
last one. The machine is shared, so only ratios taken within one round are compared.

    .venv/bin/python bench/bus_bench.py [--messages 30000] [--rounds 3] [--no-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import aiokafka
import pydantic
import redis as redis_py
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from harness import VARIANT_TIMEOUT_S, Timing, bare_loop
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

from switchboard.bus import ConsumerLoop, make_producer
from switchboard.config import KafkaSettings
from switchboard.contract import (
    Author,
    Channel,
    Classification,
    ClassifiedMessage,
    CloudEvent,
    Message,
    MessageClassified,
    MessageReceived,
    derive_id,
    dlq_topic,
    encode,
    event_type,
)
from switchboard.dedupe import Deduper, MemoryDeduper, RedisDeduper
from switchboard.metrics import BusMetrics
from switchboard.service import settle_heap
from switchboard.stack import (
    broker_binary,
    free_port,
    port_open,
    redis_server_binary,
    running_broker,
    wait_until,
)
from switchboard.topics import ensure_topics

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("baseline", "bare-send", "bus-redis", "bus-memory")
# The bare loops: `baseline` writes one record batch per partition (aiokafka's cheapest way to produce),
# `bare-send` calls send() per record, as most aiokafka code does. Every ratio is taken against `baseline`.
BASELINES = ("baseline", "bare-send")
TARGET_RATIO = 0.80
CONVERSATIONS = 1000
PARTITIONS = 3
SOURCE = "switchboard/bench"
RECEIVED = event_type(MessageReceived)

# A fixed decision: the bench measures the plumbing, not the classifier's model.
CLASSIFICATION = Classification(
    category="support",
    intent="delivery",
    is_complaint=True,
    language="en",
    sentiment="negative",
    sentiment_score=-0.6,
    priority="P2",
    reply_privately=True,
    confidence=0.87,
    model_version="bench-0",
    explanation=["late", "parcel", "refund"],
)

PHRASES = (
    "my parcel was supposed to arrive on Monday and it is still not here",
    "I was charged twice for the same order, please refund one of them",
    "the app keeps logging me out every time I open the basket",
    "love the new collection, any chance of a discount code for loyal customers?",
    "your website is down again, I cannot pay my bill",
    "bonjour, ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?",
    "who do I talk to about a partnership for our podcast?",
    "the replacement you sent is broken as well, this is unacceptable",
)


class Sink(MessageClassified):
    """A MessageClassified published to the variant's own sink topic."""

    sink: ClassVar[str] = ""

    def topic(self) -> str:
        """Return this variant's sink topic."""
        return self.sink


def sink_class(topic: str) -> type[Sink]:
    """Return a Sink subclass that publishes to `topic`."""
    return type(f"Sink_{topic.replace('-', '_').replace('.', '_')}", (Sink,), {"sink": topic})


def make_transform(topic: str) -> Callable[[MessageReceived], CloudEvent]:
    """Build the classifier-shaped transform both loops run: one MessageClassified per message."""
    out = sink_class(topic)

    def transform(event: MessageReceived) -> CloudEvent:
        message = event.data
        return out(
            id=derive_id(event.id, "classified"),
            source=SOURCE,
            subject=message.message_id,
            partitionkey=event.partitionkey,
            data=ClassifiedMessage(message=message, classification=CLASSIFICATION),
        )

    return transform


def received_events(n: int, seed: int) -> Iterator[MessageReceived]:
    """Yield `n` realistic received messages whose keys spread over about 1000 conversations."""
    rng = random.Random(seed)
    base = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    channels = list(Channel)
    for i in range(n):
        conversation = f"conv-{rng.randrange(CONVERSATIONS):04d}"
        channel = rng.choice(channels)
        created = base + timedelta(seconds=i * 0.5)
        text = " ".join(rng.sample(PHRASES, rng.randint(1, 3)))
        author_n = rng.randrange(20_000)
        message = Message(
            message_id=f"msg-{seed}-{i}",
            channel=channel,
            external_id=f"{channel.value}-{rng.getrandbits(48):x}",
            conversation_id=conversation,
            author=Author(
                id=f"author-{author_n}",
                handle=f"@user{author_n}",
                name=f"User {author_n}",
                followers=rng.choice([None, rng.randrange(50), rng.randrange(100_000)]),
            ),
            text=text,
            created_at=created,
            received_at=created + timedelta(milliseconds=rng.randrange(50, 3000)),
            visibility=rng.choice(["public", "private"]),
            in_reply_to=None if rng.random() < 0.7 else f"{channel.value}-{rng.getrandbits(48):x}",
            language=rng.choice([None, "en", "fr"]),
            metadata={"ingest_batch": i // 100, "source_ip_country": rng.choice(["FR", "BE", "GB", "US"])},
        )
        yield MessageReceived(
            id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            source="switchboard/ingest",
            subject=message.message_id,
            time=message.received_at,
            partitionkey=conversation,
            data=message,
        )


@dataclass
class Measurement:
    """One variant's run in one round."""

    variant: str
    round: int
    messages: int
    seconds: float
    cpu_seconds: float
    outputs: int
    polls: int

    @property
    def rate(self) -> float:
        """Return messages per second."""
        return self.messages / self.seconds


@dataclass
class Bench:
    """The broker, Redis and settings one benchmark run shares between rounds."""

    bootstrap: str
    redis: Redis
    messages: int
    prefill_batch_bytes: int = 16384
    variants: tuple[str, ...] = VARIANTS
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    redis_namespaces: list[str] = field(default_factory=list)

    @property
    def kafka(self) -> KafkaSettings:
        """Return the bus settings, library defaults but for the broker address."""
        return KafkaSettings(bootstrap_servers=self.bootstrap, topic_partitions=PARTITIONS)

    def name(self, *parts: object) -> str:
        """Return a topic or group name unique to this run."""
        return "-".join(["bench", self.run_id, *map(str, parts)])


async def prefill(bench: Bench, topic: str, seed: int) -> None:
    """Write `bench.messages` encoded MessageReceived events to `topic`, keyed by conversation."""
    # The record batches written here are what the loops fetch: Tansu answers a fetch with about one
    # batch per partition, so this size sets how many records a poll returns.
    producer = AIOKafkaProducer(
        **bench.kafka.client_options(),
        client_id="bench-prefill",
        acks="all",
        enable_idempotence=False,
        linger_ms=bench.kafka.linger_ms,
        max_batch_size=bench.prefill_batch_bytes,
    )
    await producer.start()
    try:
        pending = []
        for event in received_events(bench.messages, seed):
            pending.append(
                await producer.send(
                    topic,
                    encode(event),
                    key=event.partitionkey.encode(),
                    headers=[("ce_type", RECEIVED.encode())],
                )
            )
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def count_records(bench: Bench, topic: str, expected: int) -> int:
    """Read `topic` from the start and return how many records it holds (stops soon after `expected`)."""
    # Tansu answers ListOffsets(latest) with the last batch's base offset, so end_offsets() undercounts.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bench.bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        count = 0
        deadline = time.monotonic() + 30
        while count < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            count += sum(len(records) for records in batches.values())
        batches = await consumer.getmany(timeout_ms=200)
        return count + sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()


async def run_baseline(bench: Bench, source: str, sink: str, group: str, batched: bool) -> Timing:
    """Consume, transform, produce and commit with bare aiokafka; return its timing."""
    return await bare_loop(bench.kafka, source, group, make_transform(sink), bench.messages, batched)


class TimedLoop(ConsumerLoop):
    """The consumer loop, timed like the baseline: from the first non-empty poll to the last commit."""

    def __init__(self, *, target: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.done = self.polls = 0
        self.started: float | None = None
        self.cpu_started: float | None = None
        self.elapsed: Timing | None = None
        self.finished = asyncio.Event()

    async def step(self) -> int:
        """Run one batch of the real loop and note when the first and the last records were handled."""
        before, cpu_before = time.perf_counter(), time.process_time()
        count = await super().step()
        if count and self.started is None:
            self.started, self.cpu_started = before, cpu_before
        self.done += count
        self.polls += 1 if count else 0
        if self.done >= self.target and self.elapsed is None:
            assert self.started is not None and self.cpu_started is not None
            await self.settle()  # the last commit may still be in flight
            wall, cpu = time.perf_counter() - self.started, time.process_time() - self.cpu_started
            self.elapsed = Timing(wall, cpu, self.polls)
            self.finished.set()
        return count


async def run_bus(bench: Bench, source: str, sink: str, group: str, deduper: Deduper) -> Timing:
    """Run the shared ConsumerLoop with `deduper` until every record is committed; return its timing."""
    transform = make_transform(sink)

    async def on_received(event: MessageReceived) -> list[CloudEvent]:
        return [transform(event)]

    registry = CollectorRegistry()
    producer = make_producer(bench.kafka, group)
    await producer.start()
    loop = TimedLoop(
        target=bench.messages,
        group_id=group,
        handlers={source: {RECEIVED: on_received}},
        kafka=bench.kafka,
        producer=producer,
        deduper=deduper,
        metrics=BusMetrics("bench", registry),
    )
    await loop.start()
    try:
        await asyncio.wait_for(loop.finished.wait(), VARIANT_TIMEOUT_S)
        assert loop.elapsed is not None
        consumed = registry.get_sample_value("switchboard_bench_records_consumed_total", {"topic": source})
        if consumed != bench.messages:
            raise RuntimeError(f"bus consumed {consumed} records, expected {bench.messages}")
        return loop.elapsed
    finally:
        await loop.stop()
        await producer.stop()


def deduper_for(bench: Bench, variant: str, round_no: int) -> Deduper:
    """Return the variant's deduper; Redis keys live in a namespace of this run, round and variant."""
    if variant == "bus-memory":
        return MemoryDeduper()
    namespace = f"bench:{bench.run_id}:{round_no}:{variant}:handled:"
    bench.redis_namespaces.append(namespace)
    return RedisDeduper(bench.redis, namespace, ttl_seconds=3600)


async def run_variant(
    bench: Bench, variant: str, round_no: int, source: str, profiler: cProfile.Profile | None = None
) -> Measurement:
    """Run one variant on the round's input topic, into a sink topic of its own."""
    sink = bench.name(round_no, variant, "out")
    group = bench.name(round_no, variant)
    await ensure_topics(bench.kafka, [sink])
    run = (
        run_baseline(bench, source, sink, group, batched=variant == "baseline")
        if variant in BASELINES
        else run_bus(bench, source, sink, group, deduper_for(bench, variant, round_no))
    )
    # Only the loop itself is profiled, not the topic set-up nor the count of its outputs.
    with profiler if profiler is not None else contextlib.nullcontext():
        timing = await run
    outputs = await count_records(bench, sink, bench.messages)
    if outputs != bench.messages:
        raise RuntimeError(f"{variant} produced {outputs} records, expected {bench.messages}")
    return Measurement(variant, round_no, bench.messages, timing.wall, timing.cpu, outputs, timing.polls)


async def prepare_round(bench: Bench, round_no: int) -> str:
    """Create and fill the round's input topic; return its name."""
    source = bench.name(round_no, "in")
    await ensure_topics(bench.kafka, [source, dlq_topic(source)])
    await prefill(bench, source, seed=round_no)
    return source


async def run_rounds(bench: Bench, rounds: int, say: Callable[[str], None]) -> list[Measurement]:
    """Run every variant in every round, rotating their order so no variant always goes first."""
    results: list[Measurement] = []
    for round_no in range(1, rounds + 1):
        source = await prepare_round(bench, round_no)
        shift = (round_no - 1) % len(bench.variants)
        for variant in bench.variants[shift:] + bench.variants[:shift]:
            m = await run_variant(bench, variant, round_no, source)
            say(
                f"round {round_no} {variant:<14} {m.rate:>6.0f} msg/s  {m.seconds:6.2f}s  "
                f"cpu {m.cpu_seconds / m.messages * 1e6:5.1f} us/msg  "
                f"{m.messages / m.polls:5.1f} records/poll"
            )
            results.append(m)
    return results


async def profile_variants(bench: Bench, say: Callable[[str], None]) -> dict[str, str]:
    """Run each variant once more under cProfile; return their top functions and what the bus adds."""
    source = await prepare_round(bench, 0)
    reports: dict[str, str] = {}
    stats: dict[str, pstats.Stats] = {}
    for variant in bench.variants:
        profiler = cProfile.Profile()
        m = await run_variant(bench, variant, 0, source, profiler)
        say(f"profiled {variant}: {m.rate:.0f} msg/s under cProfile")
        stats[variant] = pstats.Stats(profiler)
        reports[variant] = (
            f"{variant}: {m.rate:.0f} msg/s under cProfile\n"
            + top_functions(stats[variant], "tottime", 15)
            + top_functions(stats[variant], "cumulative", 15)
        )
    for variant in bench.variants[1:]:
        extra = tottime_difference(stats["baseline"], stats[variant], variant, 15)
        reports[f"{variant} minus baseline"] = extra
    return reports


def top_functions(stats: pstats.Stats, key: str, limit: int) -> str:
    """Return the top `limit` lines of a profile sorted by `key`."""
    out = io.StringIO()
    stats.stream = out
    stats.sort_stats(key).print_stats(limit)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return f"-- top {limit} by {key}\n" + "\n".join(lines[start:]).rstrip() + "\n"


def tottime_difference(base: pstats.Stats, bus: pstats.Stats, variant: str, limit: int) -> str:
    """Return the functions whose own time grew most from the baseline to the bus."""

    def own(stats: pstats.Stats) -> dict[tuple[str, int, str], tuple[int, float]]:
        return {func: (nc, tt) for func, (_cc, nc, tt, _ct, _callers) in stats.stats.items()}  # type: ignore[attr-defined]

    base_own, bus_own = own(base), own(bus)
    rows = []
    for func, (calls, tt) in bus_own.items():
        base_calls, base_tt = base_own.get(func, (0, 0.0))
        rows.append((tt - base_tt, calls - base_calls, func))
    rows.sort(reverse=True)
    lines = [
        f"-- top {limit} functions by extra own time, {variant} minus baseline",
        f"{'extra s':>8} {'extra calls':>11}  function",
    ]
    for extra, calls, (file, line, name) in rows[:limit]:
        lines.append(f"{extra:8.3f} {calls:11d}  {short_path(file)}:{line}({name})")
    return "\n".join(lines) + "\n"


def short_path(path: str) -> str:
    """Shorten a site-packages or repository path for a report."""
    for marker in ("site-packages/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarise(results: list[Measurement], rounds: int, variants: tuple[str, ...]) -> dict[str, object]:
    """Compute per-variant medians and the median of the per-round bus/baseline ratios."""
    by = {(m.variant, m.round): m for m in results}
    span = range(1, rounds + 1)

    def median(value: Callable[[Measurement], float]) -> dict[str, float]:
        return {v: statistics.median(value(by[v, r]) for r in span) for v in variants}

    ratios = {v: [by[v, r].rate / by["baseline", r].rate for r in span] for v in variants[1:]}
    return {
        "median_msg_per_s": median(lambda m: m.rate),
        "ratios_per_round": ratios,
        "median_ratio": {v: statistics.median(rs) for v, rs in ratios.items()},
        "cpu_us_per_msg_median": median(lambda m: m.cpu_seconds / m.messages * 1e6),
        "records_per_poll_median": median(lambda m: m.messages / m.polls),
    }


def render_table(results: list[Measurement], summary: dict, rounds: int, variants: tuple[str, ...]) -> str:
    """Return the markdown table of rates per variant and round, medians and ratios."""
    by = {(m.variant, m.round): m for m in results}
    head = ["variant", *(f"round {r} msg/s" for r in range(1, rounds + 1))]
    head += ["median msg/s", "client CPU us/msg", "records/poll", "bus/baseline: median (per round)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in variants:
        ratio = "-"
        if v != "baseline":
            per_round = ", ".join(f"{x:.2f}" for x in summary["ratios_per_round"][v])
            ratio = f"**{summary['median_ratio'][v]:.2f}** ({per_round})"
        cells = [v, *(f"{by[v, r].rate:,.0f}" for r in range(1, rounds + 1))]
        cells += [
            f"{summary['median_msg_per_s'][v]:,.0f}",
            f"{summary['cpu_us_per_msg_median'][v]:.0f}",
            f"{summary['records_per_poll_median'][v]:.0f}",
            ratio,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_info() -> dict[str, object]:
    """Describe the machine and the libraries the figures come from."""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "loadavg_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "aiokafka": aiokafka.__version__,
        "redis_py": redis_py.__version__,
        "hiredis_parser": HIREDIS_AVAILABLE,
        "pydantic": pydantic.VERSION,
        "platform": platform.platform(),
        "broker": "tansu (memory storage), " + Path(broker_binary()).name,
    }


@contextlib.contextmanager
def tansu(workdir: Path) -> Iterator[str]:
    """Run a Tansu broker with memory storage on a free port; yield its bootstrap address."""
    with running_broker(workdir) as bootstrap:
        yield bootstrap


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Yield the URL of the Redis on 127.0.0.1:6379, or of one started on a free port."""
    if port_open("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    port = free_port()
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 15, "redis")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@contextlib.asynccontextmanager
async def redis_client(url: str, bench_namespaces: Callable[[], list[str]]) -> AsyncIterator[Redis]:
    """Open a Redis client; delete the bench's dedupe keys when done."""
    client = Redis.from_url(url)
    try:
        yield client
    finally:
        for namespace in bench_namespaces():
            batch = [k async for k in client.scan_iter(match=f"{namespace}*", count=5000)]
            for i in range(0, len(batch), 5000):
                await client.delete(*batch[i : i + 5000])
        await client.aclose()


def write_reports(report: dict[str, object], markdown: str) -> tuple[Path, Path]:
    """Write the JSON and markdown reports under bench/results/; return their paths."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path, md_path = RESULTS / f"bus-{stamp}.json", RESULTS / f"bus-{stamp}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def render_markdown(report: dict, table: str) -> str:
    """Return the markdown summary of a run."""
    info = report["machine"]
    lines = [
        f"# Bus throughput, {report['started_at']}",
        "",
        f"`{report['command']}`: {report['messages']} messages, {report['rounds']} rounds, "
        f"{PARTITIONS} partitions, {CONVERSATIONS} conversation keys, max_records "
        f"{report['settings']['max_batch_records']}, linger_ms {report['settings']['linger_ms']}, acks=all.",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"aiokafka {info['aiokafka']}, pydantic {info['pydantic']}, redis-py {info['redis_py']} "
        f"(hiredis parser: {'yes' if info['hiredis_parser'] else 'no'}), "
        f"load average at start {info['loadavg_at_start'][0]:.2f}.",
        "",
        table,
        "",
    ]
    for variant, ratio in report["summary"]["median_ratio"].items():
        if variant in BASELINES:
            lines.append(f"- {variant}: {ratio:.0%} of the baseline (a bare loop, for comparison).")
            continue
        verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
        lines.append(f"- {variant}: {ratio:.0%} of the baseline, {verdict} the {TARGET_RATIO:.0%} target.")
    if report.get("profile"):
        lines += ["", "## Profile (one extra round, not in the table)", ""]
        for text in report["profile"].values():
            lines += ["```", text.rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


async def main_async(args: argparse.Namespace, redis_url: str, bootstrap: str) -> dict[str, object]:
    """Run the rounds (and the profile) against the given broker and Redis; return the report."""
    # As `switchboard serve` does for a service; every variant of the run shares it.
    settle_heap()
    say = lambda line: print(line, flush=True)  # noqa: E731
    bench: Bench
    async with redis_client(redis_url, lambda: bench.redis_namespaces) as redis:
        bench = Bench(
            bootstrap=bootstrap,
            redis=redis,
            messages=args.messages,
            prefill_batch_bytes=args.prefill_batch_kb * 1024,
            variants=VARIANTS,
        )
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        results = await run_rounds(bench, args.rounds, say)
        profile = await profile_variants(bench, say) if args.profile else {}
    summary = summarise(results, args.rounds, bench.variants)
    return {
        "started_at": started_at,
        "command": " ".join([".venv/bin/python", "bench/bus_bench.py", *sys.argv[1:]]),
        "messages": args.messages,
        "rounds": args.rounds,
        "variants": list(bench.variants),
        "target_ratio": TARGET_RATIO,
        "machine": machine_info(),
        "settings": bench.kafka.model_dump(include={"linger_ms", "max_batch_records", "poll_timeout_ms"}),
        "results": [asdict(m) | {"msg_per_s": m.rate} for m in results],
        "summary": summary,
        "profile": profile,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=30_000, help="records per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the ratio is the median over them")
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run every variant once more under cProfile (default on)",
    )
    parser.add_argument(
        "--prefill-batch-kb",
        type=int,
        default=16,
        help="producer batch size of the pre-fill; 16 is aiokafka's default, as ingest writes (default 16)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the reports."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bus-bench-") as tmp:
        workdir = Path(tmp)
        with redis_server(workdir) as redis_url, tansu(workdir) as bootstrap:
            print(
                f"broker {bootstrap}, redis {redis_url}, {args.messages} messages x {args.rounds} rounds",
                flush=True,
            )
            report = asyncio.run(main_async(args, redis_url, bootstrap))
    table = render_table(
        [Measurement(**{k: r[k] for k in Measurement.__dataclass_fields__}) for r in report["results"]],
        report["summary"],
        args.rounds,
        tuple(report["variants"]),
    )
    markdown = render_markdown(report, table)
    json_path, md_path = write_reports(report, markdown)
    print()
    print(table)
    for variant, ratio in report["summary"]["median_ratio"].items():
        verdict = "a bare loop" if variant in BASELINES else "meets" if ratio >= TARGET_RATIO else "MISSES"
        print(f"{variant}: {ratio:.0%} of the baseline ({verdict}; target {TARGET_RATIO:.0%})")
    for text in report["profile"].values():
        print()
        print(text.rstrip())
    repo = RESULTS.parent.parent
    print(f"\nwrote {json_path.relative_to(repo)} and {md_path.relative_to(repo)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
