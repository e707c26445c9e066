"""The one path every inbound message takes, whatever its channel: claim, publish, confirm.

A message is answered as stored only after the broker acknowledged it. Its `channel` + `external_id`
is claimed before publishing and confirmed after, so a channel's retry is not published twice; a
failed publish releases the claim and raises `Unavailable`, so the retry goes through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ingest.api import MessageIn
from ingest.intake import normalise
from ingest.metrics import IngestMetrics
from ingest.store import PENDING, SeenStore
from switchboard.bus import Publisher
from switchboard.contract import CloudEvent, MessageReceived

log = logging.getLogger(__name__)

Status = Literal["accepted", "duplicate", "retry"]


class Unavailable(Exception):
    """The broker did not acknowledge in time; the sender should retry later."""


def seen_key(event: MessageReceived) -> str:
    """Return the dedupe key of a message: its channel and the channel's own id."""
    return f"{event.data.channel.value}:{event.data.external_id}"


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

    async def publish(self, events: list[CloudEvent]) -> None:
        """Publish events and wait for the broker's acks, or raise `Unavailable`."""
        try:
            await asyncio.wait_for(self.publisher.publish(events), timeout=self.publish_timeout)
        except Exception as exc:
            self.metrics.publish_failures.inc()
            log.warning("publish failed: %s", type(exc).__name__)
            raise Unavailable from exc

    async def accept(self, items: list[MessageIn]) -> list[Outcome]:
        """Store each message once; return one outcome per item, in order."""
        now = self.clock()
        events = [normalise(item, now) for item in items]
        # The same message twice in one request is stored once.
        first: dict[str, MessageReceived] = {}
        for event in events:
            first.setdefault(seen_key(event), event)
        statuses = dict(zip(first, await self._store(list(first.values())), strict=True))
        outcomes = []
        counted: set[str] = set()
        for event in events:
            key = seen_key(event)
            status = statuses[key] if key not in counted else "duplicate"
            counted.add(key)
            outcomes.append(Outcome(event, status))
        return outcomes

    async def _store(self, events: list[MessageReceived]) -> list[Status]:
        keys = [seen_key(e) for e in events]
        claims = await self.seen.claim(keys)
        fresh = [(k, e) for k, e, c in zip(keys, events, claims, strict=True) if c is None]
        if fresh:
            try:
                await self.publish([e for _, e in fresh])
            except Unavailable:
                await self.seen.release([k for k, _ in fresh])
                raise
            await self.seen.confirm([k for k, _ in fresh])
        statuses: list[Status] = []
        for event, claim in zip(events, claims, strict=True):
            channel = event.data.channel.value
            if claim is None:
                self.metrics.accepted.labels(channel).inc()
                statuses.append("accepted")
            elif claim == PENDING:
                # The first copy is still being published; its outcome is unknown, so ask for a retry.
                statuses.append("retry")
            else:
                self.metrics.duplicates.labels(channel).inc()
                statuses.append("duplicate")
        return statuses
