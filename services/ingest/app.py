"""Ingest: the HTTP front door. Validates, deduplicates, normalises and publishes to Kafka.

A request is answered 2xx only after the broker acknowledged the record; when the broker is down
or slow the answer is 503 with Retry-After, so the channel retries and nothing accepted is lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Body, FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter, ValidationError

from ingest.api import (
    Accepted,
    ActivityAccepted,
    ActivityIn,
    BatchIn,
    BatchResult,
    ItemResult,
    MessageIn,
)
from ingest.channels import email, meta, sms, x
from ingest.config import Settings
from ingest.gate import Gate, Unavailable
from ingest.metrics import IngestMetrics, RequestMetricsMiddleware
from ingest.store import RedisSeenStore, SeenStore
from switchboard.bus import KafkaPublisher, Publisher
from switchboard.contract import CaseActivity, CaseActivityRecorded, derive_id
from switchboard.service import ReadinessCheck, open_infra, ops_router

NAME = "ingest"
log = logging.getLogger(__name__)
_ITEM = TypeAdapter(MessageIn)


@dataclass
class Deps:
    """Ingest's collaborators; tests pass their own."""

    publisher: Publisher
    seen: SeenStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)


def describe(exc: ValidationError) -> str:
    """Say in one line what is wrong with an item, field by field."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in exc.errors())


def create_app(settings: Settings | None = None, deps: Deps | None = None) -> FastAPI:
    """Build ingest's app; without `deps` its lifespan connects to Redis and the broker."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    holder: dict[str, Deps] = {}
    if deps is not None:
        holder["deps"] = deps

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if deps is not None:
            yield
            return
        async with open_infra(settings, NAME) as infra:
            holder["deps"] = Deps(
                publisher=KafkaPublisher(infra.producer),
                seen=RedisSeenStore(infra.redis, settings.redis.key_prefix, settings.dedupe_ttl_seconds),
                checks=infra.checks,
            )
            yield
        holder.clear()

    app = FastAPI(
        title="Switchboard ingest",
        version="0.1.0",
        description="The front door: channels and integrators post messages and case activity here.",
        lifespan=lifespan,
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.include_router(ops_router(registry, lambda: holder["deps"].checks if "deps" in holder else {}))

    def current() -> Deps:
        if "deps" not in holder:
            raise HTTPException(503, "ingest is starting", headers={"Retry-After": "1"})
        return holder["deps"]

    def unavailable() -> HTTPException:
        return HTTPException(
            503,
            "the broker did not acknowledge the message; retry later",
            headers={"Retry-After": str(settings.retry_after_seconds)},
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.rejected.labels("invalid").inc()
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    def check_text(item: MessageIn) -> None:
        if len(item.text) > settings.max_text_chars:
            metrics.rejected.labels("text_too_long").inc()
            raise HTTPException(
                422, f"text is {len(item.text)} characters; the limit is {settings.max_text_chars}"
            )

    def gate() -> Gate:
        d = current()
        return Gate(d.publisher, d.seen, metrics, d.clock, settings.publish_timeout_seconds)

    app.include_router(meta.router(gate, settings))
    app.include_router(x.router(gate, settings))
    app.include_router(email.router(gate, settings))
    app.include_router(sms.router(gate, settings))

    @app.post(
        "/v1/messages",
        status_code=202,
        response_model=Accepted,
        summary="Post one inbound message",
        responses={
            200: {"model": Accepted, "description": "Already received: the original message id."},
            422: {"description": "Invalid message, with the reason."},
            503: {"description": "The broker did not acknowledge; retry after Retry-After seconds."},
        },
    )
    async def post_message(item: MessageIn) -> JSONResponse:
        check_text(item)
        try:
            (outcome,) = await gate().accept([item])
        except Unavailable:
            raise unavailable() from None
        event, status = outcome.event, outcome.status
        if status == "retry":
            raise HTTPException(
                503, "this message is being stored by another request; retry", headers={"Retry-After": "1"}
            )
        body = Accepted(message_id=event.data.message_id, conversation_id=event.partitionkey, status=status)
        return JSONResponse(body.model_dump(), status_code=202 if status == "accepted" else 200)

    @app.post(
        "/v1/messages/batch",
        response_model=BatchResult,
        summary="Post up to `INGEST_MAX_BATCH_ITEMS` messages; one result per item",
        responses={413: {"description": "Too many items."}, 503: {"description": "Retry later."}},
    )
    async def post_batch(batch: BatchIn) -> BatchResult:
        the_gate = gate()
        if len(batch.messages) > settings.max_batch_items:
            metrics.rejected.labels("batch_too_large").inc()
            raise HTTPException(
                413, f"{len(batch.messages)} items; a batch holds at most {settings.max_batch_items}"
            )
        results: list[ItemResult] = []
        valid: list[tuple[int, MessageIn]] = []
        for index, raw in enumerate(batch.messages):
            try:
                item = _ITEM.validate_python(raw)
                if len(item.text) > settings.max_text_chars:
                    raise ValueError(f"text longer than {settings.max_text_chars} characters")
            except ValidationError as exc:
                metrics.rejected.labels("invalid").inc()
                reason = describe(exc)
                results.append(ItemResult(index=index, status="invalid", error=reason[:500]))
                continue
            except ValueError as exc:
                metrics.rejected.labels("text_too_long").inc()
                results.append(ItemResult(index=index, status="invalid", error=str(exc)))
                continue
            valid.append((index, item))
        try:
            outcomes = await the_gate.accept([item for _, item in valid])
        except Unavailable:
            raise unavailable() from None
        for (index, _), outcome in zip(valid, outcomes, strict=True):
            results.append(
                ItemResult(index=index, status=outcome.status, message_id=outcome.event.data.message_id)
            )
        results.sort(key=lambda r: r.index)
        tally = {
            s: sum(r.status == s for r in results) for s in ("accepted", "duplicate", "invalid", "retry")
        }
        return BatchResult(
            accepted=tally["accepted"],
            duplicates=tally["duplicate"],
            invalid=tally["invalid"],
            retry=tally["retry"],
            results=results,
        )

    @app.post(
        "/v1/cases/{case_id}/activity",
        status_code=202,
        response_model=ActivityAccepted,
        summary="Record what the contact centre did on a case",
        responses={422: {"description": "Invalid activity."}, 503: {"description": "Retry later."}},
    )
    async def post_activity(
        case_id: Annotated[str, Path(min_length=1, max_length=128)], activity: Annotated[ActivityIn, Body()]
    ) -> ActivityAccepted:
        the_gate = gate()
        if activity.type == "reassigned" and activity.to_queue is None:
            metrics.rejected.labels("invalid").inc()
            raise HTTPException(422, "a reassigned activity needs to_queue")
        activity_id = (
            derive_id(f"{case_id}:{activity.activity_id}", "activity")
            if activity.activity_id
            else str(uuid.uuid4())
        )
        event = CaseActivityRecorded(
            id=activity_id,
            source="switchboard/ingest",
            subject=case_id,
            partitionkey=case_id,
            data=CaseActivity(
                activity_id=activity_id,
                case_id=case_id,
                type=activity.type,
                at=activity.at,
                agent=activity.agent,
                note=activity.note,
                to_queue=activity.to_queue,
            ),
        )
        try:
            await the_gate.publish([event])
        except Unavailable:
            raise unavailable() from None
        metrics.activities.labels(activity.type).inc()
        return ActivityAccepted(activity_id=activity_id, case_id=case_id)

    return app
