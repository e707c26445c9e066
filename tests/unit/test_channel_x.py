"""X's Account Activity adapter over a real Gate with a fake publisher: CRC, signatures, mapping, retries."""

from __future__ import annotations

import base64
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

from ingest.channels import x
from ingest.config import Settings
from ingest.gate import Gate
from ingest.metrics import IngestMetrics
from ingest.store import MemorySeenStore
from switchboard.contract import Author, MessageReceived
from switchboard.testing import FakePublisher

FIXTURES = Path(__file__).parent.parent / "fixtures" / "channels" / "x"
SECRET = "x-consumer-secret-for-tests"
BRAND = "2244994945"
NOW = datetime(2025, 11, 22, 10, 0, tzinfo=UTC)
HEADER = "x-twitter-webhooks-signature"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signature(data: bytes, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), data, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {HEADER: signature(body, secret), "content-type": "application/json"}


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "x_consumer_secret": SecretStr(SECRET),
        "max_text_chars": 500,
        "retry_after_seconds": 9,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def serve(config: Settings, publisher: FakePublisher) -> AsyncIterator[httpx.AsyncClient]:
    gate = Gate(publisher, MemorySeenStore(), IngestMetrics(CollectorRegistry()), lambda: NOW)
    app = FastAPI()
    app.include_router(x.router(lambda: gate, config))
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


async def test_the_crc_check_answers_the_token_signed_with_the_consumer_secret(client):
    response = await client.get("/v1/webhooks/x", params={"crc_token": "9b4507b3-1f4e-4d2b-a4c4"})
    assert response.status_code == 200
    expected = hmac.new(SECRET.encode(), b"9b4507b3-1f4e-4d2b-a4c4", hashlib.sha256).digest()
    assert response.json() == {"response_token": "sha256=" + base64.b64encode(expected).decode()}


def test_the_crc_response_matches_a_value_computed_once_by_hand():
    # HMAC-SHA256(key=b"key", msg=b"The quick brown fox jumps over the lazy dog"), base64 of the
    # well-known hex digest f7bc83f4...2d1a3cd8.
    digest = bytes.fromhex("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    token = x.crc_response(b"key", "The quick brown fox jumps over the lazy dog")
    assert token == "sha256=" + base64.b64encode(digest).decode()


async def test_the_crc_check_without_a_token_gets_a_400(client):
    response = await client.get("/v1/webhooks/x")
    assert response.status_code == 400


async def test_mentions_and_replies_become_public_x_messages_and_own_tweets_are_skipped(client, publisher):
    body = fixture("tweets.json")
    response = await client.post("/v1/webhooks/x", content=body, headers=sign(body))
    assert response.status_code == 200
    result = response.json()
    # The brand's own reply, a retweet and a like carry nothing a customer wrote to the brand.
    assert (result["accepted"], result["duplicates"], result["skipped"]) == (2, 0, 3)
    events = published(publisher)
    assert set(events) == {"1992000000000000001", "1992000000000000003"}
    assert result["message_ids"] == [e.data.message_id for e in publisher.events]

    mention = events["1992000000000000001"].data
    assert (mention.channel, mention.visibility) == ("x", "public")
    assert mention.author == Author(id="4200000001", handle="@marie_l", name="Marie L.", followers=1873)
    assert mention.conversation_id == "x:author:4200000001"
    assert events["1992000000000000001"].partitionkey == "x:author:4200000001"
    assert mention.created_at == datetime(2025, 11, 22, 9, 15, tzinfo=UTC)
    assert mention.language == "fr"
    assert mention.in_reply_to is None

    reply = events["1992000000000000003"].data
    assert reply.text.endswith("since 6am and I work from home. Any ETA?")
    assert reply.in_reply_to == "1992000000000000002"
    assert reply.created_at == datetime(2025, 11, 22, 9, 40, 12, 345000, tzinfo=UTC)
    assert reply.language == "en"
    assert reply.author.followers == 52


async def test_a_customers_dm_is_private_in_the_pair_conversation_and_the_brands_dm_is_skipped(
    client, publisher
):
    body = fixture("direct_messages.json")
    response = await client.post("/v1/webhooks/x", content=body, headers=sign(body))
    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["skipped"]) == (1, 1)
    (event,) = publisher.events
    dm = event.data
    assert (dm.channel, dm.visibility, dm.external_id) == ("x", "private", "1992100000000000001")
    assert dm.conversation_id == f"x:dm:{BRAND}:4200000001"
    assert dm.author == Author(id="4200000001", handle="@marie_l", name="Marie L.", followers=1873)
    assert dm.created_at == datetime(2025, 11, 22, 9, 25, tzinfo=UTC)


async def test_a_retried_delivery_is_answered_with_duplicates_and_nothing_is_republished(client, publisher):
    body = fixture("tweets.json")
    first = (await client.post("/v1/webhooks/x", content=body, headers=sign(body))).json()
    again = await client.post("/v1/webhooks/x", content=body, headers=sign(body))
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)
    assert again.json()["message_ids"] == first["message_ids"]
    assert len(publisher.events) == 2


@pytest.mark.parametrize(
    "headers",
    [sign(fixture("tweets.json"), secret="someone-elses-secret"), sign(b"{}")],
    ids=["other secret", "signature of another body"],
)
async def test_a_wrong_signature_is_forbidden_and_nothing_is_published(client, publisher, headers):
    response = await client.post("/v1/webhooks/x", content=fixture("tweets.json"), headers=headers)
    assert response.status_code == 403
    assert publisher.events == []


@pytest.mark.parametrize("value", [None, "", "sha1=abc", "sha256=not base64!", "sha256=" + "A" * 43])
async def test_a_missing_or_malformed_signature_is_unauthorised(client, publisher, value):
    headers = {} if value is None else {HEADER: value}
    response = await client.post("/v1/webhooks/x", content=fixture("tweets.json"), headers=headers)
    assert response.status_code == 401
    assert publisher.events == []


async def test_signed_malformed_json_gets_a_400_with_the_reason(client, publisher):
    body = b'{"for_user_id": "2244994945", "tweet_create_events": [{'
    response = await client.post("/v1/webhooks/x", content=body, headers=sign(body))
    assert response.status_code == 400
    assert "not JSON" in response.json()["detail"]
    assert publisher.events == []


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"tweet_create_events": []}, "for_user_id"),
        ({"for_user_id": BRAND, "tweet_create_events": [{"id_str": "1", "text": "hi"}]}, "user"),
        ({"for_user_id": BRAND, "tweet_create_events": "nope"}, "tweet_create_events"),
        (["not", "an", "object"], "JSON object"),
    ],
)
async def test_json_that_is_not_an_account_activity_payload_gets_a_422(client, publisher, payload, where):
    body = json.dumps(payload).encode()
    response = await client.post("/v1/webhooks/x", content=body, headers=sign(body))
    assert response.status_code == 422
    assert where in response.json()["detail"]
    assert publisher.events == []


async def test_when_the_broker_is_down_the_answer_is_503_with_retry_after_and_the_retry_goes_through(
    client, publisher
):
    body = fixture("direct_messages.json")
    publisher.down = True
    refused = await client.post("/v1/webhooks/x", content=body, headers=sign(body))
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "9"
    publisher.down = False
    retried = await client.post("/v1/webhooks/x", content=body, headers=sign(body))
    assert retried.status_code == 200
    assert retried.json()["accepted"] == 1
    assert len(publisher.events) == 1


async def test_without_a_consumer_secret_the_webhook_and_the_crc_check_answer_503(publisher):
    body = fixture("tweets.json")
    async with serve(settings(x_consumer_secret=None), publisher) as client:
        post = await client.post("/v1/webhooks/x", content=body, headers=sign(body))
        unsigned = await client.post("/v1/webhooks/x", content=body)
        crc = await client.get("/v1/webhooks/x", params={"crc_token": "abc"})
    assert (post.status_code, unsigned.status_code, crc.status_code) == (503, 503, 503)
    assert "INGEST_X_CONSUMER_SECRET" in post.json()["detail"]
    assert publisher.events == []


def test_a_text_over_the_limit_is_kept_cut_to_the_limit_and_flagged_as_truncated():
    parsed = x.parse(json.loads(fixture("tweets.json")), max_text_chars=30)
    assert [len(i.text) for i in parsed.items] == [30, 30]
    assert all(i.metadata["truncated"] is True for i in parsed.items)
    assert x.parse(json.loads(fixture("tweets.json"))).items[1].metadata == {"for_user_id": BRAND}


def test_a_tweets_html_entities_are_undone_once_and_the_limit_counts_the_written_text():
    payload = json.loads(fixture("tweets.json"))
    first = payload["tweet_create_events"][0]
    # What X sends for: @NovaTel billing & refunds <3 ... I typed "&lt;" on purpose & "&amp;" too
    first["text"] = (
        '@NovaTel billing &amp; refunds &lt;3 ... I typed "&amp;lt;" on purpose &amp; "&amp;amp;" too'
    )
    item = x.parse(payload).items[0]
    assert item.text == '@NovaTel billing & refunds <3 ... I typed "&lt;" on purpose & "&amp;" too'
    # The limit cuts the text as written, not as escaped.
    assert x.parse(payload, max_text_chars=20).items[0].text == "@NovaTel billing & r"
    # An extended tweet's full text is undone too; a text without "&" is left as it is.
    second = payload["tweet_create_events"][1]
    second["extended_tweet"]["full_text"] = "@NovaTel fibre &gt; 6 hours down"
    assert x.parse(payload).items[1].text == "@NovaTel fibre > 6 hours down"
    assert x.as_written("plain; text &") == "plain; text &"
