"""What the failure tests share: a stack of their own, a channel posting a steady stream, and an audit.

The stack is the embedded one (`switchboard.stack`): a Tansu broker of its own on a free port, so that
freezing it or churning the consumer groups touches no other test, the four services as processes, and
an SLA policy of seconds-long targets so that every deadline of the run fires within the test.

The audit reads the topics from the beginning and checks "exactly once" as consumers see it, since they
drop an event whose id they handled already. For each message ingest accepted (answered 2xx):
- it is on a queue topic (`cases.customer-service`, `cases.marketing` or `cases.review`): nothing lost;
- every CaseRouted record of it carries one and the same event id, and names one case, a case no other
  message has (each message has an author of its own): no second routing, no second case;
- both clocks of its case started under one event id each, and every warning, breach and escalation
  those clocks owe is on `sla.events`, each under the one id derived from its clock's start.
A record published again under the same event id is allowed by the design: a process killed after
publishing and before committing handles its batch again, and its outputs keep their ids because they
derive from their cause. Such a repeated publish is counted as a duplicate, reported, and bounded by
each test (never more than two copies of an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from sla.app import LEASE_SECONDS
from switchboard.contract import Queue, Topic, derive_id
from switchboard.demo import demo_messages
from switchboard.stack import SERVICES, EmbeddedStack, StackConfig, free_port
from switchboard.testing import TopicReader, eventually

QUEUE_TOPICS = tuple(q.topic.value for q in Queue)
ROUTED = "switchboard.case.routed"
STARTED = "switchboard.sla.started"
CLOCKS = ("first_response", "resolution")
# Every case of the run gets this policy: a clock warns at half its target, breaches, then escalates 2 s
# later, so the last firing of a case comes 7 s after it opened.
FAST_POLICY = """
policies:
  - name: fast
    calendar: always
    first_response: 3s
    resolution: 5s
    warn_at: [0.5]
    escalate_after_breach: [2s]
"""
# What a clock of that policy fires, by CloudEvents type, and the firing kind its event id derives from.
FIRINGS = {
    "switchboard.sla.warning": "warning:0.5",
    "switchboard.sla.breached": "breached",
    "switchboard.sla.escalated": "escalated:2",
}


@pytest.fixture
def failure_stack(
    redis_url: str, redis: Redis, key_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., Awaitable[EmbeddedStack]]]:
    """Start the embedded stack with a broker of its own and the fast SLA policy; stop it afterwards.

    The stack keeps its keys under the test's `key_prefix`; depending on `redis` deletes them once the
    services have stopped. A test may pass another Redis (`redis_at`) and more environment (`env`).
    """
    policy = tmp_path / "policies.yaml"
    policy.write_text(FAST_POLICY, encoding="utf-8")
    stacks: list[EmbeddedStack] = []

    async def start(redis_at: str = redis_url, env: dict[str, str] | None = None) -> EmbeddedStack:
        config = StackConfig(
            kafka_port=free_port(),
            redis_url=redis_at,
            ports={s: free_port() for s in SERVICES},
            state_dir=tmp_path / "stack",
            redis_persistence=False,
            env={
                "SWITCHBOARD_REDIS_KEY_PREFIX": key_prefix,
                "SLA_POLICY_FILE": str(policy),
                "SLA_TICK_SECONDS": "0.1",
                "INGEST_RETRY_AFTER_SECONDS": "1",
                # Demo texts share order numbers across authors; linking would merge their cases, and
                # the audit counts one case per message.
                "ROUTER_LINK_CASES": "false",
                **(env or {}),
            },
        )
        stack = EmbeddedStack(config, say=lambda *_: None)
        stacks.append(stack)
        # In a thread: starting runs an event loop of its own (topic creation) and waits synchronously.
        await asyncio.to_thread(stack.start)
        return stack

    try:
        yield start
    finally:
        for stack in stacks:
            stack.stop()


@dataclass
class Post:
    """One channel message and what became of it."""

    number: int
    body: dict[str, Any]
    due: float = 0.0


@dataclass
class Channel:
    """A channel posting a steady stream of messages to ingest, and posting again each one not stored.

    A 2xx answer means ingest stored the message: 202, or 200 `duplicate` when an earlier request whose
    answer never came (ingest killed mid-request) had stored it. A 503 or no answer at all means it was
    not stored: the message is posted again after the Retry-After, or half a second after no answer.
    Each message has an author of its own, so each opens a case of its own.
    """

    url: str
    rate: float = 20.0
    workers: int = 6
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    accepted: dict[int, str] = field(default_factory=dict)
    # When the request that got each 2xx was sent (monotonic).
    accepted_sent: dict[int, float] = field(default_factory=dict)
    posts: dict[int, Post] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)
    refusals: list[tuple[float, str | None]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._texts = [
            {k: v for k, v in m.items() if k not in ("expected_category", "expected_intent")}
            for m in demo_messages()
        ]
        self._retries: deque[Post] = deque()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._next_slot = 0.0
        self._in_flight = 0
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        """Start posting."""
        self._client = httpx.AsyncClient(base_url=self.url, timeout=15)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def stop(self, drain: float) -> None:
        """Post no new message; post again what is not stored yet, for up to `drain` seconds."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(AssertionError):
            await eventually(lambda: not (self._retries or self._in_flight), timeout=drain, interval=0.1)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    @property
    def in_flight(self) -> int:
        """Return how many requests wait for their answer."""
        return self._in_flight

    async def burst(self, count: int) -> None:
        """Post `count` new messages in one batch request; those not stored are posted again one by one."""
        assert self._client is not None
        posts = [self._message(len(self.posts) + n) for n in range(count)]
        self.posts.update((p.number, p) for p in posts)
        try:
            response = await self._client.post(
                "/v1/messages/batch", json={"messages": [p.body for p in posts]}
            )
        except httpx.TransportError as exc:
            self.answers[f"batch: no answer ({type(exc).__name__})"] += 1
            for post in posts:
                self._retry(post, 0.5)
            return
        self.answers[f"batch: {response.status_code}"] += 1
        if response.status_code != 200:
            for post in posts:
                self._retry(post, 1.0)
            if response.status_code != 503:
                self.unexpected.append(f"batch {response.status_code}: {response.text[:300]}")
            return
        for post, result in zip(posts, response.json()["results"], strict=True):
            if result["status"] in ("accepted", "duplicate"):
                self.accepted[post.number] = result["message_id"]
            elif result["status"] == "retry":
                self._retry(post, 1.0)
            else:
                self.unexpected.append(f"batch item {result}")

    @property
    def accepted_ids(self) -> set[str]:
        """Return the message ids ingest answered 2xx for."""
        return set(self.accepted.values())

    @property
    def unresolved(self) -> list[Post]:
        """Return the messages posted and never answered 2xx: not accepted, whatever became of them."""
        return [p for n, p in self.posts.items() if n not in self.accepted]

    def message_ids(self) -> set[str]:
        """Return the id ingest gives each message posted, accepted or not."""
        return {
            derive_id(f"{p.body['channel']}:{p.body['external_id']}", "message") for p in self.posts.values()
        }

    def accepted_sent_since(self, since: float) -> set[str]:
        """Return the ids of the messages answered 2xx to a request sent after `since` (monotonic)."""
        return {self.accepted[n] for n, sent in self.accepted_sent.items() if sent >= since}

    def refused_since(self, since: float) -> list[str | None]:
        """Return the Retry-After of each 503 answered after `since` (monotonic); None when it had none."""
        return [retry_after for at, retry_after in self.refusals if at >= since]

    def _message(self, number: int) -> Post:
        text = self._texts[number % len(self._texts)]
        body = {
            **text,
            "external_id": f"{self.run}-{number}",
            "author": {**text["author"], "id": f"{self.run}-author-{number}"},
            "created_at": datetime.now(UTC).isoformat(),
        }
        return Post(number, body)

    def _next(self) -> Post | None:
        now = time.monotonic()
        for post in self._retries:
            if post.due <= now:
                self._retries.remove(post)
                return post
        if self._stopping.is_set():
            return None
        post = self._message(len(self.posts))
        self.posts[post.number] = post
        return post

    async def _pace(self) -> None:
        now = time.monotonic()
        self._next_slot = max(self._next_slot + 1 / self.rate, now)
        await asyncio.sleep(self._next_slot - now)

    async def _work(self) -> None:
        while True:
            await self._pace()
            post = self._next()
            if post is None:
                await asyncio.sleep(0.05)
                continue
            self._in_flight += 1
            try:
                await self._post(post)
            finally:
                self._in_flight -= 1

    async def _post(self, post: Post) -> None:
        assert self._client is not None
        sent = time.monotonic()
        try:
            response = await self._client.post("/v1/messages", json=post.body)
        except httpx.TransportError as exc:
            self.answers[f"no answer ({type(exc).__name__})"] += 1
            self._retry(post, 0.5)
            return
        self.answers[str(response.status_code)] += 1
        if response.status_code in (200, 202):
            self.accepted[post.number] = response.json()["message_id"]
            self.accepted_sent[post.number] = sent
        elif response.status_code == 503:
            retry_after = response.headers.get("retry-after")
            self.refusals.append((time.monotonic(), retry_after))
            if not retry_after:
                self.unexpected.append(f"503 without Retry-After: {response.text[:300]}")
            self._retry(post, float(retry_after) if retry_after else 1.0)
        else:
            self.unexpected.append(f"{response.status_code}: {response.text[:300]}")

    def _retry(self, post: Post, after: float) -> None:
        post.due = time.monotonic() + after
        self._retries.append(post)

    def describe(self) -> str:
        """Say how many messages were posted, accepted, refused and left unresolved."""
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(self.answers.items()))
        return (
            f"{len(self.posts)} messages posted, {len(self.accepted)} accepted, {len(self.unresolved)} "
            f"never answered 2xx; answers {answers}"
        )


@pytest.fixture
async def channel() -> AsyncIterator[Callable[..., Channel]]:
    """Make channels posting to ingest; any still running is stopped at the end of the test."""
    made: list[Channel] = []

    def make(url: str, rate: float = 20.0) -> Channel:
        sender = Channel(url, rate)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.stop(drain=0)


@dataclass
class Record:
    """A published event, as read back: enough of it to audit."""

    topic: str
    id: str
    type: str
    data: dict[str, Any]


@dataclass
class Routing:
    """What the queue topics say about the accepted messages."""

    case_of: dict[str, str]
    copies: Counter[str]

    @property
    def duplicates(self) -> int:
        """Count the repeated publishes: copies of a routing event beyond the first."""
        return sum(n - 1 for n in self.copies.values())


@dataclass
class Firing:
    """What `sla.events` says about the cases' clocks."""

    expected: dict[str, tuple[str, str, str]]
    copies: Counter[str]
    started_copies: Counter[str]

    @property
    def duplicates(self) -> int:
        """Count the repeated publishes of warnings, breaches and escalations."""
        return sum(n - 1 for n in self.copies.values())


class Audit:
    """Read the stack's topics from the beginning and its Redis, and check them against what was accepted."""

    def __init__(self, stack: EmbeddedStack, redis: Redis) -> None:
        self.stack = stack
        self.redis = redis
        self.prefix = stack.config.env["SWITCHBOARD_REDIS_KEY_PREFIX"]
        self.records: list[Record] = []
        self._reader = TopicReader(
            stack.config.bootstrap,
            Topic.MESSAGES_RECEIVED.value,
            Topic.MESSAGES_CLASSIFIED.value,
            *QUEUE_TOPICS,
            Topic.SLA_EVENTS.value,
        )

    async def __aenter__(self) -> Audit:
        await self._reader.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._reader.__aexit__(*exc)

    async def poll(self) -> list[Record]:
        """Read what was published since the last poll; return everything read so far."""
        before = len(self._reader.records)
        for raw in (await self._reader.poll())[before:]:
            event = json.loads(raw.value)
            self.records.append(Record(raw.topic, event["id"], event["type"], event["data"]))
        return self.records

    def copies(self, topic: str, ids: set[str] | None = None) -> Counter[str]:
        """Count the records of each event id on a topic (only these ids, when given)."""
        return Counter(r.id for r in self.records if r.topic == topic and (ids is None or r.id in ids))

    def hop_duplicates(self) -> dict[str, int]:
        """Count the repeated publishes (same event id again) on each topic read."""
        out: dict[str, int] = {}
        for topic in {r.topic for r in self.records}:
            out[topic] = sum(n - 1 for n in self.copies(topic).values())
        return out

    async def routed_once(self, accepted: set[str], posted: set[str], timeout: float = 60) -> Routing:
        """Check that every accepted message was routed, under one event id, to one case of its own.

        `posted` holds every message the channel sent, accepted or not: a message that never got a 2xx
        may have been stored all the same (ingest killed after the broker's ack), so it may be routed,
        but at most once too. A message the channel never sent must not be routed.
        """

        def routings() -> list[Record]:
            return [r for r in self.records if r.topic in QUEUE_TOPICS and r.data["message_id"] in posted]

        async def all_routed() -> bool:
            await self.poll()
            return accepted <= {r.data["message_id"] for r in routings()}

        try:
            await eventually(all_routed, timeout=timeout, interval=0.2)
        except AssertionError:
            seen = {r.data["message_id"] for r in routings()}
            raise AssertionError(
                f"{len(accepted - seen)} of {len(accepted)} accepted messages never routed"
            ) from None
        ids: dict[str, set[str]] = {}
        cases: dict[str, set[str]] = {}
        copies: Counter[str] = Counter()
        for record in routings():
            assert record.type == ROUTED
            message_id = record.data["message_id"]
            ids.setdefault(message_id, set()).add(record.id)
            cases.setdefault(message_id, set()).add(record.data["case_id"])
            copies[record.id] += 1
            assert record.data["is_new_case"], f"message {message_id} joined a case it did not open"
        twice = {m: i for m, i in ids.items() if len(i) > 1}
        assert not twice, f"messages routed under two event ids: {twice}"
        two_cases = {m: c for m, c in cases.items() if len(c) > 1}
        assert not two_cases, f"messages given two cases: {two_cases}"
        case_of = {m: next(iter(c)) for m, c in cases.items()}
        assert len(set(case_of.values())) == len(case_of), "two messages of distinct authors share a case"
        return Routing(case_of, copies)

    async def fired_once(self, case_ids: set[str], timeout: float = 60) -> Firing:
        """Check that both clocks of every case started once and fired each warning, breach, escalation once.

        The id of each firing derives from its clock's start, so the started events give the exact set of
        ids to expect. Nothing left due or claimed in Redis means nothing more will fire; a claim left by
        a killed instance comes back after its lease, which the wait allows for.
        """

        def sla_events() -> list[Record]:
            return [
                r for r in self.records if r.topic == Topic.SLA_EVENTS.value and r.data["case_id"] in case_ids
            ]

        async def all_started() -> bool:
            await self.poll()
            return len(
                {(r.data["case_id"], r.data["clock"]) for r in sla_events() if r.type == STARTED}
            ) == len(case_ids) * len(CLOCKS)

        try:
            await eventually(all_started, timeout=timeout, interval=0.2)
        except AssertionError:
            started = {r.data["case_id"] for r in sla_events() if r.type == STARTED}
            raise AssertionError(
                f"{len(case_ids - started)} of {len(case_ids)} cases have no clock started"
            ) from None
        started_ids: dict[tuple[str, str], set[str]] = {}
        expected: dict[str, tuple[str, str, str]] = {}
        for record in (r for r in sla_events() if r.type == STARTED):
            case_id, clock = record.data["case_id"], record.data["clock"]
            started_ids.setdefault((case_id, clock), set()).add(record.id)
            # The format the SLA service derives its ids from: an aware UTC timestamp, isoformat.
            started_at = datetime.fromisoformat(record.data["started_at"].replace("Z", "+00:00"))
            cause = f"{case_id}|{clock}|{started_at.isoformat()}"
            assert record.id == derive_id(cause, "started"), record
            for type_, kind in FIRINGS.items():
                expected[derive_id(cause, kind)] = (case_id, clock, type_)
        restarted = {k: v for k, v in started_ids.items() if len(v) > 1}
        assert not restarted, f"clocks started twice, under two ids: {restarted}"

        async def settled() -> bool:
            await self.poll()
            fired = {r.id for r in sla_events() if r.type in FIRINGS}
            due = await self.redis.zcard(f"{self.prefix}sla:due")
            claimed = await self.redis.zcard(f"{self.prefix}sla:firing")
            return set(expected) <= fired and due == 0 and claimed == 0

        try:
            await eventually(settled, timeout=timeout + LEASE_SECONDS * 1.5, interval=0.2)
        except AssertionError:
            fired = {r.id for r in sla_events() if r.type in FIRINGS}
            raise AssertionError(
                f"{len(set(expected) - fired)} of {len(expected)} firings never published"
            ) from None
        fired = [r for r in sla_events() if r.type in FIRINGS]
        unexpected = {r.id for r in fired} - set(expected)
        assert not unexpected, f"{len(unexpected)} firings under ids no started clock explains"
        for record in fired:
            assert (record.data["case_id"], record.data["clock"], record.type) == expected[record.id]
        started_copies = Counter(r.id for r in sla_events() if r.type == STARTED)
        return Firing(expected, Counter(r.id for r in fired), started_copies)

    async def cases_in_redis(self, case_of: dict[str, str]) -> None:
        """Check that Redis holds every case with its message, and both SLA timers of each case."""
        pipe = self.redis.pipeline(transaction=False)
        for case_id in case_of.values():
            pipe.lrange(f"{self.prefix}router:case:{case_id}:messages", 0, -1)
            for clock in CLOCKS:
                pipe.exists(f"{self.prefix}sla:timer:{case_id}|{clock}")
        results = await pipe.execute()
        step = 1 + len(CLOCKS)
        lost_cases, lost_timers = [], []
        for n, (message_id, case_id) in enumerate(case_of.items()):
            messages, *timers = results[n * step : (n + 1) * step]
            if message_id.encode() not in messages:
                lost_cases.append(case_id)
            lost_timers += [
                f"{case_id}|{clock}" for clock, found in zip(CLOCKS, timers, strict=True) if not found
            ]
        assert not lost_cases, f"{len(lost_cases)} cases missing from Redis: {lost_cases[:5]}"
        assert not lost_timers, f"{len(lost_timers)} SLA timers missing from Redis: {lost_timers[:5]}"


@pytest.fixture
def audit(redis: Redis) -> Callable[[EmbeddedStack, Redis | None], Audit]:
    """Make an audit of a stack, reading Redis through the given client (the session's by default)."""

    def make(stack: EmbeddedStack, client: Redis | None = None) -> Audit:
        return Audit(stack, client or redis)

    return make


async def read_metric(stack: EmbeddedStack, service: str, series: str) -> float:
    """Return the sum of the samples of a service's /metrics whose line starts with `series`."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{stack.url(service)}/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(series))


@pytest.fixture
def metric() -> Callable[[EmbeddedStack, str, str], Awaitable[float]]:
    """Read a metric of a running service: the sum of the samples whose line starts with the given text."""
    return read_metric


async def read_readiness(stack: EmbeddedStack, service: str) -> tuple[int, dict[str, bool]]:
    """Return a service's /readyz status code and its checks; (0, {}) when it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{stack.url(service)}/readyz")
    except httpx.HTTPError:
        return 0, {}
    return response.status_code, response.json().get("checks", {})


@pytest.fixture
def readiness() -> Callable[[EmbeddedStack, str], Awaitable[tuple[int, dict[str, bool]]]]:
    """Read a service's /readyz: its status code and what each check says."""
    return read_readiness
