"""Bodies over the size limit get 413 without being read whole; JSON that is not UTF-8 gets 400."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from ingest.app import Deps, create_app
from ingest.bodylimit import BodyLimitMiddleware, is_json
from ingest.config import Settings
from ingest.metrics import IngestMetrics
from ingest.store import MemorySeenStore
from switchboard.testing import FakePublisher

LIMIT = 1000


def message(**overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "chat",
        "external_id": "chat-1",
        "author": {"id": "visitor-1"},
        "text": "Bonjour, ma box redémarre toute seule.",
        "created_at": "2026-11-22T09:15:00Z",
    }
    return {**body, **overrides}


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
async def client(publisher: FakePublisher):
    settings = Settings(max_body_bytes=LIMIT, meta_app_secret="s", email_webhook_token="t")
    app = create_app(settings, Deps(publisher=publisher, seen=MemorySeenStore()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c:
        yield c


class Stream:
    """An ASGI `receive` that hands out a body in chunks and counts what was asked for."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __call__(self) -> dict[str, Any]:
        if self.pulled >= len(self.chunks):
            return {"type": "http.disconnect"}
        chunk = self.chunks[self.pulled]
        self.pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": self.pulled < len(self.chunks)}


async def call(middleware: BodyLimitMiddleware, headers: list[tuple[bytes, bytes]], receive: Stream):
    """Run one request through the middleware alone; return the status, the body, and what the app got."""
    seen: dict[str, Any] = {}

    async def app(scope, receive, send):
        message = await receive()
        seen["body"] = message["body"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict[str, Any]] = []

    async def send(message):
        sent.append(message)

    middleware.app = app
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": headers}
    await middleware(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body, seen.get("body")


def limiter() -> tuple[BodyLimitMiddleware, CollectorRegistry]:
    registry = CollectorRegistry()
    middleware = BodyLimitMiddleware(None, max_bytes=LIMIT, metrics=IngestMetrics(registry))  # type: ignore[arg-type]
    return middleware, registry


def rejected(registry: CollectorRegistry, reason: str) -> float | None:
    return registry.get_sample_value("switchboard_ingest_requests_rejected_total", {"reason": reason})


async def test_a_declared_length_over_the_limit_is_refused_before_reading_the_body():
    middleware, registry = limiter()
    stream = Stream([b"x" * 2000])
    status, body, got = await call(middleware, [(b"content-length", b"2000")], stream)
    assert status == 413
    assert str(LIMIT) in json.loads(body)["detail"]
    assert stream.pulled == 0 and got is None
    assert rejected(registry, "too_large") == 1


async def test_a_streamed_body_over_the_limit_is_refused_without_reading_the_rest():
    middleware, _ = limiter()
    stream = Stream([b"x" * 400] * 10)
    status, body, got = await call(middleware, [], stream)
    assert status == 413
    assert str(LIMIT) in json.loads(body)["detail"]
    # 1200 bytes read: the limit plus the chunk that crossed it, not the 4000 sent.
    assert stream.pulled == 3 and got is None


async def test_a_body_within_the_limit_reaches_the_app_whole():
    middleware, _ = limiter()
    chunks = [b"a" * 300, b"b" * 300, b"c" * 400]
    status, _, got = await call(middleware, [(b"content-length", b"1000")], Stream(chunks))
    assert status == 204
    assert got == b"".join(chunks)


async def test_a_content_length_that_is_not_a_number_gets_400():
    middleware, _ = limiter()
    status, body, got = await call(middleware, [(b"content-length", b"-5")], Stream([b"x"]))
    assert status == 400 and got is None
    assert "Content-Length" in json.loads(body)["detail"]


async def test_json_that_is_not_utf8_gets_400_with_where_it_breaks():
    middleware, registry = limiter()
    headers = [(b"content-type", b"application/json; charset=utf-8")]
    status, body, got = await call(middleware, headers, Stream([b'{"text": "caf', b'\xe9"}']))
    assert status == 400 and got is None
    detail = json.loads(body)["detail"]
    assert "not valid UTF-8" in detail and "byte 13" in detail
    assert rejected(registry, "bad_encoding") == 1


async def test_a_form_body_is_left_to_its_route_to_decode():
    middleware, _ = limiter()
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    status, _, got = await call(middleware, headers, Stream([b"Body=caf\xe9"]))
    assert status == 204 and got == b"Body=caf\xe9"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/cloudevents+json", True),
        ("text/plain", False),
        ("multipart/form-data; boundary=x", False),
        (None, False),
    ],
)
def test_json_is_told_by_its_content_type(content_type, expected):
    assert is_json(content_type) is expected


async def test_a_message_over_the_body_limit_gets_413_naming_the_limit(client, publisher):
    response = await client.post("/v1/messages", json=message(text="a" * 2000))
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["detail"]
    assert publisher.events == []


async def test_a_webhook_over_the_body_limit_gets_413_before_its_signature_is_checked(client):
    response = await client.post("/v1/webhooks/meta", content=b"{" + b" " * 2000 + b"}")
    assert response.status_code == 413


async def test_a_chunked_email_over_the_limit_gets_413(client):
    async def chunks():
        for _ in range(5):
            yield b"x" * 400

    response = await client.post(
        "/v1/webhooks/email",
        content=chunks(),
        headers={"content-type": "application/json", "authorization": "Bearer t"},
    )
    assert response.status_code == 413


async def test_a_message_in_latin1_gets_400_not_a_crash(client, publisher):
    body = json.dumps(message(text="déjà"), ensure_ascii=False).encode("latin-1")
    response = await client.post("/v1/messages", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "UTF-8" in response.json()["detail"]
    assert publisher.events == []


async def test_a_batch_in_utf16_gets_400(client):
    body = json.dumps({"messages": [message()]}).encode("utf-16")
    response = await client.post(
        "/v1/messages/batch", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_refusals_are_counted_as_too_large_and_bad_encoding(client):
    await client.post("/v1/messages", json=message(text="a" * 2000))
    await client.post(
        "/v1/messages", content=b'{"text": "\xff"}', headers={"content-type": "application/json"}
    )
    text = (await client.get("/metrics")).text
    assert 'switchboard_ingest_requests_rejected_total{reason="too_large"} 1.0' in text
    assert 'switchboard_ingest_requests_rejected_total{reason="bad_encoding"} 1.0' in text
