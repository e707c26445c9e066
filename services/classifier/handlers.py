"""The classifier's event handlers and their table."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from classifier.choice import LIVE, SHADOW, BatchModel, Lexicon
from classifier.examples import Inbound
from classifier.store import Correction, CorrectionStore
from switchboard.contract import (
    REASSIGNED,
    CaseRouted,
    Category,
    Channel,
    Classification,
    ClassifiedMessage,
    Message,
    MessageClassified,
    MessageReceived,
    Queue,
    Topic,
    default_visibility,
    derive_id,
    event_type,
)
from switchboard.handling import BatchHandler

SOURCE = "switchboard/classifier"
_LEXICON = Lexicon()
# A routing with rule REASSIGNED is one a person made by moving a case to another queue (docs/events.md).
# A case moved to one of these queues says which category its message should have had.
CORRECTED_CATEGORY: dict[Queue, Category] = {Queue.CUSTOMER_SERVICE: "support", Queue.MARKETING: "marketing"}

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
    # Where agents' corrections are kept for retraining; None: they are not recorded.
    corrections: CorrectionStore | None = None
    # A new correction: the category the model gave, the one the person chose.
    on_corrected: Callable[[str, str], None] = lambda _from, _to: None
    # With a shadow: whether each model (`live`, `shadow`) had the category the person chose.
    on_judged: Callable[[str, bool], None] = lambda _role, _right: None


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
    decisions = shadow_decisions(shadow, items, deps, "messages; the live decisions stand")
    if decisions is not None:
        deps.on_timed(SHADOW, time.perf_counter() - started)
        deps.on_compared(live, decisions)


def shadow_decisions(
    shadow: BatchModel, items: Sequence[Inbound], deps: Deps, what: str
) -> list[Classification] | None:
    """Return the shadow's decisions on the items, or None, counted and logged, when it fails on them."""
    try:
        decisions = shadow.classify_many(items)
        if len(decisions) != len(items):
            raise ValueError(f"{len(decisions)} decisions for {len(items)} items")
    except Exception:
        deps.on_shadow_failed()
        log.warning(
            "shadow model %s failed on %d %s",
            getattr(shadow, "version", "?"),
            len(items),
            what,
            exc_info=True,
        )
        return None
    return decisions


async def classify_message(event: MessageReceived, deps: Deps) -> list[MessageClassified]:
    """Decide whether one received message is support or marketing, and publish the decision."""
    (classified,) = await classify_messages([event], deps)
    return classified


def correction_of(event: CaseRouted) -> Correction | None:
    """Read a person's move of a case between customer service and marketing as a corrected label."""
    routed = event.data
    category = CORRECTED_CATEGORY.get(routed.queue)
    if routed.rule != REASSIGNED or category is None:
        return None
    decided = routed.classification
    return Correction(
        event_id=event.id,
        message_id=routed.message_id,
        case_id=routed.case_id,
        text=routed.text,
        channel=routed.channel.value,
        language=decided.language,
        category=category,
        model_category=decided.category,
        model_version=decided.model_version,
        at=event.time,
    )


async def record_corrections(events: Sequence[CaseRouted], deps: Deps) -> list[list[MessageClassified]]:
    """Keep every reassignment among these routings as a labelled example; ignore every other routing."""
    found = [c for event in events if (c := correction_of(event)) is not None]
    if found and deps.corrections is not None:
        recorded = [c for c, new in zip(found, await deps.corrections.record_many(found), strict=True) if new]
        for correction in recorded:
            deps.on_corrected(correction.model_category, correction.category)
        shadow = deps.shadow()
        if recorded and shadow is not None:
            judge_shadow(shadow, recorded, deps)
    return [[] for _ in events]


def judge_shadow(shadow: BatchModel, corrections: Sequence[Correction], deps: Deps) -> None:
    """Let the shadow decide the corrected messages, and count which model had the person's category.

    The live model's answer is the one the routing carried (it decided when the message came in); the
    shadow decides now. Side by side on the same corrections, the two counts say whether the candidate
    would have been right where people had to step in: the labelled signal a promotion needs.
    """
    items = [Inbound(c.text, c.channel, default_visibility(Channel(c.channel))) for c in corrections]
    decisions = shadow_decisions(shadow, items, deps, "corrections; they are kept unjudged")
    if decisions is None:
        return
    for correction, decision in zip(corrections, decisions, strict=True):
        deps.on_judged(LIVE, correction.model_category == correction.category)
        deps.on_judged(SHADOW, decision.category == correction.category)


def handler_table(deps: Deps):
    """Map topics and event types to this service's handlers."""

    async def on_received(events: Sequence[MessageReceived]) -> list[list[MessageClassified]]:
        return await classify_messages(events, deps)

    async def on_routed(events: Sequence[CaseRouted]) -> list[list[MessageClassified]]:
        return await record_corrections(events, deps)

    # The queue topics carry every routing; the few a person made are the corrections. They are read
    # even when corrections are not recorded, so the group's offsets (and its lag) stay current.
    corrections = BatchHandler(on_routed)
    return {
        Topic.MESSAGES_RECEIVED.value: {event_type(MessageReceived): BatchHandler(on_received)},
        Topic.CASES_CUSTOMER_SERVICE.value: {event_type(CaseRouted): corrections},
        Topic.CASES_MARKETING.value: {event_type(CaseRouted): corrections},
    }
