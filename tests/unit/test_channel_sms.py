"""The SMS gateway webhook: Twilio-style signature, parsing, TwiML answer, and no 200 without an ack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from ingest.channels.sms import (
    EMPTY_TWIML,
    IncompleteSms,
    parse_sms,
    router,
    sms_signature,
    verify_sms_signature,
)
from ingest.config import Settings
from ingest.gate import Gate
from ingest.metrics import IngestMetrics
from ingest.store import MemorySeenStore
from switchboard.testing import FakePublisher

FIXTURES = Path(__file__).parent.parent / "fixtures" / "channels" / "sms"
NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
TOKEN = "0123456789abcdef0123456789abcdef"
URL = "http://ingest/v1/webhooks/sms"


def fixture(name: str) -> dict[str, str]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def reference_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented recipe, written out independently of the module under test."""
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(
        hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    ).decode()


def signed(params: dict[str, str], url: str = URL, token: str = TOKEN) -> dict[str, Any]:
    """The keyword arguments of a form post signed as the gateway signs it."""
    return {
        "content": urlencode(params).encode(),
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": reference_signature(token, url, params),
        },
    }


def client_for(publisher: FakePublisher, **settings: Any) -> httpx.AsyncClient:
    config = Settings(**{"sms_auth_token": TOKEN, "max_text_chars": 2000, **settings})
    seen, metrics = MemorySeenStore(), IngestMetrics(CollectorRegistry())
    app = FastAPI()
    app.include_router(router(lambda: Gate(publisher, seen, metrics, lambda: NOW), config))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest")


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
async def client(publisher: FakePublisher):
    async with client_for(publisher) as c:
        yield c


# The example of Twilio's own request-validator tests: token, URL and parameters.
EXAMPLE_TOKEN = "12345"
EXAMPLE_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
EXAMPLE_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def test_the_signature_is_the_one_computed_from_first_principles_for_the_known_example():
    data = (
        "https://mycompany.com/myapp.php?foo=1&bar=2"
        "CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212"
    )
    expected = base64.b64encode(hmac.new(b"12345", data.encode(), hashlib.sha1).digest()).decode()
    assert expected == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sms_signature(EXAMPLE_TOKEN, EXAMPLE_URL, EXAMPLE_PARAMS) == expected
    shuffled = list(reversed(EXAMPLE_PARAMS.items()))
    assert sms_signature(EXAMPLE_TOKEN, EXAMPLE_URL, shuffled) == expected


@pytest.mark.parametrize(
    ("url", "params", "token"),
    [
        (EXAMPLE_URL + "&baz=3", EXAMPLE_PARAMS, EXAMPLE_TOKEN),
        (EXAMPLE_URL, {**EXAMPLE_PARAMS, "Digits": "1235"}, EXAMPLE_TOKEN),
        (EXAMPLE_URL, {**EXAMPLE_PARAMS, "Extra": ""}, EXAMPLE_TOKEN),
        (EXAMPLE_URL, EXAMPLE_PARAMS, "12346"),
    ],
)
def test_the_signature_does_not_verify_once_the_url_a_field_or_the_token_changes(url, params, token):
    assert not verify_sms_signature(token, url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_a_signature_over_the_url_with_its_default_port_spelt_out_verifies():
    with_port = sms_signature(
        EXAMPLE_TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", EXAMPLE_PARAMS
    )
    assert verify_sms_signature(EXAMPLE_TOKEN, EXAMPLE_URL, EXAMPLE_PARAMS, with_port)
    assert verify_sms_signature(
        EXAMPLE_TOKEN,
        "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        EXAMPLE_PARAMS,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    )


@pytest.mark.parametrize(
    ("name", "text", "to", "sender"),
    [
        (
            "fr.json",
            "Bonjour, toujours pas de réseau à Lyon depuis ce matin. C'est quand que ça revient ?",
            "+33639980001",
            "+33639980042",
        ),
        (
            "en.json",
            "Hi, I was charged twice for my November bill (acct 7731). Please refund & confirm.",
            "+12025550100",
            "+12025550142",
        ),
    ],
)
async def test_a_signed_sms_is_published_and_answered_with_empty_twiml(
    client, publisher, name, text, to, sender
):
    params = fixture(name)
    response = await client.post("/v1/webhooks/sms", **signed(params))
    assert response.status_code == 200, response.text
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert response.headers["content-type"].startswith("text/xml")
    (event,) = publisher.events
    message = event.data
    assert message.channel == "sms"
    assert message.external_id == params["MessageSid"]
    assert message.author.id == sender
    assert message.text == text
    assert message.visibility == "private"
    assert message.conversation_id == event.partitionkey == f"sms:{to}:{sender}"
    assert message.created_at == NOW
    assert message.metadata == {"to": to}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "application/x-www-form-urlencoded"}, 401),
        ({"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": ""}, 401),
        ({"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "bm9wZQ=="}, 403),
    ],
)
async def test_an_sms_without_the_right_signature_is_refused_and_not_published(
    client, publisher, headers, status
):
    response = await client.post("/v1/webhooks/sms", content=urlencode(fixture("en.json")), headers=headers)
    assert response.status_code == status
    assert publisher.events == []


async def test_a_body_changed_after_signing_is_refused(client, publisher):
    params = fixture("en.json")
    request = signed(params)
    request["content"] = urlencode({**params, "Body": "Please close my account"}).encode()
    response = await client.post("/v1/webhooks/sms", **request)
    assert response.status_code == 403
    assert publisher.events == []


async def test_an_sms_signed_with_another_token_is_refused(client, publisher):
    response = await client.post("/v1/webhooks/sms", **signed(fixture("en.json"), token="another-token"))
    assert response.status_code == 403
    assert publisher.events == []


async def test_without_a_configured_token_the_webhook_answers_503_and_accepts_nothing(publisher):
    async with client_for(publisher, sms_auth_token=None) as unconfigured:
        response = await unconfigured.post("/v1/webhooks/sms", **signed(fixture("en.json")))
    assert response.status_code == 503
    assert "INGEST_SMS_AUTH_TOKEN" in response.json()["detail"]
    assert publisher.events == []


async def test_behind_a_proxy_the_signature_covers_the_public_url_and_query(publisher):
    public = "https://hooks.novatel.example/ingest"
    async with client_for(publisher, public_base_url=public + "/") as proxied:
        params = fixture("fr.json")
        internal = await proxied.post(f"{URL}?tenant=fr", **signed(params, url=f"{URL}?tenant=fr"))
        assert internal.status_code == 403
        ok = await proxied.post(
            "/v1/webhooks/sms?tenant=fr", **signed(params, url=f"{public}/v1/webhooks/sms?tenant=fr")
        )
        assert ok.status_code == 200
    assert len(publisher.events) == 1


async def test_the_request_url_with_its_query_is_signed_when_no_public_url_is_set(client, publisher):
    params = fixture("en.json")
    no_query = await client.post("/v1/webhooks/sms?tenant=us", **signed(params))
    assert no_query.status_code == 403
    ok = await client.post("/v1/webhooks/sms?tenant=us", **signed(params, url=f"{URL}?tenant=us"))
    assert ok.status_code == 200


async def test_a_media_only_sms_becomes_a_media_placeholder_with_the_media_listed(client, publisher):
    params = fixture("media_only.json")
    response = await client.post("/v1/webhooks/sms", **signed(params))
    assert response.status_code == 200
    (event,) = publisher.events
    assert event.data.text == "[media]"
    assert event.data.metadata["num_media"] == 1
    assert event.data.metadata["media"] == [{"url": params["MediaUrl0"], "content_type": "image/jpeg"}]


def test_the_older_smssid_field_stands_for_a_missing_messagesid():
    params = {k: v for k, v in fixture("en.json").items() if k != "MessageSid"}
    assert parse_sms(params, NOW).external_id == "SMa1b2c3d4e5f60718293a4b5c6d7e8f90"


@pytest.mark.parametrize(
    ("drop", "change", "reason"),
    [
        (("MessageSid", "SmsSid"), {}, "MessageSid"),
        (("From",), {}, "From"),
        (("To",), {}, "To"),
        ((), {"Body": "  "}, "no Body and no media"),
        ((), {"NumMedia": "many"}, "NumMedia"),
    ],
)
def test_an_sms_missing_what_a_message_needs_is_refused_with_the_reason(drop, change, reason):
    params = {**{k: v for k, v in fixture("en.json").items() if k not in drop}, **change}
    with pytest.raises(IncompleteSms, match=reason):
        parse_sms(params, NOW)


async def test_an_unsigned_field_missing_gets_a_422_naming_it(client, publisher):
    params = {k: v for k, v in fixture("fr.json").items() if k not in ("MessageSid", "SmsSid")}
    response = await client.post("/v1/webhooks/sms", **signed(params))
    assert response.status_code == 422
    assert "MessageSid" in response.json()["detail"]
    assert publisher.events == []


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"Body=%FF%FE&From=%2B12025550142", "application/x-www-form-urlencoded", 400),
        (b"Body&From", "application/x-www-form-urlencoded", 400),
        (b'{"Body": "hi"}', "application/json", 415),
    ],
)
async def test_a_body_that_is_not_a_form_is_refused(client, publisher, content, content_type, status):
    headers = {"Content-Type": content_type, "X-Twilio-Signature": "bm9wZQ=="}
    response = await client.post("/v1/webhooks/sms", content=content, headers=headers)
    assert response.status_code == status
    assert publisher.events == []


async def test_the_same_sms_delivered_twice_is_answered_alike_and_published_once(client, publisher):
    params = fixture("fr.json")
    first = await client.post("/v1/webhooks/sms", **signed(params))
    again = await client.post("/v1/webhooks/sms", **signed(params))
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.text == EMPTY_TWIML
    assert len(publisher.events) == 1


async def test_when_the_broker_is_down_the_answer_is_503_and_the_retry_goes_through(client, publisher):
    publisher.down = True
    refused = await client.post("/v1/webhooks/sms", **signed(fixture("en.json")))
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    publisher.down = False
    retried = await client.post("/v1/webhooks/sms", **signed(fixture("en.json")))
    assert retried.status_code == 200
    assert len(publisher.events) == 1


async def test_a_long_sms_is_kept_cut_to_the_limit_and_flagged(publisher):
    params = {**fixture("en.json"), "Body": "é" * 50}
    async with client_for(publisher, max_text_chars=20) as small:
        response = await small.post("/v1/webhooks/sms", **signed(params))
    assert response.status_code == 200
    (event,) = publisher.events
    assert event.data.text == "é" * 20
    assert event.data.metadata["truncated"] is True


def test_a_media_count_beyond_the_fields_posted_reads_only_the_media_posted():
    # NumMedia=10**40 sent the adapter looking for MediaUrl0 ... MediaUrl(10**40 - 1), for ever.
    form = {"MessageSid": "SM1", "From": "+33612345678", "To": "+33700000000", "Body": "photo"}
    form |= {"NumMedia": "1" + "0" * 40, "MediaUrl0": "https://api.example/m/1"}
    item = parse_sms(form, NOW)
    assert item.metadata["media"] == [{"url": "https://api.example/m/1", "content_type": None}]
