"""The corpus of hostile inputs (tests/fixtures/hostile): each case gets the answer its README row promises.

Each case runs against ingest's real app with the real Redis as its claim store and a publisher that
encodes every event as the Kafka publisher does and reads it back through the contract's decoder, so an
input ingest accepts is one every consumer can read. Log records are captured: no case may log an error,
a traceback, or a text it was told must never be logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from ingest.app import Deps
from ingest.app import create_app as create_ingest
from ingest.channels.sms import sms_signature
from ingest.config import Settings as IngestSettings
from ingest.keys import ApiKey, hash_key
from ingest.store import RedisSeenStore
from router.app import create_app as create_router
from router.config import Settings as RouterSettings
from switchboard.contract import CloudEvent, decode, encode

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hostile"
CASES = sorted(FIXTURES.glob("*.json"))
BASE_URL = "http://ingest"
META_SECRET, X_SECRET, SMS_TOKEN, EMAIL_TOKEN = "meta-secret", "x-secret", "sms-token", "email-token"
VERIFY_TOKEN = "verify-token"
API_KEY = "sbk_hostile-corpus"
WRONG = "not-the-secret"
# The test's own HTTP client logs each request line; what the apps log is what is checked.
CLIENT_LOGGERS = ("httpx", "httpcore")


class DecodingPublisher:
    """Encodes each event as the Kafka publisher does and reads it back as a consumer would."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.events: list[CloudEvent] = []

    async def publish(self, events: Sequence[CloudEvent], traces: Sequence[object] | None = None) -> None:
        for event in events:
            raw = encode(event)
            # What ingest accepts, every consumer must be able to read: else it would be dead-lettered.
            assert decode(raw) == event
            self.records.append(raw)
            self.events.append(event)


def ingest_settings() -> IngestSettings:
    """The documented defaults (body, batch and text limits), with every channel and an API key configured."""
    return IngestSettings(
        api_keys=[ApiKey("corpus", hash_key(API_KEY), 1_000_000)],
        meta_app_secret=META_SECRET,
        meta_verify_token=VERIFY_TOKEN,
        x_consumer_secret=X_SECRET,
        sms_auth_token=SMS_TOKEN,
        email_webhook_token=EMAIL_TOKEN,
    )


def body_of(step: dict[str, Any]) -> bytes:
    """The raw body a step sends: JSON, text, base64 bytes, a form, or repeated pieces (big or deep)."""
    if "json" in step:
        # ASCII escapes, so a lone surrogate in the fixture travels as `\ud800`, as a client would send it.
        return json.dumps(step["json"]).encode()
    if "text" in step:
        return step["text"].encode()
    if "base64" in step:
        return base64.b64decode(step["base64"])
    if "form" in step:
        return urlencode([(name, value) for name, value in step["form"]]).encode()
    if "repeat" in step:
        return b"".join(piece.encode() * count for piece, count in step["repeat"])
    return b""


def auth_headers(step: dict[str, Any], path: str, body: bytes) -> dict[str, str]:
    """Sign a webhook as its channel does, or give the API key; `auth` may ask for none or a wrong one."""
    mode = step.get("auth", "valid")
    if mode == "none":
        return {}
    wrong = mode == "wrong"
    if path.startswith("/v1/webhooks/meta"):
        digest = hmac.new((WRONG if wrong else META_SECRET).encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}"}
    if path.startswith("/v1/webhooks/x"):
        digest = hmac.new((WRONG if wrong else X_SECRET).encode(), body, hashlib.sha256).digest()
        return {"x-twitter-webhooks-signature": "sha256=" + base64.b64encode(digest).decode()}
    if path.startswith("/v1/webhooks/sms"):
        try:
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True)
        except UnicodeDecodeError:
            pairs = []
        token = WRONG if wrong else SMS_TOKEN
        return {"X-Twilio-Signature": sms_signature(token, BASE_URL + path, pairs)}
    if path.startswith("/v1/webhooks/email"):
        return {"Authorization": f"Bearer {WRONG if wrong else EMAIL_TOKEN}"}
    if path.startswith("/v1/"):
        return {"Authorization": f"Bearer {WRONG if wrong else API_KEY}"}
    return {}


def message_ids(answer: Any) -> list[str]:
    """The message ids an answer names, in order (one message, a webhook delivery or a batch)."""
    if not isinstance(answer, dict):
        return []
    if "message_id" in answer:
        return [answer["message_id"]]
    if "message_ids" in answer:
        return list(answer["message_ids"])
    return [r["message_id"] for r in answer.get("results", []) if r.get("message_id")]


def is_subset(expected: Any, actual: Any) -> bool:
    """Whether every key and item of `expected` is in `actual` (lists compared item by item)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and is_subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(is_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return expected == actual


def readme_rows() -> dict[str, tuple[str, str]]:
    """The README table: case name -> (endpoint, answer)."""
    rows = {}
    for line in (FIXTURES / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*\[([\w-]+)\]\(\1\.json\)\s*\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|", line)
        if match:
            rows[match[1]] = (match[2], match[3])
    return rows


def documented_answer(case: dict[str, Any]) -> str:
    """How the README states a case's answer: its statuses in order, e.g. `200 then 200`."""
    return " then ".join(str(step["expect"]["status"]) for step in case["steps"])


def endpoint(step: dict[str, Any]) -> str:
    """`METHOD path` of a step, the path without its query."""
    return f"{step.get('method', 'POST')} {step['path'].split('?')[0]}"


def test_the_readme_lists_every_case_with_its_endpoint_and_answer():
    rows = readme_rows()
    assert sorted(rows) == sorted(path.stem for path in CASES)
    for path in CASES:
        case = json.loads(path.read_text(encoding="utf-8"))
        first = case["steps"][0]
        assert rows[path.stem][0] == endpoint(first), path.stem
        assert rows[path.stem][1].startswith(documented_answer(case)), path.stem


@pytest.fixture(scope="module")
async def corpus_redis(redis_url: str) -> AsyncIterator[tuple[Redis, str]]:
    """One client and key prefix for the corpus; its keys are deleted in one scan at the end."""
    client = Redis.from_url(redis_url)
    prefix = f"test:hostile:{uuid.uuid4().hex[:10]}:"
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=10_000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def ingest(corpus_redis: tuple[Redis, str]) -> AsyncIterator[tuple[FastAPI, DecodingPublisher]]:
    client, prefix = corpus_redis
    publisher = DecodingPublisher()
    # A prefix per case: a case's duplicates are its own.
    seen = RedisSeenStore(client, f"{prefix}{uuid.uuid4().hex[:8]}:", 3600)
    app = create_ingest(ingest_settings(), Deps(publisher=publisher, seen=seen))
    async with app.router.lifespan_context(app):
        yield app, publisher


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def check_logs(records: list[logging.LogRecord], never_logged: list[str]) -> None:
    """No error, no traceback, and none of the texts that must never reach a log."""
    for record in records:
        if record.name.startswith(CLIENT_LOGGERS):
            continue
        assert record.levelno < logging.ERROR, record.getMessage()
        assert record.exc_info is None, record.getMessage()
        shown = record.getMessage()
        for text in never_logged:
            assert text not in shown, f"{text!r} was logged by {record.name}"


async def send(client: httpx.AsyncClient, step: dict[str, Any]) -> httpx.Response:
    path = step["path"]
    method = step.get("method", "POST")
    body = body_of(step)
    headers = {**auth_headers(step, path, body), **step.get("headers", {})}
    if method == "GET":
        return await client.get(path, headers=headers)
    if step.get("stream"):
        # Chunked, without a Content-Length: the limit must hold while the body is read.
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

        return await client.request(method, path, content=chunks(), headers=headers)
    return await client.request(method, path, content=body, headers=headers)


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
async def test_each_hostile_input_gets_its_documented_answer(path: Path, ingest, logs):
    case = json.loads(path.read_text(encoding="utf-8"))
    app, publisher = ingest
    if case.get("service") == "router":
        app = create_router(RouterSettings())
    answers: list[httpx.Response] = []
    published: list[list[CloudEvent]] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=60) as client:
        for number, step in enumerate(case["steps"]):
            expect = step["expect"]
            published_before = len(publisher.events)
            started = time.perf_counter()
            response = await send(client, step)
            elapsed = time.perf_counter() - started
            answers.append(response)
            where = f"{path.stem} step {number}: {response.text[:300]}"
            assert response.status_code == expect["status"], where
            if "max_seconds" in expect:
                # A bound on pathological work (a recursion, a loop over millions of items), not a benchmark.
                assert elapsed < expect["max_seconds"], f"{where} took {elapsed:.1f}s"
            if "content_type" in expect:
                assert response.headers["content-type"].startswith(expect["content_type"]), where
            elif response.content:
                assert response.headers["content-type"].startswith("application/json"), where
                response.json()
            if "json" in expect:
                assert is_subset(expect["json"], response.json()), where
            for text in expect.get("contains", []):
                assert text in response.text, where
            for text in expect.get("lacks", []):
                assert text not in response.text, where
            if "same_ids_as_step" in expect:
                earlier = message_ids(answers[expect["same_ids_as_step"]].json())
                assert message_ids(response.json()) == earlier, where
            events = publisher.events[published_before:]
            records = publisher.records[published_before:]
            published.append(events)
            assert len(events) == expect.get("published", 0), where
            if "same_event_ids_as_step" in expect:
                earlier_ids = [e.id for e in published[expect["same_event_ids_as_step"]]]
                assert [e.id for e in events] == earlier_ids, where
            if "published_texts" in expect:
                assert [e.data.text for e in events] == expect["published_texts"], where
            for text in expect.get("published_lacks", []):
                assert all(text not in e.data.text for e in events), where
            if "published_metadata" in expect:
                assert all(is_subset(expect["published_metadata"], e.data.metadata) for e in events)
            for raw in expect.get("records_contain", []):
                assert all(raw.encode() in record for record in records), where
            for raw in expect.get("records_lack", []):
                assert all(raw.encode() not in record for record in records), where
    check_logs(logs.records, case.get("never_logged", []))
