"""An empty or blank secret is an unset one: it never turns a webhook, the hand-off or API keys on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from ingest.app import Deps, create_app
from ingest.channels.sms import sms_signature
from ingest.config import Settings as IngestSettings
from ingest.store import MemorySeenStore
from router.config import Settings as RouterSettings
from switchboard.testing import FakePublisher

CHANNEL_SECRETS = (
    "INGEST_META_APP_SECRET",
    "INGEST_META_VERIFY_TOKEN",
    "INGEST_X_CONSUMER_SECRET",
    "INGEST_SMS_AUTH_TOKEN",
    "INGEST_EMAIL_WEBHOOK_TOKEN",
)
BLANKS = ["", "   ", "\t\n"]


@asynccontextmanager
async def ingest(publisher: FakePublisher) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest configured from the environment, as `switchboard serve ingest` builds it."""
    app = create_app(IngestSettings(), Deps(publisher=publisher, seen=MemorySeenStore()))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield client


def hex_hmac(body: bytes) -> str:
    """Sign with the empty key: what an attacker can do when an empty secret counts as configured."""
    return hmac.new(b"", body, hashlib.sha256).hexdigest()


@pytest.fixture(params=BLANKS, ids=["empty", "spaces", "whitespace"])
def blank_secrets(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in CHANNEL_SECRETS:
        monkeypatch.setenv(name, request.param)
    return request.param


def test_blank_channel_secrets_are_read_as_unset(blank_secrets: str):
    settings = IngestSettings()
    assert settings.meta_app_secret is None
    assert settings.meta_verify_token is None
    assert settings.x_consumer_secret is None
    assert settings.sms_auth_token is None
    assert settings.email_webhook_token is None


async def test_each_webhook_answers_503_not_configured_when_its_secret_is_blank(blank_secrets: str):
    publisher = FakePublisher()
    meta = json.dumps({"object": "page", "entry": []}).encode()
    x = json.dumps({"for_user_id": "1", "tweet_create_events": []}).encode()
    x_signature = "sha256=" + base64.b64encode(hmac.new(b"", x, hashlib.sha256).digest()).decode()
    meta_signature = f"sha256={hex_hmac(meta)}"
    sms = {"MessageSid": "SM1", "From": "+33600000000", "To": "+33100000000", "Body": "Bonjour"}
    async with ingest(publisher) as client:
        answers = {
            "meta webhook": await client.post(
                "/v1/webhooks/meta",
                content=meta,
                headers={"X-Hub-Signature-256": meta_signature, "content-type": "application/json"},
            ),
            "meta handshake": await client.get(
                "/v1/webhooks/meta",
                params={"hub.mode": "subscribe", "hub.verify_token": blank_secrets, "hub.challenge": "42"},
            ),
            "x crc": await client.get("/v1/webhooks/x", params={"crc_token": "abc"}),
            "x webhook": await client.post(
                "/v1/webhooks/x",
                content=x,
                headers={"x-twitter-webhooks-signature": x_signature, "content-type": "application/json"},
            ),
            "email webhook": await client.post(
                "/v1/webhooks/email",
                params={"token": blank_secrets},
                json={"from": "a@example.com", "to": "support@example.com", "text": "Bonjour"},
            ),
            "sms webhook": await client.post(
                "/v1/webhooks/sms",
                content=urlencode(sms).encode(),
                headers={
                    "X-Twilio-Signature": sms_signature("", "http://ingest/v1/webhooks/sms", sms),
                    "content-type": "application/x-www-form-urlencoded",
                },
            ),
        }
    for what, response in answers.items():
        assert response.status_code == 503, (what, response.status_code, response.text)
        assert "not configured" in response.json()["detail"], what
    assert publisher.events == []


@pytest.mark.parametrize("blank", BLANKS)
def test_a_blank_api_keys_setting_configures_no_key(blank: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("INGEST_API_KEYS", blank)
    assert IngestSettings().api_keys == []


@pytest.mark.parametrize("blank", BLANKS)
def test_a_blank_handoff_secret_is_unset_and_refused_with_handoff_urls(
    blank: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ROUTER_HANDOFF_SECRET", blank)
    assert RouterSettings().handoff_secret is None
    monkeypatch.setenv("ROUTER_HANDOFF_URLS", '{"customer-service": "https://cc.example/hooks"}')
    with pytest.raises(ValidationError, match="ROUTER_HANDOFF_SECRET is required"):
        RouterSettings()


def test_a_secret_with_a_value_stays_set():
    assert IngestSettings(meta_app_secret=SecretStr(" s3cret ")).meta_app_secret == SecretStr(" s3cret ")
    assert IngestSettings(meta_app_secret=SecretStr("  ")).meta_app_secret is None
    assert RouterSettings(handoff_secret="k").handoff_secret == SecretStr("k")
