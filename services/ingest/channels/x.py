"""X's Account Activity webhook (mentions, replies and DMs of the brand's account) as inbound messages."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request
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

PATH = "/v1/webhooks/x"
_PREFIX = "sha256="
# Twitter's v1.1 date format, e.g. "Wed Oct 10 20:19:24 +0000 2018".
_TWITTER_TIME = "%a %b %d %H:%M:%S %z %Y"


class _Shape(BaseModel):
    # X adds fields over time; only the ones read here are checked. Ids are sometimes sent as numbers.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)


class User(_Shape):
    """A tweet's author."""

    id_str: str
    screen_name: str | None = None
    name: str | None = None
    followers_count: int | None = Field(default=None, ge=0)


class ExtendedTweet(_Shape):
    """The full text of a tweet longer than 140 characters."""

    full_text: str


class Tweet(_Shape):
    """One of `tweet_create_events`: a tweet that mentions, replies to or quotes the account."""

    id_str: str
    text: str | None = None
    extended_tweet: ExtendedTweet | None = None
    user: User
    created_at: str | None = None
    timestamp_ms: str | None = None
    in_reply_to_status_id_str: str | None = None
    lang: str | None = None
    retweeted_status: dict[str, Any] | None = None


class MessageData(_Shape):
    """What a DM says."""

    text: str | None = None


class Target(_Shape):
    """Whom a DM was sent to."""

    recipient_id: str


class MessageCreate(_Shape):
    """A DM's sender, recipient and content."""

    target: Target
    sender_id: str
    message_data: MessageData


class DirectMessageEvent(_Shape):
    """One of `direct_message_events`; only `message_create` carries text."""

    type: str
    id: str
    created_timestamp: str | None = None
    message_create: MessageCreate | None = None


class DmUser(_Shape):
    """A DM party, from the payload's `users` map."""

    id: str
    screen_name: str | None = None
    name: str | None = None
    followers_count: int | None = Field(default=None, ge=0)


class Payload(_Shape):
    """The Account Activity body: events of the subscribed account `for_user_id`."""

    for_user_id: str
    tweet_create_events: list[Tweet] = Field(default_factory=list)
    direct_message_events: list[DirectMessageEvent] = Field(default_factory=list)
    users: dict[str, DmUser] = Field(default_factory=dict)


class XWebhookResult(BaseModel):
    """What became of the messages of one webhook delivery."""

    accepted: int
    duplicates: int
    skipped: int = Field(description="Events that carried no text a customer wrote (own tweets, likes...).")
    message_ids: list[str] = Field(description="Switchboard's id of each message, in payload order.")


class CrcResponse(BaseModel):
    """The answer to X's challenge-response check."""

    response_token: str


def _hmac(secret: bytes, data: bytes) -> bytes:
    return hmac.new(secret, data, hashlib.sha256).digest()


def crc_response(secret: bytes, token: str) -> str:
    """Return the `response_token` that proves to X this endpoint holds the consumer secret."""
    return _PREFIX + base64.b64encode(_hmac(secret, token.encode())).decode()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> None:
    """Check `x-twitter-webhooks-signature` against the HMAC-SHA256 of the raw body, or raise."""
    if not header:
        raise SignatureError(401, "x-twitter-webhooks-signature is missing")
    value = header.strip()
    if not value.startswith(_PREFIX):
        raise SignatureError(401, "x-twitter-webhooks-signature is not sha256=<base64>")
    try:
        given = base64.b64decode(value[len(_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(401, "x-twitter-webhooks-signature is not sha256=<base64>") from None
    if not hmac.compare_digest(_hmac(secret, body), given):
        raise SignatureError(403, "x-twitter-webhooks-signature does not match the body")


def when(epoch_ms: str | None, twitter_time: str | None = None) -> datetime:
    """Return a tweet's or DM's time as an aware UTC datetime, from epoch milliseconds or Twitter's format."""
    try:
        if epoch_ms:
            return datetime.fromtimestamp(int(epoch_ms) / 1000, UTC)
        if twitter_time:
            return datetime.strptime(twitter_time, _TWITTER_TIME).astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise PayloadError(f"{epoch_ms or twitter_time!r} is not a time") from None
    raise PayloadError("an event has no time")


def parse(payload: dict[str, Any], max_text_chars: int | None = None) -> Parsed:
    """Return the messages customers wrote in an Account Activity payload; raise `PayloadError` if not one."""
    try:
        hook = Payload.model_validate(payload)
        found = [_tweet(hook, t, max_text_chars) for t in hook.tweet_create_events]
        found += [_direct(hook, e, max_text_chars) for e in hook.direct_message_events]
    except ValidationError as exc:
        raise PayloadError(describe(exc)) from None
    # Likes, follows, deletes, typing and read receipts come in other `*_events` lists: none is a message.
    others = sum(
        len(v) for k, v in (hook.model_extra or {}).items() if k.endswith("_events") and isinstance(v, list)
    )
    items = [item for item in found if item is not None]
    return Parsed(items, len(found) - len(items) + others)


def as_written(text: str) -> str:
    """Return a tweet's text as its author wrote it.

    X sends a tweet's `text` and `full_text` with `&`, `<` and `>` escaped as HTML entities (`&amp;`,
    `&lt;`, `&gt;`) and nothing else, so an agent would read "&amp;" and the classifier a word "amp".
    `&amp;` is undone last: a customer who typed "&lt;" arrives as "&amp;lt;" and keeps it.
    """
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _tweet(hook: Payload, tweet: Tweet, limit: int | None) -> MessageIn | None:
    # The account's own tweets and plain retweets are not something a customer wrote to the brand.
    if tweet.user.id_str == hook.for_user_id or tweet.retweeted_status is not None:
        return None
    text = as_written(tweet.extended_tweet.full_text if tweet.extended_tweet else (tweet.text or ""))
    if not text.strip():
        return None
    user = tweet.user
    metadata: dict[str, Any] = {"for_user_id": hook.for_user_id}
    return MessageIn(
        channel=Channel.X,
        external_id=tweet.id_str,
        # v1.1 payloads do not name a thread's root, and following the reply chain needs API calls: one
        # customer's public tweets to the brand make one conversation, the replied-to tweet is kept.
        conversation_id=f"x:author:{user.id_str}",
        author=Author(
            id=user.id_str,
            handle=f"@{user.screen_name}" if user.screen_name else None,
            name=user.name,
            followers=user.followers_count,
        ),
        text=clip(text, metadata, limit),
        created_at=when(tweet.timestamp_ms, tweet.created_at),
        visibility="public",
        in_reply_to=tweet.in_reply_to_status_id_str,
        language=tweet.lang if tweet.lang and tweet.lang != "und" else None,
        metadata=metadata,
    )


def _direct(hook: Payload, event: DirectMessageEvent, limit: int | None) -> MessageIn | None:
    create = event.message_create
    if event.type != "message_create" or create is None or create.sender_id == hook.for_user_id:
        return None
    text = create.message_data.text or ""
    if not text.strip():
        return None
    sender = hook.users.get(create.sender_id)
    author = Author(id=create.sender_id)
    if sender is not None:
        handle = f"@{sender.screen_name}" if sender.screen_name else None
        author = Author(
            id=create.sender_id, handle=handle, name=sender.name, followers=sender.followers_count
        )
    pair = sorted((create.sender_id, create.target.recipient_id))
    metadata: dict[str, Any] = {"for_user_id": hook.for_user_id}
    return MessageIn(
        channel=Channel.X,
        external_id=event.id,
        conversation_id=f"x:dm:{pair[0]}:{pair[1]}",
        author=author,
        text=clip(text, metadata, limit),
        created_at=when(event.created_timestamp),
        visibility="private",
        metadata=metadata,
    )


def router(gate: Callable[[], Gate], settings: Settings) -> APIRouter:
    """Build the routes X calls: the CRC check and the signed Account Activity webhook."""
    api = APIRouter(tags=["webhooks"])

    def secret() -> bytes:
        if settings.x_consumer_secret is None:
            raise HTTPException(503, "the X webhook is not configured: INGEST_X_CONSUMER_SECRET is unset")
        return settings.x_consumer_secret.get_secret_value().encode()

    @api.get(
        PATH,
        response_model=CrcResponse,
        summary="X challenge-response check: sign crc_token with the consumer secret",
        responses={
            400: {"description": "No crc_token."},
            503: {"description": "INGEST_X_CONSUMER_SECRET is not configured."},
        },
    )
    async def crc(token: Annotated[str | None, Query(alias="crc_token")] = None) -> CrcResponse:
        key = secret()
        if not token:
            raise HTTPException(400, "crc_token is missing")
        return CrcResponse(response_token=crc_response(key, token))

    @api.post(
        PATH,
        response_model=XWebhookResult,
        summary="Receive X's Account Activity webhook: mentions, replies and DMs",
        description="The body is X's Account Activity payload, signed with x-twitter-webhooks-signature.",
        responses=signed_responses("x-twitter-webhooks-signature", "an Account Activity payload"),
    )
    async def receive(
        request: Request,
        signature: Annotated[str | None, Header(alias="x-twitter-webhooks-signature")] = None,
    ) -> XWebhookResult:
        key = secret()
        parsed = await signed_payload(
            request,
            settings,
            lambda body: verify_signature(key, body, signature),
            parse,
            "an Account Activity payload",
        )
        return await deliver(gate(), parsed, settings, XWebhookResult)

    return api
