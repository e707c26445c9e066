"""What the channels' webhooks share.

Every channel cuts a long text the same way (`clip`); the signed JSON webhooks (Meta's, X's) also read
and refuse a body the same way (`signed_payload`, `signed_responses`) and answer a delivery alike
(`deliver`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from pydantic import BaseModel, ValidationError

from ingest.answers import store_or_refuse
from ingest.api import MessageIn
from ingest.config import Settings
from ingest.gate import Gate


class SignatureError(Exception):
    """The request is not signed by the channel: 401 when the signature is missing, 403 when it is wrong."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PayloadError(ValueError):
    """The body is JSON but not the channel's webhook payload."""


@dataclass(frozen=True)
class Parsed:
    """The messages customers wrote, and how many events carried none."""

    items: list[MessageIn]
    skipped: int


def clip(text: str, metadata: dict[str, Any], limit: int | None) -> str:
    """Cut a text to the limit, saying so in the metadata."""
    # A channel cannot be told to shorten what a customer wrote, and refusing it would make the channel
    # retry forever; so the message is kept, cut to the limit, and flagged as truncated.
    if limit is not None and len(text) > limit:
        metadata["truncated"] = True
        return text[:limit]
    return text


def describe(exc: ValidationError) -> str:
    """Say where and why a payload failed validation, in at most 500 characters."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors())[:500]


def signed_responses(header: str, payload_name: str) -> dict[int | str, dict[str, str]]:
    """Return the refusals a signed JSON webhook documents in OpenAPI, as `signed_payload` makes them."""
    return {
        400: {"description": "The body is not JSON."},
        401: {"description": f"{header} is missing or malformed."},
        403: {"description": f"{header} does not match the body."},
        413: {"description": "The body is larger than INGEST_MAX_BODY_BYTES."},
        422: {"description": f"The JSON is not {payload_name}, with the reason."},
        503: {"description": "Not configured, or the broker did not acknowledge: retry later."},
    }


async def signed_payload(
    request: Request,
    settings: Settings,
    verify: Callable[[bytes], None],
    parse: Callable[[dict[str, Any], int | None], Parsed],
    payload_name: str,
) -> Parsed:
    """Read the body, check its size and signature (`verify` raises `SignatureError`), then parse it.

    Each refusal is an HTTPException with the reason: 413 too large, 401/403 signature, 400 not JSON,
    422 not the channel's payload (`payload_name` names it: "a Meta webhook payload").
    """
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        raise HTTPException(413, f"the body is larger than {settings.max_body_bytes} bytes")
    try:
        verify(body)
    except SignatureError as exc:
        raise HTTPException(exc.status, exc.reason) from None
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HTTPException(422, f"{payload_name} is a JSON object")
    try:
        return parse(payload, settings.max_text_chars)
    except PayloadError as exc:
        raise HTTPException(422, str(exc)) from None


# A channel's answer model: accepted, duplicates, skipped and message_ids, each described for its channel.
Result = TypeVar("Result", bound=BaseModel)


async def deliver(gate: Gate, parsed: Parsed, settings: Settings, answer: type[Result]) -> Result:
    """Store the parsed messages (or refuse the delivery with 503) and say what became of each."""
    outcomes = await store_or_refuse(gate, parsed.items, settings.retry_after_seconds, "messages")
    return answer(
        accepted=sum(o.status == "accepted" for o in outcomes),
        duplicates=sum(o.status == "duplicate" for o in outcomes),
        skipped=parsed.skipped,
        message_ids=[o.event.data.message_id for o in outcomes],
    )
