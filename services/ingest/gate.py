"""The one path every inbound message takes, whatever its channel: claim, publish, confirm.

A message is answered as stored only after the broker acknowledged it. Its `channel` + `external_id`
is claimed before publishing and confirmed after, so a channel's retry is not published twice; a
failed publish releases the claim and raises `Unavailable`, so the retry goes through.

Concurrent requests share these steps (group commit): the messages of every request waiting are
claimed in one Redis call, published in one batch per partition and confirmed in one call, so under
load a request pays a share of three round trips instead of three of its own.

Each message gets its own span under its request's trace (`switchboard.tracing`), and its record carries
that context whatever other requests' messages it is published with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ingest.api import MessageIn
from ingest.intake import normalise
from ingest.metrics import IngestMetrics
from ingest.store import PENDING, SeenStore
from switchboard.bus import Publisher
from switchboard.contract import CloudEvent, MessageReceived
from switchboard.groupcommit import GroupCommit
from switchboard.metrics import Children
from switchboard.tracing import Spans, TraceContext, current, new_trace

log = logging.getLogger(__name__)

Status = Literal["accepted", "duplicate", "retry"]


class Unavailable(Exception):
    """The broker or the claim store did not answer in time; the sender should retry later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def seen_key(event: MessageReceived) -> str:
    """Return the dedupe key of a message: its channel and the channel's own id."""
    # A Channel is a StrEnum: formatted, it is its value.
    return f"{event.data.channel}:{event.data.external_id}"


@dataclass(frozen=True)
class Outcome:
    """What happened to one inbound message."""

    event: MessageReceived
    status: Status


@dataclass
class Gate:
    """Stores inbound messages exactly once on `messages.received`."""

    publisher: Publisher
    seen: SeenStore
    metrics: IngestMetrics
    clock: Callable[[], datetime]
    publish_timeout: float = 10.0
    spans: Spans | None = None
    _stores: GroupCommit[tuple[MessageReceived, TraceContext], Status] = field(init=False, repr=False)
    _children: Children = field(init=False, repr=False, default_factory=Children)

    def __post_init__(self) -> None:
        self._stores = GroupCommit(self._store)

    async def publish(self, events: list[CloudEvent], traces: list[TraceContext] | None = None) -> None:
        """Publish events and wait for the broker's acks, or raise `Unavailable`.

        Without `traces`, each event gets its own span under the current request's trace.
        """
        if traces is None:
            traces = message_spans(len(events))
        try:
            await asyncio.wait_for(self.publisher.publish(events, traces), timeout=self.publish_timeout)
        except Exception as exc:
            self.metrics.publish_failures.inc()
            log.warning("publish failed: %s", type(exc).__name__)
            raise Unavailable("the broker did not acknowledge it") from exc

    async def _forget(self, keys: list[str]) -> None:
        """Release claims of messages the broker did not take, so the sender's retry goes through."""
        try:
            await self.seen.release(keys)
        except Exception as exc:
            # They expire on their own; until then a retry is answered "retry".
            self.metrics.claim_failures.labels("release").inc()
            log.warning("could not release %d claims: %s", len(keys), type(exc).__name__)

    async def accept(self, items: list[MessageIn]) -> list[Outcome]:
        """Store each message once; return one outcome per item, in order."""
        now = self.clock()
        started = time.time_ns() if self.spans is not None else 0
        events = [normalise(item, now) for item in items]
        traces = message_spans(len(events))
        keys = [seen_key(event) for event in events]
        # The same message twice in one request is stored once.
        first: dict[str, tuple[MessageReceived, TraceContext]] = {}
        for key, event, trace in zip(keys, events, traces, strict=True):
            first.setdefault(key, (event, trace))
        statuses = dict(zip(first, await self._stores.submit(list(first.values())), strict=True))
        outcomes = []
        counted: set[str] = set()
        for key, event in zip(keys, events, strict=True):
            status = statuses[key] if key not in counted else "duplicate"
            counted.add(key)
            outcomes.append(Outcome(event, status))
        if self.spans is not None:
            for outcome, trace in zip(outcomes, traces, strict=True):
                self.spans.record(
                    f"send {outcome.event.topic()}",
                    trace,
                    "producer",
                    started,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.operation.type": "send",
                        "messaging.destination.name": outcome.event.topic(),
                        "messaging.message.id": outcome.event.id,
                        "switchboard.message_id": outcome.event.data.message_id,
                        "switchboard.outcome": outcome.status,
                    },
                )
        return outcomes

    async def _store(self, batch: list[tuple[MessageReceived, TraceContext]]) -> list[Status]:
        """Claim, publish and confirm the messages of every request waiting; raise `Unavailable` for all."""
        events = [event for event, _ in batch]
        keys = [seen_key(e) for e in events]
        try:
            claims = await self.seen.claim(keys)
        except Exception as exc:
            # Without the claim nothing can be stored exactly once: nothing is published, the sender retries.
            self.metrics.claim_failures.labels("claim").inc()
            log.warning("claim store unavailable: %s", type(exc).__name__)
            raise Unavailable("the claim store (Redis) did not answer") from exc
        fresh = [(k, e, t) for k, (e, t), c in zip(keys, batch, claims, strict=True) if c is None]
        if fresh:
            try:
                # Each record with its own request's context, whichever requests share this flush.
                await self.publish([e for _, e, _ in fresh], [t for _, _, t in fresh])
            except Unavailable:
                await self._forget([k for k, _, _ in fresh])
                raise
            try:
                await self.seen.confirm([k for k, _, _ in fresh])
            except Exception as exc:
                # The broker has the messages: they are stored and answered so. Their pending claims expire
                # on their own; a retry after that publishes again under the same event ids, which
                # consumers drop.
                self.metrics.claim_failures.labels("confirm").inc()
                log.warning("could not confirm %d stored messages: %s", len(fresh), type(exc).__name__)
        statuses: list[Status] = []
        counted: Counter[tuple[str, str]] = Counter()
        for event, claim in zip(events, claims, strict=True):
            if claim is None:
                status: Status = "accepted"
            elif claim == PENDING:
                # The first copy is still being published; its outcome is unknown, so ask for a retry.
                status = "retry"
            else:
                status = "duplicate"
            statuses.append(status)
            counted[(status, event.data.channel)] += 1
        for (status, channel), count in counted.items():
            if status != "retry":
                counter = self.metrics.accepted if status == "accepted" else self.metrics.duplicates
                self._children(counter, (str(channel),)).inc(count)
        return statuses


def message_spans(count: int) -> list[TraceContext]:
    """Return a span per message, each a child of the current request's span (a new trace without one)."""
    request = current() or new_trace()
    return [request.child() for _ in range(count)]
