"""Measure ingest's POST /v1/messages against a bare FastAPI endpoint, and its batch endpoint into the broker.

Three servers run side by side, each its own uvicorn process started the way `switchboard serve` starts
ingest (one worker, no access log, the same uvicorn defaults):

    bare         FastAPI with POST /v1/messages validating ingest.api.MessageIn and answering 202
    ingest       `switchboard serve ingest`, no API key configured
    ingest-key   `switchboard serve ingest` with one API key (Redis token bucket, a rate never reached)

wrk loads each in turn for --seconds, keep-alive connections at a fixed --concurrency, rounds
interleaved; every request carries a realistic message with an external_id never sent before. The
machine is shared, so only ratios taken within one round are compared. Then the batch endpoint
(--batch-size messages a request) is loaded from this process, and the topic is read back: it must hold
exactly what ingest accepted. Each batch round is set beside a round of the same messages, normalised and
encoded as ingest publishes them, sent by a bare aiokafka producer (one `send` per record, the same
producer settings, as many groups of --batch-size in flight, on the server's CPU, to a topic of its
own): the batch endpoint's rate is also given as a share of that one.

    .venv/bin/python bench/ingest_bench.py [--seconds 10] [--rounds 3] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiokafka
import fastapi
import httpx
import pydantic
import redis as redis_py
import starlette
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ingest.api import MessageIn
from ingest.intake import normalise
from ingest.keys import new_key
from switchboard.bus import make_producer, record_key
from switchboard.config import KafkaSettings
from switchboard.contract import Channel, Topic, encode
from switchboard.stack import (
    broker_argv,
    broker_binary,
    free_port,
    port_open,
    redis_server_binary,
    wait_until,
)
from switchboard.topics import ensure_topics

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("bare", "ingest", "ingest-key")
TARGET_RATIO = 0.80
TARGET_BATCH_MSG_S = 20_000
TOPIC = Topic.MESSAGES_RECEIVED.value
BARE_TOPIC = "bench.bare-produce"
MARK = "@@EXTERNAL_ID@@"
TEMPLATES = 200
KEY_RATE_PER_MINUTE = 1_000_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")

PHRASES = {
    "en": (
        "my parcel was supposed to arrive on Monday and it is still not here",
        "I was charged twice for the same order, please refund one of them",
        "the app keeps logging me out every time I open the basket",
        "love the new collection, any chance of a discount code for loyal customers?",
        "your website is down again, I cannot pay my bill",
        "who do I talk to about a partnership for our podcast?",
        "the replacement you sent is broken as well, this is unacceptable",
        "my internet has been dropping every evening since the upgrade",
    ),
    "fr": (
        "ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?",
        "ma box redémarre toute seule depuis hier soir",
        "j'ai été prélevé deux fois ce mois-ci, merci de me rembourser",
        "super accueil en boutique, merci à Julie pour sa patience",
        "impossible de joindre le service client depuis trois jours",
        "le technicien n'est jamais venu au rendez-vous de ce matin",
    ),
}
PRIVATE_THREADS = {Channel.EMAIL, Channel.CHAT, Channel.SMS, Channel.WHATSAPP, Channel.MESSENGER}


# -- the messages ------------------------------------------------------------------------------------


def message_templates(count: int, seed: int) -> list[tuple[str, str]]:
    """Return `count` realistic MessageIn bodies as (head, tail): the external_id goes in between."""
    rng = random.Random(seed)
    base = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    templates = []
    for i in range(count):
        channel = rng.choice(list(Channel))
        language = rng.choice(("en", "fr"))
        text = " ".join(rng.sample(PHRASES[language], rng.randint(1, 3)))
        if channel is Channel.EMAIL:
            text = f"Hello,\n\n{text}.\n\nOrder A-{rng.randrange(10**5):05d}.\n\nBest regards,\nSam"
        n = rng.randrange(50_000)
        author: dict[str, object] = {"id": f"{channel.value}-user-{n}"}
        if rng.random() < 0.7:
            author["name"] = f"Customer {n}"
        if channel not in PRIVATE_THREADS:
            author["handle"] = f"@user{n}"
            author["followers"] = rng.choice([rng.randrange(50), rng.randrange(100_000)])
        item: dict[str, object] = {"channel": channel.value, "external_id": MARK, "author": author}
        item["text"] = text
        offset = timezone(timedelta(hours=1)) if language == "fr" else UTC
        item["created_at"] = (base + timedelta(seconds=i * 7)).astimezone(offset).isoformat()
        if channel in PRIVATE_THREADS and rng.random() < 0.6:
            item["conversation_id"] = f"{channel.value}:thread:{rng.getrandbits(40):010x}"
        if rng.random() < 0.2:
            item["in_reply_to"] = f"{channel.value}-{rng.getrandbits(48):x}"
        if rng.random() < 0.5:
            item["language"] = language
        if rng.random() < 0.3:
            item["visibility"] = rng.choice(("public", "private"))
        if rng.random() < 0.5:
            item["metadata"] = {"page": "/assistance/box", "order": f"A-{rng.randrange(10**5):05d}"}
        body = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        head, tail = body.split(MARK)
        MessageIn.model_validate_json(head + "probe" + tail)
        templates.append((head, tail))
    return templates


def bare_app() -> FastAPI:
    """Build the yardstick: POST /v1/messages validates the same model and answers 202, nothing else."""
    app = FastAPI(title="bare")

    @app.post("/v1/messages", status_code=202)
    async def post_message(item: MessageIn) -> JSONResponse:
        body = {
            "message_id": item.external_id,
            "conversation_id": item.conversation_id or item.author.id,
            "status": "accepted",
        }
        return JSONResponse(body, status_code=202)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve_bare(port: int) -> int:
    """Run the bare app exactly as `switchboard serve` runs a service."""
    from switchboard.service import configure_logging, settle_heap

    configure_logging("INFO")
    app = bare_app()
    settle_heap()  # as `switchboard serve` does for ingest, so both servers run alike
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    return 0


# -- processes and their CPU -------------------------------------------------------------------------


@dataclass
class Server:
    """One server process under test."""

    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        """Return the base URL."""
        return f"http://127.0.0.1:{self.port}"


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """Return a pre-exec hook that pins the child (and every thread it starts) to `cpus`."""
    return None if cpus is None else functools.partial(os.sched_setaffinity, 0, cpus)


def clean_env() -> dict[str, str]:
    """Return this environment without any Switchboard or ingest setting, so only ours apply."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "INGEST_"))}


def spawn(
    name: str, argv: list[str], env: dict[str, str], workdir: Path, cpus: set[int] | None
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a child process logging to workdir/<name>.log."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=pinned(cpus))
    return popen, log


def wait_ready(server: Server, path: str, timeout: float = 60) -> None:
    """Wait until the server answers 200 on `path`; fail early with its log if it died."""

    def ready() -> bool:
        if server.popen.poll() is not None:
            tail = server.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{server.name} exited with {server.popen.returncode}:\n{tail}")
        try:
            return httpx.get(server.url + path, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout, server.name, interval=0.2)


def stop(popen: subprocess.Popen[bytes]) -> None:
    """Stop a child we started: SIGTERM, then SIGKILL after ten seconds."""
    if popen.poll() is None:
        popen.terminate()
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


def process_cpu(pid: int) -> float:
    """Return the user + system CPU seconds a live process has used."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """Return the CPU seconds all cores spent not idle since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


@dataclass
class CpuMeter:
    """Samples the CPU time of every process taking part, and of the whole machine."""

    pids: dict[str, int]
    redis: redis_py.Redis

    def sample(self) -> dict[str, float]:
        """Return cumulative CPU seconds per participant, the machine's, and the wall clock."""
        info = self.redis.info("cpu")
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        values = {name: process_cpu(pid) for name, pid in self.pids.items()}
        values["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        # Only the load generator is reaped while a measurement runs: the servers and the broker live on.
        values["client"] = children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime
        values["machine"] = machine_busy()
        values["wall"] = time.monotonic()
        return values

    @staticmethod
    def cores(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """Return the cores each participant used between two samples, and `other` (the rest of the box)."""
        wall = after["wall"] - before["wall"]
        used = {k: (after[k] - before[k]) / wall for k in after if k != "wall"}
        ours = sum(v for k, v in used.items() if k != "machine")
        used["other"] = max(0.0, used.pop("machine") - ours)
        return used


# -- the single-message rounds (wrk) -----------------------------------------------------------------

LUA = """
local templates = {%(templates)s}
local prefix = [==[%(prefix)s]==]
local out_path = [==[%(out)s]==]
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  accepted, other2xx, non2xx = 0, 0, 0
  tag = prefix .. "-" .. tid .. "-"
end

function request()
  counter = counter + 1
  local t = templates[(counter %% #templates) + 1]
  return wrk.format(nil, nil, nil, t[1] .. tag .. counter .. t[2])
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1
  elseif status >= 200 and status < 300 then other2xx = other2xx + 1
  else non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local a, o, n = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted"); o = o + t:get("other2xx"); n = n + t:get("non2xx")
  end
  local e = summary.errors
  local f = io.open(out_path, "w")
  f:write(string.format(
    '{"requests":%%d,"duration_us":%%d,"accepted":%%d,"other_2xx":%%d,"non_2xx":%%d,' ..
    '"socket_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}',
    summary.requests, summary.duration, a, o, n, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  f:close()
end
"""


def lua_script(templates: list[tuple[str, str]], prefix: str, out: Path, api_key: str | None) -> str:
    """Return the wrk script that posts the templates with fresh external ids and writes a JSON summary."""
    rows = ",\n".join(f"{{[==[{head}]==], [==[{tail}]==]}}" for head, tail in templates)
    auth = f'wrk.headers["Authorization"] = "Bearer {api_key}"' if api_key else ""
    return LUA % {"templates": rows, "prefix": prefix, "out": out, "auth": auth}


@dataclass
class Round:
    """One variant's run of wrk in one round."""

    variant: str
    round: int
    seconds: float
    requests: int
    accepted: int
    other_2xx: int
    non_2xx: int
    socket_errors: int
    timeouts: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    cores: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Return requests per second."""
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        """Return every answer that was not a 2xx, and every socket error or timeout."""
        return self.non_2xx + self.socket_errors + self.timeouts


@dataclass
class Bench:
    """What one run shares: servers, broker, Redis, the messages and the options."""

    args: argparse.Namespace
    workdir: Path
    bootstrap: str
    redis_url: str
    servers: dict[str, Server]
    meter: CpuMeter
    client_cpus: set[int] | None
    api_key: str
    templates: list[tuple[str, str]]
    run_id: str
    wrk_accepted: int = 0
    server_cpus: set[int] | None = None


def run_wrk(bench: Bench, variant: str, round_no: int, seconds: float) -> Round:
    """Load one server with wrk for `seconds`; return what wrk and the CPU meter saw."""
    server = bench.servers[variant]
    tag = f"{bench.run_id}-{variant}-{round_no}"
    out = bench.workdir / f"wrk-{tag}.json"
    script = bench.workdir / f"wrk-{tag}.lua"
    key = bench.api_key if variant == "ingest-key" else None
    script.write_text(lua_script(bench.templates, tag, out, key), encoding="utf-8")
    argv = ["wrk", f"-t{bench.args.wrk_threads}", f"-c{bench.args.concurrency}", f"-d{seconds:g}s"]
    argv += ["--timeout", "30s", "-s", str(script), server.url + "/v1/messages"]
    before = bench.meter.sample()
    result = subprocess.run(
        argv, capture_output=True, text=True, preexec_fn=pinned(bench.client_cpus), check=False
    )
    after = bench.meter.sample()
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}\n{result.stderr}")
    w = json.loads(out.read_text())
    if variant != "bare":
        bench.wrk_accepted += w["accepted"]
    return Round(
        variant,
        round_no,
        seconds=w["duration_us"] / 1e6,
        **{k: w[k] for k in ("requests", "accepted", "other_2xx", "non_2xx", "socket_errors", "timeouts")},
        **{f"{p}_ms": w[f"{p}_us"] / 1000 for p in ("p50", "p90", "p99", "max")},
        server_cpu_s=after[variant] - before[variant],
        cores=CpuMeter.cores(before, after),
    )


def run_single_rounds(bench: Bench, say: Callable[[str], None]) -> list[Round]:
    """Warm every server up, then run the variants round after round, rotating their order."""
    for variant in VARIANTS:
        run_wrk(bench, variant, 0, bench.args.warmup)
    rounds: list[Round] = []
    for round_no in range(1, bench.args.rounds + 1):
        shift = (round_no - 1) % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            time.sleep(1.0)
            r = run_wrk(bench, variant, round_no, bench.args.seconds)
            say(
                f"round {round_no} {variant:<10} {r.rate:7.0f} req/s  p50 {r.p50_ms:6.1f} ms  "
                f"p99 {r.p99_ms:6.1f} ms  max {r.max_ms:7.1f} ms  errors {r.errors}  "
                f"server {r.server_cpu_s / r.requests * 1e6:4.0f} us CPU/req  "
                f"cores: server {r.cores[variant]:.2f} wrk {r.cores['client']:.2f} "
                f"tansu {r.cores['tansu']:.2f} redis {r.cores['redis']:.2f} other {r.cores['other']:.2f}"
            )
            rounds.append(r)
    return rounds


# -- the batch rounds (this process is the client) ---------------------------------------------------


@dataclass
class BatchRound:
    """One round of batch posts to ingest."""

    round: int
    seconds: float
    requests: int
    messages_sent: int
    accepted: int
    not_accepted_items: int
    failed_requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    cores: dict[str, float] = field(default_factory=dict)
    bare_producer_msg_per_s: float = 0.0

    @property
    def rate(self) -> float:
        """Return accepted messages per second."""
        return self.accepted / self.seconds


async def bare_produce(bootstrap: str, seconds: float, size: int, concurrency: int) -> dict[str, float]:
    """Send ingest's records with a bare aiokafka producer for `seconds`; return how many were acknowledged.

    The batch endpoint's yardstick: the records ingest would publish for the bench's messages (normalised
    and encoded by ingest's own code, before the clock starts), one `send()` each, in `concurrency` groups
    of `size` whose acks are awaited before the group's next `size`, like the batch requests in flight.
    """
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    await ensure_topics(kafka, [BARE_TOPIC])
    now = datetime.now(UTC)
    records = []
    for n, (head, tail) in enumerate(message_templates(TEMPLATES, seed=7) * 10):
        event = normalise(MessageIn.model_validate_json(f"{head}bare-{n}{tail}"), now)
        records.append((record_key(event), encode(event)))
    producer = make_producer(kafka, "bench-bare-producer")
    await producer.start()
    sent = 0

    async def group(first: int, deadline: float) -> None:
        nonlocal sent
        i = first
        while time.perf_counter() < deadline:
            futures = []
            for _ in range(size):
                key, value = records[i % len(records)]
                i += 1
                futures.append(await producer.send(BARE_TOPIC, value, key=key))
            await asyncio.gather(*futures)
            sent += size

    try:
        started = time.perf_counter()
        await asyncio.gather(*(group(g * size, started + seconds) for g in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"messages": sent, "seconds": elapsed}


def run_bare_producer(bench: Bench, seconds: float) -> float:
    """Run `bare_produce` in a process of its own on the server's CPU; return its messages per second."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--bare-producer", bench.bootstrap]
    argv += ["--seconds", str(seconds), "--batch-size", str(bench.args.batch_size)]
    argv += ["--batch-concurrency", str(bench.args.batch_concurrency)]
    result = subprocess.run(
        argv, capture_output=True, text=True, preexec_fn=pinned(bench.server_cpus), check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"the bare producer failed ({result.returncode}): {result.stderr[-2000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return measured["messages"] / measured["seconds"]


async def post_batches(bench: Bench, tag: str, seconds: float) -> tuple[float, list[float], dict[str, int]]:
    """Post batches from `--batch-concurrency` workers until `seconds` pass; wait for those in flight."""
    url = bench.servers["ingest"].url + "/v1/messages/batch"
    size, templates = bench.args.batch_size, bench.templates
    latencies: list[float] = []
    totals = {"messages_sent": 0, "accepted": 0, "not_accepted_items": 0, "failed_requests": 0}
    limits = httpx.Limits(max_connections=bench.args.batch_concurrency)

    async def worker(client: httpx.AsyncClient, worker_no: int, deadline: float) -> None:
        n = 0
        while time.perf_counter() < deadline:
            items = []
            for _ in range(size):
                n += 1
                head, tail = templates[n % len(templates)]
                items.append(f"{head}{tag}-{worker_no}-{n}{tail}")
            body = ('{"messages":[' + ",".join(items) + "]}").encode()
            started = time.perf_counter()
            response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
            latencies.append(time.perf_counter() - started)
            totals["messages_sent"] += size
            if response.status_code != 200:
                totals["failed_requests"] += 1
                continue
            accepted = response.json()["accepted"]
            totals["accepted"] += accepted
            totals["not_accepted_items"] += size - accepted

    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(client, w, deadline) for w in range(bench.args.batch_concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, totals


async def run_batch_round(bench: Bench, round_no: int, seconds: float) -> BatchRound:
    """Post batches for `seconds`; return the accepted rate and the latency per batch request."""
    before = bench.meter.sample()
    elapsed, latencies, totals = await post_batches(bench, f"{bench.run_id}-batch-{round_no}", seconds)
    after = bench.meter.sample()
    ms = sorted(x * 1000 for x in latencies)
    return BatchRound(
        round_no,
        elapsed,
        len(ms),
        **totals,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        max_ms=ms[-1],
        server_cpu_s=after["ingest"] - before["ingest"],
        cores=CpuMeter.cores(before, after),
    )


def percentile(ordered: list[float], p: float) -> float:
    """Return the nearest-rank percentile of sorted values."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# -- what reached the broker -------------------------------------------------------------------------


class TopicCounter:
    """Reads messages.received from the start and counts its records, continuing where it stopped."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        self.partitions: list[TopicPartition] = []
        self.count = 0

    async def start(self) -> None:
        """Connect and assign every partition of the topic, from its first offset."""
        await self.consumer.start()
        await self.consumer.topics()
        numbers = sorted(self.consumer.partitions_for_topic(TOPIC) or [])
        self.partitions = [TopicPartition(TOPIC, p) for p in numbers]
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)

    async def read_until(self, expected: int, idle_seconds: float = 5.0) -> int:
        """Read until `expected` records were seen in all (then one more poll for extras), or idle."""
        last_new = time.monotonic()
        while self.count < expected and time.monotonic() - last_new < idle_seconds:
            batches = await self.consumer.getmany(timeout_ms=500, max_records=50_000)
            got = sum(len(records) for records in batches.values())
            if got:
                self.count += got
                last_new = time.monotonic()
        batches = await self.consumer.getmany(timeout_ms=500)
        self.count += sum(len(records) for records in batches.values())
        return self.count

    def highwater(self) -> int:
        """Return the sum of the partitions' high-water marks as the last fetches reported them."""
        return sum(self.consumer.highwater(tp) or 0 for tp in self.partitions)

    async def stop(self) -> None:
        """Disconnect."""
        await self.consumer.stop()


def accepted_counter(server: Server) -> int:
    """Return how many messages an ingest process says it published (its /metrics)."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("switchboard_ingest_messages_accepted_total{")
        )
    )


def delete_keys(redis: redis_py.Redis, prefix: str) -> int:
    """Delete every key under `prefix` in batches; return how many."""
    deleted = 0
    batch: list[bytes] = []
    for key in redis.scan_iter(match=f"{prefix}*", count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            deleted += redis.unlink(*batch)
            batch.clear()
    if batch:
        deleted += redis.unlink(*batch)
    return deleted


# -- the run -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def tansu(workdir: Path, cpus: set[int] | None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run a Tansu broker with memory storage on a free port; yield its address and process."""
    port = free_port()
    popen, _ = spawn("broker", broker_argv("127.0.0.1", port), clean_env(), workdir, cpus)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 20, "broker")
        yield f"127.0.0.1:{port}", popen
    finally:
        stop(popen)


@contextlib.contextmanager
def redis_server(workdir: Path, cpus: set[int] | None, own: bool) -> Iterator[tuple[str, bool]]:
    """Yield the URL of the Redis on 127.0.0.1:6379 (unless `own`), or of one started on a free port."""
    if not own and port_open("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0", False
        return
    port = free_port()
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    popen, _ = spawn("redis", [*argv, "--dir", str(workdir)], clean_env(), workdir, cpus)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 15, "redis")
        yield f"redis://127.0.0.1:{port}/0", True
    finally:
        stop(popen)


@contextlib.contextmanager
def servers(
    workdir: Path, bootstrap: str, redis_url: str, run_id: str, key_entry: str, cpus: set[int] | None
) -> Iterator[dict[str, Server]]:
    """Start the bare app and the two ingest variants, each its own process; stop them at the end."""
    started: dict[str, Server] = {}
    try:
        for variant in VARIANTS:
            port = free_port()
            env = clean_env()
            if variant == "bare":
                argv = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port)]
            else:
                argv = [sys.executable, "-m", "switchboard", "serve", "ingest"]
                env |= {
                    "SWITCHBOARD_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "SWITCHBOARD_REDIS_URL": redis_url,
                    "SWITCHBOARD_REDIS_KEY_PREFIX": redis_prefix(run_id, variant),
                    "INGEST_HOST": "127.0.0.1",
                    "INGEST_PORT": str(port),
                    "INGEST_API_KEYS": key_entry if variant == "ingest-key" else "",
                }
            popen, log = spawn(variant, argv, env, workdir, cpus)
            started[variant] = Server(variant, port, popen, log)
        for server in started.values():
            wait_ready(server, "/healthz" if server.name == "bare" else "/readyz")
        yield started
    finally:
        for server in started.values():
            stop(server.popen)


def redis_prefix(run_id: str, variant: str) -> str:
    """Return the Redis key prefix of one ingest variant in this run."""
    return f"bench:ingest-{run_id}:{variant}:"


def cpu_plan(args: argparse.Namespace) -> tuple[set[int] | None, set[int] | None]:
    """Return the CPUs of the server under test and of everything else, or (None, None) unpinned."""
    available = sorted(os.sched_getaffinity(0))
    if not args.pin or len(available) < 2:
        return None, None
    return {available[-1]}, set(available[:-1])


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, object]:
    """Start everything, run the single-message and batch rounds, check the topic; return the report."""
    server_cpus, other_cpus = cpu_plan(args)
    if other_cpus is not None:
        os.sched_setaffinity(0, other_cpus)
    run_id = uuid.uuid4().hex[:8]
    api_key, entry = new_key("bench", KEY_RATE_PER_MINUTE)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    checks: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        workdir = Path(tmp)
        with (
            redis_server(workdir, other_cpus, args.own_redis) as (redis_url, own_redis),
            tansu(workdir, other_cpus) as (bootstrap, broker),
        ):
            asyncio.run(ensure_topics(KafkaSettings(bootstrap_servers=bootstrap)))
            redis = redis_py.Redis.from_url(redis_url)
            try:
                with servers(workdir, bootstrap, redis_url, run_id, entry.entry(), server_cpus) as procs:
                    say(
                        f"broker {bootstrap}, redis {redis_url}, servers "
                        + ", ".join(f"{s.name} :{s.port} pid {s.popen.pid}" for s in procs.values())
                        + f"; server CPUs {sorted(server_cpus) if server_cpus else 'any'}, "
                        f"wrk/broker/bench CPUs {sorted(other_cpus) if other_cpus else 'any'}"
                    )
                    pids = {name: s.popen.pid for name, s in procs.items()} | {"tansu": broker.pid}
                    bench = Bench(
                        args=args,
                        workdir=workdir,
                        bootstrap=bootstrap,
                        redis_url=redis_url,
                        servers=procs,
                        meter=CpuMeter(pids, redis),
                        client_cpus=other_cpus,
                        api_key=api_key,
                        templates=message_templates(TEMPLATES, seed=7),
                        run_id=run_id,
                        server_cpus=server_cpus,
                    )
                    singles = run_single_rounds(bench, say)
                    batches, checks = asyncio.run(run_batches(bench, say))
            finally:
                deleted = sum(delete_keys(redis, redis_prefix(run_id, v)) for v in VARIANTS[1:])
                say(f"deleted {deleted} Redis keys under bench:ingest-{run_id}:")
                redis.close()
    return {
        "started_at": started_at,
        "command": " ".join([".venv/bin/python", "bench/ingest_bench.py", *sys.argv[1:]]),
        "options": vars(args),
        "cpu_plan": {
            "server": sorted(server_cpus) if server_cpus else "any",
            "wrk, broker, bench, batch client": sorted(other_cpus) if other_cpus else "any",
            "redis": (sorted(other_cpus or []) or "any") if own_redis else "not pinned (the shared one)",
        },
        "machine": machine_info(),
        "message_bytes_mean": round(statistics.mean(len((h + t).encode()) + 24 for h, t in bench.templates)),
        "singles": [asdict(r) | {"req_per_s": r.rate} for r in singles],
        "batches": [asdict(b) | {"msg_per_s": b.rate} for b in batches],
        "summary": summarise(singles, batches, args.rounds),
        "checks": checks,
    }


async def run_batches(bench: Bench, say: Callable[[str], None]) -> tuple[list[BatchRound], dict[str, object]]:
    """Warm up, count the topic, run the batch rounds, count again: the topic must match the accepts."""
    ingest = bench.servers["ingest"]
    warm = await run_batch_round(bench, 0, 1.0)
    counter = TopicCounter(bench.bootstrap)
    await counter.start()
    try:
        ingest_before = accepted_counter(ingest)
        published_before = ingest_before + accepted_counter(bench.servers["ingest-key"])
        records_before = await counter.read_until(published_before)
        say(
            f"before the batch rounds: {records_before} records on {TOPIC}, ingest processes "
            f"published {published_before}, wrk was answered 202 {bench.wrk_accepted} times"
        )
        rounds: list[BatchRound] = []
        for round_no in range(1, bench.args.rounds + 1):
            await asyncio.sleep(1.0)
            # The yardstick first on even rounds, second on odd ones: neither always runs on a warmer box.
            bare = 0.0
            if round_no % 2 == 0:
                bare = await asyncio.to_thread(run_bare_producer, bench, bench.args.seconds)
                await asyncio.sleep(1.0)
            b = await run_batch_round(bench, round_no, bench.args.seconds)
            if round_no % 2 == 1:
                await asyncio.sleep(1.0)
                bare = await asyncio.to_thread(run_bare_producer, bench, bench.args.seconds)
            b.bare_producer_msg_per_s = bare
            say(
                f"batch round {round_no}: {b.rate:7.0f} msg/s  {b.requests} requests of "
                f"{bench.args.batch_size}  p50 {b.p50_ms:6.1f} ms  p99 {b.p99_ms:6.1f} ms  "
                f"failed {b.failed_requests}  not accepted {b.not_accepted_items}  "
                f"cores: ingest {b.cores['ingest']:.2f} client {b.cores['client']:.2f} "
                f"tansu {b.cores['tansu']:.2f} redis {b.cores['redis']:.2f} other {b.cores['other']:.2f}; "
                f"bare producer {bare:7.0f} msg/s ({b.rate / bare:.2f})"
            )
            rounds.append(b)
        accepted_by_clients = sum(b.accepted for b in rounds)
        published_after = accepted_counter(ingest) - ingest_before
        records_after = await counter.read_until(records_before + accepted_by_clients)
        highwater = counter.highwater()
    finally:
        await counter.stop()
    in_topic = records_after - records_before
    checks = {
        # Single-message rounds, their warm-ups and the batch warm-up, against ingest's own counters.
        "records_before_batch_rounds": records_before,
        "published_by_ingest_before_batch_rounds": published_before,
        "single_rounds_exact": records_before == published_before,
        # wrk drops the answers to requests in flight when it stops: up to --concurrency per run.
        "answered_202_to_wrk": bench.wrk_accepted,
        "batch_warmup_accepted": warm.accepted,
        "batch_accepted_by_client": accepted_by_clients,
        "batch_published_by_ingest": published_after,
        "batch_records_in_topic": in_topic,
        "batch_exact": in_topic == accepted_by_clients == published_after,
        "records_in_topic_total": records_after,
        "sum_of_highwater_marks": highwater,
    }
    say(
        f"batch: clients saw {accepted_by_clients} accepted, ingest published {published_after}, "
        f"the topic gained {in_topic} records ({'exact' if checks['batch_exact'] else 'MISMATCH'}); "
        f"{records_after} records in all, high-water marks sum to {highwater}"
    )
    return rounds, checks


# -- the report --------------------------------------------------------------------------------------


def summarise(singles: list[Round], batches: list[BatchRound], rounds: int) -> dict[str, object]:
    """Compute medians per variant, the per-round ratios to the bare app, and the batch figures."""
    by = {(r.variant, r.round): r for r in singles}
    span = range(1, rounds + 1)

    def median(variant: str, value: Callable[[Round], float]) -> float:
        return statistics.median(value(by[variant, r]) for r in span)

    variants = {
        v: {
            "req_per_s": median(v, lambda r: r.rate),
            "p50_ms": median(v, lambda r: r.p50_ms),
            "p99_ms": median(v, lambda r: r.p99_ms),
            "max_ms": max(by[v, r].max_ms for r in span),
            "errors": sum(by[v, r].errors for r in span),
            "server_cpu_us_per_req": median(v, lambda r: r.server_cpu_s / r.requests * 1e6),
            "cores": {
                k: median(v, lambda r, k=k: r.cores[k]) for k in (v, "client", "tansu", "redis", "other")
            },
        }
        for v in VARIANTS
    }
    ratios = {v: [by[v, r].rate / by["bare", r].rate for r in span] for v in VARIANTS[1:]}
    summary: dict[str, object] = {
        "variants": variants,
        "ratios_per_round": ratios,
        "median_ratio": {v: statistics.median(rs) for v, rs in ratios.items()},
        "cpu_ratio": {
            v: variants["bare"]["server_cpu_us_per_req"] / variants[v]["server_cpu_us_per_req"]
            for v in VARIANTS[1:]
        },
    }
    if batches:
        to_bare = [b.rate / b.bare_producer_msg_per_s for b in batches]
        summary["batch"] = {
            "msg_per_s": statistics.median(b.rate for b in batches),
            "p50_ms": statistics.median(b.p50_ms for b in batches),
            "p99_ms": statistics.median(b.p99_ms for b in batches),
            "max_ms": max(b.max_ms for b in batches),
            "server_cpu_us_per_msg": statistics.median(b.server_cpu_s / b.accepted * 1e6 for b in batches),
            "bare_producer_msg_per_s": statistics.median(b.bare_producer_msg_per_s for b in batches),
            "ratio_to_bare_producer_per_round": to_bare,
            "median_ratio_to_bare_producer": statistics.median(to_bare),
        }
    return summary


def table(head: list[str], rows: list[list[str]]) -> str:
    """Return a markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_tables(report: dict) -> dict[str, str]:
    """Return the single-message summary, its per-round detail and the batch table."""
    rounds = report["options"]["rounds"]
    summary = report["summary"]
    by = {(r["variant"], r["round"]): r for r in report["singles"]}
    rows = []
    for v in VARIANTS:
        s = summary["variants"][v]
        ratio = "-"
        if v != "bare":
            per_round = ", ".join(f"{x:.2f}" for x in summary["ratios_per_round"][v])
            ratio = f"**{summary['median_ratio'][v]:.2f}** ({per_round})"
        per_round = [f"{by[v, r]['req_per_s']:,.0f}" for r in range(1, rounds + 1)]
        latency = [f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", f"{s['max_ms']:.0f}"]
        cpu = f"{s['server_cpu_us_per_req']:.0f}"
        rows.append([v, *per_round, f"{s['req_per_s']:,.0f}", *latency, str(s["errors"]), cpu, ratio])
    head = ["variant", *(f"round {r} req/s" for r in range(1, rounds + 1)), "median req/s"]
    head += ["p50 ms", "p99 ms", "max ms", "errors", "server CPU us/req", "÷ bare: median (per round)"]
    singles = table(head, rows)

    detail_rows = []
    for r in report["singles"]:
        c = r["cores"]
        detail_rows.append(
            [str(r["round"]), r["variant"], f"{r['req_per_s']:,.0f}"]
            + [f"{r[k]:.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")]
            + [str(r["accepted"]), str(r["other_2xx"]), str(r["non_2xx"])]
            + [str(r["socket_errors"] + r["timeouts"])]
            + [f"{c[r['variant']]:.2f}", f"{c['client']:.2f}", f"{c['tansu']:.2f}", f"{c['redis']:.2f}"]
            + [f"{c['other']:.2f}"]
        )
    detail_head = ["round", "variant", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "202", "other 2xx"]
    detail_head += ["non-2xx", "socket err/timeout", "cores: server", "wrk", "tansu", "redis", "other"]
    detail = table(detail_head, detail_rows)
    batch_rows = []
    for b in report["batches"]:
        c = b["cores"]
        batch_rows.append(
            [str(b["round"]), f"{b['msg_per_s']:,.0f}", str(b["requests"])]
            + [f"{b[k]:.0f}" for k in ("p50_ms", "p99_ms", "max_ms")]
            + [str(b["failed_requests"]), str(b["not_accepted_items"])]
            + [f"{b['server_cpu_s'] / b['accepted'] * 1e6:.0f}" if b["accepted"] else "-"]
            + [f"{c['ingest']:.2f}", f"{c['client']:.2f}", f"{c['tansu']:.2f}", f"{c['redis']:.2f}"]
            + [f"{c['other']:.2f}"]
            + [f"{b['bare_producer_msg_per_s']:,.0f}", f"{b['msg_per_s'] / b['bare_producer_msg_per_s']:.2f}"]
        )
    batch_head = ["round", "accepted msg/s", "requests", "p50 ms/request", "p99 ms/request", "max ms"]
    batch_head += ["failed requests", "items not accepted", "ingest CPU us/msg", "cores: ingest", "client"]
    batch_head += ["tansu", "redis", "other", "bare producer msg/s", "÷ bare producer"]
    batch = table(batch_head, batch_rows)
    return {"singles": singles, "detail": detail, "batch": batch}


def verdicts(report: dict) -> list[str]:
    """Say whether the issue's two targets are met."""
    summary = report["summary"]
    lines = []
    for v, ratio in summary["median_ratio"].items():
        verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
        lines.append(
            f"{v}: {ratio:.0%} of the bare endpoint's requests/s (median of the per-round ratios), "
            f"{verdict} the {TARGET_RATIO:.0%} target; per request it costs "
            f"{1 / summary['cpu_ratio'][v]:.1f}x the bare server's CPU."
        )
    if "batch" in summary:
        rate = summary["batch"]["msg_per_s"]
        verdict = "meets" if rate >= TARGET_BATCH_MSG_S else "MISSES"
        ratio = summary["batch"]["median_ratio_to_bare_producer"]
        bare = summary["batch"]["bare_producer_msg_per_s"]
        lines.append(
            f"batch: {rate:,.0f} messages/s into the broker (median round), "
            f"{verdict} the {TARGET_BATCH_MSG_S:,} target; {ratio:.2f} of what a bare aiokafka producer "
            f"sends of the same records in the same rounds ({bare:,.0f} msg/s: no HTTP, no validation, "
            "no deduplication)."
        )
    checks = report["checks"]
    if checks:
        exact = checks["single_rounds_exact"] and checks["batch_exact"]
        lines.append(
            f"broker: {'every' if exact else 'NOT every'} accepted message is on {TOPIC} exactly once "
            f"(read back {checks['records_in_topic_total']} records)."
        )
    return lines


def render_markdown(report: dict) -> str:
    """Return the markdown summary of a run."""
    info, options, plan = report["machine"], report["options"], report["cpu_plan"]
    tables = render_tables(report)
    checks = report["checks"]
    lines = [
        f"# Ingest throughput, {report['started_at']}",
        "",
        f"`{report['command']}`: {options['rounds']} rounds of {options['seconds']:g} s per variant, "
        f"wrk {options['wrk_threads']} thread(s), {options['concurrency']} keep-alive connections; "
        f"batch: {options['batch_size']} messages a request, {options['batch_concurrency']} requests "
        f"in flight. Messages of about {report['message_bytes_mean']} bytes of JSON, over every channel, "
        f"each with an external_id never sent before.",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), load average at start "
        f"{info['loadavg_at_start'][0]:.2f}, Python {info['python']}, uvicorn {info['uvicorn']} "
        f"({info['uvicorn_stack']}), FastAPI {info['fastapi']}, Starlette {info['starlette']}, "
        f"pydantic {info['pydantic']}, aiokafka {info['aiokafka']}, {info['wrk']}.",
        "",
        f"CPUs: server under test {plan['server']}; wrk, Tansu and this process (the batch client) "
        f"{plan['wrk, broker, bench, batch client']}; Redis {plan['redis']}. The `cores` columns are "
        f"CPU seconds per wall second of each process during the measurement; `other` is the rest of "
        f"the machine (other tenants).",
        "",
        "## POST /v1/messages, one message a request",
        "",
        tables["singles"],
        "",
        tables["detail"],
        "",
        "## POST /v1/messages/batch into the broker",
        "",
        tables["batch"],
        "",
        "## Verdict",
        "",
        *(f"- {line}" for line in verdicts(report)),
        "",
    ]
    if checks:
        lines += ["## Broker check", "", "```", json.dumps(checks, indent=2), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def wrk_version() -> str:
    """Return wrk's version line."""
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).splitlines()[0].split(" Copyright")[0].strip()


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
    stack = []
    for module, fallback in (("uvloop", "asyncio loop"), ("httptools", "h11 parser")):
        try:
            __import__(module)
            stack.append(module)
        except ImportError:
            stack.append(fallback)
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "loadavg_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
        "uvicorn": uvicorn.__version__,
        "uvicorn_stack": ", ".join(stack),
        "fastapi": fastapi.__version__,
        "starlette": starlette.__version__,
        "pydantic": pydantic.VERSION,
        "aiokafka": aiokafka.__version__,
        "redis_py": redis_py.__version__,
        "wrk": wrk_version(),
        "platform": platform.platform(),
        "broker": "tansu (memory storage), " + Path(broker_binary()).name,
    }


def write_reports(report: dict[str, object], markdown: str) -> tuple[Path, Path]:
    """Write the JSON and markdown reports under bench/results/; return their paths."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path, md_path = RESULTS / f"ingest-{stamp}.json", RESULTS / f"ingest-{stamp}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per variant and round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; ratios are the median over them")
    parser.add_argument("--concurrency", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk per server first")
    parser.add_argument("--batch-size", type=int, default=500, help="messages per batch request")
    parser.add_argument("--batch-concurrency", type=int, default=4, help="batch requests in flight")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin the server under test to the last CPU and wrk, Tansu and this process to the others",
    )
    parser.add_argument(
        "--own-redis",
        action="store_true",
        help="start a private redis-server on a free port even when one listens on 6379",
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--bare-producer", metavar="BOOTSTRAP", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables and write the reports."""
    args = parse_args(argv)
    if args.serve_bare:
        return serve_bare(args.serve_bare)
    if args.bare_producer:
        measured = bare_produce(args.bare_producer, args.seconds, args.batch_size, args.batch_concurrency)
        print(json.dumps(asyncio.run(measured)))
        return 0
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    report = run(args, lambda line: print(line, flush=True))
    markdown = render_markdown(report)
    json_path, md_path = write_reports(report, markdown)
    tables = render_tables(report)
    print()
    print(tables["singles"])
    print()
    print(tables["batch"])
    print()
    for line in verdicts(report):
        print(line)
    repo = RESULTS.parent.parent
    print(f"\nwrote {json_path.relative_to(repo)} and {md_path.relative_to(repo)}")
    checks = report["checks"]
    return 0 if checks.get("single_rounds_exact") and checks.get("batch_exact") else 1


if __name__ == "__main__":
    sys.exit(main())
