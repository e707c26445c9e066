"""The classifier's event handlers and their table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from classifier.choice import BatchModel, Lexicon
from classifier.examples import Inbound
from switchboard.contract import (
    Classification,
    ClassifiedMessage,
    Message,
    MessageClassified,
    MessageReceived,
    Topic,
    derive_id,
    event_type,
)
from switchboard.handling import BatchHandler

SOURCE = "switchboard/classifier"
_LEXICON = Lexicon()


@dataclass(frozen=True)
class Deps:
    """What the classifier's handlers need."""

    # The model in force, read once per batch: a model swapped meanwhile decides from the next batch on.
    model: Callable[[], BatchModel] = lambda: _LEXICON
    on_classified: Callable[[Sequence[Classification]], None] = lambda _c: None


def inbound(message: Message) -> Inbound:
    """Tell the model what the channel tells about a message."""
    return Inbound(
        message.text, message.channel.value, message.visibility, message.author.followers, message.language
    )


async def classify_messages(events: Sequence[MessageReceived], deps: Deps) -> list[list[MessageClassified]]:
    """Decide whether each received message is support or marketing, in one model call for them all."""
    decisions = deps.model().classify_many([inbound(event.data) for event in events])
    deps.on_classified(decisions)
    return [
        [
            MessageClassified(
                id=derive_id(event.id, "classified"),
                source=SOURCE,
                subject=event.data.message_id,
                partitionkey=event.partitionkey,
                data=ClassifiedMessage(message=event.data, classification=classification),
            )
        ]
        for event, classification in zip(events, decisions, strict=True)
    ]


async def classify_message(event: MessageReceived, deps: Deps) -> list[MessageClassified]:
    """Decide whether one received message is support or marketing, and publish the decision."""
    (classified,) = await classify_messages([event], deps)
    return classified


def handler_table(deps: Deps):
    """Map topics and event types to this service's handlers."""

    async def on_received(events: Sequence[MessageReceived]) -> list[list[MessageClassified]]:
        return await classify_messages(events, deps)

    return {Topic.MESSAGES_RECEIVED.value: {event_type(MessageReceived): BatchHandler(on_received)}}
