"""The request and response bodies of ingest's HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from switchboard.contract import ActivityType, Author, Channel, Queue, Visibility


class MessageIn(BaseModel):
    """One inbound message as a channel adapter or an integrator sends it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel": "x",
                    "external_id": "1790000000000000001",
                    "author": {"id": "42", "handle": "@marie_l", "name": "Marie L."},
                    "text": "@NovaTel toujours pas reçu ma commande #A-48213, ça fait 10 jours !",
                    "created_at": "2026-11-22T09:15:00Z",
                    "visibility": "public",
                }
            ]
        },
    )

    channel: Channel
    external_id: str = Field(
        min_length=1, max_length=256, description="The channel's own id for the message."
    )
    conversation_id: str | None = Field(default=None, min_length=1, max_length=256)
    author: Author
    text: str = Field(min_length=1)
    created_at: AwareDatetime
    visibility: Visibility | None = Field(
        default=None, description="Defaults to the channel's usual visibility."
    )
    in_reply_to: str | None = Field(default=None, max_length=256)
    language: str | None = Field(default=None, max_length=16)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Accepted(BaseModel):
    """The message was stored (or had been already)."""

    message_id: str
    conversation_id: str
    status: Literal["accepted", "duplicate"]


class BatchIn(BaseModel):
    """Several messages in one request."""

    model_config = ConfigDict(extra="forbid")

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
        json_schema_extra={
            "examples": [{"type": "responded", "at": "2026-11-22T09:40:00Z", "agent": "agent-17"}]
        },
    )

    type: ActivityType
    at: AwareDatetime
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
