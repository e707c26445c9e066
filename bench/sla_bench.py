"""Measure SLA timers at scale: 1,000,000 open timers in Redis, then 10,000 breaches due in one second.

    .venv/bin/python bench/sla_bench.py [--timers 1000000] [--due 10000] [--loaders 2] [--lead 5]

1. Baseline, same run: a bare pipelined ZADD load, and a bare ZRANGEBYSCORE+ZREM claim loop on
   `--due` members due in one second (no Lua, no hash, no publish): the floor of the firing lag.
2. Load `--timers` open timers with `RedisTimerStore.start`, the service's Lua script, issued on
   pipelines of `--batch` commands by `--loaders` processes; report the rate and the Redis CPU per start.
   Redis memory per open timer is (used_memory after - before) / timers.
3. Firing rounds, one claimer process and then two: each runs the service's `run_ticker` (real
   `fire_due`, `KafkaPublisher`, default tick) against a Tansu broker started here. Once the claimers
   run, `--due` more timers are started whose breaches fall in one second `--lead` seconds ahead. Lag
   is the broker's acknowledgement time minus the due time, per breach; `sla.events` is read back and
   every breach must be there exactly once.

The keys live under `bench:sla:<run>:` and are deleted at the end (SCAN + UNLINK).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from sla import handlers
from sla.app import CLAIM_LIMIT, LEASE_SECONDS, run_ticker
from sla.config import Settings
from sla.metrics import SlaMetrics
from sla.policies import PolicySet, default_policies_path, parse_policies
from sla.store import Firing, RedisCaseState, RedisTimerStore
from switchboard.bus import KafkaPublisher, Traces, make_producer
from switchboard.config import KafkaSettings
from switchboard.contract import CloudEvent, SlaTimer, Topic
from switchboard.stack import free_port, port_open, redis_server_binary, wait_until
from switchboard.topics import ensure_topics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bus_bench import machine_info, tansu

RESULTS = Path(__file__).resolve().parent / "results"
# Case ids are UUIDs in production (derived by the router); their length weighs on the memory figure.
CASE_NAMESPACE = uuid.UUID("0b6a4a52-2f0e-4c55-9b3c-6a1d2f1f5e42")
# Bundled policies on the 24/7 calendar with targets of an hour or more: no background timer comes
# due while the bench runs. Their firings per timer (warnings, breach, escalations) differ, as in life.
BACKGROUND_POLICIES = ("meta-support", "messaging-support", "complaint-public", "review-support")
DUE_POLICY = "x-support"
CHANNELS = {
    "meta-support": "facebook",
    "messaging-support": "whatsapp",
    "complaint-public": "instagram",
    "review-support": "review",
    "x-support": "x",
}


def bundled_policies() -> PolicySet:
    """Return the policies that ship with the service."""
    return parse_policies(default_policies_path().read_text(encoding="utf-8"))


def case_id(tag: str, n: int) -> str:
    """Return the UUID case id of the n-th case of a batch, as the router would make it."""
    return str(uuid.uuid5(CASE_NAMESPACE, f"{tag}-{n}"))


def plan(policies: PolicySet, name: str, case_id: str, started: datetime) -> tuple[SlaTimer, list[Firing]]:
    """Build a first-response timer and its firings exactly as the service's handlers do."""
    policy = policies.get(name)
    assert policy is not None, name
    target = policy.targets["first_response"]
    firings = handlers.firings(policy, started, target)
    timer = SlaTimer(
        case_id=case_id,
        clock="first_response",
        policy=name,
        queue="customer-service",
        channel=CHANNELS[name],
        priority="P3",
        started_at=started,
        due_at=next(f.at for f in firings if f.kind == "breached"),
        target_seconds=target,
        elapsed_seconds=0.0,
    )
    return timer, firings


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def spread(values: list[float]) -> dict[str, float]:
    """Summarise lags in seconds: p50, p99, max."""
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": max(values)}


async def redis_cpu(redis: Redis) -> float:
    """Return the CPU seconds the Redis server has used so far."""
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def used_memory(redis: Redis) -> int:
    """Return Redis's used_memory in bytes."""
    return int((await redis.info("memory"))["used_memory"])


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """Run a redis-server of this bench alone (no persistence) on a free port; yield its URL."""
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
            "--appendonly",
            "no",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 15, "redis")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(30)


# Loading ---------------------------------------------------------------------------------------------


async def start_batch(redis: Redis, prefix: str, items: list[tuple[SlaTimer, list[Firing]]]) -> None:
    """Start timers with the service's `RedisTimerStore.start`, queued on one pipeline."""
    pipe = redis.pipeline(transaction=False)
    # The store over a pipeline queues the same EVALSHA (script, keys, args) the service sends.
    store = RedisTimerStore(pipe, prefix)
    for timer, firings in items:
        await store.start(timer, firings)
    results = await pipe.execute()
    assert all(r == 1 for r in results), "a timer did not start"


async def load_range(
    redis_url: str, prefix: str, tag: str, lo: int, hi: int, started: float, batch: int
) -> None:
    """Start background timers lo..hi-1, pipelined, with two batches in flight."""
    policies = bundled_policies()
    redis = Redis.from_url(redis_url)
    at = datetime.fromtimestamp(started, UTC)
    try:
        in_flight: set[asyncio.Task[None]] = set()
        for first in range(lo, hi, batch):
            items = [
                plan(policies, BACKGROUND_POLICIES[i % len(BACKGROUND_POLICIES)], case_id(tag, i), at)
                for i in range(first, min(hi, first + batch))
            ]
            in_flight.add(asyncio.create_task(start_batch(redis, prefix, items)))
            if len(in_flight) >= 2:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        await asyncio.gather(*in_flight)
    finally:
        await redis.aclose()


def loader_process(*args: Any) -> None:
    """Entry point of a loader process."""
    asyncio.run(load_range(*args))


def load_background(args: argparse.Namespace, redis_url: str, prefix: str, tag: str, count: int) -> float:
    """Start `count` far-future timers with `--loaders` processes; return the seconds it took."""
    ctx = mp.get_context("spawn")
    step = -(-count // args.loaders)
    started = time.time()
    processes = [
        ctx.Process(
            target=loader_process,
            args=(redis_url, prefix, tag, lo, min(count, lo + step), started, args.batch),
        )
        for lo in range(0, count, step)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a loader exited with {process.exitcode}")
    return time.time() - started


async def start_due(redis: Redis, prefix: str, tag: str, count: int, at: float, batch: int) -> None:
    """Start `count` timers whose breaches fall in the second from `at` (earlier warnings went out before)."""
    policies = bundled_policies()
    target = policies.get(DUE_POLICY).targets["first_response"]
    items = []
    for i in range(count):
        due = datetime.fromtimestamp(at + i / count, UTC)
        timer, firings = plan(policies, DUE_POLICY, case_id(tag, i), due - timedelta(seconds=target))
        assert timer.due_at == due
        items.append((timer, [f for f in firings if not f.kind.startswith("warning")]))
    for first in range(0, count, batch):
        await start_batch(redis, prefix, items[first : first + batch])


async def measure_single_starts(redis: Redis, prefix: str, count: int, concurrency: int = 64) -> float:
    """Return the rate of un-pipelined `start` calls, one round trip each, as handlers issue them."""
    policies = bundled_policies()
    store = RedisTimerStore(redis, prefix)
    now = datetime.now(UTC)
    items = iter(
        [plan(policies, BACKGROUND_POLICIES[i % 4], case_id("single", i), now) for i in range(count)]
    )

    async def worker() -> None:
        for timer, firings in items:
            await store.start(timer, firings)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - began)


# Baseline --------------------------------------------------------------------------------------------


async def baseline(redis: Redis, prefix: str, count: int, due: int, lead: float, tick: float) -> dict:
    """Measure a bare ZADD load and a bare claim loop (ZRANGEBYSCORE + ZREM) on the same Redis."""
    key = f"{prefix}baseline"
    far = time.time() + 86400
    began = time.perf_counter()
    for first in range(0, count, 1000):
        pipe = redis.pipeline(transaction=False)
        pipe.zadd(key, {f"base-{i:07d}|first_response|breached": far + i for i in range(first, first + 1000)})
        await pipe.execute()
    load_rate = count / (time.perf_counter() - began)
    at = time.time() + lead
    await redis.zadd(key, {f"burst-{i:06d}|first_response|breached": at + i / due for i in range(due)})
    lags: list[float] = []
    while len(lags) < due:
        now = time.time()
        while True:
            members = await redis.zrangebyscore(key, "-inf", now, start=0, num=CLAIM_LIMIT, withscores=True)
            if not members:
                break
            await redis.zrem(key, *[m for m, _ in members])
            claimed_at = time.time()
            lags += [claimed_at - score for _, score in members]
            if len(members) < CLAIM_LIMIT:
                break
        await asyncio.sleep(tick)
    await redis.unlink(key)
    return {"zadd_pipelined_per_s": load_rate, "zadd_count": count, "claim_lag_s": spread(lags)}


# Claimers ---------------------------------------------------------------------------------------------


class Recording:
    """The real publisher, noting when the broker acknowledged each breach and when it was built."""

    def __init__(self, publisher: KafkaPublisher) -> None:
        self._publisher = publisher
        self.records: list[tuple[str, str, float, float, float]] = []

    async def publish(self, events: list[CloudEvent], traces: Traces | None = None) -> None:
        await self._publisher.publish(events, traces)
        acked = time.time()
        for e in events:
            if e.type == "switchboard.sla.breached":
                self.records.append(
                    (e.id, e.data.case_id, e.data.due_at.timestamp(), e.time.timestamp(), acked)
                )


async def claim(redis_url: str, prefix: str, bootstrap: str, tick: float, ready, stop, results) -> None:
    """Run the service's ticker until told to stop; hand back what was published and the CPU used."""
    redis = Redis.from_url(redis_url)
    producer = make_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-sla")
    await producer.start()
    policies = bundled_policies()
    timers = RedisTimerStore(redis, prefix)
    deps = handlers.Deps(timers=timers, cases=RedisCaseState(redis, prefix), policies=lambda: policies)
    publisher = Recording(KafkaPublisher(producer))
    cpu = time.process_time()
    task = asyncio.create_task(run_ticker(timers, publisher, deps, SlaMetrics(CollectorRegistry()), tick))
    ready.set()
    await asyncio.to_thread(stop.wait)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    results.put({"records": publisher.records, "cpu_s": time.process_time() - cpu})
    await producer.stop()
    await redis.aclose()


def claimer_process(*args: Any) -> None:
    """Entry point of a claimer process."""
    asyncio.run(claim(*args))


async def read_breaches(bootstrap: str, cases: set[str], timeout: float = 60) -> Counter:
    """Read `sla.events` from the start; count the breaches of these cases by event id."""
    consumer = AIOKafkaConsumer(
        Topic.SLA_EVENTS.value, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    copies: Counter = Counter()
    deadline = time.monotonic() + timeout
    quiet_since = None
    try:
        # Keep reading a second past the last expected record, so that a duplicate would be seen too.
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            fresh = [r for rs in batches.values() for r in rs]
            for record in fresh:
                event = json.loads(record.value)
                if event["type"] == "switchboard.sla.breached" and event["data"]["case_id"] in cases:
                    copies[event["id"]] += 1
            if sum(copies.values()) >= len(cases) and not fresh:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.0:
                    break
            else:
                quiet_since = None
    finally:
        await consumer.stop()
    return copies


async def firing_round(
    args: argparse.Namespace,
    redis: Redis,
    redis_url: str,
    prefix: str,
    bootstrap: str,
    claimers: int,
    tag: str,
) -> dict:
    """Start the claimers, make `--due` breaches come due in one second, collect lags and counts."""
    ctx = mp.get_context("spawn")
    stop, results = ctx.Event(), ctx.Queue()
    readies = [ctx.Event() for _ in range(claimers)]
    processes = [
        ctx.Process(target=claimer_process, args=(redis_url, prefix, bootstrap, args.tick, r, stop, results))
        for r in readies
    ]
    for process in processes:
        process.start()
    try:
        for ready in readies:
            if not await asyncio.to_thread(ready.wait, 60):
                raise RuntimeError("a claimer did not start")
        at = float(int(time.time() + args.lead))
        await start_due(redis, prefix, tag, args.due, at, args.batch)
        open_timers = await redis.scard(f"{prefix}sla:open")
        memory_after = await used_memory(redis)
        await asyncio.sleep(max(0.0, at - time.time()))
        load = os.getloadavg()
        cpu_before = await redis_cpu(redis)
        while (
            time.time() < at + 1
            or await redis.zcount(f"{prefix}sla:due", "-inf", at + 1)
            or await redis.zcard(f"{prefix}sla:firing")
        ):
            if time.time() > at + 120:
                raise RuntimeError("the due timers did not all fire within two minutes")
            await asyncio.sleep(0.1)
        redis_cpu_s = await redis_cpu(redis) - cpu_before
        await asyncio.sleep(0.5)
        stop.set()
        outputs = [await asyncio.to_thread(results.get, True, 60) for _ in processes]
    finally:
        stop.set()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    cases = {case_id(tag, i) for i in range(args.due)}
    records = [r for out in outputs for r in out["records"] if r[1] in cases]
    copies = await read_breaches(bootstrap, cases)
    published = Counter(r[0] for r in records)
    return {
        "claimers": claimers,
        "open_timers": open_timers,
        "used_memory_after_load": memory_after,
        "loadavg_at_burst": load,
        "due_in_second_starting": datetime.fromtimestamp(at, UTC).isoformat(),
        "published_by_claimer": [sum(1 for r in out["records"] if r[1] in cases) for out in outputs],
        "claimer_cpu_s": [round(out["cpu_s"], 2) for out in outputs],
        "redis_cpu_s_during_burst": round(redis_cpu_s, 3),
        "distinct_breaches_on_topic": len(copies),
        "records_on_topic": sum(copies.values()),
        "published_twice": sum(1 for n in published.values() if n > 1),
        "exactly_once": len(copies) == args.due
        and set(copies.values()) == {1}
        and len(published) == args.due,
        "claim_lag_s": spread([built - due for _, _, due, built, _ in records]),
        "publish_lag_s": spread([acked - due for _, _, due, _, acked in records]),
        "within_1s": sum(1 for _, _, due, _, acked in records if acked - due <= 1.0) / max(1, len(records)),
    }


# Run -------------------------------------------------------------------------------------------------


async def delete_prefix(redis: Redis, prefix: str) -> int:
    """Delete every key under `prefix` with SCAN and UNLINK, in batches; return how many."""
    deleted = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            deleted += await redis.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await redis.unlink(*batch)
    return deleted


async def run(args: argparse.Namespace, redis_url: str, bootstrap: str) -> dict:
    """Run every phase against this Redis and broker; return the report."""
    say = lambda line: print(line, flush=True)  # noqa: E731
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench:sla:{run_id}:"
    redis = Redis.from_url(redis_url)
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/sla_bench.py", *sys.argv[1:]]),
        "timers": args.timers,
        "due": args.due,
        "loaders": args.loaders,
        "batch": args.batch,
        "tick_seconds": args.tick,
        "claim_limit": CLAIM_LIMIT,
        "lease_seconds": LEASE_SECONDS,
        "machine": machine_info(),
        "redis": {
            "url": redis_url,
            "private": args.redis_url is None,
            **{k: (await redis.info("server"))[k] for k in ("redis_version", "io_threads_active")},
        },
    }
    try:
        await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap))
        say(f"baseline: bare ZADD load of {args.baseline_count:,} members, bare claim loop on {args.due:,}")
        report["baseline"] = await baseline(
            redis, prefix, args.baseline_count, args.due, args.lead, args.tick
        )
        say(f"  {report['baseline']}")

        single = await measure_single_starts(redis, f"{prefix}single:", args.single_count)
        await delete_prefix(redis, f"{prefix}single:")
        report["single_start_per_s"] = single
        say(f"un-pipelined RedisTimerStore.start, 64 concurrent: {single:,.0f}/s")

        background = args.timers - args.due
        memory_before = await used_memory(redis)
        cpu_before = await redis_cpu(redis)
        say(f"loading {background:,} background timers with {args.loaders} loader processes…")
        seconds = load_background(args, redis_url, prefix, f"bg-{run_id}", background)
        redis_cpu_s = await redis_cpu(redis) - cpu_before
        due_entries = await redis.zcard(f"{prefix}sla:due")
        report["load"] = {
            "timers": background,
            "seconds": round(seconds, 1),
            "per_s": background / seconds,
            "redis_cpu_us_per_start": redis_cpu_s / background * 1e6,
            "due_entries_per_timer": due_entries / background,
            "loadavg_after": os.getloadavg(),
        }
        say(f"  {report['load']}")

        report["rounds"] = []
        for round_no, claimers in enumerate((1, 2), start=1):
            say(f"round {round_no}: {claimers} claimer(s), {args.due:,} breaches due in one second")
            result = await firing_round(
                args, redis, redis_url, prefix, bootstrap, claimers, f"due{round_no}-{run_id}"
            )
            if round_no == 1:
                opened = result["open_timers"]
                report["memory"] = {
                    "open_timers": opened,
                    "used_memory_before": memory_before,
                    "used_memory_after": result["used_memory_after_load"],
                    "bytes_per_open_timer": (result["used_memory_after_load"] - memory_before) / opened,
                    "breakdown": await memory_breakdown(redis, prefix),
                }
                say(f"  memory: {report['memory']['bytes_per_open_timer']:.0f} B per open timer")
            report["rounds"].append(result)
            say(f"  {result}")
    finally:
        began = time.perf_counter()
        deleted = await delete_prefix(redis, prefix)
        report["cleanup"] = {"keys_deleted": deleted, "seconds": round(time.perf_counter() - began, 1)}
        say(f"deleted {deleted:,} keys under {prefix} in {report['cleanup']['seconds']} s")
        await redis.aclose()
    return report


async def memory_breakdown(redis: Redis, prefix: str, samples: int = 1000) -> dict[str, float]:
    """Estimate where the bytes go: the sorted sets, the open set, and a sample of timer hashes."""
    out = {}
    for name in ("due", "open"):
        usage = await redis.memory_usage(f"{prefix}sla:{name}", samples=1000) or 0
        out[f"{name}_bytes"] = usage
    opened = await redis.scard(f"{prefix}sla:open")
    members = await redis.srandmember(f"{prefix}sla:open", samples)
    sizes = [await redis.memory_usage(f"{prefix}sla:timer:{m.decode()}") or 0 for m in members]
    out["timer_hash_bytes_mean"] = statistics.fmean(sizes)
    out["timer_hashes_bytes_estimate"] = out["timer_hash_bytes_mean"] * opened
    out["per_timer_estimate"] = (out["due_bytes"] + out["open_bytes"]) / opened + out["timer_hash_bytes_mean"]
    return out


def render_markdown(report: dict) -> str:
    """Return the markdown summary of a run."""
    info, load, memory, base = report["machine"], report["load"], report["memory"], report["baseline"]
    lines = [
        f"# SLA timers at scale, {report['started_at']}",
        "",
        f"`{report['command']}`",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"redis-py {info['redis_py']} "
        f"(hiredis: {'yes' if info['hiredis_parser'] else 'no'}), Redis {report['redis']['redis_version']} "
        f"({'private to the bench' if report['redis']['private'] else 'shared: ' + report['redis']['url']}), "
        f"{info['broker']}; load average at start {info['loadavg_at_start'][0]:.2f}.",
        "",
        "## Load and memory",
        "",
        f"- {load['timers']:,} timers started with `RedisTimerStore.start` on pipelines of {report['batch']} "
        f"by {report['loaders']} processes in {load['seconds']} s: **{load['per_s']:,.0f} timers/s** "
        f"({load['due_entries_per_timer']:.2f} due entries per timer; Redis CPU "
        f"{load['redis_cpu_us_per_start']:.1f} us per start). Bare pipelined ZADD, one member per timer: "
        f"{base['zadd_pipelined_per_s']:,.0f}/s. Un-pipelined `start` (one round trip each, as the handlers "
        f"do), 64 concurrent: {report['single_start_per_s']:,.0f}/s.",
        f"- **{memory['bytes_per_open_timer']:,.0f} bytes of Redis memory per open timer** "
        f"(used_memory {memory['used_memory_before'] / 2**20:,.0f} MiB before, "
        f"{memory['used_memory_after'] / 2**20:,.0f} MiB with {memory['open_timers']:,} open timers). "
        f"Estimate by key: `due` sorted set {memory['breakdown']['due_bytes'] / 2**20:,.0f} MiB, `open` set "
        f"{memory['breakdown']['open_bytes'] / 2**20:,.0f} MiB, timer hashes "
        f"{memory['breakdown']['timer_hash_bytes_mean']:.0f} B each.",
        "",
        f"## {report['due']:,} breaches due in the same second, tick {report['tick_seconds']} s",
        "",
        "| claimers | open timers | publish lag p50 / p99 / max (s) | claim lag p50 / p99 / max (s) "
        "| within 1 s | exactly once | per claimer | claimer CPU s | Redis CPU s | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rounds"]:
        pub, cl = r["publish_lag_s"], r["claim_lag_s"]
        lines.append(
            f"| {r['claimers']} | {r['open_timers']:,} "
            f"| {pub['p50']:.3f} / **{pub['p99']:.3f}** / {pub['max']:.3f} "
            f"| {cl['p50']:.3f} / {cl['p99']:.3f} / {cl['max']:.3f} | {r['within_1s']:.1%} "
            f"| {'yes' if r['exactly_once'] else 'NO'} ({r['distinct_breaches_on_topic']:,} ids, "
            f"{r['records_on_topic']:,} records) | {r['published_by_claimer']} | {r['claimer_cpu_s']} "
            f"| {r['redis_cpu_s_during_burst']} | {r['loadavg_at_burst'][0]:.2f} |"
        )
    bl = base["claim_lag_s"]
    lines += [
        "",
        f"Baseline claim loop (bare ZRANGEBYSCORE + ZREM, same tick, no Lua, no publish): lag p50 "
        f"{bl['p50']:.3f} s, p99 {bl['p99']:.3f} s, max {bl['max']:.3f} s.",
        "",
        f"Cleanup: {report['cleanup']['keys_deleted']:,} keys unlinked in {report['cleanup']['seconds']} s.",
    ]
    return "\n".join(lines) + "\n"


def write_reports(report: dict, markdown: str) -> tuple[Path, Path]:
    """Write the JSON and markdown reports under bench/results/; return their paths."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path, md_path = RESULTS / f"sla-{stamp}.json", RESULTS / f"sla-{stamp}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--timers", type=int, default=1_000_000, help="open timers in Redis (default 1000000)"
    )
    parser.add_argument(
        "--due", type=int, default=10_000, help="breaches due in the same second (default 10000)"
    )
    parser.add_argument("--loaders", type=int, default=2, help="loader processes (default 2)")
    parser.add_argument("--batch", type=int, default=1000, help="start commands per pipeline (default 1000)")
    parser.add_argument("--lead", type=float, default=5.0, help="seconds from start-up to the due second")
    parser.add_argument(
        "--tick", type=float, default=Settings().tick_seconds, help="ticker period (service default)"
    )
    parser.add_argument(
        "--redis-url",
        help="use this Redis (keys under bench:sla:<run>: are deleted at the end); default: a private "
        "redis-server, so that the memory figure and the timings are this bench's alone",
    )
    parser.add_argument("--baseline-count", type=int, default=200_000, help="members of the bare ZADD load")
    parser.add_argument(
        "--single-count", type=int, default=20_000, help="timers of the un-pipelined start run"
    )
    args = parser.parse_args(argv)
    if args.due > args.timers:
        parser.error("--due cannot exceed --timers")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures and write the reports."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sla-bench-") as tmp:
        workdir = Path(tmp)
        redis = private_redis(workdir) if args.redis_url is None else contextlib.nullcontext(args.redis_url)
        with redis as redis_url, tansu(workdir) as bootstrap:
            print(
                f"broker {bootstrap}, redis {redis_url}, {args.timers:,} timers, {args.due:,} due", flush=True
            )
            report = asyncio.run(run(args, redis_url, bootstrap))
    markdown = render_markdown(report)
    json_path, md_path = write_reports(report, markdown)
    print()
    print(markdown)
    repo = RESULTS.parent.parent
    print(f"wrote {json_path.relative_to(repo)} and {md_path.relative_to(repo)}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
