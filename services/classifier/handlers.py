"""The classifier's event handlers and their table."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from classifier.choice import LIVE, SHADOW, BatchModel, Lexicon
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    """What the classifier's handlers need."""

    # The model in force, read once per batch: a model swapped meanwhile decides from the next batch on.
    model: Callable[[], BatchModel] = lambda: _LEXICON
    # A candidate model that decides every batch too, for comparison only; None: no shadow.
    shadow: Callable[[], BatchModel | None] = lambda: None
    on_classified: Callable[[Sequence[Classification]], None] = lambda _c: None
    # How long a model took over a batch, by role (`live`, `shadow`).
    on_timed: Callable[[str, float], None] = lambda _role, _seconds: None
    # The live decisions and the shadow's on the same messages.
    on_compared: Callable[[Sequence[Classification], Sequence[Classification]], None] = lambda _l, _s: None
    on_shadow_failed: Callable[[], None] = lambda: None


def inbound(message: Message) -> Inbound:
    """Tell the model what the channel tells about a message."""
    return Inbound(
        message.text, message.channel.value, message.visibility, message.author.followers, message.language
    )


async def classify_messages(events: Sequence[MessageReceived], deps: Deps) -> list[list[MessageClassified]]:
    """Decide whether each received message is support or marketing, in one model call for them all."""
    items = [inbound(event.data) for event in events]
    started = time.perf_counter()
    decisions = deps.model().classify_many(items)
    deps.on_timed(LIVE, time.perf_counter() - started)
    deps.on_classified(decisions)
    shadow = deps.shadow()
    if shadow is not None:
        run_shadow(shadow, items, decisions, deps)
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


def run_shadow(
    shadow: BatchModel, items: Sequence[Inbound], live: Sequence[Classification], deps: Deps
) -> None:
    """Let the shadow decide the same messages and compare; whatever it does, the live decisions stand."""
    started = time.perf_counter()
    try:
        decisions = shadow.classify_many(items)
        if len(decisions) != len(live):
            raise ValueError(f"{len(decisions)} decisions for {len(live)} messages")
    except Exception:
        deps.on_shadow_failed()
        log.warning(
            "shadow model %s failed on %d messages; the live decisions stand",
            getattr(shadow, "version", "?"),
            len(items),
            exc_info=True,
        )
        return
    deps.on_timed(SHADOW, time.perf_counter() - started)
    deps.on_compared(live, decisions)


async def classify_message(event: MessageReceived, deps: Deps) -> list[MessageClassified]:
    """Decide whether one received message is support or marketing, and publish the decision."""
    (classified,) = await classify_messages([event], deps)
    return classified


def handler_table(deps: Deps):
    """Map topics and event types to this service's handlers."""

    async def on_received(events: Sequence[MessageReceived]) -> list[list[MessageClassified]]:
        return await classify_messages(events, deps)

    return {Topic.MESSAGES_RECEIVED.value: {event_type(MessageReceived): BatchHandler(on_received)}}
