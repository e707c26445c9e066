"""API keys and rate limits in front of the generic and activity APIs, with a fake publisher."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from ingest.app import Deps, create_app
from ingest.config import Settings
from ingest.keys import ApiKey, hash_key
from ingest.ratelimit import MemoryRateLimiter
from ingest.store import MemorySeenStore
from switchboard.testing import FakePublisher

KEY, SLOW_KEY = "sbk_webchat-test-key", "sbk_slow-test-key"
ACTIVITY = {"type": "responded", "at": "2026-11-22T09:40:00Z"}


def message(**overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "chat",
        "external_id": "chat-1",
        "author": {"id": "visitor-1"},
        "text": "Bonjour, ma box redémarre toute seule.",
        "created_at": "2026-11-22T09:15:00Z",
    }
    return {**body, **overrides}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


def settings(**overrides) -> Settings:
    keys = [ApiKey("webchat", hash_key(KEY)), ApiKey("slow", hash_key(SLOW_KEY), 2)]
    return Settings(**{"api_keys": keys, "api_key_rate_per_minute": 100, **overrides})


@pytest.fixture
async def client(publisher: FakePublisher, clock: Clock):
    deps = Deps(publisher=publisher, seen=MemorySeenStore(), limiter=MemoryRateLimiter(clock))
    app = create_app(settings(meta_app_secret="meta-secret"), deps)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/messages", message()),
        ("POST", "/v1/messages/batch", {"messages": [message()]}),
        ("POST", "/v1/cases/case-9/activity", ACTIVITY),
    ],
)
async def test_without_a_key_the_generic_and_activity_apis_answer_401(client, publisher, method, path, body):
    response = await client.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]
    assert publisher.events == []


async def test_an_unknown_key_gets_401(client, publisher):
    response = await client.post("/v1/messages", json=message(), headers=bearer("sbk_not-a-key"))
    assert response.status_code == 401
    assert "not known" in response.json()["detail"]
    assert publisher.events == []


async def test_the_hash_of_a_key_is_not_a_key(client):
    response = await client.post("/v1/messages", json=message(), headers=bearer(hash_key(KEY)))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [bearer(KEY), {"authorization": f"bearer   {KEY}"}, {"X-API-Key": KEY}, {"x-api-key": f" {KEY} "}],
)
async def test_a_known_key_is_accepted_as_bearer_or_x_api_key(client, publisher, headers):
    response = await client.post("/v1/messages", json=message(), headers=headers)
    assert response.status_code == 202
    assert len(publisher.events) == 1


async def test_a_key_is_checked_before_the_body_is_read(client):
    response = await client.post(
        "/v1/messages", content=b"\xff not even json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 401


async def test_over_its_rate_a_key_gets_429_with_retry_after(client, publisher, clock):
    for n in range(2):
        ok = await client.post("/v1/messages", json=message(external_id=str(n)), headers=bearer(SLOW_KEY))
        assert ok.status_code == 202
    refused = await client.post("/v1/messages", json=message(external_id="2"), headers=bearer(SLOW_KEY))
    assert refused.status_code == 429
    # Two a minute is a token every thirty seconds.
    assert refused.headers["retry-after"] == "30"
    assert "2 requests per minute" in refused.json()["detail"]
    assert len(publisher.events) == 2
    other = await client.post("/v1/messages", json=message(external_id="3"), headers=bearer(KEY))
    assert other.status_code == 202
    clock.now += 30
    again = await client.post("/v1/messages", json=message(external_id="2"), headers=bearer(SLOW_KEY))
    assert again.status_code == 202


async def test_a_key_without_its_own_rate_gets_the_default_rate(publisher, clock):
    deps = Deps(publisher=publisher, seen=MemorySeenStore(), limiter=MemoryRateLimiter(clock))
    app = create_app(settings(api_key_rate_per_minute=1), deps)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c:
        first = await c.post("/v1/cases/c/activity", json=ACTIVITY, headers=bearer(KEY))
        second = await c.post("/v1/cases/c/activity", json=ACTIVITY, headers=bearer(KEY))
    assert (first.status_code, second.status_code) == (202, 429)
    assert second.headers["retry-after"] == "60"


async def test_webhooks_are_not_behind_api_keys(client):
    response = await client.post("/v1/webhooks/meta", content=b"{}")
    # Refused for its missing signature, not for a missing API key.
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in response.json()["detail"]
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"])
async def test_health_metrics_and_docs_stay_open(client, path):
    response = await client.get(path)
    assert response.status_code != 401


async def test_a_limiter_that_fails_lets_requests_through(publisher):
    class Broken:
        async def acquire(self, key: str, rate_per_minute: int):
            raise ConnectionError("redis unreachable")

    app = create_app(settings(), Deps(publisher=publisher, seen=MemorySeenStore(), limiter=Broken()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c:
        response = await c.post("/v1/messages", json=message(), headers=bearer(KEY))
    assert response.status_code == 202


async def test_refusals_are_counted_by_reason(client):
    await client.post("/v1/messages", json=message())
    await client.post("/v1/messages", json=message(), headers=bearer("nope"))
    for n in range(3):
        await client.post("/v1/messages", json=message(external_id=str(n)), headers=bearer(SLOW_KEY))
    text = (await client.get("/metrics")).text
    assert 'switchboard_ingest_requests_rejected_total{reason="unauthorized"} 2.0' in text
    assert 'switchboard_ingest_requests_rejected_total{reason="rate_limited"} 1.0' in text


async def test_without_keys_the_api_is_open_and_startup_warns(publisher):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("ingest.app")
    logger.addHandler(handler)
    try:
        app = create_app(Settings(), Deps(publisher=publisher, seen=MemorySeenStore()))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as c:
                response = await c.post("/v1/messages", json=message())
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 202
    assert any(r.levelno == logging.WARNING and "INGEST_API_KEYS" in r.getMessage() for r in records)


async def test_with_keys_startup_does_not_warn(publisher):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("ingest.app")
    logger.addHandler(handler)
    try:
        app = create_app(settings(), Deps(publisher=publisher, seen=MemorySeenStore()))
        async with app.router.lifespan_context(app):
            pass
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if "INGEST_API_KEYS" in r.getMessage()]
