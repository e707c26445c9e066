"""The hand-off worker: sends due deliveries to the contact centre and reschedules the ones that fail.

Routing only enqueues (one Redis step); this worker, running beside the consumer loop, does the HTTP.
Each queue has its own lane with its own connection pool and its own limit of deliveries in flight, so
an endpoint that hangs holds at most its own lane's slots while the other queues keep flowing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from router import handoff
from router.config import Settings
from router.metrics import RouterMetrics
from router.outbox import Delivery, Enqueued, Outbox
from switchboard.contract import CaseRouted, Queue, dlq_topic, encode, event_type
from switchboard.tracing import TraceContext, from_text, to_text

log = logging.getLogger(__name__)

# topic, key, value, headers: publish one dead letter and return once the broker acknowledged it.
DeadLetterSink = Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]]


@dataclass(frozen=True)
class HandoffConfig:
    """Where each queue's cases go and how hard to try."""

    urls: Mapping[Queue, str]
    secret: bytes
    timeout: float = 10.0
    max_attempts: int = 10
    concurrency: int = 8
    base: float = 1.0
    cap: float = 300.0
    poll: float = 0.5
    lease: float = 70.0
    group: str = "router"

    @classmethod
    def from_settings(cls, settings: Settings, group: str = "router") -> HandoffConfig:
        """Read the hand-off settings."""
        secret = settings.handoff_secret.get_secret_value() if settings.handoff_secret else ""
        return cls(
            urls=dict(settings.handoff_urls),
            secret=secret.encode(),
            timeout=settings.handoff_timeout_seconds,
            max_attempts=settings.handoff_max_attempts,
            concurrency=settings.handoff_concurrency,
            base=settings.handoff_backoff_base_seconds,
            cap=settings.handoff_backoff_cap_seconds,
            poll=settings.handoff_poll_seconds,
            lease=settings.handoff_lease_seconds,
            group=group,
        )


@dataclass(frozen=True)
class Answer:
    """What one attempt got: the HTTP status (None: no answer), the error, the wait the endpoint asked for."""

    status: int | None
    error: str = ""
    retry_after: float | None = None


class HandoffWorker:
    """Delivers routed cases to the contact centre's endpoints, at least once, signed."""

    def __init__(
        self,
        outbox: Outbox,
        config: HandoffConfig,
        metrics: RouterMetrics,
        dead_letter: DeadLetterSink,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._config = config
        self._metrics = metrics
        self._dead_letter = dead_letter
        self._transport = transport
        self._clock = clock
        self._rng = rng
        self._instance = uuid.uuid4().hex[:12]
        self._claims = itertools.count()
        self._wake = {queue: asyncio.Event() for queue in config.urls}
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._grace = config.timeout + 1

    async def enqueue(self, event: CaseRouted) -> bool:
        """Queue a routed case for hand-off when its queue has an endpoint; True when newly queued."""
        return await self.enqueue_many([event]) == 1

    async def enqueue_many(
        self, events: Sequence[CaseRouted], traces: Sequence[TraceContext | None] | None = None
    ) -> int:
        """Queue the routed cases whose queue has an endpoint, each with the trace context its HTTP
        request will carry; return how many were newly queued."""
        contexts = traces if traces is not None else [None] * len(events)
        items = [
            Enqueued(e.data.queue, e.id, e.partitionkey, encode(e), to_text(t) if t is not None else "")
            for e, t in zip(events, contexts, strict=True)
            if e.data.queue in self._wake
        ]
        if not items:
            return 0
        added = await self._outbox.enqueue(items, self._clock())
        for item, new in zip(items, added, strict=True):
            if new:
                self._wake[item.queue].set()
        return sum(added)

    def start(self) -> None:
        """Start one lane per queue with an endpoint, and the pending-count gauge."""
        self._stopping = False
        self._tasks = [asyncio.create_task(self._lane(q), name=f"handoff-{q.value}") for q in self._wake]
        if self._wake:
            self._watcher = asyncio.create_task(self._watch_pending(), name="handoff-pending")

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, give attempts in flight `grace` seconds (default: their timeout), then return."""
        self._grace = self._config.timeout + 1 if grace is None else grace
        self._stopping = True
        for wake in self._wake.values():
            wake.set()
        if self._watcher is not None:
            self._watcher.cancel()
        await asyncio.gather(*self._tasks, *filter(None, [self._watcher]), return_exceptions=True)
        self._tasks, self._watcher = [], None

    def _token(self) -> str:
        return f"{self._instance}:{next(self._claims)}"

    async def _lane(self, queue: Queue) -> None:
        config = self._config
        wake = self._wake[queue]
        running: set[asyncio.Task[None]] = set()
        limits = httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency
        )
        client = httpx.AsyncClient(transport=self._transport, timeout=config.timeout, limits=limits)

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            wake.set()

        pause = 0.1
        try:
            while not self._stopping:
                free = config.concurrency - len(running)
                claimed: list[Delivery] = []
                if free > 0:
                    try:
                        claimed = await self._outbox.claim(
                            queue, self._clock(), free, config.lease, self._token()
                        )
                        pause = 0.1
                    except Exception as exc:
                        log.warning(
                            "cannot claim %s hand-offs, retrying in %.1fs: %s", queue.value, pause, exc
                        )
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, 5.0)
                        continue
                for delivery in claimed:
                    task = asyncio.create_task(self._attempt(client, delivery))
                    running.add(task)
                    task.add_done_callback(finished)
                if claimed and len(claimed) == free:
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), config.poll)
                except TimeoutError:
                    pass
                wake.clear()
        finally:
            if running:
                # An attempt cut short stays claimed and is handed back when its lease ends.
                _, late = await asyncio.wait(running, timeout=self._grace)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            await client.aclose()

    async def _watch_pending(self) -> None:
        # Ends on `_stopping` too, not only on its cancellation: a cancellation that lands inside a Redis
        # call can be swallowed by the client, and `stop` would then wait for this loop for ever.
        while not self._stopping:
            try:
                self._metrics.handoff_pending.set(await self._outbox.pending(self._wake))
            except Exception as exc:
                log.debug("cannot count pending hand-offs: %s", exc)
            await asyncio.sleep(max(self._config.poll, 1.0))

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        config = self._config
        try:
            if delivery.failure:
                outcome, _, error = delivery.failure.partition(":")
                await self._give_up(delivery, outcome, error)
                return
            if delivery.attempt > config.max_attempts:
                # Only a crash between an attempt and its rescheduling gets here; that attempt counts.
                await self._give_up(delivery, "dead_lettered", "attempts exhausted")
                return
            answer = await self._post(client, config.urls[delivery.queue], delivery)
            verdict = handoff.verdict(answer.status)
            queue = delivery.queue.value
            if verdict == "delivered":
                await self._outbox.finish(delivery)
                self._metrics.handoffs.labels(queue, "delivered").inc()
            elif verdict == "reject":
                await self._give_up(delivery, "rejected", answer.error)
            elif delivery.attempt >= config.max_attempts:
                await self._give_up(delivery, "dead_lettered", answer.error)
            else:
                delay = handoff.retry_delay(
                    delivery.attempt, config.base, config.cap, answer.retry_after, self._rng
                )
                await self._outbox.retry(delivery, self._clock() + delay, answer.error)
                self._metrics.handoffs.labels(queue, "retried").inc()
                log.info(
                    "hand-off %s to %s failed (%s), retry in %.1fs", delivery.id, queue, answer.error, delay
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            # Redis or the broker failed us mid-way: the claim's lease hands the delivery back.
            log.warning("hand-off %s interrupted; it will be tried again", delivery.id, exc_info=True)

    async def _post(self, client: httpx.AsyncClient, url: str, delivery: Delivery) -> Answer:
        headers = handoff.request_headers(delivery.id, delivery.attempt, delivery.body, self._config.secret)
        # The routing's trace continues at the contact centre, as on the queue topic.
        trace = from_text(delivery.trace)
        if trace is not None:
            headers.update((name, value.decode()) for name, value in trace.headers)
        started = time.perf_counter()
        try:
            # httpx's timeout bounds each phase; this bounds the whole attempt, so a drip-feeding endpoint
            # cannot outlive the claim's lease.
            async with asyncio.timeout(self._config.timeout):
                response = await client.post(url, content=delivery.body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            return Answer(None, f"no answer within {self._config.timeout:g}s")
        except (httpx.HTTPError, OSError) as exc:
            return Answer(None, f"{type(exc).__name__}: {exc}")
        finally:
            self._metrics.handoff_seconds.labels(delivery.queue.value).observe(time.perf_counter() - started)
        retry_after = handoff.parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        return Answer(
            response.status_code, f"HTTP {response.status_code}: {response.text[:200]}", retry_after
        )

    async def _give_up(self, delivery: Delivery, outcome: str, error: str) -> None:
        topic = delivery.queue.topic.value
        headers = [("ce_type", event_type(CaseRouted).encode())]
        headers += handoff.dead_letter_headers(
            topic, error, self._config.group, delivery.attempt, datetime.now(UTC)
        )
        trace = from_text(delivery.trace)
        if trace is not None:
            headers += trace.headers
        try:
            await self._dead_letter(dlq_topic(topic), delivery.key.encode(), delivery.body, headers)
        except Exception as exc:
            # The dead letter itself failed: keep the delivery, marked as given up, and write it later.
            log.warning("cannot dead-letter hand-off %s, will try again: %s", delivery.id, exc)
            delay = max(
                1.0, handoff.backoff_delay(delivery.attempt, self._config.base, self._config.cap, self._rng)
            )
            await self._outbox.retry(
                delivery, self._clock() + delay, f"dead letter failed: {exc}", f"{outcome}:{error}"
            )
            return
        await self._outbox.finish(delivery)
        self._metrics.handoffs.labels(delivery.queue.value, outcome).inc()
        log.warning(
            "hand-off %s to %s dead-lettered (%s): %s", delivery.id, delivery.queue.value, outcome, error
        )
