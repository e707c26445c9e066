"""Span export through the OpenTelemetry SDK (the `otel` extra), into an in-memory exporter.

Skipped where the SDK is not installed: export is optional, and off unless an OTLP endpoint is set.
"""

from __future__ import annotations

import sys
import time

import httpx
import pytest

from ingest.app import Deps, create_app
from ingest.config import Settings
from ingest.store import MemorySeenStore
from switchboard.config import TracingSettings
from switchboard.otel import OtelSpans, spans_from_settings, traces_url
from switchboard.tracing import TraceContext

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_no_endpoint_means_no_export():
    assert spans_from_settings(TracingSettings(exporter_otlp_endpoint=None), "ingest") is None


def test_an_endpoint_without_the_packages_warns_and_exports_nothing(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    settings = TracingSettings(exporter_otlp_endpoint="http://collector:4318")
    assert spans_from_settings(settings, "ingest") is None
    assert "not installed" in caplog.text


def test_the_traces_url_is_the_otlp_http_path_under_the_endpoint():
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"


@pytest.fixture
def exported():
    pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    spans = OtelSpans(SimpleSpanProcessor(exporter), "ingest")
    yield spans, exporter
    spans.shutdown()


def test_a_recorded_span_is_exported_with_switchboards_ids_and_parent(exported):
    from opentelemetry.trace import SpanKind, StatusCode

    spans, exporter = exported
    context = TraceContext(TRACE_ID, CALLER_SPAN).child()
    started = time.time_ns()
    spans.record("process cases.review", context, "consumer", started, attributes={"k": "v"}, error="boom")
    (span,) = exporter.get_finished_spans()
    assert span.name == "process cases.review"
    assert span.kind == SpanKind.CONSUMER
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.context.span_id:016x}" == context.span_id
    assert f"{span.parent.span_id:016x}" == CALLER_SPAN and span.parent.is_remote
    assert span.start_time == started and span.end_time >= started
    assert dict(span.attributes) == {"k": "v"}
    assert span.status.status_code == StatusCode.ERROR
    assert span.resource.attributes["service.name"] == "ingest"
    assert span.resource.attributes["service.namespace"] == "switchboard"


def test_an_unsampled_trace_is_not_exported(exported):
    spans, exporter = exported
    spans.record("x", TraceContext(TRACE_ID, CALLER_SPAN, flags=0), "internal", time.time_ns())
    assert exporter.get_finished_spans() == ()


def test_an_endpoint_with_the_packages_builds_an_otlp_exporter():
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    spans = spans_from_settings(TracingSettings(exporter_otlp_endpoint="http://127.0.0.1:9"), "sla")
    assert isinstance(spans, OtelSpans)
    spans.shutdown()


class Publisher:
    async def publish(self, events, traces=None) -> None:
        self.traces = traces


async def test_ingest_exports_the_request_span_and_one_span_per_message_under_it(exported):
    spans, exporter = exported
    app = create_app(Settings(), Deps(publisher=Publisher(), seen=MemorySeenStore(), spans=spans))
    body = {
        "messages": [
            {
                "channel": "chat",
                "external_id": f"otel-{n}",
                "author": {"id": "a"},
                "text": "hello",
                "created_at": "2026-11-22T09:15:00Z",
            }
            for n in range(2)
        ]
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        response = await client.post(
            "/v1/messages/batch", json=body, headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
        )
    assert response.status_code == 200
    finished = exporter.get_finished_spans()
    (request,) = [s for s in finished if s.name == "POST /v1/messages/batch"]
    sends = [s for s in finished if s.name == "send messages.received"]
    assert len(sends) == 2
    assert f"{request.parent.span_id:016x}" == CALLER_SPAN
    assert request.attributes["http.response.status_code"] == 200
    for send in sends:
        assert send.context.trace_id == request.context.trace_id == int(TRACE_ID, 16)
        assert send.parent.span_id == request.context.span_id
