"""The classifier's event handlers and their table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from classifier import model
from switchboard.contract import (
    Classification,
    ClassifiedMessage,
    MessageClassified,
    MessageReceived,
    Topic,
    derive_id,
    event_type,
)

SOURCE = "switchboard/classifier"

Classify = Callable[..., Classification]


@dataclass(frozen=True)
class Deps:
    """What the classifier's handlers need."""

    classify: Classify = model.classify
    on_classified: Callable[[Classification], None] = lambda _c: None


async def classify_message(event: MessageReceived, deps: Deps) -> list[MessageClassified]:
    """Decide whether a received message is support or marketing, and publish the decision."""
    message = event.data
    classification = deps.classify(
        message.text,
        channel=message.channel.value,
        visibility=message.visibility,
        followers=message.author.followers,
        language_hint=message.language,
    )
    deps.on_classified(classification)
    return [
        MessageClassified(
            id=derive_id(event.id, "classified"),
            source=SOURCE,
            subject=message.message_id,
            partitionkey=event.partitionkey,
            data=ClassifiedMessage(message=message, classification=classification),
        )
    ]


def handler_table(deps: Deps):
    """Map topics and event types to this service's handlers."""

    async def on_received(event: MessageReceived) -> list[MessageClassified]:
        return await classify_message(event, deps)

    return {Topic.MESSAGES_RECEIVED.value: {event_type(MessageReceived): on_received}}
