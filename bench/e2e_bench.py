"""Measure the whole embedded stack end to end: webhook (ingest's HTTP API) to the queue topics.

The stack runs as `switchboard up` runs it (Tansu, a private Redis with AOF, the four services as their
own processes), on free ports. In one run:

    baselines     the bare aiokafka loop of bench/harness.py and a bare FastAPI endpoint (wrk), at the start
                  and at the end, so every figure has a yardstick measured in the same conditions
    burst         messages posted through the batch endpoint as fast as ingest takes them: the pipeline's
                  capacity, and Redis memory per open case and per open SLA timer
    sustained     open-loop POST /v1/messages at a fixed rate, probed up and bisected, each probe on a
                  fresh stack: the highest rate at which neither the summed consumer lag nor the backlog
                  before the queue topics grows; then the same for the batch endpoint
    levels        10%, 50% and 90% of each sustained rate: latency per message (p50/p99), achieved rate
    scaling       bursts on stacks whose topics have 1, 3 and 6 partitions, and with 2 and 3 routers

Latency per message is the CreateTime of its CaseRouted record (set by the router's producer) minus the
time its request was due in the send schedule. CPU is read per process from /proc.

    .venv/bin/python bench/e2e_bench.py            # about 10 minutes
    .venv/bin/python bench/e2e_bench.py --quick    # smoke run, about 2.5 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from bus_bench import make_transform, received_events
from e2e_load import (
    Clock,
    CpuMeter,
    PhaseRecords,
    QueueReader,
    RequestLog,
    Scrape,
    burst,
    log_tail,
    message_items,
    open_loop,
    request_bodies,
    scrape,
    trough_growth,
)
from harness import bare_loop
from ingest_bench import machine_info, percentile
from redis.asyncio import Redis

import switchboard
from switchboard.config import KafkaSettings
from switchboard.contract import encode
from switchboard.service import settle_heap
from switchboard.stack import SERVICES, EmbeddedStack, StackConfig, free_port, wait_until
from switchboard.topics import ensure_topics

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
LEVELS = (0.10, 0.50, 0.90)
STACK_PROCESSES = ("ingest", "classifier", "router", "sla", "tansu", "redis")
PREFIX = "switchboard:"
SETTINGS_PREFIXES = ("SWITCHBOARD_", "INGEST_", "CLASSIFIER_", "ROUTER_", "SLA_")
# A probe sustains its rate when ingest accepts at least this share of it and none of the summed lag
# gauges, the backlog (accepted, not yet on a queue topic) and the SLA service's lag has troughs rising
# faster than GROWTH of the rate per second (MIN_GROWTH records/s at least). Sampled every SAMPLE_S.
ACCEPTED_SHARE = 0.95
GROWTH = 0.05
MIN_GROWTH = 5.0
SAMPLE_S = 0.5


# -- the stack ---------------------------------------------------------------------------------------


@dataclass
class Stack:
    """One embedded stack, its reader of the queue topics and the clients the bench talks to it with."""

    embedded: EmbeddedStack
    partitions: int
    reader: QueueReader
    redis: Redis
    http: httpx.AsyncClient
    routers: list[str] = field(default_factory=lambda: ["router"])

    def url(self, name: str) -> str:
        """Return the base URL of a service process."""
        return self.embedded.url(name)

    @property
    def ingest_port(self) -> int:
        """Return ingest's port."""
        return self.embedded.config.ports["ingest"]

    @property
    def consumers(self) -> dict[str, str]:
        """Return the base URL of every consuming process (each router instance by its own name)."""
        names = ["classifier", *self.routers, "sla"]
        return {name: self.url(name) for name in names}

    async def metrics(self, clock: Clock) -> Scrape:
        """Read the lag gauges and record counters of every process."""
        return await scrape(self.http, self.consumers, self.url("ingest"), clock)

    def meter(self) -> CpuMeter:
        """Return a CPU meter over every process of the stack (the broker as `tansu`)."""
        pids = {p.name: p.popen.pid for p in self.embedded.processes}
        pids["tansu"] = pids.pop("broker")
        return CpuMeter(pids)

    def check_alive(self) -> None:
        """Raise, with its log's end, when a process of the stack has exited."""
        for process in self.embedded.processes:
            if process.popen.poll() is not None:
                raise RuntimeError(
                    f"{process.name} exited ({process.popen.returncode}):\n{log_tail(process.log)}"
                )


def child_env() -> dict[str, str]:
    """Return the environment the stack's processes inherit: this checkout first on PYTHONPATH.

    Settings the caller's shell exports are dropped, so only the stack's own apply.
    """
    for name in [n for n in os.environ if n.startswith(SETTINGS_PREFIXES)]:
        del os.environ[name]
    paths = [str(REPO / "libs"), str(REPO / "services")]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(paths)}


async def start_stack(bench: Bench, partitions: int) -> Stack:
    """Start broker, Redis and the four services on free ports, with topics of `partitions` partitions."""
    # `switchboard up` creates the topics with the partitions its environment names.
    os.environ["SWITCHBOARD_KAFKA_TOPIC_PARTITIONS"] = str(partitions)
    state = Path(tempfile.mkdtemp(prefix=f"p{partitions}-", dir=bench.workdir))
    config = StackConfig(
        kafka_port=free_port(),
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        ports={s: free_port() for s in SERVICES},
        state_dir=state,
        env=bench.env,
    )
    embedded = EmbeddedStack(config, say=lambda _line: None)
    started = time.monotonic()
    await asyncio.to_thread(embedded.start)
    bench.say(
        f"stack with {partitions}-partition topics ready in {time.monotonic() - started:.0f} s ({state})"
    )
    reader = QueueReader(config.bootstrap, bench.run, bench.clock)
    await reader.start()
    return Stack(
        embedded, partitions, reader, Redis.from_url(config.redis_url), httpx.AsyncClient(timeout=10)
    )


async def stop_stack(stack: Stack) -> None:
    """Stop the reader, the clients and every process of the stack: the services together, then the rest."""
    await stack.reader.stop()
    await stack.http.aclose()
    await stack.redis.aclose()
    services = [p.popen for p in stack.embedded.processes if p.name not in ("broker", "redis")]
    for popen in services:
        if popen.poll() is None:
            popen.terminate()
    await asyncio.to_thread(lambda: [stop(popen) for popen in services])
    await asyncio.to_thread(stack.embedded.stop)


async def add_router(bench: Bench, stack: Stack) -> str:
    """Start one more router process on a free port, in the same consumer group; return its name."""
    name = f"router-{len(stack.routers) + 1}"
    port = free_port()
    embedded = stack.embedded
    embedded.config.ports[name] = port
    env = embedded.config.service_env("router")
    env["ROUTER_PORT"] = str(port)
    # The stack's own spawn, so the process logs beside the others and stops with them.
    embedded._spawn(name, [sys.executable, "-m", "switchboard", "serve", "router"], env=env)
    await asyncio.to_thread(embedded.wait_ready, name, 60)
    stack.routers.append(name)
    return name


# -- one run -----------------------------------------------------------------------------------------


@dataclass
class Bench:
    """What the whole run shares."""

    args: argparse.Namespace
    workdir: Path
    env: dict[str, str]
    code: str
    shared: Stack | None = None
    clock: Clock = field(default_factory=Clock)
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    phases: int = 0
    started: float = field(default_factory=time.monotonic)

    def say(self, line: str) -> None:
        """Print a progress line with the seconds since the start."""
        print(f"[{time.monotonic() - self.started:4.0f}s] {line}", flush=True)

    def tag(self) -> str:
        """Return a new phase tag (letters and digits only: it is part of each external_id)."""
        self.phases += 1
        return f"ph{self.phases}"


async def settle(stack: Stack, timeout: float) -> bool:
    """Wait until everything ingest accepted is on a queue topic and the SLA service consumed all of it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        metrics = await stack.metrics(Clock())
        if stack.reader.records >= metrics.accepted and metrics.consumed["sla"] >= stack.reader.records:
            return True
        await asyncio.sleep(0.25)
    return False


def spread(values: list[float]) -> dict[str, float]:
    """Return p50, p90, p99 and max of values (NaN when there are none)."""
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return {"n": 0, "p50": math.nan, "p90": math.nan, "p99": math.nan, "max": math.nan}
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
    }


def per_message(used: dict[str, float], messages: int) -> dict[str, float]:
    """Return microseconds of CPU per message for each process, routers summed under `router`."""
    if messages <= 0:
        return {}
    out = {k: v / messages * 1e6 for k, v in used.items() if k != "wall"}
    routers = [k for k in out if k.startswith("router-")]
    if routers:
        out["router_instances"] = {k: out[k] for k in ["router", *routers]}
        out["router"] = sum(out.pop(k) for k in ["router", *routers])
    return out


@dataclass
class Delivery:
    """Whether every accepted message of a phase reached a queue topic exactly once."""

    accepted: int
    routed: int
    missing: int
    duplicates: int
    routed_without_answer: int


def delivery(log: RequestLog, records: PhaseRecords) -> Delivery:
    """Compare what ingest accepted with what reached the queue topics."""
    k = log.per_request
    accepted = missing = unanswered = 0
    for i in range(records.count):
        ok = log.accepted[i // k] > 0
        routed = not math.isnan(records.created[i])
        accepted += ok
        missing += ok and not routed
        unanswered += routed and not ok
    return Delivery(accepted, records.routed, missing, records.duplicates, unanswered)


def latencies(log: RequestLog, records: PhaseRecords, start: float, end: float) -> dict[str, Any]:
    """Return the latency spread of the messages due in [start, end): to CreateTime and to the reader."""
    k = log.per_request
    created, seen, http = [], [], []
    for i in range(records.count):
        due = log.due[i // k]
        if start <= due < end and log.accepted[i // k] > 0:
            created.append(records.created[i] - due)
            seen.append(records.seen[i] - due)
    for due, done, accepted in zip(log.due, log.done, log.accepted, strict=True):
        if start <= due < end and accepted:
            http.append(done - due)
    return {"to_queue": spread(created), "to_reader": spread(seen), "http_answer": spread(http)}


@dataclass
class LoadRun:
    """One open-loop run at a fixed offered rate."""

    kind: str
    label: str
    offered: float
    per_request: int
    warm_s: float
    window_s: float
    accepted_rate: float
    routed_rate: float
    lag_growth: float
    counted_lag_growth: float
    backlog_growth: float
    sla_lag_growth: float
    lag_max: float
    counted_lag_max: float
    backlog_max: float
    sustained: bool
    latency_s: dict[str, Any]
    send_delay_p99_s: float
    errors: dict[str, int]
    non_2xx: int
    cpu_s: dict[str, float]
    cpu_us_per_msg: dict[str, Any]
    messages_in_window: int
    delivery: dict[str, int]
    settled: bool
    samples: list[tuple[float, ...]]


async def load_run(
    bench: Bench, stack: Stack, kind: str, label: str, rate: float, warm: float, window: float
) -> LoadRun:
    """Post at `rate` messages/s for warm + window seconds; measure the window; wait until it drained."""
    per_request = 1 if kind == "single" else bench.args.batch_size
    requests = math.ceil(rate * (warm + window) / per_request)
    tag = bench.tag()
    items = message_items(bench.run, tag, requests * per_request, seed=bench.phases)
    bodies = request_bodies(items, per_request)
    records = stack.reader.watch(tag, len(items))
    log = RequestLog.empty(len(bodies), per_request)
    path = "/v1/messages" if per_request == 1 else "/v1/messages/batch"
    clock = bench.clock
    start = clock.now() + 0.3
    meter = stack.meter()
    client = asyncio.create_task(
        open_loop(
            "127.0.0.1",
            stack.ingest_port,
            path,
            bodies,
            per_request,
            rate / per_request,
            clock,
            log,
            start,
            bench.args.connections,
        )
    )
    w0, w1 = start + warm, start + warm + window
    # (seconds into the window, lag gauges, lag from the counters, backlog before the queue topics, SLA lag)
    samples: list[tuple[float, ...]] = []
    await asyncio.sleep(max(0.0, clock.to_mono(w0) - time.monotonic()))
    cpu0 = meter.sample()
    tick = w0
    while True:
        metrics = await stack.metrics(clock)
        backlog = sum(log.accepted) - records.routed
        sla_lag = stack.reader.records - metrics.consumed["sla"]
        samples.append((metrics.at - w0, metrics.total_lag, metrics.counted_lag(), backlog, sla_lag))
        tick += SAMPLE_S
        if tick > w1 + 1e-6:
            break
        await asyncio.sleep(max(0.0, clock.to_mono(tick) - time.monotonic()))
    await asyncio.sleep(max(0.0, clock.to_mono(w1) - time.monotonic()))
    cpu1 = meter.sample()
    await client
    settled = await settle(stack, bench.args.drain_timeout)
    used = CpuMeter.used(cpu0, cpu1)
    accepted = log.accepted_between(w0, w1)
    routed = sum(1 for t in records.created if w0 <= t < w1)
    lag_growth, counted_growth, backlog_growth, sla_growth = (
        trough_growth((row[0], row[i]) for row in samples) for i in range(1, 5)
    )
    allowed = max(MIN_GROWTH, GROWTH * rate)
    growth = max(lag_growth, backlog_growth, sla_growth)
    sustained = accepted / window >= ACCEPTED_SHARE * rate and growth <= allowed
    result = LoadRun(
        kind=kind,
        label=label,
        offered=rate,
        per_request=per_request,
        warm_s=warm,
        window_s=window,
        accepted_rate=accepted / window,
        routed_rate=routed / window,
        lag_growth=lag_growth,
        counted_lag_growth=counted_growth,
        backlog_growth=backlog_growth,
        sla_lag_growth=sla_growth,
        lag_max=max(row[1] for row in samples),
        counted_lag_max=max(row[2] for row in samples),
        backlog_max=max(row[3] for row in samples),
        sustained=sustained,
        latency_s=latencies(log, records, w0, w1),
        send_delay_p99_s=spread(log.send_delays())["p99"],
        errors=dict(log.errors),
        non_2xx=sum(1 for s in log.status if s and s >= 300),
        cpu_s=used,
        cpu_us_per_msg=per_message(used, accepted),
        messages_in_window=accepted,
        delivery=asdict(delivery(log, records)),
        settled=settled,
        samples=samples,
    )
    lat = result.latency_s["to_queue"]
    cpu = result.cpu_us_per_msg
    bench.say(
        f"{kind:<6} {label:<10} offered {rate:6.0f}/s  accepted {result.accepted_rate:6.0f}/s  routed "
        f"{result.routed_rate:6.0f}/s  growth/s: gauges {lag_growth:+5.1f} backlog {backlog_growth:+5.1f} "
        f"sla {sla_growth:+5.1f} (counters {counted_growth:+5.1f})  "
        f"p50 {lat['p50'] * 1000:6.0f} ms  p99 {lat['p99'] * 1000:6.0f} ms  "
        f"{'SUSTAINED' if sustained else 'not sustained'}  other tenants {used['other'] / window:.2f} cores  "
        f"CPU us/msg: "
        + " ".join(
            f"{k} {cpu.get(k, 0):.0f}" for k in ("ingest", "classifier", "router", "sla", "tansu", "redis")
        )
    )
    return result


@dataclass
class BurstRun:
    """Messages posted through the batch endpoint as fast as ingest takes them, and how fast they drain."""

    label: str
    partitions: int
    routers: int
    messages: int
    accepted: int
    ingest_seconds: float
    routed_rate: float
    overall_rate: float
    latency_s: dict[str, float]
    cpu_s: dict[str, float]
    cpu_us_per_msg: dict[str, Any]
    router_share: dict[str, float]
    lag_peak: float
    counted_lag_peak: float
    delivery: dict[str, int]
    settled: bool
    samples: list[tuple[float, float, float]]


async def burst_run(bench: Bench, stack: Stack, label: str, messages: int, quiet: bool = False) -> BurstRun:
    """Post `messages` in batches, 4 requests in flight; time them to the queue topics and their CPU.

    While the stack drains them, the summed lag gauges and the lag the counters give are sampled twice a
    second.
    """
    per_request = bench.args.batch_size
    tag = bench.tag()
    items = message_items(bench.run, tag, messages, seed=bench.phases)
    bodies = request_bodies(items, per_request)
    records = stack.reader.watch(tag, len(items))
    meter = stack.meter()
    before = await stack.metrics(bench.clock)
    samples: list[tuple[float, float, float]] = []
    cpu0 = meter.sample()
    started = bench.clock.now()
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            metrics = await stack.metrics(bench.clock)
            samples.append((metrics.at - started, metrics.total_lag, metrics.counted_lag()))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    log = await burst(
        "127.0.0.1", stack.ingest_port, "/v1/messages/batch", bodies, per_request, 4, bench.clock
    )
    settled = await settle(stack, bench.args.drain_timeout)
    cpu1 = meter.sample()
    done.set()
    await sampler
    after = await stack.metrics(bench.clock)
    used = CpuMeter.used(cpu0, cpu1)
    created = sorted(t for t in records.created if not math.isnan(t))
    first_due = min(log.due)
    if len(created) >= 10:
        lo, hi = created[len(created) // 10], created[len(created) * 9 // 10]
        routed_rate = (len(created) * 9 // 10 - len(created) // 10) / max(hi - lo, 1e-6)
    else:
        routed_rate = math.nan
    consumed = {r: after.consumed[r] - before.consumed.get(r, 0.0) for r in stack.routers}
    total = sum(consumed.values()) or 1.0
    answered = [d for d in log.done if not math.isnan(d)]
    result = BurstRun(
        label=label,
        partitions=stack.partitions,
        routers=len(stack.routers),
        messages=messages,
        accepted=sum(log.accepted),
        ingest_seconds=(max(answered) - first_due) if answered else math.nan,
        routed_rate=routed_rate,
        overall_rate=len(created) / (created[-1] - first_due) if created else math.nan,
        latency_s=spread([c - first_due for c in created]),
        cpu_s=used,
        cpu_us_per_msg=per_message(used, sum(log.accepted)),
        router_share={r: c / total for r, c in consumed.items()},
        lag_peak=max((g for _, g, _ in samples), default=0.0),
        counted_lag_peak=max((c for _, _, c in samples), default=0.0),
        delivery=asdict(delivery(log, records)),
        settled=settled,
        samples=samples,
    )
    if not quiet:
        cpu = result.cpu_us_per_msg
        bench.say(
            f"burst  {label:<10} {messages} messages, ingest took them in {result.ingest_seconds:.1f} s; "
            f"routed {routed_rate:6.0f} msg/s (10-90%), {result.overall_rate:6.0f} msg/s overall; lag peak "
            f"{result.lag_peak:.0f} (gauges) {result.counted_lag_peak:.0f} (counters); other tenants "
            f"{used['other'] / used['wall']:.2f} cores; CPU us/msg: "
            + " ".join(
                f"{k} {cpu.get(k, 0):.0f}"
                for k in ("ingest", "classifier", "router", "sla", "tansu", "redis")
            )
            + "; router shares "
            + ", ".join(f"{k} {v:.0%}" for k, v in result.router_share.items())
        )
    return result


async def warm_up(bench: Bench, stack: Stack, messages: int = 300) -> None:
    """Post a few hundred messages, singly and in a batch, and wait until all are routed."""
    tag = bench.tag()
    items = message_items(bench.run, tag, messages, seed=0)
    stack.reader.watch(tag, messages)
    log = RequestLog.empty(messages, 1)
    await open_loop(
        "127.0.0.1",
        stack.ingest_port,
        "/v1/messages",
        request_bodies(items, 1),
        1,
        150.0,
        bench.clock,
        log,
        bench.clock.now(),
        16,
    )
    if not await settle(stack, 60):
        raise RuntimeError("the warm-up messages did not all reach the queue topics within 60 s")


# -- Redis memory ------------------------------------------------------------------------------------


def key_family(key: str) -> str:
    """Return a key's family: its name with the ids left out (`router:case:*:messages`)."""
    parts = key.removeprefix(PREFIX).split(":")
    if len(parts) <= 2 and parts[0] == "sla" and parts[-1] in ("due", "open", "firing"):
        return ":".join(parts)
    if parts[0] == "router" and len(parts) > 1 and parts[1] == "queue":
        return "router:queue:*"
    family = ":".join(parts[:2]) + ":*"
    if parts[-1] in ("channels", "messages") and len(parts) > 3:
        family += ":" + parts[-1]
    return family


async def memory_state(redis: Redis) -> dict[str, Any]:
    """Return used_memory, the counts of cases and timers, and keys and bytes per key family."""
    info = await redis.info("memory")
    families: dict[str, list[int]] = {}
    batch: list[bytes] = []

    async def measure(keys: list[bytes]) -> None:
        pipe = redis.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        for key, size in zip(keys, await pipe.execute(), strict=True):
            entry = families.setdefault(key_family(key.decode()), [0, 0])
            entry[0] += 1
            entry[1] += size or 0

    async for key in redis.scan_iter(count=5000):
        batch.append(key)
        if len(batch) >= 2000:
            await measure(batch)
            batch = []
    if batch:
        await measure(batch)
    return {
        "used_memory": int(info["used_memory"]),
        "used_memory_dataset": int(info.get("used_memory_dataset", 0)),
        "cases": families.get("router:case:*", [0, 0])[0],
        "timers": int(await redis.scard(f"{PREFIX}sla:open")),
        "families": {k: {"keys": v[0], "bytes": v[1]} for k, v in sorted(families.items())},
    }


def memory_figures(before: dict[str, Any], after: dict[str, Any], messages: int) -> dict[str, Any]:
    """Return bytes per open case and per open timer, from used_memory and from the key families."""
    cases = after["cases"] - before["cases"]
    timers = after["timers"] - before["timers"]
    grown = after["used_memory"] - before["used_memory"]
    owner = {"router": "case", "sla": "timer"}

    def family_bytes(kind: str) -> int:
        return sum(
            v["bytes"] - before["families"].get(k, {"bytes": 0})["bytes"]
            for k, v in after["families"].items()
            if owner.get(k.split(":")[0]) == kind and not k.startswith("router:handoff")
        )

    other = grown - family_bytes("case") - family_bytes("timer")
    return {
        "messages": messages,
        "cases_opened": cases,
        "timers_opened": timers,
        "used_memory_grown": grown,
        "bytes_per_case_all_state": grown / cases if cases else math.nan,
        "bytes_per_case_router_keys": family_bytes("case") / cases if cases else math.nan,
        "bytes_per_timer_sla_keys": family_bytes("timer") / timers if timers else math.nan,
        "bytes_per_message_rest": other / messages if messages else math.nan,
        "before": before,
        "after": after,
    }


# -- baselines ---------------------------------------------------------------------------------------


async def bare_aiokafka(bench: Bench, stack: Stack, messages: int) -> dict[str, float]:
    """Run the bare consume-transform-produce loop of bench/harness.py on `messages` prefilled records."""
    tag = bench.tag()
    source, sink = f"bench-e2e-{bench.run}-{tag}-in", f"bench-e2e-{bench.run}-{tag}-out"
    kafka = KafkaSettings(bootstrap_servers=stack.embedded.config.bootstrap, topic_partitions=3)
    await ensure_topics(kafka, [source, sink])
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", linger_ms=kafka.linger_ms)
    await producer.start()
    try:
        pending = []
        for event in received_events(messages, seed=bench.phases):
            pending.append(await producer.send(source, encode(event), key=event.partitionkey.encode()))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    timing = await bare_loop(kafka, source, f"bench-e2e-{bench.run}-{tag}", make_transform(sink), messages)
    result = {
        "messages": messages,
        "msg_per_s": messages / timing.wall,
        "cpu_us_per_msg": timing.cpu / messages * 1e6,
        "msg_per_s_per_core": messages / timing.cpu,
    }
    bench.say(
        f"bare aiokafka loop: {result['msg_per_s']:,.0f} msg/s, {result['cpu_us_per_msg']:.0f} us CPU/msg "
        f"({result['msg_per_s_per_core']:,.0f} msg/s per core)"
    )
    return result


@dataclass
class BareServer:
    """The bare FastAPI endpoint of bench/ingest_bench.py, in its own process."""

    port: int
    popen: subprocess.Popen[bytes]


def start_bare(bench: Bench) -> BareServer:
    """Start the bare FastAPI app the way ingest_bench.py serves it; wait until it answers."""
    port = free_port()
    env = {**os.environ, **bench.env}
    argv = [sys.executable, str(REPO / "bench" / "ingest_bench.py"), "--serve-bare", str(port)]
    log = bench.workdir / "bare.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def ready() -> bool:
        if popen.poll() is not None:
            raise RuntimeError(f"the bare app exited:\n{log_tail(log)}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 30, "bare app", interval=0.2)
    return BareServer(port, popen)


WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
"""


def wrk_bare(bench: Bench, bare: BareServer, seconds: float) -> dict[str, float]:
    """Load the bare app with wrk (one thread, 64 connections) for `seconds`; return req/s and CPU/req."""
    script = bench.workdir / "bare.lua"
    script.write_text(WRK_LUA % message_items(bench.run, "bare", 1, seed=1)[0], encoding="utf-8")
    meter = CpuMeter({"bare": bare.popen.pid})
    before = meter.sample()
    argv = ["wrk", "-t1", "-c64", f"-d{seconds:g}s", "--latency", "-s", str(script)]
    out = subprocess.run([*argv, f"http://127.0.0.1:{bare.port}/v1/messages"], capture_output=True, text=True)
    used = CpuMeter.used(before, meter.sample())
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)[1])
    requests = int(re.search(r"(\d+) requests in", out.stdout)[1])
    result = {
        "req_per_s": rate,
        "cpu_us_per_req": used["bare"] / requests * 1e6,
        "req_per_s_per_core": requests / used["bare"],
    }
    bench.say(
        f"bare FastAPI endpoint (wrk, 64 connections): {rate:,.0f} req/s, {result['cpu_us_per_req']:.0f} us "
        f"CPU/req"
    )
    return result


async def bare_latency(bench: Bench, bare: BareServer, rate: float, seconds: float) -> dict[str, float]:
    """Post to the bare app open-loop at `rate` with this bench's client; return the answer latencies."""
    n = max(1, int(rate * seconds))
    bodies = request_bodies(message_items(bench.run, "bare", n, seed=2), 1)
    log = RequestLog.empty(n, 1)
    await open_loop(
        "127.0.0.1",
        bare.port,
        "/v1/messages",
        bodies,
        1,
        rate,
        bench.clock,
        log,
        bench.clock.now() + 0.1,
        bench.args.connections,
    )
    return spread([d - s for d, s in zip(log.done, log.due, strict=True) if not math.isnan(d)])


# -- the search for the sustained rate ---------------------------------------------------------------


async def find_sustained(
    bench: Bench, kind: str, first: float, probes: int
) -> tuple[float, bool, list[LoadRun]]:
    """Probe rates up by 40% until one is not sustained, then bisect.

    Return the highest sustained rate, whether a higher probe failed (else it is only a lower bound),
    and the probes.

    Each probe runs on a fresh stack: Tansu's memory storage costs more per record the more records a
    partition holds, so a stack that has taken the earlier probes would make the later ones look slower.
    """
    args = bench.args
    runs: list[LoadRun] = []
    low, high = 0.0, math.inf
    rate = first
    for n in range(1, probes + 1):
        async with stack_for(bench) as stack:
            run = await load_run(bench, stack, kind, f"probe {n}", rate, args.warm, args.window)
        runs.append(run)
        if run.sustained:
            low = max(low, rate)
        else:
            high = min(high, rate)
        if high == math.inf:
            rate = rate * 1.4
        elif low == 0.0:
            rate = rate * 0.7
        elif (high - low) / low <= 0.08:
            break
        else:
            rate = (low + high) / 2
        rate = float(round(rate))
    return low, high != math.inf, runs


@contextlib.asynccontextmanager
async def fresh_stack(bench: Bench, partitions: int, routers: int = 1) -> AsyncIterator[Stack]:
    """Start a stack, warm it up (and every router instance), yield it, stop it."""
    stack = await start_stack(bench, partitions)
    try:
        await warm_up(bench, stack)
        while len(stack.routers) < routers:
            await add_router(bench, stack)
        if routers > 1:
            await warm_routers(bench, stack)
        yield stack
    finally:
        await stop_stack(stack)


@contextlib.asynccontextmanager
async def stack_for(bench: Bench) -> AsyncIterator[Stack]:
    """Yield a fresh stack for one phase, or with --no-fresh the run's shared one (started once)."""
    if bench.args.fresh:
        async with fresh_stack(bench, bench.args.partitions) as stack:
            yield stack
        return
    if bench.shared is None:
        bench.shared = await start_stack(bench, bench.args.partitions)
        await warm_up(bench, bench.shared)
    yield bench.shared


# -- the whole run -----------------------------------------------------------------------------------


async def run(bench: Bench) -> dict[str, Any]:
    """Run every phase; return the report."""
    args = bench.args
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/e2e_bench.py", *sys.argv[1:]]),
        "options": vars(args),
        "machine": machine_info(),
        "code": bench.code,
    }
    bare = start_bare(bench)
    try:
        async with stack_for(bench) as stack:
            meter = stack.meter()
            before = meter.sample()
            await asyncio.sleep(3)
            idle = CpuMeter.used(before, meter.sample())
            report["idle_cores"] = {k: v / idle["wall"] for k, v in idle.items() if k != "wall"}
            baselines = {"aiokafka": [await bare_aiokafka(bench, stack, args.bare_messages)]}
            baselines["fastapi"] = [await asyncio.to_thread(wrk_bare, bench, bare, args.bare_seconds)]
            memory_before = await memory_state(stack.redis)
            first = await burst_run(bench, stack, "capacity", args.burst)
            await asyncio.sleep(1.0)
            report["memory"] = memory_figures(memory_before, await memory_state(stack.redis), args.burst)
        mem = report["memory"]
        bench.say(
            f"Redis: {mem['cases_opened']} cases and {mem['timers_opened']} timers opened by {args.burst} "
            f"messages; {mem['bytes_per_case_all_state']:,.0f} bytes per case (all state), router keys "
            f"{mem['bytes_per_case_router_keys']:,.0f} B/case, "
            f"SLA keys {mem['bytes_per_timer_sla_keys']:,.0f} B/timer"
        )

        capacity = first.routed_rate
        single, single_bounded, single_probes = await find_sustained(
            bench, "single", round(args.first_single * capacity), args.probes
        )
        # Ingest costs less per message in batches: start above the single-message rate as well.
        first_batch = max(args.first_batch * capacity, 1.2 * single)
        batch, batch_bounded, batch_probes = await find_sustained(
            bench, "batch", round(first_batch), args.batch_probes
        )
        levels, bare_levels = [], []
        for kind, sustained in (("single", single), ("batch", batch)):
            if not sustained:
                continue
            async with stack_for(bench) as stack:
                for share in LEVELS:
                    rate = max(1.0, round(share * sustained))
                    levels.append(
                        await load_run(
                            bench, stack, kind, f"{share:.0%}", rate, args.level_warm, args.level_window
                        )
                    )
                if kind == "single":
                    for share in LEVELS:
                        rate = max(1.0, round(share * sustained))
                        latency = await bare_latency(bench, bare, rate, args.bare_seconds)
                        bare_levels.append({"share": share, "rate": rate} | latency)
        async with stack_for(bench) as stack:
            baselines["aiokafka"].append(await bare_aiokafka(bench, stack, args.bare_messages))
            baselines["fastapi"].append(await asyncio.to_thread(wrk_bare, bench, bare, args.bare_seconds))
            scaling = [await burst_run(bench, stack, f"p{args.partitions} r1", args.scaling_burst)]
    finally:
        stop(bare.popen)
        if bench.shared is not None:
            await stop_stack(bench.shared)
    if args.scaling:
        for partitions in [p for p in args.partition_counts if p != args.partitions]:
            async with fresh_stack(bench, partitions) as stack:
                scaling.append(await burst_run(bench, stack, f"p{partitions} r1", args.scaling_burst))
        more = [r for r in args.routers if r > 1]
        if more:
            # One fresh stack for the added instances, in turn: each burst follows a rebalance.
            async with fresh_stack(bench, args.partitions, more[0]) as stack:
                for routers in more:
                    while len(stack.routers) < routers:
                        await add_router(bench, stack)
                    await warm_routers(bench, stack)
                    label = f"p{args.partitions} r{routers}"
                    scaling.append(await burst_run(bench, stack, label, args.scaling_burst))

    report |= {
        "baselines": baselines,
        "burst": asdict(first),
        "sustained": {"single": single, "batch": batch},
        # False: every probe sustained its rate, so the sustained rate is at least the figure.
        "sustained_bounded": {"single": single_bounded, "batch": batch_bounded},
        "probes": [asdict(r) for r in single_probes + batch_probes],
        "levels": [asdict(r) for r in levels],
        "bare_latency": bare_levels,
        "scaling": [asdict(s) for s in scaling],
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_at_end": os.getloadavg(),
    }
    report["summary"] = summarise(report)
    return report


async def warm_routers(bench: Bench, stack: Stack, attempts: int = 5) -> None:
    """Post small bursts until every router instance took a share (the group has rebalanced)."""
    for _ in range(attempts):
        warm = await burst_run(bench, stack, "rebalance", 600, quiet=True)
        if all(share > 0 for share in warm.router_share.values()):
            return
        await asyncio.sleep(3)
    bench.say(f"not every router instance got records after {attempts} bursts; measuring anyway")


def stop(popen: subprocess.Popen[bytes]) -> None:
    """Stop a child we started: SIGTERM, then SIGKILL after ten seconds."""
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


# -- the summary -------------------------------------------------------------------------------------


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """Compute the headline figures and their ratios to the baselines of the same run."""
    base = report["baselines"]
    kafka_rate = statistics.mean(b["msg_per_s"] for b in base["aiokafka"])
    kafka_cpu = statistics.mean(b["cpu_us_per_msg"] for b in base["aiokafka"])
    http_rate = statistics.mean(b["req_per_s"] for b in base["fastapi"])
    http_cpu = statistics.mean(b["cpu_us_per_req"] for b in base["fastapi"])
    sustained = report["sustained"]

    def sustained_probe(kind: str) -> dict[str, Any] | None:
        runs = [r for r in report["probes"] if r["kind"] == kind and r["sustained"]]
        return max(runs, key=lambda r: r["offered"]) if runs else None

    per_core, cpu_bound = {}, {}
    for kind in ("single", "batch"):
        probe = sustained_probe(kind)
        if probe:
            per_core[kind] = {
                k: 1e6 / v for k, v in probe["cpu_us_per_msg"].items() if isinstance(v, float) and v > 0
            }
            stack_us = sum(probe["cpu_us_per_msg"].get(p, 0.0) for p in STACK_PROCESSES)
            cpu_bound[kind] = report["machine"]["nproc"] * 1e6 / stack_us
    burst = report["burst"]
    summary = {
        "bare_aiokafka_msg_per_s": kafka_rate,
        "bare_aiokafka_cpu_us_per_msg": kafka_cpu,
        "bare_fastapi_req_per_s": http_rate,
        "bare_fastapi_cpu_us_per_req": http_cpu,
        "sustained_single": sustained["single"],
        "sustained_batch": sustained["batch"],
        "single_vs_aiokafka": sustained["single"] / kafka_rate,
        "single_vs_fastapi": sustained["single"] / http_rate,
        "batch_vs_aiokafka": sustained["batch"] / kafka_rate,
        "burst_msg_per_s": burst["routed_rate"],
        "burst_vs_aiokafka": burst["routed_rate"] / kafka_rate,
        "msg_per_s_per_core": per_core,
        # What the stack's own CPU per message would allow with every core of the machine to itself.
        "cpu_bound_rate": cpu_bound,
        "cpu_vs_aiokafka": {
            kind: {k: kafka_cpu / (1e6 / v) for k, v in cores.items()} for kind, cores in per_core.items()
        },
    }
    baseline_scaling = next(
        (s for s in report["scaling"] if s["partitions"] == 3 and s["routers"] == 1), None
    )
    if baseline_scaling:
        summary["scaling_vs_p3r1"] = {
            s["label"]: s["routed_rate"] / baseline_scaling["routed_rate"] for s in report["scaling"]
        }
    return summary


# -- the command -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run of about 2.5 minutes")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured per probe (default 20)")
    parser.add_argument("--warm", type=float, default=2.0, help="seconds of load before each probe's window")
    parser.add_argument("--probes", type=int, default=4, help="single-message probes at most (default 4)")
    parser.add_argument("--batch-probes", type=int, default=4, help="batch probes at most (default 4)")
    parser.add_argument("--level-window", type=float, default=10.0, help="seconds measured per level run")
    parser.add_argument(
        "--level-warm", type=float, default=2.0, help="seconds of load before a level's window"
    )
    parser.add_argument(
        "--first-single", type=float, default=0.5, help="first single probe, share of the burst rate"
    )
    parser.add_argument(
        "--first-batch", type=float, default=0.8, help="first batch probe, share of the burst rate"
    )
    parser.add_argument("--batch-size", type=int, default=50, help="messages per batch request (default 50)")
    parser.add_argument("--connections", type=int, default=64, help="client connections to ingest at most")
    parser.add_argument("--burst", type=int, default=6000, help="messages of the capacity and memory burst")
    parser.add_argument("--scaling-burst", type=int, default=5000, help="messages per scaling burst")
    parser.add_argument(
        "--bare-messages", type=int, default=20000, help="records through the bare aiokafka loop"
    )
    parser.add_argument("--bare-seconds", type=float, default=5.0, help="seconds of each bare FastAPI run")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of the main stack's topics")
    parser.add_argument(
        "--partition-counts",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 3, 6],
        help="partition counts of the scaling bursts (default 1,3,6)",
    )
    parser.add_argument(
        "--routers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2, 3],
        help="router instance counts of the scaling bursts (default 1,2,3)",
    )
    parser.add_argument(
        "--fresh",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a fresh stack for each probe and each set of levels (default; --quick: one stack for them all)",
    )
    parser.add_argument("--no-scaling", dest="scaling", action="store_false", help="skip the scaling bursts")
    parser.add_argument(
        "--drain-timeout", type=float, default=90.0, help="seconds to wait for a backlog to drain"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the stacks' logs (printed path)")
    parser.add_argument("--plots-from", type=Path, help="only redraw the plots of a report JSON")
    args = parser.parse_args(argv)
    if args.quick:
        quick = {
            "window": 5.0,
            "warm": 2.0,
            "probes": 2,
            "batch_probes": 2,
            "level_window": 4.0,
            "level_warm": 1.0,
            "burst": 1500,
            "scaling_burst": 1000,
            "bare_messages": 3000,
            "bare_seconds": 1.0,
            "partition_counts": [1, 3],
            "routers": [1, 2],
            "fresh": False,
        }
        defaults = parser.parse_args([])
        for name, value in quick.items():
            if getattr(args, name) == getattr(defaults, name):
                setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, write the report and the plots."""
    args = parse_args(argv)
    from e2e_report import render_markdown, write_plots

    if args.plots_from:
        report = json.loads(args.plots_from.read_text())
        for path in write_plots(report, args.plots_from.with_suffix("")):
            print(path)
        return 0
    if not shutil.which("wrk"):
        print("wrk is needed for the bare FastAPI baseline: apt-get install -y wrk", file=sys.stderr)
        return 2
    env = child_env()
    settle_heap()  # as `switchboard serve` does, so the bare loop runs like bus_bench.py's
    workdir = Path(tempfile.mkdtemp(prefix="e2e-bench-"))
    bench = Bench(args, workdir, env, str(Path(switchboard.__file__).resolve().parent))
    bench.say(f"run {bench.run}: code from {bench.code}, logs in {workdir}")
    try:
        import uvloop

        report = uvloop.run(run(bench))
    except ImportError:
        report = asyncio.run(run(bench))
    finally:
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = RESULTS / f"e2e-{stamp}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    plots = write_plots(report, stem)
    markdown = render_markdown(report, [p.name for p in plots])
    stem.with_suffix(".md").write_text(markdown)
    print()
    print(markdown)
    print(f"wrote {stem.with_suffix('.json').relative_to(REPO)}, {stem.with_suffix('.md').relative_to(REPO)}")
    for path in plots:
        print(f"wrote {path.relative_to(REPO)}")
    runs = [*report["probes"], *report["levels"], report["burst"], *report["scaling"]]
    exact = all(r["delivery"]["missing"] == 0 and r["delivery"]["duplicates"] == 0 for r in runs)
    if not exact:
        print("an accepted message is missing from the queue topics, or was routed twice", file=sys.stderr)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
