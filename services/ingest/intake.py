"""Turn what a channel sent into the canonical message event. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime

from ingest.api import MessageIn
from switchboard.contract import Message, MessageReceived, default_visibility, derive_id, trusted

SOURCE = "switchboard/ingest"


def message_id_for(channel: str, external_id: str) -> str:
    """Return the message id of a channel's message: the same message always gets the same id."""
    return derive_id(f"{channel}:{external_id}", "message")


def conversation_id_for(item: MessageIn) -> str:
    """Return the conversation key: given by the channel, else one conversation per author and channel."""
    if item.conversation_id:
        return item.conversation_id
    return f"{item.channel.value}:author:{item.author.id}"


def normalise(item: MessageIn, received_at: datetime) -> MessageReceived:
    """Build the `messages.received` event of an inbound message."""
    message_id = message_id_for(item.channel.value, item.external_id)
    conversation_id = conversation_id_for(item)
    visibility = item.visibility or default_visibility(item.channel)
    # The item was validated as a MessageIn, whose fields have the contract's types: constructing the
    # event without validating it again halves the cost of this step, on every message.
    message = trusted(
        Message,
        message_id=message_id,
        channel=item.channel,
        external_id=item.external_id,
        conversation_id=conversation_id,
        author=item.author,
        text=item.text,
        created_at=item.created_at,
        received_at=received_at,
        visibility=visibility,
        in_reply_to=item.in_reply_to,
        language=item.language,
        metadata=item.metadata,
    )
    return trusted(
        MessageReceived,
        id=derive_id(message_id, "received"),
        source=SOURCE,
        time=received_at,
        subject=message_id,
        partitionkey=conversation_id,
        data=message,
    )
