"""Ingest's OpenAPI document describes every endpoint: what it does, examples, and how it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.app import create_app
from ingest.channels import meta, x
from ingest.config import Settings

GENERIC = ["/v1/messages", "/v1/messages/batch", "/v1/cases/{case_id}/activity"]
WEBHOOKS = ["/v1/webhooks/meta", "/v1/webhooks/x", "/v1/webhooks/email", "/v1/webhooks/sms"]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_every_endpoint_is_in_the_document(document):
    posted = {path for method, path, _ in operations(document) if method == "post"}
    assert posted == set(GENERIC) | set(WEBHOOKS)
    assert {"/healthz", "/readyz", "/metrics"} <= set(document["paths"])


def test_every_operation_has_a_summary_and_a_description(document):
    for method, path, op in operations(document):
        assert op.get("summary"), f"{method} {path} has no summary"
        assert op.get("description"), f"{method} {path} has no description"


def test_every_request_body_has_a_schema_and_examples(document):
    for method, path, op in operations(document):
        if method != "post":
            continue
        content = op["requestBody"]["content"]
        for media, spec in content.items():
            assert spec.get("schema"), f"{method} {path} {media} has no schema"
            assert spec.get("examples"), f"{method} {path} {media} has no examples"


@pytest.mark.parametrize("path", GENERIC)
def test_the_generic_and_activity_apis_document_how_they_refuse(document, path):
    responses = document["paths"][path]["post"]["responses"]
    assert {"400", "401", "413", "422", "429", "503"} <= set(responses)
    assert "Retry-After" in responses["429"]["headers"]
    assert "Retry-After" in responses["503"]["headers"]
    assert responses["401"]["content"]["application/json"]["example"]["detail"]


@pytest.mark.parametrize("path", WEBHOOKS)
def test_the_webhooks_document_how_they_refuse(document, path):
    responses = document["paths"][path]["post"]["responses"]
    assert {"400", "401", "403", "413", "422", "503"} <= set(responses)


def test_the_generic_and_activity_apis_take_a_bearer_key_or_x_api_key(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {**schemes["bearerKey"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    for method, path, op in operations(document):
        guarded = path in GENERIC
        assert bool(op.get("security")) is guarded, f"{method} {path}"


@pytest.mark.parametrize(("path", "model"), [(meta.PATH, meta.Payload), (x.PATH, x.Payload)])
def test_webhooks_that_read_raw_bodies_declare_the_payload_shape(document, path, model):
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    schema = resolve(document, body["schema"])
    assert set(schema["required"]) == {n for n, f in model.model_fields.items() if f.is_required()}
    for example in body["examples"].values():
        model.model_validate(example["value"])


def test_every_reference_in_the_document_resolves(document):
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"], ref


def test_the_document_is_the_same_when_asked_twice():
    app = create_app(Settings())
    assert app.openapi() == app.openapi()
    assert app.openapi()["components"]["securitySchemes"]
