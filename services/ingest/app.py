"""Ingest: the HTTP front door. Validates, deduplicates, normalises and publishes to Kafka.

A request is answered 2xx only after the broker acknowledged the record; when the broker is down
or slow the answer is 503 with Retry-After, so the channel retries and nothing accepted is lost.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from ingest import redact
from ingest.auth import ApiKeyMiddleware
from ingest.bodylimit import BodyLimitMiddleware
from ingest.channels import email, meta, sms, x
from ingest.config import Settings
from ingest.gate import Gate
from ingest.hotroute import HotRoute
from ingest.keys import KeyRing
from ingest.metrics import IngestMetrics, RequestMetricsMiddleware
from ingest.openapi import Documentation
from ingest.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from ingest.routes import router
from ingest.store import RedisSeenStore, SeenStore
from switchboard.bus import KafkaPublisher, Publisher
from switchboard.service import ReadinessCheck, open_infra, ops_router
from switchboard.tracing import Spans, TraceMiddleware

NAME = "ingest"
log = logging.getLogger(__name__)


@dataclass
class Deps:
    """Ingest's collaborators; tests pass their own."""

    publisher: Publisher
    seen: SeenStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    limiter: RateLimiter = field(default_factory=MemoryRateLimiter)
    spans: Spans | None = None


def create_app(settings: Settings | None = None, deps: Deps | None = None) -> FastAPI:
    """Build ingest's app; without `deps` its lifespan connects to Redis and the broker."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    keys = KeyRing(settings.api_keys)
    holder: dict[str, Deps] = {}
    # One gate for the app's life, shared by every request: concurrent requests then share its round
    # trips to Redis and the broker (see ingest.gate).
    gates: dict[str, Gate] = {}

    def connect(d: Deps) -> None:
        holder["deps"] = d
        gates["gate"] = Gate(
            d.publisher, d.seen, metrics, d.clock, settings.publish_timeout_seconds, spans=d.spans
        )

    if deps is not None:
        connect(deps)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Handlers exist by now (`switchboard serve` configures logging before building the app).
        redact.install()
        if not keys:
            log.warning(
                "INGEST_API_KEYS is empty: /v1/messages and /v1/cases/*/activity accept requests "
                "without an API key"
            )
        if deps is not None:
            yield
            return
        async with open_infra(settings, NAME) as infra:
            connect(
                Deps(
                    publisher=KafkaPublisher(infra.producer),
                    seen=RedisSeenStore(
                        infra.redis,
                        settings.redis.key_prefix,
                        settings.dedupe_ttl_seconds,
                        settings.pending_claim_seconds,
                    ),
                    checks=infra.checks,
                    limiter=RedisRateLimiter(infra.redis, settings.redis.key_prefix),
                    spans=infra.spans,
                )
            )
            yield
        holder.clear()
        gates.clear()

    app = FastAPI(
        title="Switchboard ingest",
        version="0.1.0",
        description=(
            "The front door: channels post their webhooks here, integrators post messages and case "
            "activity. A 2xx means the broker stored it; a 503 with Retry-After means retry. When "
            "INGEST_API_KEYS is set, `/v1/messages*` and `/v1/cases/*` need an API key."
        ),
        lifespan=lifespan,
    )
    docs = Documentation()

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.rejected.labels("invalid").inc()
        errors = []
        for e in exc.errors():
            message = e["msg"]
            if e["type"] == "json_invalid" and e.get("ctx", {}).get("error"):
                message = f"{message}: {e['ctx']['error']}"
            errors.append({"loc": list(e["loc"]), "msg": message, "type": e["type"]})
        return JSONResponse({"detail": errors}, status_code=422)

    def gate() -> Gate:
        if "gate" not in gates:
            raise HTTPException(503, "ingest is starting", headers={"Retry-After": "1"})
        return gates["gate"]

    # Routes are matched in the order they were included: the busiest first.
    messages = docs.complete(router(gate, settings, metrics))
    app.include_router(messages)
    for channel in (meta, x, email, sms):
        app.include_router(docs.complete(channel.router(gate, settings)))
    app.include_router(
        docs.complete(ops_router(registry, lambda: holder["deps"].checks if "deps" in holder else {}))
    )
    docs.install(app)
    # The last added runs first: take the trace context, count every answer, check the key before reading
    # any body, then the body's size; the busiest route is then answered past FastAPI's router.
    post_message = next(r for r in messages.routes if isinstance(r, APIRoute) and r.path == "/v1/messages")
    app.add_middleware(HotRoute, fastapi_app=app, route=post_message, method="POST")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, metrics=metrics)
    app.add_middleware(
        ApiKeyMiddleware,
        keys=keys,
        default_rate=settings.api_key_rate_per_minute,
        limiter=lambda: holder["deps"].limiter if "deps" in holder else None,
        metrics=metrics,
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    # Outermost: every log line of a request, the key check's included, carries the request's trace.
    app.add_middleware(TraceMiddleware, spans=lambda: holder["deps"].spans if "deps" in holder else None)
    return app
