"""Ingest against a real broker that goes away: it answers 503, never 2xx for an unstored message."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from ingest.app import create_app
from ingest.config import Settings
from switchboard.config import KafkaSettings, RedisSettings
from switchboard.stack import free_port, start_broker
from switchboard.testing import TopicReader

pytestmark = pytest.mark.integration


def body(external_id: str) -> dict:
    return {
        "channel": "chat",
        "external_id": external_id,
        "author": {"id": "visitor-1"},
        "text": "my payment failed twice, can someone help?",
        "created_at": "2026-11-22T10:00:00Z",
    }


async def test_ingest_answers_503_while_the_broker_hangs_and_accepts_the_retry(
    redis_url: str, key_prefix: str, redis, tmp_path: Path
):
    port = free_port()
    broker = start_broker("127.0.0.1", port, tmp_path / "broker.log")
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3000),
        redis=RedisSettings(url=redis_url, key_prefix=key_prefix),
        publish_timeout_seconds=1.5,
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
                assert (await client.post("/v1/messages", json=body("before"))).status_code == 202
                # A frozen broker keeps its connections open but answers nothing: the worst case.
                broker.send_signal(signal.SIGSTOP)
                refused = await client.post("/v1/messages", json=body("during"))
                assert refused.status_code == 503
                assert int(refused.headers["retry-after"]) > 0
                assert (await client.get("/readyz")).status_code == 503
                broker.send_signal(signal.SIGCONT)
                retried = None
                for _ in range(30):
                    retried = await client.post("/v1/messages", json=body("during"))
                    if retried.status_code != 503:
                        break
                assert retried is not None and retried.status_code in (200, 202), retried.text
                assert (await client.get("/readyz")).status_code == 200
                metrics = (await client.get("/metrics")).text
                assert "switchboard_ingest_publish_failures_total 1.0" in metrics
        async with TopicReader(f"127.0.0.1:{port}", "messages.received") as reader:
            await reader.wait_for(lambda r: b'"external_id":"before"' in r.value)
            during = await reader.wait_for(lambda r: b'"external_id":"during"' in r.value)
        # The refused attempt may still reach the broker once it wakes up; it then carries the same
        # event id as the accepted retry, so consumers see one event.
        assert len({json.loads(r.value)["id"] for r in during}) == 1
        assert {r.key for r in during} == {b"chat:author:visitor-1"}
    finally:
        broker.send_signal(signal.SIGCONT)
        broker.terminate()
        broker.wait(10)
