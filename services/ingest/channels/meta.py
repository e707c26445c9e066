"""Meta's webhook (Facebook Page feed, Messenger, Instagram comments and DMs) as inbound messages."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.api import MessageIn
from ingest.channels.common import (
    Parsed,
    PayloadError,
    SignatureError,
    clip,
    deliver,
    describe,
    signed_payload,
    signed_responses,
)
from ingest.config import Settings
from ingest.gate import Gate
from switchboard.contract import Author, Channel

PATH = "/v1/webhooks/meta"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
# Feed items that are a post someone wrote on the page (a visitor post); its text is in `message`.
_POST_ITEMS = {"post", "status", "photo", "video", "share"}
# An edit keeps the comment's id, so the gate answers it as a duplicate unless the original never came.
_WRITTEN = {"add", "edited"}


class _Shape(BaseModel):
    # Meta adds fields over time; only the ones read here are checked. Ids are sometimes sent as numbers.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, populate_by_name=True)


class Party(_Shape):
    """Who wrote or received something."""

    id: str
    name: str | None = None
    username: str | None = None


class Change(_Shape):
    """One change of a subscribed field (`feed`, `comments`, `mentions`...)."""

    field: str
    value: dict[str, Any]


class Attachment(_Shape):
    """A file sent in a direct message."""

    type: str = "file"
    payload: dict[str, Any] | None = None


class Reference(_Shape):
    """The message a direct message replies to."""

    mid: str


class DirectMessage(_Shape):
    """The `message` of a Messenger or Instagram messaging event."""

    mid: str
    text: str | None = None
    is_echo: bool = False
    attachments: list[Attachment] = Field(default_factory=list)
    reply_to: Reference | None = None


class Messaging(_Shape):
    """One Messenger or Instagram messaging event; only those with a `message` carry text."""

    sender: Party
    recipient: Party
    timestamp: float | None = None
    message: DirectMessage | None = None


class Entry(_Shape):
    """What happened on one page or Instagram account."""

    id: str
    time: float | None = None
    changes: list[Change] = Field(default_factory=list)
    messaging: list[Messaging] = Field(default_factory=list)


class Payload(_Shape):
    """Meta's webhook body: `object` is `page` or `instagram`."""

    object: str
    entry: list[Entry]


class FeedValue(_Shape):
    """The value of a Page `feed` change."""

    item: str
    verb: str | None = None
    author: Party | None = Field(default=None, alias="from")
    post_id: str | None = None
    comment_id: str | None = None
    parent_id: str | None = None
    message: str | None = None
    created_time: float | str | None = None


class Media(_Shape):
    """The Instagram media a comment was written on."""

    id: str


class InstagramComment(_Shape):
    """The value of an Instagram `comments` change."""

    id: str
    text: str | None = None
    author: Party | None = Field(default=None, alias="from")
    media: Media | None = None
    parent_id: str | None = None


class MetaWebhookResult(BaseModel):
    """What became of the messages of one webhook delivery."""

    accepted: int
    duplicates: int
    skipped: int = Field(description="Events that carried no text a customer wrote (reactions, echoes...).")
    message_ids: list[str] = Field(description="Switchboard's id of each message, in payload order.")


def verify_signature(secret: bytes, body: bytes, header: str | None) -> None:
    """Check `X-Hub-Signature-256` against the HMAC-SHA256 of the raw body, or raise `SignatureError`."""
    if not header:
        raise SignatureError(401, "X-Hub-Signature-256 is missing")
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        raise SignatureError(401, "X-Hub-Signature-256 is not sha256=<64 hex digits>")
    expected = hmac.new(secret, body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, bytes.fromhex(match.group(1))):
        raise SignatureError(403, "X-Hub-Signature-256 does not match the body")


def when(value: float | str | None) -> datetime | None:
    """Return an epoch (seconds or milliseconds) or ISO 8601 time as an aware UTC datetime."""
    if value is None or value == "":
        return None
    try:
        try:
            number = float(value)
        except ValueError:
            parsed = datetime.fromisoformat(str(value))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        # Meta sends seconds in feed changes and milliseconds in messaging; 1e11 s is the year 5138.
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    except (ValueError, OverflowError, OSError):
        raise PayloadError(f"{value!r} is not a time") from None


def parse(payload: dict[str, Any], max_text_chars: int | None = None) -> Parsed:
    """Return the messages customers wrote in a Meta webhook payload; raise `PayloadError` if not one."""
    try:
        hook = Payload.model_validate(payload)
        items: list[MessageIn] = []
        skipped = 0
        for entry in hook.entry:
            found: list[MessageIn | None] = []
            if hook.object == "page":
                found += [_page_change(entry, c, max_text_chars) for c in entry.changes]
                found += [_direct(Channel.MESSENGER, entry, m, max_text_chars) for m in entry.messaging]
            elif hook.object == "instagram":
                found += [_instagram_change(entry, c, max_text_chars) for c in entry.changes]
                found += [_direct(Channel.INSTAGRAM, entry, m, max_text_chars) for m in entry.messaging]
            else:
                found += [None] * (len(entry.changes) + len(entry.messaging))
            items += [item for item in found if item is not None]
            skipped += sum(item is None for item in found)
    except ValidationError as exc:
        raise PayloadError(describe(exc)) from None
    except ValueError as exc:
        raise PayloadError(str(exc)) from None
    return Parsed(items, skipped)


def _entry_time(entry: Entry) -> datetime:
    created = when(entry.time)
    if created is None:
        raise PayloadError(f"entry {entry.id} has no time")
    return created


def _page_change(entry: Entry, change: Change, limit: int | None) -> MessageIn | None:
    if change.field != "feed":
        return None
    value = FeedValue.model_validate(change.value)
    is_comment = value.item == "comment"
    if (
        value.verb not in _WRITTEN
        or not (is_comment or value.item in _POST_ITEMS)
        or not (value.message or "").strip()
        or (value.author is not None and value.author.id == entry.id)
    ):
        return None
    external_id = value.comment_id if is_comment else value.post_id
    if not value.post_id or not external_id:
        raise PayloadError(f"a feed {value.item} needs post_id{' and comment_id' if is_comment else ''}")
    # Meta leaves out `from` for people who have not allowed the app to see them: each such message
    # then stands alone rather than merging strangers into one conversation.
    author = _author(value.author, f"unknown:{external_id}")
    metadata: dict[str, Any] = {"page_id": entry.id, "post_id": value.post_id, "item": value.item}
    if value.verb == "edited":
        metadata["edited"] = True
    text = clip(value.message or "", metadata, limit)
    # A top-level comment's parent is the post itself; only a reply has another comment as parent.
    reply_to = value.parent_id if is_comment and value.parent_id not in (None, value.post_id) else None
    return MessageIn(
        channel=Channel.FACEBOOK,
        external_id=external_id,
        conversation_id=f"facebook:post:{value.post_id}:author:{author.id}",
        author=author,
        text=text,
        created_at=when(value.created_time) or _entry_time(entry),
        visibility="public",
        in_reply_to=reply_to,
        metadata=metadata,
    )


def _instagram_change(entry: Entry, change: Change, limit: int | None) -> MessageIn | None:
    # `mentions` carries only the media and comment ids: its text needs a Graph API call, so it is skipped.
    if change.field not in ("comments", "live_comments"):
        return None
    value = InstagramComment.model_validate(change.value)
    if not (value.text or "").strip() or (value.author is not None and value.author.id == entry.id):
        return None
    author = _author(value.author, f"unknown:{value.id}")
    media_id = value.media.id if value.media else "unknown"
    metadata: dict[str, Any] = {"account_id": entry.id, "media_id": media_id, "field": change.field}
    text = clip(value.text or "", metadata, limit)
    return MessageIn(
        channel=Channel.INSTAGRAM,
        external_id=value.id,
        conversation_id=f"instagram:media:{media_id}:author:{author.id}",
        author=author,
        text=text,
        created_at=_entry_time(entry),
        visibility="public",
        in_reply_to=value.parent_id,
        metadata=metadata,
    )


def _direct(channel: Channel, entry: Entry, event: Messaging, limit: int | None) -> MessageIn | None:
    message = event.message
    # Echoes are what the page itself sent; deliveries, reads, reactions and postbacks have no `message`.
    if message is None or message.is_echo or event.sender.id == entry.id:
        return None
    metadata: dict[str, Any] = {"account_id": event.recipient.id}
    text = (message.text or "").strip()
    if message.attachments:
        metadata["attachments"] = [
            {"type": a.type, "url": (a.payload or {}).get("url")} for a in message.attachments
        ]
        # A photo of a broken parcel is something a customer wrote to the brand: it is kept, with a
        # placeholder text, so it reaches an agent.
        text = text or " ".join(f"[{a.type}]" for a in message.attachments)
    if not text:
        return None
    prefix = "messenger" if channel == Channel.MESSENGER else "instagram:dm"
    return MessageIn(
        channel=channel,
        external_id=message.mid,
        conversation_id=f"{prefix}:{event.recipient.id}:{event.sender.id}",
        author=Author(id=event.sender.id),
        text=clip(text, metadata, limit),
        created_at=when(event.timestamp) or _entry_time(entry),
        visibility="private",
        in_reply_to=message.reply_to.mid if message.reply_to else None,
        metadata=metadata,
    )


def _author(party: Party | None, fallback_id: str) -> Author:
    if party is None:
        return Author(id=fallback_id)
    handle = f"@{party.username}" if party.username else None
    return Author(id=party.id, handle=handle, name=party.name)


def router(gate: Callable[[], Gate], settings: Settings) -> APIRouter:
    """Build the routes Meta calls: the subscription handshake and the signed webhook."""
    api = APIRouter(tags=["webhooks"])

    @api.get(
        PATH,
        response_class=PlainTextResponse,
        summary="Meta subscription handshake: echo hub.challenge when hub.verify_token matches",
        responses={
            200: {"description": "The challenge, as plain text.", "content": {"text/plain": {}}},
            400: {"description": "No hub.challenge."},
            403: {"description": "Not a subscription, or the verify token does not match."},
            503: {"description": "INGEST_META_VERIFY_TOKEN is not configured."},
        },
    )
    async def handshake(
        mode: Annotated[str | None, Query(alias="hub.mode")] = None,
        token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
        challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
    ) -> PlainTextResponse:
        if settings.meta_verify_token is None:
            raise HTTPException(503, "the Meta webhook is not configured: INGEST_META_VERIFY_TOKEN is unset")
        expected = settings.meta_verify_token.get_secret_value().encode()
        if mode != "subscribe" or not hmac.compare_digest(expected, (token or "").encode()):
            raise HTTPException(403, "not a subscription request with the expected verify token")
        if not challenge:
            raise HTTPException(400, "hub.challenge is missing")
        return PlainTextResponse(challenge)

    @api.post(
        PATH,
        response_model=MetaWebhookResult,
        summary="Receive Meta's webhook: Page comments and posts, Messenger, Instagram comments and DMs",
        description="The body is Meta's Graph API webhook payload, signed with X-Hub-Signature-256.",
        responses=signed_responses("X-Hub-Signature-256", "a Meta webhook payload"),
    )
    async def receive(
        request: Request,
        signature: Annotated[str | None, Header(alias="X-Hub-Signature-256")] = None,
    ) -> MetaWebhookResult:
        if settings.meta_app_secret is None:
            raise HTTPException(503, "the Meta webhook is not configured: INGEST_META_APP_SECRET is unset")
        key = settings.meta_app_secret.get_secret_value().encode()
        parsed = await signed_payload(
            request,
            settings,
            lambda body: verify_signature(key, body, signature),
            parse,
            "a Meta webhook payload",
        )
        return await deliver(gate(), parsed, settings, MetaWebhookResult)

    return api
