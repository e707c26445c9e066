"""Ingest's HTTP API with a fake publisher: validation, deduplication, and no 2xx without an ack."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ingest.app import Deps, create_app
from ingest.config import Settings
from ingest.store import MemorySeenStore
from switchboard.contract import CloudEvent, decode, encode


class FakePublisher:
    """Records what was published; can be told to fail like a broker that is down."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.traces: list[object] = []
        self.calls = 0
        self.down = False

    async def publish(self, events: Sequence[CloudEvent], traces: Sequence[object] | None = None) -> None:
        self.calls += 1
        await asyncio.sleep(0.01)  # a broker takes a while to acknowledge; requests arrive meanwhile
        if self.down:
            raise ConnectionError("broker unreachable")
        self.events.extend(events)
        self.traces.extend(traces if traces is not None else [None] * len(events))


class UnreachableSeenStore(MemorySeenStore):
    """A claim store whose Redis does not answer."""

    async def claim(self, keys: list[str]) -> list[bytes | None]:
        raise ConnectionError("redis unreachable")


def message(**overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "x",
        "external_id": "1790000000000000001",
        "author": {"id": "42", "handle": "@marie", "name": "Marie"},
        "text": "@NovaTel toujours pas reçu ma commande #A-48213",
        "created_at": "2026-11-22T09:15:00Z",
    }
    body.update(overrides)
    return body


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
async def client(publisher: FakePublisher):
    settings = Settings(max_batch_items=3, max_text_chars=200)
    app = create_app(settings, Deps(publisher=publisher, seen=MemorySeenStore()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c:
        yield c


async def test_a_message_is_accepted_with_its_id_and_published_once(client, publisher):
    response = await client.post("/v1/messages", json=message())
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    (event,) = publisher.events
    assert event.type == "switchboard.message.received"
    assert event.data.message_id == body["message_id"]
    assert event.data.visibility == "public"
    assert event.partitionkey == body["conversation_id"]


async def test_the_same_channel_message_again_names_the_original_and_is_not_republished(client, publisher):
    first = (await client.post("/v1/messages", json=message())).json()
    again = await client.post("/v1/messages", json=message(text="retried webhook"))
    assert again.status_code == 200
    assert again.json() == {**first, "status": "duplicate"}
    assert len(publisher.events) == 1


async def test_the_same_external_id_on_another_channel_is_another_message(client, publisher):
    await client.post("/v1/messages", json=message())
    response = await client.post("/v1/messages", json=message(channel="sms"))
    assert response.status_code == 202
    assert len(publisher.events) == 2
    assert publisher.events[1].data.visibility == "private"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (message(channel="carrier-pigeon"), "channel"),
        ({k: v for k, v in message().items() if k != "text"}, "text"),
        (message(text=""), "text"),
        (message(created_at="yesterday"), "created_at"),
        (message(created_at="2026-11-22T09:15:00"), "created_at"),
        (message(visibility="secret"), "visibility"),
        (message(unexpected=1), "unexpected"),
    ],
)
async def test_an_invalid_message_gets_a_422_that_names_the_field(client, publisher, body, where):
    response = await client.post("/v1/messages", json=body)
    assert response.status_code == 422
    assert where in str(response.json()["detail"])
    assert publisher.events == []


async def test_malformed_json_gets_a_422(client):
    response = await client.post(
        "/v1/messages", content=b'{"channel": "x",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_a_text_over_the_limit_gets_a_422_with_the_limit(client):
    response = await client.post("/v1/messages", json=message(text="a" * 201))
    assert response.status_code == 422
    assert "200" in response.json()["detail"]


async def test_when_the_broker_is_down_the_answer_is_503_and_the_retry_goes_through(client, publisher):
    publisher.down = True
    refused = await client.post("/v1/messages", json=message())
    assert refused.status_code == 503
    assert refused.headers["retry-after"].isdigit()
    publisher.down = False
    retried = await client.post("/v1/messages", json=message())
    assert retried.status_code == 202
    assert len(publisher.events) == 1


async def test_a_batch_gets_one_result_per_item_in_order(client, publisher):
    items = [message(external_id="a"), {"channel": "x"}, message(external_id="a")]
    response = await client.post("/v1/messages/batch", json={"messages": items})
    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["accepted", "invalid", "duplicate"]
    assert "external_id" in body["results"][1]["error"]
    assert (body["accepted"], body["invalid"], body["duplicates"]) == (1, 1, 1)
    assert len(publisher.events) == 1


async def test_a_batch_over_the_limit_gets_a_413(client, publisher):
    items = [message(external_id=str(i)) for i in range(4)]
    response = await client.post("/v1/messages/batch", json={"messages": items})
    assert response.status_code == 413
    assert publisher.events == []


async def test_an_activity_is_published_keyed_by_its_case(client, publisher):
    response = await client.post(
        "/v1/cases/case-9/activity", json={"type": "responded", "at": "2026-11-22T09:40:00Z"}
    )
    assert response.status_code == 202
    (event,) = publisher.events
    assert event.type == "switchboard.case.activity_recorded"
    assert event.partitionkey == "case-9"
    assert event.data.type == "responded"


async def test_a_reassignment_without_a_target_queue_gets_a_422(client, publisher):
    response = await client.post(
        "/v1/cases/c/activity", json={"type": "reassigned", "at": "2026-11-22T09:40:00Z"}
    )
    assert response.status_code == 422
    assert publisher.events == []


async def test_metrics_count_accepted_duplicate_and_rejected_messages(client):
    await client.post("/v1/messages", json=message())
    await client.post("/v1/messages", json=message())
    await client.post("/v1/messages", json=message(channel="nope"))
    text = (await client.get("/metrics")).text
    assert 'switchboard_ingest_messages_accepted_total{channel="x"} 1.0' in text
    assert 'switchboard_ingest_messages_duplicate_total{channel="x"} 1.0' in text
    assert 'switchboard_ingest_requests_rejected_total{reason="invalid"} 1.0' in text
    assert 'switchboard_ingest_http_requests_total{route="/v1/messages",status="202"} 1.0' in text


async def test_malformed_json_gets_a_422_that_says_where(client, publisher):
    response = await client.post(
        "/v1/messages", content=b'{"channel": "x",', headers={"content-type": "application/json"}
    )
    (error,) = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["msg"].startswith("JSON decode error: ")
    assert publisher.events == []


async def test_text_that_no_utf8_record_can_hold_gets_a_422(client, publisher):
    escaped = b'{"channel": "x", "external_id": "1", "author": {"id": "42"}, "text": "\\ud800", '
    response = await client.post(
        "/v1/messages",
        content=escaped + b'"created_at": "2026-11-22T09:15:00Z"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert publisher.events == []


async def test_metadata_that_no_utf8_record_can_hold_gets_a_422_not_a_503(client, publisher):
    body = b'{"channel": "x", "external_id": "1", "author": {"id": "42"}, "text": "hi", '
    body += b'"created_at": "2026-11-22T09:15:00Z", "metadata": {"note": "\\udc00"}}'
    response = await client.post("/v1/messages", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "metadata" in str(response.json()["detail"])
    batch = b'{"messages": [' + body.replace(b'"1"', b'"2"') + b"]}"
    result = await client.post(
        "/v1/messages/batch", content=batch, headers={"content-type": "application/json"}
    )
    assert result.json()["results"][0]["status"] == "invalid"
    assert publisher.events == []


async def test_the_published_event_is_a_valid_contract_event(client, publisher):
    meta = {"page": "/aide", "tags": ["a", "b"], "n": 3}
    response = await client.post("/v1/messages", json=message(metadata=meta, language="fr"))
    assert response.status_code == 202
    (event,) = publisher.events
    # Built without a second validation: reading it back through the contract must give it unchanged.
    assert decode(encode(event)) == event
    assert event.data.metadata == meta


async def test_concurrent_requests_share_one_publish_and_each_gets_its_own_answer(client, publisher):
    responses = await asyncio.gather(
        *(client.post("/v1/messages", json=message(external_id=f"c-{n}")) for n in range(30))
    )
    assert [r.status_code for r in responses] == [202] * 30
    assert sorted(r.json()["message_id"] for r in responses) == sorted(
        e.data.message_id for e in publisher.events
    )
    assert len(publisher.events) == 30
    assert publisher.calls < 30, "every request published on its own"


async def test_a_claim_store_that_does_not_answer_gets_a_503_and_publishes_nothing(publisher):
    app = create_app(Settings(), Deps(publisher=publisher, seen=UnreachableSeenStore()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c:
        response = await c.post("/v1/messages", json=message())
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert publisher.events == []


async def test_a_time_up_to_a_day_after_receipt_is_accepted_and_one_second_later_refused(publisher):
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    app = create_app(Settings(), Deps(publisher=publisher, seen=MemorySeenStore(), clock=lambda: now))
    day, later = (now + timedelta(days=1)).isoformat(), (now + timedelta(days=1, seconds=1)).isoformat()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as c:
        assert (await c.post("/v1/messages", json=message(created_at=day))).status_code == 202
        refused = await c.post("/v1/messages", json=message(external_id="2", created_at=later))
        activity = {"type": "responded", "at": later}
        refused_activity = await c.post("/v1/cases/case-1/activity", json=activity)
    assert refused.status_code == 422 and "more than a day after" in refused.json()["detail"]
    assert refused_activity.status_code == 422
    assert len(publisher.events) == 1
