"""A request body that fails validation gets a 422 that names the field, never a 500, on the services
whose APIs FastAPI validates: the router's, the classifier's and the SLA service's (ingest has its own).

A JSON string may carry a lone surrogate (`"\\ud800"`): FastAPI's own answer echoed the input back, which no
UTF-8 response can hold, and the dry-run endpoints answered 500.
"""

from __future__ import annotations

import httpx
import pytest

from classifier.app import create_app as create_classifier
from classifier.config import Settings as ClassifierSettings
from router.app import create_app as create_router
from router.config import Settings as RouterSettings
from sla.app import create_app as create_sla
from sla.config import Settings as SlaSettings

CLASSIFICATION = (
    '{"category": "support", "intent": "billing", "is_complaint": true, "language": "fr", "sentiment": '
    '"negative", "sentiment_score": -0.6, "priority": "P2", "reply_privately": true, "confidence": 0.9, '
    '"model_version": "sample"}'
)
CASES = [
    (
        "router",
        "/v1/rules/test",
        f'{{"channel": "x", "text": "\\ud800", "classification": {CLASSIFICATION}}}',
    ),
    (
        "router",
        "/v1/rules/test",
        f'{{"channel": "x", "text": "hi", "account": "\\udfff", "classification": {CLASSIFICATION}}}',
    ),
    ("classifier", "/v1/classify", '{"messages": [{"text": "mon colis \\ud83d"}]}'),
    ("sla", "/v1/policies/reload", '{"x": "\\ud800"}'),
]


def app_of(service: str):
    if service == "router":
        return create_router(RouterSettings())
    if service == "classifier":
        return create_classifier(ClassifierSettings(model="lexicon"))
    return create_sla(SlaSettings())


@pytest.mark.parametrize(("service", "path", "body"), CASES)
async def test_a_lone_surrogate_in_a_body_is_a_422_that_names_the_field(service: str, path: str, body: str):
    transport = httpx.ASGITransport(app=app_of(service), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        answer = await client.post(path, content=body.encode(), headers={"content-type": "application/json"})
    if service == "sla":
        # A reload takes no body: whatever was sent, never a server error.
        assert answer.status_code < 500
        return
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail and all(e["type"] == "string_unicode" and e["loc"][0] == "body" for e in detail)
