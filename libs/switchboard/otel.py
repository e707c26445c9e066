"""Optional export of Switchboard's spans to an OpenTelemetry collector over OTLP/HTTP.

Off unless `SWITCHBOARD_OTEL_EXPORTER_OTLP_ENDPOINT` (or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`) is
set and the `otel` extra is installed (`pip install 'switchboard[otel]'`). Span and trace ids are
Switchboard's own (`switchboard.tracing`), chosen before any export is known; the SDK only carries
finished spans to the exporter, which batches them on its own thread.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from switchboard import __version__
from switchboard.config import TracingSettings
from switchboard.tracing import SpanKind, TraceContext

log = logging.getLogger(__name__)


def traces_url(endpoint: str) -> str:
    """Return the OTLP/HTTP traces URL of a base endpoint, as OpenTelemetry's variable means it."""
    return endpoint.rstrip("/") + "/v1/traces"


class OtelSpans:
    """Hands finished spans to an OpenTelemetry span processor (a batching OTLP exporter in production)."""

    def __init__(self, processor: Any, service: str) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        self._processor = processor
        attributes = {"service.namespace": "switchboard"}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = service
        self._resource = Resource.create(attributes)
        self._scope = InstrumentationScope("switchboard", __version__)
        self._span = ReadableSpan
        self._context = SpanContext
        self._flags = TraceFlags
        self._status = Status
        self._error = StatusCode.ERROR
        self._kinds = {
            "server": SpanKind.SERVER,
            "consumer": SpanKind.CONSUMER,
            "producer": SpanKind.PRODUCER,
            "internal": SpanKind.INTERNAL,
        }

    def record(
        self,
        name: str,
        context: TraceContext,
        kind: SpanKind,
        start_ns: int,
        end_ns: int | None = None,
        attributes: Mapping[str, str | int] | None = None,
        error: str | None = None,
    ) -> None:
        """Export one finished span, unless its trace is not sampled."""
        if not context.sampled:
            return
        trace_id = int(context.trace_id, 16)
        flags = self._flags(context.flags)
        parent = (
            self._context(trace_id, int(context.parent_id, 16), is_remote=True, trace_flags=flags)
            if context.parent_id
            else None
        )
        # The SDK's Tracer would draw its own span ids; the ids here are already in record headers, so the
        # finished span is built directly, as the SDK builds it when a span ends.
        span = self._span(
            name,
            context=self._context(trace_id, int(context.span_id, 16), is_remote=False, trace_flags=flags),
            parent=parent,
            resource=self._resource,
            attributes=dict(attributes or {}),
            kind=self._kinds[kind],
            status=self._status(self._error, error) if error else self._status(),
            start_time=start_ns,
            end_time=end_ns if end_ns is not None else time.time_ns(),
            instrumentation_scope=self._scope,
        )
        self._processor.on_end(span)

    def shutdown(self) -> None:
        """Export what is still buffered, then stop the exporter."""
        self._processor.shutdown()


def spans_from_settings(settings: TracingSettings, service: str) -> OtelSpans | None:
    """Build the span exporter when an OTLP endpoint is set and OpenTelemetry is installed, else None."""
    endpoint = settings.exporter_otlp_endpoint
    if not endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "an OTLP endpoint is set but the OpenTelemetry packages are not installed "
            "(pip install 'switchboard[otel]'): spans are not exported; trace context still propagates"
        )
        return None
    log.info("exporting spans to %s", traces_url(endpoint))
    return OtelSpans(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint))), service)
