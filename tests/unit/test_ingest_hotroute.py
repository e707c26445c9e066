"""POST /v1/messages answered past FastAPI's router (ingest.hotroute) answers exactly as through it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from ingest.api import MESSAGE_EXAMPLE
from ingest.app import Deps, create_app
from ingest.config import Settings
from ingest.hotroute import HotRoute
from ingest.store import MemorySeenStore
from switchboard.testing import FakePublisher

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def message(**overrides: Any) -> dict[str, Any]:
    """The documented example message, with `overrides`."""
    return {**MESSAGE_EXAMPLE, **overrides}


JSON = {"content-type": "application/json"}
# Each request is sent in turn to both apps: what one answers, the other must answer byte for byte.
REQUESTS: list[tuple[str, bytes, dict[str, str]]] = [
    ("accepted", json.dumps(message()).encode(), JSON),
    ("the same again: duplicate", json.dumps(message()).encode(), JSON),
    ("non-ASCII ids", json.dumps(message(external_id="é-1", conversation_id="fil-ü")).encode(), JSON),
    ("malformed JSON", b'{"channel": "x",', JSON),
    ("not an object", b"[1, 2]", JSON),
    ("missing fields", json.dumps({"channel": "x"}).encode(), JSON),
    ("unknown channel", json.dumps(message(channel="pigeon")).encode(), JSON),
    ("text too long", json.dumps(message(external_id="2", text="x" * 201)).encode(), JSON),
    ("created_at not a date", json.dumps(message(external_id="3", created_at="yesterday")).encode(), JSON),
    (
        "created_at ahead",
        json.dumps(message(external_id="4", created_at="2026-11-25T09:15:00Z")).encode(),
        JSON,
    ),
    ("not UTF-8", b'{"text": "\xff"}', JSON),
    ("no content type", json.dumps(message(external_id="5")).encode(), {}),
    ("nested too deep", b"[" * 100_000 + b"]" * 100_000, JSON),
]


COUNTERS = (
    "switchboard_ingest_http_requests_total",
    "switchboard_ingest_requests_rejected_total",
    "switchboard_ingest_messages_",
    "switchboard_ingest_publish_failures_total",
)


def build(hot: bool, publisher: FakePublisher) -> Any:
    settings = Settings(max_text_chars=200, max_body_bytes=1_000_000)
    app = create_app(settings, Deps(publisher=publisher, seen=MemorySeenStore(), clock=lambda: NOW))
    if not hot:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not HotRoute]
    assert any(m.cls is HotRoute for m in app.user_middleware) is hot
    return app


def answers_of(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest")


@pytest.mark.parametrize("broker_down", [False, True])
async def test_every_answer_is_the_one_the_router_gives(broker_down: bool):
    hot_publisher, routed_publisher = FakePublisher(), FakePublisher()
    for p in (hot_publisher, routed_publisher):
        p.down = broker_down
    hot, routed = build(True, hot_publisher), build(False, routed_publisher)
    async with answers_of(hot) as h, answers_of(routed) as r:
        for name, body, headers in REQUESTS:
            got_hot = await h.post("/v1/messages", content=body, headers=headers)
            got_routed = await r.post("/v1/messages", content=body, headers=headers)
            assert got_hot.status_code == got_routed.status_code, name
            assert got_hot.content == got_routed.content, name
            assert got_hot.headers == got_routed.headers, name
        # Both count their requests under the route's template, by status, and the same refusals.
        metrics_hot = (await h.get("/metrics")).text
        metrics_routed = (await r.get("/metrics")).text

    def counted(text: str) -> list[str]:
        return sorted(
            line for line in text.splitlines() if line.startswith(COUNTERS) and "_created" not in line
        )

    assert counted(metrics_hot) == counted(metrics_routed)
    assert (
        any('route="/v1/messages",status="202"' in line for line in counted(metrics_hot)) is not broker_down
    )
    assert [e.data for e in hot_publisher.events] == [e.data for e in routed_publisher.events]
