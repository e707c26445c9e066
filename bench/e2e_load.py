"""The load side of bench/e2e_bench.py: request bodies, an open-loop HTTP client, a reader of the queue
topics, the services' /metrics and the CPU time of every process.

The client keeps a fixed send schedule (request i is due at start + i / rate) and measures from the time
a request was due, not from when a connection was free to send it, so a slow server shows as latency
instead of as a lower offered rate (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from ingest_bench import PHRASES, PRIVATE_THREADS, machine_busy, process_cpu

from switchboard.contract import Channel, Topic

QUEUE_TOPICS = (Topic.CASES_CUSTOMER_SERVICE.value, Topic.CASES_MARKETING.value, Topic.CASES_REVIEW.value)
REQUEST_TIMEOUT_S = 30.0
# Replace a keep-alive connection idle for longer than this: uvicorn closes them after 5 s.
IDLE_S = 4.0


class Clock:
    """Wall-clock seconds read off the monotonic clock, so schedules do not jump when the wall clock does.

    Kafka record timestamps are the producer's wall clock; this clock agrees with it at start and cannot
    step during a run.
    """

    def __init__(self) -> None:
        self.wall0, self.mono0 = time.time(), time.monotonic()

    def now(self) -> float:
        """Return the wall time now."""
        return self.wall0 + (time.monotonic() - self.mono0)

    def to_mono(self, wall: float) -> float:
        """Return the monotonic time of a wall time."""
        return wall - self.wall0 + self.mono0


# -- the messages ------------------------------------------------------------------------------------


def message_items(run: str, phase: str, count: int, seed: int, follow_up: float = 0.3) -> list[str]:
    """Return `count` MessageIn bodies as JSON; the external_id `e2e-<run>-<phase>-<n>` identifies each.

    Every channel, English and French. A share `follow_up` of the messages continue a recent
    conversation of the same phase (so they join its case); the others start a new one. E-mails carry
    an order number from a pool of 100,000, so a few cases link across conversations.
    """
    rng = random.Random(seed)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    recent: list[tuple[Channel, dict[str, object], str | None]] = []
    items = []
    channels = list(Channel)
    for i in range(count):
        language = rng.choice(("en", "fr"))
        text = " ".join(rng.sample(PHRASES[language], rng.randint(1, 3)))
        if recent and rng.random() < follow_up:
            channel, author, conversation = rng.choice(recent)
        else:
            channel = rng.choice(channels)
            author = {"id": f"{channel.value}-{run}-{phase}-{i}"}
            if rng.random() < 0.7:
                author["name"] = f"Customer {i}"
            if channel not in PRIVATE_THREADS:
                author["handle"] = f"@user{rng.randrange(10**6)}"
                author["followers"] = rng.choice([rng.randrange(50), rng.randrange(100_000)])
            conversation = None
            if channel in PRIVATE_THREADS and rng.random() < 0.6:
                conversation = f"{channel.value}:thread:{run}-{phase}-{i}"
            recent.append((channel, author, conversation))
            if len(recent) > 500:
                recent.pop(0)
        if channel is Channel.EMAIL:
            text = f"Hello,\n\n{text}.\n\nOrder A-{rng.randrange(10**5):05d}.\n\nBest regards,\nSam"
        item: dict[str, object] = {
            "channel": channel.value,
            "external_id": f"e2e-{run}-{phase}-{i}",
            "author": author,
            "text": text,
            "created_at": (base + timedelta(milliseconds=i)).isoformat(),
        }
        if conversation:
            item["conversation_id"] = conversation
        if rng.random() < 0.5:
            item["language"] = language
        if rng.random() < 0.3:
            item["metadata"] = {"page": "/assistance", "order": f"A-{rng.randrange(10**5):05d}"}
        items.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
    return items


def request_bodies(items: list[str], per_request: int) -> list[bytes]:
    """Return the bodies of POST /v1/messages (per_request 1) or of /v1/messages/batch."""
    if per_request == 1:
        return [item.encode() for item in items]
    return [
        ('{"messages":[' + ",".join(items[i : i + per_request]) + "]}").encode()
        for i in range(0, len(items), per_request)
    ]


# -- the open-loop client ----------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its answer, in turn."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    def _stale(self) -> bool:
        return (
            self.writer is None
            or self.reader is None
            or self.writer.is_closing()
            or self.reader.at_eof()
            or time.monotonic() - self.last_used > IDLE_S
        )

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """Send one POST and return the status and body of the answer.

        A connection idle for longer than the server keeps it (uvicorn: 5 s) is replaced before use. If
        the server closed a reused connection before answering anything, the request is sent once more on
        a new one: it never reached the application (and ingest would answer a repeat as a duplicate).
        """
        for attempt in (1, 2):
            reused = not self._stale()
            if not reused:
                self.close()
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                return await self._exchange(path, body)
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                self.close()
                unanswered = not getattr(exc, "partial", b"")
                if not (reused and unanswered and attempt == 1):
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    async def _exchange(self, path: str, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length, close = 0, False
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        self.last_used = time.monotonic()
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        """Close the socket."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class RequestLog:
    """What happened to each request of an open-loop run, by request number (wall-clock seconds)."""

    per_request: int
    due: list[float]
    sent: list[float]
    done: list[float]
    status: list[int]
    accepted: list[int]
    errors: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, requests: int, per_request: int) -> RequestLog:
        """Return the log of `requests` requests not sent yet."""
        nan = math.nan
        return cls(
            per_request, [nan] * requests, [nan] * requests, [nan] * requests, [0] * requests, [0] * requests
        )

    @property
    def requests(self) -> int:
        """Return how many requests were scheduled."""
        return len(self.due)

    def accepted_between(self, start: float, end: float) -> int:
        """Return the messages accepted by answers that arrived between two wall times."""
        return sum(a for a, d in zip(self.accepted, self.done, strict=True) if start <= d < end)

    def send_delays(self) -> list[float]:
        """Return, per request sent, how long after its due time it left (client or connection wait)."""
        return [s - d for s, d in zip(self.sent, self.due, strict=True) if not math.isnan(s)]


async def open_loop(
    host: str,
    port: int,
    path: str,
    bodies: list[bytes],
    per_request: int,
    rate: float,
    clock: Clock,
    log: RequestLog,
    start: float,
    connections: int = 64,
    drop_late: bool = True,
) -> RequestLog:
    """Post `bodies` at `rate` requests per second on a fixed schedule, filling `log`; return it.

    Request i is due at `start` (wall time) + i / rate. A due request waits for a free connection (at most
    `connections`) and its latency still counts from its due time. With `drop_late`, requests not yet
    sent one second after the schedule ends are dropped and logged as `unsent`; otherwise every request
    is sent. Answers are awaited at most REQUEST_TIMEOUT_S.
    """
    n = len(bodies)
    queue: asyncio.Queue[int] = asyncio.Queue()
    interval = 1.0 / rate

    def count(what: str) -> None:
        log.errors[what] = log.errors.get(what, 0) + 1

    async def worker() -> None:
        connection = Connection(host, port)
        try:
            while True:
                i = await queue.get()
                if i < 0:
                    return
                log.sent[i] = clock.now()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        status, payload = await connection.post(path, bodies[i])
                except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    count(type(exc).__name__)
                    continue
                log.done[i] = clock.now()
                log.status[i] = status
                if per_request == 1:
                    log.accepted[i] = 1 if status in (200, 202) else 0
                elif status == 200:
                    log.accepted[i] = json.loads(payload)["accepted"]
        finally:
            connection.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    try:
        for i in range(n):
            due = start + i * interval
            log.due[i] = due
            wait = clock.to_mono(due) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            queue.put_nowait(i)
        if drop_late:
            # A run that fell behind leaves requests queued: they are not sent late, they are counted.
            await asyncio.sleep(max(0.0, clock.to_mono(start + n * interval + 1.0) - time.monotonic()))
            while not queue.empty():
                queue.get_nowait()
                count("unsent")
        for _ in workers:
            queue.put_nowait(-1)
        await asyncio.wait(workers, timeout=None if not drop_late else REQUEST_TIMEOUT_S + 5)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return log


async def burst(
    host: str, port: int, path: str, bodies: list[bytes], per_request: int, concurrency: int, clock: Clock
) -> RequestLog:
    """Post `bodies` as fast as `concurrency` connections answer (closed loop); return the log."""
    log = RequestLog.empty(len(bodies), per_request)
    start = clock.now()
    return await open_loop(
        host, port, path, bodies, per_request, 1e9, clock, log, start, concurrency, drop_late=False
    )


# -- the queue topics --------------------------------------------------------------------------------


@dataclass
class PhaseRecords:
    """When each message of one phase reached its queue topic, by message number."""

    count: int
    created: list[float] = field(default_factory=list)
    seen: list[float] = field(default_factory=list)
    routed: int = 0
    duplicates: int = 0

    def __post_init__(self) -> None:
        self.created = [math.nan] * self.count
        self.seen = [math.nan] * self.count


class QueueReader:
    """Reads the three queue topics from their start for the life of a stack and files each CaseRouted
    under its phase, by the message number in its external_id.

    The record timestamp is the router producer's CreateTime (Tansu keeps the producer's timestamp); the
    reader also notes when it saw the record.
    """

    def __init__(self, bootstrap: str, run: str, clock: Clock) -> None:
        self.bootstrap = bootstrap
        self.clock = clock
        self.pattern = re.compile(rb'"external_id":"e2e-' + run.encode() + rb'-([A-Za-z0-9]+)-(\d+)"')
        self.phases: dict[str, PhaseRecords] = {}
        self.records = 0
        self.foreign = 0
        self.consumer: AIOKafkaConsumer | None = None
        self.task: asyncio.Task[None] | None = None

    def watch(self, phase: str, count: int) -> PhaseRecords:
        """Start filing the records of a phase of `count` messages."""
        records = self.phases[phase] = PhaseRecords(count)
        return records

    async def start(self) -> None:
        """Assign every partition of the queue topics from the start, and read in the background."""
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await self.consumer.start()
        await self.consumer.topics()
        partitions = [
            TopicPartition(topic, p)
            for topic in QUEUE_TOPICS
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            seen = self.clock.now()
            for records in batches.values():
                for record in records:
                    self.records += 1
                    match = self.pattern.search(record.value)
                    phase = self.phases.get(match[1].decode()) if match else None
                    if phase is None:
                        self.foreign += 1
                        continue
                    n = int(match[2])
                    if not math.isnan(phase.created[n]):
                        phase.duplicates += 1
                        continue
                    phase.created[n] = record.timestamp / 1000
                    phase.seen[n] = seen
                    phase.routed += 1

    async def stop(self) -> None:
        """Stop reading."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.consumer is not None:
            await self.consumer.stop()


# -- the services' metrics ---------------------------------------------------------------------------


def metric_sum(name: str, text: str) -> float:
    """Return the sum of every series of a metric in a Prometheus text page."""
    return sum(float(m[1]) for m in re.finditer(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M))


@dataclass
class Scrape:
    """The consumer lag gauges and the record counters of every process at one moment."""

    at: float
    lag: dict[str, float]
    consumed: dict[str, float]
    produced: dict[str, float]
    accepted: float

    @property
    def total_lag(self) -> float:
        """Return the lag gauges summed over every service and partition, as the services report them."""
        return sum(self.lag.values())

    def counted_lag(self) -> float:
        """Return the records waiting for a consumer, from the services' counters.

        For each hop, what the producing side published minus what the consuming side has taken: ingest's
        accepted messages minus the classifier's consumed records, the classifier's produced minus the
        routers' consumed, the routers' produced minus the SLA service's consumed.
        """
        routers = [name for name in self.consumed if name.startswith("router")]
        routed = sum(self.produced[r] for r in routers)
        return (
            (self.accepted - self.consumed["classifier"])
            + (self.produced["classifier"] - sum(self.consumed[r] for r in routers))
            + (routed - self.consumed["sla"])
        )


async def scrape(client: httpx.AsyncClient, urls: dict[str, str], ingest: str, clock: Clock) -> Scrape:
    """Read /metrics of ingest and of each named consuming process."""
    pages = await asyncio.gather(*(client.get(url + "/metrics") for url in [ingest, *urls.values()]))
    lag, consumed, produced = {}, {}, {}
    for name, page in zip(urls, pages[1:], strict=True):
        text = page.text
        lag[name] = metric_sum(r"switchboard_\w+?_consumer_lag_records", text)
        consumed[name] = metric_sum(r"switchboard_\w+?_records_consumed_total", text)
        produced[name] = metric_sum(r"switchboard_\w+?_records_produced_total", text)
    accepted = metric_sum("switchboard_ingest_messages_accepted_total", pages[0].text)
    return Scrape(clock.now(), lag, consumed, produced, accepted)


def trough_growth(points: Iterable[tuple[float, float]]) -> float:
    """Return how fast the troughs of a series rise, per second.

    The lowest value of the last third minus the lowest of the first third, over the time between the
    middles of the thirds. Lag and backlog are sawtooths, up between polls and down by a whole poll: a
    consumer that keeps up comes back to its trough after each poll, whatever the size of its polls, and
    one that falls behind raises the trough by its shortfall. A least-squares slope would mostly measure
    where in a tooth the window happened to end.
    """
    pts = sorted(points)
    if len(pts) < 3:
        return 0.0
    third = len(pts) // 3
    first, last = pts[:third], pts[-third:]
    span = (last[len(last) // 2][0] - first[len(first) // 2][0]) or 1.0
    return (min(y for _, y in last) - min(y for _, y in first)) / span


# -- CPU ---------------------------------------------------------------------------------------------


@dataclass
class CpuMeter:
    """Cumulative CPU seconds of each process of the stack, of this process and of the whole machine."""

    pids: dict[str, int]

    def sample(self) -> dict[str, float]:
        """Return cumulative CPU seconds per process, `bench` (this process), `machine` and `wall`."""
        values = {name: process_cpu(pid) for name, pid in self.pids.items()}
        own = resource.getrusage(resource.RUSAGE_SELF)
        values["bench"] = own.ru_utime + own.ru_stime
        values["machine"] = machine_busy()
        values["wall"] = time.monotonic()
        return values

    @staticmethod
    def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """Return the CPU seconds each process used between two samples, `other` and `wall` seconds."""
        used = {k: after[k] - before[k] for k in after if k in before}
        ours = sum(v for k, v in used.items() if k not in ("machine", "wall"))
        used["other"] = max(0.0, used.pop("machine") - ours)
        return used


def cpu_count() -> int:
    """Return the CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def log_tail(path: Path, chars: int = 3000) -> str:
    """Return the end of a log file."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""
