"""A property-based fuzz of ingest's OpenAPI document (schemathesis, in process): no request gets a 5xx,
and none makes the app log an error or a traceback.

Requests go through a wrapper that signs each webhook body as its channel would and adds an API key
where one is needed, so the fuzzed bodies reach the parsers and the gate instead of stopping at 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import parse_qsl

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.app import Deps, create_app
from ingest.bodylimit import replay
from ingest.channels.sms import sms_signature
from ingest.config import Settings
from ingest.keys import ApiKey, hash_key
from ingest.store import MemorySeenStore
from switchboard.contract import CloudEvent, encode
from switchboard.testing import captured_logs, errors_in

META_SECRET, X_SECRET, SMS_TOKEN, EMAIL_TOKEN = "meta-secret", "x-secret", "sms-token", "email-token"
API_KEY = "sbk_fuzz-key"


class EncodingPublisher:
    """Serialises every event as the Kafka publisher does, so an event that cannot be sent fails here too."""

    def __init__(self) -> None:
        self.count = 0

    async def publish(self, events: Sequence[CloudEvent], traces: Sequence[object] | None = None) -> None:
        for event in events:
            encode(event)
        self.count += len(events)


class Signing:
    """Sign each webhook request like its channel, and give the other `/v1/` requests a valid API key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        path = scope["path"]
        drop = {b"authorization", b"x-api-key", b"x-hub-signature-256", b"x-twitter-webhooks-signature"}
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in drop | {b"x-twilio-signature"}]
        if path == "/v1/webhooks/meta":
            digest = hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers.append((b"x-hub-signature-256", f"sha256={digest}".encode()))
        elif path == "/v1/webhooks/x":
            digest = base64.b64encode(hmac.new(X_SECRET.encode(), body, hashlib.sha256).digest())
            headers.append((b"x-twitter-webhooks-signature", b"sha256=" + digest))
        elif path == "/v1/webhooks/sms":
            url = f"http://testserver{path}" + (
                f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
            )
            try:
                pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True)
            except UnicodeDecodeError:
                pairs = []
            headers.append((b"x-twilio-signature", sms_signature(SMS_TOKEN, url, pairs).encode()))
        elif path == "/v1/webhooks/email":
            headers.append((b"authorization", f"Bearer {EMAIL_TOKEN}".encode()))
        else:
            headers.append((b"authorization", f"Bearer {API_KEY}".encode()))
        await self.app({**scope, "headers": headers}, replay(body, receive), send)


def fuzzed_app() -> ASGIApp:
    settings_ = Settings(
        max_batch_items=20,
        max_text_chars=500,
        max_body_bytes=200_000,
        api_keys=[ApiKey("fuzz", hash_key(API_KEY), 1_000_000)],
        meta_app_secret=META_SECRET,
        meta_verify_token="verify-token",
        x_consumer_secret=X_SECRET,
        sms_auth_token=SMS_TOKEN,
        email_webhook_token=EMAIL_TOKEN,
    )
    deps = Deps(publisher=EncodingPublisher(), seen=MemorySeenStore(), checks={"publisher": ready})
    return Signing(create_app(settings_, deps))


async def ready() -> bool:
    # A fake that is always ready: a 503 from /readyz means "not ready", which is no crash to look for.
    return True


schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app())


@schema.parametrize()
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case):
    with captured_logs() as logs:
        response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    assert errors_in(logs) == []
