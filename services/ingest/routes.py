"""The generic message API and the case activity API (both behind API keys when keys are configured)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ingest.answers import store_or_refuse, unavailable
from ingest.api import (
    ACTIVITY_EXAMPLE,
    Accepted,
    ActivityAccepted,
    ActivityIn,
    BatchIn,
    BatchResult,
    MessageIn,
    ahead_of,
)
from ingest.config import Settings
from ingest.gate import Gate, Unavailable
from ingest.metrics import IngestMetrics
from ingest.openapi import GUARDED, SECURITY, error
from switchboard.contract import CaseActivity, CaseActivityRecorded, derive_id, trusted

_ITEM = TypeAdapter(MessageIn)
M = TypeVar("M", bound=BaseModel)


def all_valid(max_items: int) -> TypeAdapter[Any]:
    """Return the validator of a batch every item of which is a valid message, and not too many of them.

    It stops at the first invalid item or past the limit: the items of a refused batch are then looked
    at one by one only after they are counted, so a body of a million empty items costs no more than
    its parsing.
    """

    class AllValid(BaseModel):
        model_config = ConfigDict(extra="forbid")

        messages: list[MessageIn] = Field(max_length=max_items, fail_fast=True)

    return TypeAdapter(AllValid)


ACTIVITY_EXAMPLES = {
    "responded": {"summary": "An agent answered", "value": ACTIVITY_EXAMPLE},
    "reassigned": {
        "summary": "Moved to another queue",
        "value": {
            "type": "reassigned",
            "at": "2026-11-22T09:45:00Z",
            "to_queue": "marketing",
            "activity_id": "crm-5531",
        },
    },
}
INVALID = error(
    "The body is not what the route takes: malformed JSON, a missing or invalid field, an unknown channel, "
    "a `created_at` that is not a date with its offset or is before 1970 or more than a day ahead, a text "
    "over INGEST_MAX_TEXT_CHARS.",
    "text is 20001 characters; the limit is 20000",
)
DUPLICATE = {
    "model": Accepted,
    "description": "Already received: the original message id, not published again.",
}


def read_json(body: bytes) -> Any:
    """Parse a body as FastAPI does (Python's json), or raise the 422 FastAPI would."""
    try:
        return json.loads(body)
    except RecursionError:
        # Python's parser recurses once per level: JSON nested deeper than the interpreter allows is
        # refused like any malformed body, not answered 500.
        where, reason = 0, "the JSON is nested too deeply"
    except ValueError as exc:
        where, reason = getattr(exc, "pos", 0), getattr(exc, "msg", str(exc))
    error = {"type": "json_invalid", "loc": ("body", where), "msg": "JSON decode error", "input": {}}
    raise RequestValidationError([{**error, "ctx": {"error": reason}}]) from None


def validate_python(data: Any, model: type[M]) -> M:
    """Validate parsed JSON as a body, or raise the 422 FastAPI would, field by field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def validate_body(body: bytes, model: type[M]) -> M:
    """Validate a raw JSON body: in one pass over the bytes when it is valid, else as FastAPI would.

    Reading the bytes with the model's own JSON validator skips Python's json and FastAPI's body
    handling, a good share of a small request's cost; an invalid body takes FastAPI's path, so the
    422 names the same fields in the same words as on every other route.
    """
    try:
        return model.model_validate_json(body)
    except ValidationError:
        return validate_python(read_json(body), model)


def describe(exc: ValidationError) -> str:
    """Say in one line what is wrong with an item, field by field."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in exc.errors())


def router(gate: Callable[[], Gate], settings: Settings, metrics: IngestMetrics) -> APIRouter:
    """Build `POST /v1/messages`, `POST /v1/messages/batch` and `POST /v1/cases/{case_id}/activity`."""
    api = APIRouter(tags=["messages"])
    guarded = {"openapi_extra": {"security": SECURITY}}
    batch_of_valid_items = all_valid(settings.max_batch_items)

    def too_many(count: int) -> HTTPException:
        metrics.rejected.labels("batch_too_large").inc()
        return HTTPException(413, f"{count} items; a batch holds at most {settings.max_batch_items}")

    def check_text(item: MessageIn) -> None:
        if len(item.text) > settings.max_text_chars:
            metrics.rejected.labels("text_too_long").inc()
            raise HTTPException(
                422, f"text is {len(item.text)} characters; the limit is {settings.max_text_chars}"
            )

    @api.post(
        "/v1/messages",
        status_code=202,
        response_model=Accepted,
        summary="Post one inbound message",
        description=(
            "For web chat, review sites and integrators. Answered 202 once the broker has stored the "
            "message; the same `channel` + `external_id` again is answered 200 with the original id."
        ),
        responses={200: DUPLICATE, **GUARDED, 422: INVALID},
        **guarded,
    )
    async def post_message(request: Request) -> JSONResponse:
        item = validate_body(await request.body(), MessageIn)
        check_text(item)
        (outcome,) = await store_or_refuse(gate(), [item], settings.retry_after_seconds, "message")
        event, status = outcome.event, outcome.status
        body = trusted(
            Accepted, message_id=event.data.message_id, conversation_id=event.partitionkey, status=status
        )
        # The JSON JSONResponse would write (compact, UTF-8), straight from the model.
        return Response(
            body.__pydantic_serializer__.to_json(body),
            status_code=202 if status == "accepted" else 200,
            media_type="application/json",
        )

    @api.post(
        "/v1/messages/batch",
        response_model=BatchResult,
        summary="Post up to INGEST_MAX_BATCH_ITEMS messages; one result per item",
        description=(
            "Each item is checked on its own: an invalid item is reported in its result and does not "
            "refuse the others. Answered once the broker has stored every valid item."
        ),
        responses={
            **GUARDED,
            413: error(
                "Too many items (INGEST_MAX_BATCH_ITEMS), or the body is larger than INGEST_MAX_BODY_BYTES.",
                "501 items; a batch holds at most 500",
            ),
            422: INVALID,
        },
        **guarded,
    )
    async def post_batch(request: Request) -> JSONResponse:
        the_gate = gate()
        body = await request.body()
        try:
            # A batch whose items are all valid is validated in one pass over the raw bytes.
            items = list(enumerate(batch_of_valid_items.validate_json(body).messages))
            invalid: list[dict[str, Any]] = []
        except ValidationError:
            items, invalid = validate_items(body)
        valid: list[tuple[int, MessageIn]] = []
        now = the_gate.clock()
        for index, item in items:
            ahead = ahead_of(item.created_at, now)
            if len(item.text) > settings.max_text_chars:
                metrics.rejected.labels("text_too_long").inc()
                error = f"text longer than {settings.max_text_chars} characters"
                invalid.append({"index": index, "status": "invalid", "error": error})
            elif ahead is not None:
                metrics.rejected.labels("invalid").inc()
                invalid.append({"index": index, "status": "invalid", "error": f"created_at: {ahead}"})
            else:
                valid.append((index, item))
        try:
            outcomes = await the_gate.accept([item for _, item in valid])
        except Unavailable as exc:
            raise unavailable(settings.retry_after_seconds, exc) from None
        results = invalid + [
            {"index": index, "status": outcome.status, "message_id": outcome.event.data.message_id}
            for (index, _), outcome in zip(valid, outcomes, strict=True)
        ]
        results.sort(key=lambda r: r["index"])
        tally = Counter(r["status"] for r in results)
        # Plain JSON of BatchResult's shape: for hundreds of items the model costs more than the work.
        return JSONResponse(
            {
                "accepted": tally["accepted"],
                "duplicates": tally["duplicate"],
                "invalid": tally["invalid"],
                "retry": tally["retry"],
                "results": results,
            }
        )

    def validate_items(body: bytes) -> tuple[list[tuple[int, MessageIn]], list[dict[str, Any]]]:
        """Validate a batch item by item, so one bad item is reported and does not refuse the others."""
        data = read_json(body)
        if isinstance(data, dict) and isinstance(data.get("messages"), list):
            # Counted before any item is validated: a refused batch costs its parsing and no more.
            if len(data["messages"]) > settings.max_batch_items:
                raise too_many(len(data["messages"]))
        batch = validate_python(data, BatchIn)
        items: list[tuple[int, MessageIn]] = []
        invalid: list[dict[str, Any]] = []
        for index, raw in enumerate(batch.messages):
            try:
                items.append((index, _ITEM.validate_python(raw)))
            except ValidationError as exc:
                metrics.rejected.labels("invalid").inc()
                invalid.append({"index": index, "status": "invalid", "error": describe(exc)[:500]})
        return items, invalid

    @api.post(
        "/v1/cases/{case_id}/activity",
        status_code=202,
        response_model=ActivityAccepted,
        tags=["cases"],
        summary="Record what the contact centre did on a case",
        description=(
            "What an agent did (responded, resolved, waiting_on_customer, reopened, reassigned); the SLA "
            "service stops or restarts the case's clocks on it. Repeating an `activity_id` publishes the "
            "same event id again, which consumers ignore."
        ),
        responses={
            **GUARDED,
            422: error("Invalid activity, with the reason.", "a reassigned activity needs to_queue"),
        },
        **guarded,
    )
    async def post_activity(
        case_id: Annotated[str, Path(min_length=1, max_length=128, examples=["case-9f2c"])],
        activity: Annotated[ActivityIn, Body(openapi_examples=ACTIVITY_EXAMPLES)],
    ) -> ActivityAccepted:
        the_gate = gate()
        if activity.type == "reassigned" and activity.to_queue is None:
            metrics.rejected.labels("invalid").inc()
            raise HTTPException(422, "a reassigned activity needs to_queue")
        ahead = ahead_of(activity.at, the_gate.clock())
        if ahead is not None:
            metrics.rejected.labels("invalid").inc()
            raise HTTPException(422, f"at {ahead}")
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
        except Unavailable as exc:
            raise unavailable(settings.retry_after_seconds, exc, "activity") from None
        metrics.activities.labels(activity.type).inc()
        return ActivityAccepted(activity_id=activity_id, case_id=case_id)

    return api
