"""Redis, with persistence, restarted under traffic: no case and no SLA timer is lost.

The stack runs against a `redis-server` of this test's own, with `appendonly yes` and
`appendfsync always`: every write is in the append-only file, fsynced, before Redis answers it, so
what Redis acknowledged survives even a crash of the machine, not only the clean SIGTERM this test
sends (with `everysec`, a crash could lose the last second of acknowledged writes; a SIGTERM loses
nothing either way, since shutting down flushes and fsyncs the file).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from switchboard.contract import Queue, Topic
from switchboard.stack import SERVICES, free_port, port_open, redis_server_binary, stop_process, wait_until
from switchboard.testing import TopicReader, eventually

pytestmark = pytest.mark.e2e

CONSUMERS = ("classifier", "router", "sla")
MIN_OUTAGE_SECONDS = 4.0
# A record each consumer reads, by the topic it reads it from.
CONSUMED = {
    "classifier": Topic.MESSAGES_RECEIVED.value,
    "router": Topic.MESSAGES_CLASSIFIED.value,
    "sla": Queue.CUSTOMER_SERVICE.topic.value,
}


@dataclass
class RedisServer:
    """A redis-server with AOF persistence, fsynced on every write, that can be stopped and started again."""

    port: int
    data: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    client: Redis | None = None

    @property
    def url(self) -> str:
        """Return the server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server on its port and directory; it loads what its append-only file holds."""
        argv = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data),
        ]
        argv += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open("127.0.0.1", self.port), 15, "redis")

    def stop(self) -> None:
        """SIGTERM: Redis finishes the command in hand, flushes the append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process, timeout=20)


@pytest.fixture
async def persistent_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A redis-server of this test's own on a free port, with AOF persistence."""
    data = tmp_path / "redis"
    data.mkdir()
    server = RedisServer(free_port(), data, tmp_path / "redis.log")
    server.start()
    server.client = Redis.from_url(server.url)
    try:
        yield server
    finally:
        await server.client.aclose()
        server.stop()


async def stored_keys(client: Redis, prefix: str) -> set[bytes]:
    """Return the keys of cases and SLA timers under a prefix."""
    keys = set()
    for pattern in (f"{prefix}router:case:*", f"{prefix}sla:timer:*"):
        keys |= {k async for k in client.scan_iter(match=pattern, count=1000)}
    return keys


async def test_redis_restarted_mid_stream_loses_no_case_and_no_timer(
    failure_stack, channel, audit, metric, readiness, persistent_redis: RedisServer, key_prefix: str
):
    """Stop Redis (SIGTERM) while messages flow, start it again on its files: it proves

    - while Redis is down, ingest answers 503 with Retry-After (it cannot claim a message, so it
      stores none), every service reports Redis down in /readyz, and each consumer that has a record in
      hand fails its batch with a transient error and retries it (never skips or dead-letters it);
    - every key of a case or an SLA timer written before the stop is there after the restart, and so
      are the consumers' handled-event records: the copies put on their topics during the outage are
      skipped as already handled once Redis is back;
    - once Redis is back every service is ready again, every accepted message is routed under one event
      id to one case of its own, both clocks of every case start once and each firing they owe is
      published under one event id; Redis holds every case and timer of what was accepted.
    """
    started = time.monotonic()
    client = persistent_redis.client
    assert client is not None
    stack = await failure_stack(redis_at=persistent_redis.url)
    sender = channel(stack.url("ingest"), rate=20)
    sender.start()
    await eventually(lambda: len(sender.accepted) >= 60, timeout=30)
    async with TopicReader(stack.config.bootstrap, *CONSUMED.values()) as reader:
        # One record of each consumed topic, handled already: sent again while Redis is down, it is
        # work in hand for each consumer, whose dedupe look-up then fails.
        handled = {}
        for topic in CONSUMED.values():
            handled[topic] = (await reader.wait_for(lambda r, t=topic: r.topic == t))[0]
    errors_before = {
        s: await metric(stack, s, f'switchboard_{s}_bus_errors_total{{kind="transient"}}') for s in CONSUMERS
    }
    skipped_before = {
        s: await metric(stack, s, f"switchboard_{s}_duplicates_skipped_total") for s in CONSUMERS
    }

    before_stop = await stored_keys(client, key_prefix)
    outage = time.monotonic()
    await asyncio.to_thread(persistent_redis.stop)
    producer = AIOKafkaProducer(bootstrap_servers=stack.config.bootstrap, acks="all")
    await producer.start()
    try:
        for topic, record in handled.items():
            await producer.send_and_wait(
                topic, record.value, key=record.key, headers=list(record.headers or ())
            )
    finally:
        await producer.stop()

    async def refused_with_retry_after() -> bool:
        refused = sender.refused_since(outage)
        return len(refused) >= 3 and all(refused)

    await eventually(refused_with_retry_after, timeout=30)

    async def redis_reported_down() -> bool:
        states = [await readiness(stack, s) for s in SERVICES]
        return all(code == 503 and checks.get("redis") is False for code, checks in states)

    await eventually(redis_reported_down, timeout=30)

    async def consumers_retried() -> bool:
        for service in CONSUMERS:
            series = f'switchboard_{service}_bus_errors_total{{kind="transient"}}'
            if await metric(stack, service, series) <= errors_before[service]:
                return False
        return True

    await eventually(consumers_retried, timeout=30)
    # Down for a while whatever the machine's speed: deadlines fall due and messages keep coming meanwhile.
    await asyncio.sleep(max(0.0, MIN_OUTAGE_SECONDS - (time.monotonic() - outage)))
    refused_during = len(sender.refused_since(outage))
    await asyncio.to_thread(persistent_redis.start)
    down_for = time.monotonic() - outage

    after_restart = await stored_keys(client, key_prefix)
    lost = before_stop - after_restart
    assert not lost, f"{len(lost)} keys of cases or timers lost by the restart: {sorted(lost)[:5]}"
    for service in SERVICES:
        await asyncio.to_thread(stack.wait_ready, service, 60)

    async def copies_skipped() -> bool:
        # The copies sent during the outage are recognised as handled once Redis answers again.
        for service in CONSUMERS:
            if (
                await metric(stack, service, f"switchboard_{service}_duplicates_skipped_total")
                <= skipped_before[service]
            ):
                return False
        return True

    await eventually(copies_skipped, timeout=30)
    resumed = len(sender.accepted)
    await eventually(lambda: len(sender.accepted) >= resumed + 40, timeout=60)
    await sender.stop(drain=20)
    assert not sender.unexpected, sender.unexpected
    accepted = sender.accepted_ids

    async with audit(stack, client) as reading:
        routing = await reading.routed_once(accepted, sender.message_ids())
        firing = await reading.fired_once(set(routing.case_of.values()))
        await reading.cases_in_redis(routing.case_of)
        hops = reading.hop_duplicates()

    print(
        f"\n{sender.describe()}\nRedis down {down_for:.1f} s: {refused_during} requests refused 503 with "
        f"Retry-After; {len(before_stop)} case and timer keys before the stop, all there after it\n"
        f"{len(routing.case_of)} messages routed, {routing.duplicates} routing events published twice (one "
        f"is the copy sent during the outage); {len(firing.expected)} firings, {firing.duplicates} "
        f"published twice; repeated publishes per topic: {hops}; {time.monotonic() - started:.0f} s"
    )
    assert max(routing.copies.values()) <= 2
    assert max(firing.copies.values()) <= 2
