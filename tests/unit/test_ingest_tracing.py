"""Ingest's trace context: each message is a span of its request's trace, even when published with others."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from ingest import redact
from ingest.app import Deps, create_app
from ingest.config import Settings
from ingest.store import MemorySeenStore
from switchboard.contract import CloudEvent
from switchboard.service import JsonFormatter
from switchboard.tracing import TraceContext

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
TEXT = "colis jamais arrivé, appelez-moi au 06 12 34 56 78"


class TracingPublisher:
    """Records each published event with the trace context its record would carry."""

    def __init__(self) -> None:
        self.published: list[tuple[CloudEvent, TraceContext | None]] = []
        self.calls = 0
        self.down = False

    async def publish(self, events: Sequence[CloudEvent], traces: Sequence[Any] | None = None) -> None:
        self.calls += 1
        await asyncio.sleep(0.01)  # requests arriving meanwhile join the next flush
        if self.down:
            raise ConnectionError(f"broker unreachable while sending {TEXT}")
        assert traces is not None and len(traces) == len(events)
        self.published.extend(zip(events, traces, strict=True))

    def trace_of(self, external_id: str) -> TraceContext:
        (trace,) = [t for e, t in self.published if e.data.external_id == external_id]
        assert trace is not None
        return trace


def message(external_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "chat",
        "external_id": external_id,
        "author": {"id": "visitor-1"},
        "text": TEXT,
        "created_at": "2026-11-22T09:15:00Z",
    }
    return {**body, **overrides}


@pytest.fixture
def publisher() -> TracingPublisher:
    return TracingPublisher()


@pytest.fixture
async def client(publisher: TracingPublisher):
    app = create_app(Settings(), Deps(publisher=publisher, seen=MemorySeenStore()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c:
        yield c


async def test_a_message_posted_with_a_traceparent_is_published_in_the_callers_trace(client, publisher):
    response = await client.post("/v1/messages", json=message("m1"), headers={"traceparent": TRACEPARENT})
    assert response.status_code == 202
    trace = publisher.trace_of("m1")
    assert trace.trace_id == TRACE_ID
    # The message's span is a child of the request's span, itself a child of the caller's.
    assert trace.parent_id not in (None, CALLER_SPAN)
    assert trace.span_id not in (trace.parent_id, CALLER_SPAN)


async def test_every_message_of_a_batch_has_its_own_span_under_the_requests_trace(client, publisher):
    batch = {"messages": [message(f"b{n}") for n in range(3)]}
    response = await client.post("/v1/messages/batch", json=batch, headers={"traceparent": TRACEPARENT})
    assert response.json()["accepted"] == 3
    traces = [publisher.trace_of(f"b{n}") for n in range(3)]
    assert {t.trace_id for t in traces} == {TRACE_ID}
    assert len({t.span_id for t in traces}) == 3
    assert len({t.parent_id for t in traces}) == 1


async def test_a_request_without_a_valid_traceparent_starts_its_own_trace(client, publisher):
    batch = {"messages": [message("n1"), message("n2")]}
    await client.post("/v1/messages/batch", json=batch, headers={"traceparent": "00-junk"})
    await client.post("/v1/messages", json=message("n3"))
    first, second, other = (publisher.trace_of(m) for m in ("n1", "n2", "n3"))
    assert first.trace_id == second.trace_id != other.trace_id
    assert TRACE_ID not in (first.trace_id, other.trace_id)


async def test_requests_published_together_keep_each_its_own_trace(client, publisher):
    callers = {f"c{n}": f"{n + 1:032x}" for n in range(8)}

    async def send(external_id: str, trace_id: str) -> int:
        headers = {"traceparent": f"00-{trace_id}-{CALLER_SPAN}-01"}
        return (await client.post("/v1/messages", json=message(external_id), headers=headers)).status_code

    statuses = await asyncio.gather(*(send(m, t) for m, t in callers.items()))
    assert statuses == [202] * len(callers)
    assert publisher.calls < len(callers), "the requests did not share a publish"
    for external_id, trace_id in callers.items():
        assert publisher.trace_of(external_id).trace_id == trace_id


async def test_a_case_activity_is_published_in_the_callers_trace(client, publisher):
    response = await client.post(
        "/v1/cases/case-1/activity",
        json={"type": "responded", "at": "2026-11-22T10:00:00Z"},
        headers={"traceparent": TRACEPARENT},
    )
    assert response.status_code == 202
    ((event, trace),) = publisher.published
    assert event.type == "switchboard.case.activity_recorded"
    assert trace is not None and trace.trace_id == TRACE_ID and trace.span_id != CALLER_SPAN


async def test_a_failed_publish_is_logged_as_json_without_the_message_text(client, publisher):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    redact.install(root)
    try:
        publisher.down = True
        response = await client.post("/v1/messages", json=message("d1"), headers={"traceparent": TRACEPARENT})
        assert response.status_code == 503
    finally:
        root.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(line["msg"].startswith("publish failed") for line in lines)
    for line in lines:
        assert "colis" not in json.dumps(line) and "06 12 34 56 78" not in json.dumps(line)
