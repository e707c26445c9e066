"""Property-based fuzz of the router's, the SLA service's and the classifier's HTTP APIs (schemathesis).

Each app is built with `create_app` and runs its real lifespan against the session's broker and the real
Redis (consumer loop, rules or policy watch, SLA ticker, queue gauges), as in production; every operation
of its OpenAPI document is fuzzed: no answer may be a 5xx, and no log record of the apps may be an error
or carry a traceback, during the requests or in the background between them. A last test sends hostile
text through the router and checks it comes out JSON-escaped in the case API and the hand-off body.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import schemathesis
from fastapi.responses import JSONResponse
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error

from classifier.app import create_app as create_classifier
from classifier.config import Settings as ClassifierSettings
from router import handlers as router_handlers
from router.app import bundled_rules
from router.app import create_app as create_router
from router.config import Settings as RouterSettings
from router.delivery import HandoffConfig, HandoffWorker
from router.metrics import RouterMetrics
from router.outbox import RedisOutbox
from router.rules import parse_rules
from router.store import RedisCaseStore
from sla.app import create_app as create_sla
from sla.config import Settings as SlaSettings
from switchboard.config import KafkaSettings, RedisSettings
from switchboard.contract import Author, Message, MessageClassified, Queue
from switchboard.testing import captured_logs, errors_in, message_classified, support_classification
from switchboard.topics import ensure_topics

pytestmark = [
    pytest.mark.integration,
    # Schemathesis's strategies draw from `random`; its own pytest plugin silences the same notice.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]

# Per operation and generation mode (valid, invalid requests): a few hundred requests per app.
FUZZ = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
# The loggers of Switchboard's code and of what serves it; the Kafka client's own are its business.
APP_LOGGERS = ("router", "sla", "classifier", "switchboard", "fastapi", "starlette", "uvicorn", "asyncio")
INJECTION = '"><img src=x onerror=alert(1)><script>alert(2)</script>=HYPERLINK("http://evil.example")\u0000'


@pytest.fixture(scope="module")
def app_logs() -> Iterator[list[logging.LogRecord]]:
    """Every log record of the module's apps, background tasks included."""
    with captured_logs() as records:
        yield records


def app_errors(records: list[logging.LogRecord]) -> list[str]:
    return errors_in([r for r in records if r.name.split(".")[0] in APP_LOGGERS])


@pytest.fixture(scope="module")
async def kafka(kafka_bootstrap: str) -> KafkaSettings:
    settings_ = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    await ensure_topics(settings_)
    return settings_


def ready(schema: BaseSchema) -> BaseSchema:
    """Wait until the app's consumer has polled: /readyz answers 503 until then, as it should."""
    readyz = schema["/readyz"]["GET"]
    deadline = time.monotonic() + 30
    while readyz.Case().call().status_code != 200:
        assert time.monotonic() < deadline, "the app did not get ready"
        time.sleep(0.2)
    return schema


def redis_settings(redis_url: str, key_prefix: str) -> RedisSettings:
    return RedisSettings(url=redis_url, key_prefix=key_prefix)


@pytest.fixture
def router_schema(kafka: KafkaSettings, redis_url: str, key_prefix: str, redis: Redis, app_logs):
    app = create_router(RouterSettings(kafka=kafka, redis=redis_settings(redis_url, key_prefix)))
    return ready(schemathesis.openapi.from_asgi("/openapi.json", app))


@pytest.fixture
def sla_schema(kafka: KafkaSettings, redis_url: str, key_prefix: str, redis: Redis, app_logs):
    app = create_sla(SlaSettings(kafka=kafka, redis=redis_settings(redis_url, key_prefix)))
    return ready(schemathesis.openapi.from_asgi("/openapi.json", app))


@pytest.fixture
def classifier_schema(kafka: KafkaSettings, redis_url: str, key_prefix: str, redis: Redis, app_logs):
    # The lexicon: the learned model would be trained first, which is not what this test is about.
    settings_ = ClassifierSettings(kafka=kafka, redis=redis_settings(redis_url, key_prefix), model="lexicon")
    app = create_classifier(settings_)
    return ready(schemathesis.openapi.from_asgi("/openapi.json", app))


def fuzz(schema: BaseSchema, app_logs: list[logging.LogRecord]) -> None:
    """Fuzz every operation of the schema, with valid and invalid requests, against the running app.

    One test per app, looping over its operations, so the app's lifespan (its consumer takes seconds to
    join the broker) starts once for all of them rather than once per operation.
    """
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ
            @given(case=operation.as_strategy(mode))
            def no_server_error(case: Case) -> None:
                response = case.call()
                case.validate_response(response, checks=[not_a_server_error])
                assert app_errors(app_logs) == []

            try:
                no_server_error()
            except Unsatisfiable:
                # An operation without parameters or body has no invalid request to make.
                assert mode is GenerationMode.NEGATIVE, operation.label


def test_no_generated_request_to_the_router_gets_a_server_error(router_schema, app_logs):
    fuzz(router_schema, app_logs)


def test_no_generated_request_to_the_sla_service_gets_a_server_error(sla_schema, app_logs):
    fuzz(sla_schema, app_logs)


def test_no_generated_request_to_the_classifier_gets_a_server_error(classifier_schema, app_logs):
    fuzz(classifier_schema, app_logs)


def classified(text: str) -> MessageClassified:
    at = datetime.now(UTC)
    message = Message(
        message_id=f"m-{uuid.uuid4().hex[:8]}",
        channel="chat",
        external_id="hostile-1",
        conversation_id=INJECTION,
        author=Author(id=INJECTION, handle=INJECTION, name=INJECTION),
        text=text,
        created_at=at,
        received_at=at,
        visibility="private",
        metadata={"page": INJECTION},
    )
    classification = support_classification(
        intent="complaint",
        is_complaint=True,
        sentiment="negative",
        sentiment_score=-0.5,
        priority="P2",
        reply_privately=True,
        confidence=0.95,
    )
    return message_classified(message, classification)


async def test_hostile_text_leaves_the_router_json_escaped_in_the_case_api_and_the_hand_off_body(
    redis: Redis, key_prefix: str
):
    settings_ = RouterSettings(
        handoff_urls={Queue.CUSTOMER_SERVICE: "https://cc.example/hooks"}, handoff_secret="s3cret"
    )
    outbox = RedisOutbox(redis, key_prefix, 3600)

    async def dead_letter(*_: object) -> None:
        raise AssertionError("nothing is delivered in this test")

    worker = HandoffWorker(
        outbox, HandoffConfig.from_settings(settings_), RouterMetrics(CollectorRegistry()), dead_letter
    )
    rules = parse_rules(bundled_rules(), "bundled routing rules")
    cases = RedisCaseStore(redis, key_prefix)
    deps = router_handlers.Deps(cases=cases, rules=lambda: rules, window_seconds=3600, handoff=worker)
    table = router_handlers.handler_table(deps)
    with captured_logs() as logs:
        (routed,) = (
            await table["messages.classified"]["switchboard.message.classified"].handle(
                [classified(INJECTION)]
            )
        )[0]
        (delivery,) = await outbox.claim(Queue.CUSTOMER_SERVICE, time.time(), 10, 60, "test")
        case = await cases.get(routed.data.case_id)
    # The hand-off body is the record as published: JSON, the quote escaped, NUL as \u0000.
    assert b'\\"><img' in delivery.body and b"\x00" not in delivery.body
    assert json.loads(delivery.body)["data"]["text"] == INJECTION
    assert json.loads(delivery.body)["data"]["author"]["name"] == INJECTION
    # GET /v1/cases/{id} answers the stored case through FastAPI's JSON response.
    assert case is not None
    shown = JSONResponse(case).body
    assert json.loads(shown)["conversation_id"] == INJECTION and b'\\"><img' in shown
    assert errors_in(logs) == []
    assert all("alert(" not in record.getMessage() for record in logs)
