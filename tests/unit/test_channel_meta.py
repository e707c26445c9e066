"""Meta's webhook adapter over a real Gate with a fake publisher: handshake, signatures, mapping, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from ingest.channels import meta
from ingest.config import Settings
from ingest.gate import Gate
from ingest.metrics import IngestMetrics
from ingest.store import MemorySeenStore
from switchboard.contract import Author, MessageReceived
from switchboard.testing import FakePublisher

FIXTURES = Path(__file__).parent.parent / "fixtures" / "channels" / "meta"
SECRET = "meta-app-secret-for-tests"
VERIFY_TOKEN = "verify-me-please"
PAGE = "104000000000001"
POST = "104000000000001_200000000000002"
NOW = datetime(2025, 11, 22, 10, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "content-type": "application/json"}


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "meta_app_secret": SecretStr(SECRET),
        "meta_verify_token": SecretStr(VERIFY_TOKEN),
        "max_text_chars": 200,
        "retry_after_seconds": 7,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def serve(config: Settings, publisher: FakePublisher) -> AsyncIterator[httpx.AsyncClient]:
    gate = Gate(publisher, MemorySeenStore(), IngestMetrics(CollectorRegistry()), lambda: NOW)
    app = FastAPI()
    app.include_router(meta.router(lambda: gate, config))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield client


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
async def client(publisher: FakePublisher) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(settings(), publisher) as c:
        yield c


def published(publisher: FakePublisher) -> dict[str, MessageReceived]:
    events = [e for e in publisher.events if isinstance(e, MessageReceived)]
    assert len(events) == len(publisher.events)
    return {e.data.external_id: e for e in events}


async def test_the_handshake_answers_the_challenge_as_plain_text_when_the_token_matches(client):
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = await client.get("/v1/webhooks/meta", params=query)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guessed", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
)
async def test_the_handshake_is_forbidden_without_the_verify_token(client, query):
    response = await client.get("/v1/webhooks/meta", params=query)
    assert response.status_code == 403


async def test_page_comments_and_visitor_posts_become_public_facebook_messages(client, publisher):
    body = fixture("page_feed.json")
    response = await client.post("/v1/webhooks/meta", content=body, headers=sign(body))
    assert response.status_code == 200
    result = response.json()
    # The page's own comment, a reaction and a deleted comment carry nothing a customer wrote.
    assert (result["accepted"], result["duplicates"], result["skipped"]) == (3, 0, 3)
    events = published(publisher)
    assert set(events) == {
        "200000000000002_300000000000003",
        "200000000000002_300000000000004",
        "104000000000001_200000000000007",
    }
    assert result["message_ids"] == [e.data.message_id for e in publisher.events]

    comment = events["200000000000002_300000000000003"].data
    assert comment.channel == "facebook"
    assert comment.visibility == "public"
    assert comment.conversation_id == f"facebook:post:{POST}:author:5550000000000011"
    assert events["200000000000002_300000000000003"].partitionkey == comment.conversation_id
    assert comment.author == Author(id="5550000000000011", name="Marie Laurent")
    assert comment.text.startswith("Toujours pas reçu ma commande #A-48213")
    assert comment.created_at == datetime(2025, 11, 22, 9, 15, tzinfo=UTC)
    assert comment.in_reply_to is None
    assert comment.metadata["page_id"] == PAGE

    reply = events["200000000000002_300000000000004"].data
    assert reply.in_reply_to == "200000000000002_300000000000099"
    assert reply.conversation_id == comment.conversation_id
    assert reply.created_at == datetime(2025, 11, 22, 9, 17, tzinfo=UTC)

    post = events["104000000000001_200000000000007"].data
    assert post.conversation_id == "facebook:post:104000000000001_200000000000007:author:5550000000000033"
    assert post.created_at == datetime(2025, 11, 22, 9, 25, tzinfo=UTC)


async def test_messenger_messages_are_private_and_the_pages_echoes_are_skipped(client, publisher):
    body = fixture("messenger.json")
    response = await client.post("/v1/webhooks/meta", content=body, headers=sign(body))
    assert response.status_code == 200
    # The echo of the page's own answer and the delivery receipt are skipped.
    assert (response.json()["accepted"], response.json()["skipped"]) == (2, 2)
    events = published(publisher)
    assert "m_page-answer-0002" not in events
    question = events["m_customer-question-0001"].data
    assert question.channel == "messenger"
    assert question.visibility == "private"
    assert question.conversation_id == f"messenger:{PAGE}:7770000000000001"
    assert question.author.id == "7770000000000001"
    assert question.created_at == datetime(2025, 11, 22, 9, 16, tzinfo=UTC)
    photo = events["m_customer-photo-0003"].data
    assert photo.text == "[image]"
    assert photo.metadata["attachments"] == [
        {"type": "image", "url": "https://cdn.example.invalid/photo.jpg"}
    ]
    assert photo.in_reply_to == "m_page-answer-0002"
    assert photo.conversation_id == question.conversation_id


async def test_instagram_comments_are_public_and_instagram_dms_private(client, publisher):
    body = fixture("instagram.json")
    response = await client.post("/v1/webhooks/meta", content=body, headers=sign(body))
    assert response.status_code == 200
    # The account's own reply, a mention (ids only) and a DM echo are skipped.
    assert (response.json()["accepted"], response.json()["skipped"]) == (2, 3)
    events = published(publisher)
    comment = events["17900000000000001"].data
    assert (comment.channel, comment.visibility) == ("instagram", "public")
    assert comment.author == Author(id="17841400000000777", handle="@julie.b")
    assert comment.conversation_id == "instagram:media:18000000000000042:author:17841400000000777"
    assert comment.created_at == datetime(2025, 11, 22, 9, 15, tzinfo=UTC)
    dm = events["aWdfZAG1faXRlbTox"].data
    assert (dm.channel, dm.visibility) == ("instagram", "private")
    assert dm.conversation_id == "instagram:dm:17841400000000001:6660000000000001"
    assert dm.created_at == datetime(2025, 11, 22, 9, 16, 40, tzinfo=UTC)


async def test_a_retried_delivery_is_answered_with_duplicates_and_nothing_is_republished(client, publisher):
    body = fixture("page_feed.json")
    first = (await client.post("/v1/webhooks/meta", content=body, headers=sign(body))).json()
    again = await client.post("/v1/webhooks/meta", content=body, headers=sign(body))
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 3)
    assert again.json()["message_ids"] == first["message_ids"]
    assert len(publisher.events) == 3


@pytest.mark.parametrize(
    "headers",
    [
        sign(fixture("page_feed.json"), secret="someone-elses-secret"),
        sign(b'{"object": "page", "entry": []}'),
    ],
    ids=["other secret", "signature of another body"],
)
async def test_a_wrong_signature_is_forbidden_and_nothing_is_published(client, publisher, headers):
    response = await client.post("/v1/webhooks/meta", content=fixture("page_feed.json"), headers=headers)
    assert response.status_code == 403
    assert publisher.events == []


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha1=" + "0" * 40,
        "sha256=" + "z" * 64,
        "sha256=abc",
        ("sha256=" + "é" * 64).encode("latin-1"),
    ],
)
async def test_a_missing_or_malformed_signature_is_unauthorised(client, publisher, signature):
    headers: dict[str, Any] = {} if signature is None else {"X-Hub-Signature-256": signature}
    response = await client.post("/v1/webhooks/meta", content=fixture("page_feed.json"), headers=headers)
    assert response.status_code == 401
    assert publisher.events == []


async def test_signed_malformed_json_gets_a_400_with_the_reason(client, publisher):
    body = b'{"object": "page", "entry": ['
    response = await client.post("/v1/webhooks/meta", content=body, headers=sign(body))
    assert response.status_code == 400
    assert "not JSON" in response.json()["detail"]
    assert publisher.events == []


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ([], "JSON object"),
        ({"object": "page"}, "entry"),
        ({"object": "page", "entry": [{"id": PAGE, "time": 1, "changes": [{"field": "feed"}]}]}, "value"),
        (
            {"object": "page", "entry": [{"id": PAGE, "messaging": [{"sender": {"id": "1"}}]}]},
            "recipient",
        ),
    ],
)
async def test_json_that_is_not_a_meta_payload_gets_a_422_naming_what_is_wrong(
    client, publisher, payload, where
):
    body = json.dumps(payload).encode()
    response = await client.post("/v1/webhooks/meta", content=body, headers=sign(body))
    assert response.status_code == 422
    assert where in response.json()["detail"]
    assert publisher.events == []


async def test_when_the_broker_is_down_the_answer_is_503_with_retry_after_and_the_retry_goes_through(
    client, publisher
):
    body = fixture("messenger.json")
    publisher.down = True
    refused = await client.post("/v1/webhooks/meta", content=body, headers=sign(body))
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "7"
    publisher.down = False
    retried = await client.post("/v1/webhooks/meta", content=body, headers=sign(body))
    assert retried.status_code == 200
    assert retried.json()["accepted"] == 2
    assert len(publisher.events) == 2


async def test_without_secrets_the_webhook_refuses_everything_with_503(publisher):
    body = fixture("page_feed.json")
    async with serve(settings(meta_app_secret=None, meta_verify_token=None), publisher) as client:
        post = await client.post("/v1/webhooks/meta", content=body, headers=sign(body))
        unsigned = await client.post("/v1/webhooks/meta", content=body)
        query = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
        handshake = await client.get("/v1/webhooks/meta", params=query)
    assert (post.status_code, unsigned.status_code, handshake.status_code) == (503, 503, 503)
    assert "INGEST_META_APP_SECRET" in post.json()["detail"]
    assert publisher.events == []


def test_a_text_over_the_limit_is_kept_cut_to_the_limit_and_flagged_as_truncated():
    payload = json.loads(fixture("messenger.json"))
    payload["entry"][0]["messaging"][0]["message"]["text"] = "x" * 50
    parsed = meta.parse(payload, max_text_chars=20)
    question = next(i for i in parsed.items if i.external_id == "m_customer-question-0001")
    assert question.text == "x" * 20
    assert question.metadata["truncated"] is True
    assert "truncated" not in parsed.items[1].metadata


def test_the_signature_of_the_raw_body_with_the_app_secret_is_accepted():
    body = fixture("instagram.json")
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    meta.verify_signature(SECRET.encode(), body, f"sha256={digest}")
    meta.verify_signature(SECRET.encode(), body, f"sha256={digest.upper()}")
    with pytest.raises(meta.SignatureError) as wrong:
        meta.verify_signature(SECRET.encode(), body + b" ", sign(body)["X-Hub-Signature-256"])
    assert wrong.value.status == 403


def test_seconds_and_milliseconds_since_the_epoch_are_the_same_utc_instant():
    assert meta.when(1763802900) == meta.when(1763802900000) == datetime(2025, 11, 22, 9, 15, tzinfo=UTC)
    assert meta.when("2025-11-22T09:15:00+0000") == datetime(2025, 11, 22, 9, 15, tzinfo=UTC)


def test_an_echo_is_skipped_even_when_its_sender_is_not_the_entrys_account():
    payload = json.loads(fixture("messenger.json"))
    echo = payload["entry"][0]["messaging"][1]
    echo["sender"]["id"] = "104000000000999"
    parsed = meta.parse(payload)
    assert "m_page-answer-0002" not in [i.external_id for i in parsed.items]
    assert parsed.skipped == 2
