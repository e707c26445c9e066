"""The request and response bodies of ingest's HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator
from pydantic_core import PydanticSerializationError

from switchboard.contract import ActivityType, Author, Channel, Queue, Visibility

_METADATA: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
# Consumers read events with the contract's JSON decoder, which refuses a document nested about 200 levels
# deep: metadata is kept far shallower, so that no message ingest accepts is dead-lettered downstream.
MAX_METADATA_DEPTH = 32
# The times a message or an activity may carry. Nobody wrote to a brand's channels before 1970 (a negative
# epoch is a broken clock), and a time more than a day after ingest received it is a clock far off or a
# forgery: either would sort the message at the wrong end of every queue, and an activity dated years ahead
# would have the SLA service count business time up to it. The lower bound is checked here; the upper one
# needs the time of receipt, so the routes check it (`ahead_of`).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=1)


def _not_before_1970(value: datetime) -> datetime:
    # Compared as instants: "0001-01-01T00:00:00+01:00" (year 0 in UTC) is refused, not an overflow.
    if value < EARLIEST:
        raise ValueError("the time is before 1970-01-01T00:00:00Z")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_not_before_1970)]


def ahead_of(value: datetime, received_at: datetime) -> str | None:
    """Say why a time is refused when it is more than MAX_AHEAD after its receipt, else None."""
    if value - received_at <= MAX_AHEAD:
        return None
    return f"{value.isoformat()} is more than a day after ingest received it ({received_at.isoformat()})"


MESSAGE_EXAMPLE = {
    "channel": "x",
    "external_id": "1790000000000000001",
    "author": {"id": "42", "handle": "@marie_l", "name": "Marie L."},
    "text": "@NovaTel toujours pas reçu ma commande #A-48213, ça fait 10 jours !",
    "created_at": "2026-11-22T09:15:00Z",
    "visibility": "public",
}
BATCH_EXAMPLE = {
    "messages": [
        {
            "channel": "chat",
            "external_id": "chat-20261122-0007",
            "author": {"id": "visitor-5521"},
            "text": "Bonjour, ma box redémarre toute seule depuis hier.",
            "created_at": "2026-11-22T09:16:02+01:00",
        },
        {
            "channel": "review",
            "external_id": "rv-88213",
            "author": {"id": "rv-user-301", "name": "Paul"},
            "text": "Great support, my line was fixed in a day.",
            "created_at": "2026-11-21T18:02:00Z",
        },
    ]
}
MESSAGE_EXAMPLES = {
    "tweet": {"summary": "A public mention", "value": MESSAGE_EXAMPLE},
    "chat": {
        "summary": "A web chat message with its own conversation id",
        "value": {
            "channel": "chat",
            "external_id": "chat-20261122-0007",
            "conversation_id": "chat:session:9f2c",
            "author": {"id": "visitor-5521", "name": "Léa"},
            "text": "Bonjour, ma box redémarre toute seule depuis hier.",
            "created_at": "2026-11-22T09:16:02+01:00",
            "language": "fr",
            "metadata": {"page": "/assistance/box", "account": "site-fr"},
        },
    },
}
ACTIVITY_EXAMPLE = {"type": "responded", "at": "2026-11-22T09:40:00Z", "agent": "agent-17"}


class MessageIn(BaseModel):
    """One inbound message as a channel adapter or an integrator sends it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [MESSAGE_EXAMPLE]},
    )

    channel: Channel
    external_id: str = Field(
        min_length=1, max_length=256, description="The channel's own id for the message."
    )
    conversation_id: str | None = Field(default=None, min_length=1, max_length=256)
    author: Author
    text: str = Field(min_length=1)
    created_at: Instant = Field(
        description="When it was written, with its offset; from 1970 to a day after ingest receives it."
    )
    visibility: Visibility | None = Field(
        default=None, description="Defaults to the channel's usual visibility."
    )
    in_reply_to: str | None = Field(default=None, max_length=256)
    language: str | None = Field(default=None, max_length=16)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Any JSON object, nested at most {MAX_METADATA_DEPTH} levels deep. `account`, a string, "
        "names the brand account the message was written to (routing rules match it as "
        "`<channel>:<account>`).",
    )

    @field_validator("metadata")
    @classmethod
    def _encodable(cls, value: dict[str, Any]) -> dict[str, Any]:
        if nested_deeper(value, MAX_METADATA_DEPTH):
            raise ValueError(f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep")
        # JSON escapes can carry lone surrogates (`"\ud800"`) that no UTF-8 record can hold; found here
        # they are a 422, found at publish time they would be a 503 the channel retries forever.
        try:
            if value:
                _METADATA.dump_json(value)
        except PydanticSerializationError:
            raise ValueError("metadata holds text that is not valid Unicode") from None
        return value


def nested_deeper(value: Any, levels: int) -> bool:
    """Tell whether objects and lists nest more than `levels` deep (the outermost is level 1)."""
    # A loop rather than a recursion: the value may nest as deep as Python's own parser allowed.
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if level > levels:
                return True
            pending.extend((child, level + 1) for child in item)
    return False


class Accepted(BaseModel):
    """The message was stored (or had been already)."""

    message_id: str
    conversation_id: str
    status: Literal["accepted", "duplicate"]


class BatchIn(BaseModel):
    """Several messages in one request."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [BATCH_EXAMPLE]})

    messages: list[dict[str, Any]] = Field(description="Each item is a message as for POST /v1/messages.")


class ItemResult(BaseModel):
    """What happened to one item of a batch."""

    index: int
    status: Literal["accepted", "duplicate", "invalid", "retry"]
    message_id: str | None = None
    error: str | None = None


class BatchResult(BaseModel):
    """One result per item, in order."""

    accepted: int
    duplicates: int
    invalid: int
    retry: int
    results: list[ItemResult]


class ActivityIn(BaseModel):
    """What the contact centre did on a case."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [ACTIVITY_EXAMPLE]},
    )

    type: ActivityType
    at: Instant = Field(
        description="When it happened, with its offset; from 1970 to a day after ingest receives it."
    )
    agent: str | None = Field(default=None, max_length=256)
    note: str | None = Field(default=None, max_length=4000)
    to_queue: Queue | None = Field(default=None, description="Required for `reassigned`.")
    activity_id: str | None = Field(
        default=None, max_length=128, description="Your id for this activity; repeating it is harmless."
    )


class ActivityAccepted(BaseModel):
    """The activity was published."""

    activity_id: str
    case_id: str
