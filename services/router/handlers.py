"""The router's event handlers and their table."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from router.routing import Decision
from router.rules import RuleSet
from router.store import Attached, Attachment, CaseStore
from switchboard.contract import (
    ESCALATED,
    FOLLOW_CASE,
    REASSIGNED,
    CaseActivityRecorded,
    CaseRouted,
    ClassifiedMessage,
    MessageClassified,
    Queue,
    RoutedCase,
    Topic,
    derive_id,
    event_type,
    trusted,
)
from switchboard.handling import BatchHandler
from switchboard.tracing import TraceContext, context_of, current

SOURCE = "switchboard/router"
LINKED = "linked"
# The tags a routing gets from its case rather than its rules.
CASE_TAGS = frozenset({REASSIGNED, FOLLOW_CASE, ESCALATED})
# The fields of a routing that belong to the case or the decision, not to the message: a re-route
# replaces them, so the stored last routing leaves them out.
CASE_FIELDS = frozenset({"case_id", "is_new_case", "queue", "skill_group", "rule"})

log = logging.getLogger(__name__)


class Handoff(Protocol):
    """Queues routed cases for delivery to the contact centre, apart from routing."""

    async def enqueue_many(
        self, events: Sequence[CaseRouted], traces: Sequence[TraceContext | None] | None = None
    ) -> int:
        """Queue the routed cases whose queue has an endpoint, each with the trace context its delivery
        continues; return how many were newly queued."""
        ...


@dataclass(frozen=True)
class Deps:
    """What the router's handlers need."""

    cases: CaseStore
    rules: Callable[[], RuleSet]
    window_seconds: int
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    on_routed: Callable[[RoutedCase], None] = lambda _r: None
    on_rerouted: Callable[[Queue, Queue], None] = lambda _from, _to: None
    # The identifiers that may link a message to a case of another conversation (see identifiers.py).
    identify: Callable[[ClassifiedMessage], Sequence[str]] = lambda _m: ()
    on_linked: Callable[[RoutedCase], None] = lambda _r: None
    # A case a message moved to customer service, by the queue it left.
    on_escalated: Callable[[Queue], None] = lambda _from: None
    handoff: Handoff | None = None


def follow_pin(decision: Decision, pinned: Queue | None) -> Decision:
    """Keep a message in the queue a person moved its case to: their choice beats the rules'."""
    if pinned is None or pinned == decision.queue:
        return decision
    return Decision(pinned, REASSIGNED, None, decision.priority, (*decision.tags, REASSIGNED))


def escalates(own: Queue, held: Queue) -> bool:
    """Tell whether a later message the rules send to `own` moves an unpinned case held in `held`.

    The store's attach script applies the same rule, atomically, with the case's queue it reads there.
    """
    return own is Queue.CUSTOMER_SERVICE and held is not Queue.CUSTOMER_SERVICE


def follow_case(decision: Decision, case: Attached) -> Decision:
    """Send a later message of a case where its case is, and say when it escalated the case.

    "done", an order number or "ok merci" alone look like nothing in particular; inside a conversation
    they belong to the team that has it. Only a message the rules send to customer service moves a case
    (the store did it, atomically, and says so in `escalated_from`); nothing but a person takes a case
    away from customer service.
    """
    if case.escalated_from is not None:
        return Decision(
            decision.queue,
            decision.rule,
            decision.skill_group,
            decision.priority,
            (*decision.tags, ESCALATED),
        )
    if case.is_new or case.queue is None or case.queue == decision.queue:
        return decision
    return Decision(
        case.queue, FOLLOW_CASE, case.skill_group, decision.priority, (*decision.tags, FOLLOW_CASE)
    )


def draft_routing(event: MessageClassified, decision: Decision) -> RoutedCase:
    """Describe the message's routing before its case is known."""
    message = event.data.message
    classification = event.data.classification
    # Every value comes from the validated event or from a decision of the validated rules, already of
    # its field's type: constructed without validating again (a tenth of the router's CPU went to it).
    return trusted(
        RoutedCase,
        case_id="",
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        channel=message.channel,
        external_id=message.external_id,
        text=message.text,
        author=message.author,
        visibility=message.visibility,
        queue=decision.queue,
        priority=decision.priority or classification.priority,
        tags=list(decision.tags),
        rule=decision.rule,
        is_new_case=False,
        message_created_at=message.created_at,
        classification=classification,
    )


# A poll is attached in parts of this many messages, so that Redis runs one part's script while the router
# works out the next part's rules, links and drafts, or builds the previous part's routings: neither waits
# for the other. The parts reach Redis one after the other, in order, so a conversation's messages join
# their case in the order they were read.
ATTACH_PART = 128
# Turns of the event loop given to the attaching task after each part is prepared. A store call takes
# several turns to be on the wire (redis-py writes under `asyncio.wait_for`, a task of its own); with a
# single turn the next parts were all prepared before the first call was sent, and nothing overlapped.
ATTACH_TURNS = 6


@dataclass(frozen=True, slots=True)
class _Part:
    """Messages of a poll with their decisions and drafts, ready to be attached."""

    events: Sequence[MessageClassified]
    decisions: list[Decision]
    drafts: list[RoutedCase]
    attachments: list[Attachment]
    # Whether later messages go where their case is (the rules' `follow_the_case`).
    follow: bool


def _prepare(events: Sequence[MessageClassified], deps: Deps, rules: RuleSet, now: datetime) -> _Part:
    """Decide each message's queue by the rules and describe its routing before its case is known."""
    decisions = [rules.decide(event.data, now) for event in events]
    drafts = [draft_routing(event, decision) for event, decision in zip(events, decisions, strict=True)]
    follow = rules.follow_the_case
    attachments = [
        Attachment(
            event.data.message,
            decision,
            last=draft.__pydantic_serializer__.to_json(draft, exclude=CASE_FIELDS),
            links=deps.identify(event.data),
            escalate=follow and decision.queue is Queue.CUSTOMER_SERVICE,
        )
        for event, decision, draft in zip(events, decisions, drafts, strict=True)
    ]
    return _Part(events, decisions, drafts, attachments, follow)


def _routings(part: _Part, attached: Sequence[Attached]) -> list[tuple[CaseRouted, Attached]]:
    """Build each message's routing now that its case is known; pair it with how it joined its case."""
    outputs: list[tuple[CaseRouted, Attached]] = []
    for event, decision, draft, case in zip(part.events, part.decisions, part.drafts, attached, strict=True):
        if case.pinned_queue is not None:
            decision = follow_pin(decision, case.pinned_queue)
        elif part.follow:
            decision = follow_case(decision, case)
        tags = [*decision.tags, LINKED] if case.linked else list(decision.tags)
        # The draft's values are typed already (see draft_routing), and so is what the case adds.
        routed = trusted(
            RoutedCase,
            **{
                **draft.__dict__,
                "case_id": case.case_id,
                "is_new_case": case.is_new,
                "queue": decision.queue,
                "skill_group": decision.skill_group,
                "rule": decision.rule,
                "tags": tags,
            },
        )
        outputs.append(
            (
                trusted(
                    CaseRouted,
                    id=derive_id(event.id, "routed"),
                    source=SOURCE,
                    subject=case.case_id,
                    partitionkey=case.case_id,
                    data=routed,
                ),
                case,
            )
        )
    return outputs


async def route_messages(events: Sequence[MessageClassified], deps: Deps) -> list[list[CaseRouted]]:
    """Attach each message to its case and hand the case to its queue, a store call per part of the poll.

    The parts are prepared here while a task attaches them, in order, and builds their routings: the CPU
    work of one part overlaps the store's work on another. The routings are counted once every part is
    attached, so a poll that fails half-way (and is read again) is not counted twice.
    """
    now = deps.clock()
    rules = deps.rules()
    if len(events) <= ATTACH_PART:
        part = _prepare(events, deps, rules, now)
        routed = _routings(part, await deps.cases.attach_many(part.attachments, deps.window_seconds, now))
    else:
        routed = await _route_in_parts(events, deps, rules, now)
    for event, case in routed:
        deps.on_routed(event.data)
        if case.linked:
            deps.on_linked(event.data)
        if case.escalated_from is not None:
            deps.on_escalated(case.escalated_from)
    return [[event] for event, _ in routed]


async def _route_in_parts(
    events: Sequence[MessageClassified], deps: Deps, rules: RuleSet, now: datetime
) -> list[tuple[CaseRouted, Attached]]:
    count = (len(events) + ATTACH_PART - 1) // ATTACH_PART
    ready: asyncio.Queue[_Part] = asyncio.Queue()
    outputs: list[tuple[CaseRouted, Attached]] = []

    async def attach_in_order() -> None:
        for _ in range(count):
            part = await ready.get()
            attached = await deps.cases.attach_many(part.attachments, deps.window_seconds, now)
            outputs.extend(_routings(part, attached))

    attacher = asyncio.ensure_future(attach_in_order())
    try:
        for start in range(0, len(events), ATTACH_PART):
            if attacher.done():
                break  # it failed: awaiting it below raises its exception
            ready.put_nowait(_prepare(events[start : start + ATTACH_PART], deps, rules, now))
            for _ in range(ATTACH_TURNS):
                await asyncio.sleep(0)
        await attacher
    finally:
        if not attacher.done():
            # Cancelled: nothing of this poll is published, and the poll is read again, whose attach
            # finds each message already attached.
            attacher.cancel()
    return outputs


async def route_message(event: MessageClassified, deps: Deps) -> list[CaseRouted]:
    """Attach one message to its case and hand the case to its queue."""
    (routed,) = await route_messages([event], deps)
    return routed


def rerouted_case(routing: str, case_id: str, to_queue: Queue) -> RoutedCase:
    """Rebuild a stored routing of the case as a hand-over to `to_queue`.

    The tags the case gave that routing (followed, escalated, reassigned) described it then, not now.
    """
    last = json.loads(routing)
    tags = [t for t in last.get("tags", []) if t not in CASE_TAGS] + [REASSIGNED]
    return RoutedCase.model_validate(
        {
            **last,
            "case_id": case_id,
            "is_new_case": False,
            "queue": to_queue,
            "skill_group": None,
            "rule": REASSIGNED,
            "tags": tags,
        }
    )


async def reroute(event: CaseActivityRecorded, deps: Deps) -> list[CaseRouted]:
    """Move a case to the queue a person chose and publish it there as a new routing."""
    activity = event.data
    assert activity.to_queue is not None
    moved = await deps.cases.reassign(activity.case_id, activity.to_queue, activity.activity_id, activity.at)
    if moved is None or moved.outcome == "unchanged":
        return []
    if moved.outcome == "moved":
        deps.on_rerouted(moved.from_queue, activity.to_queue)
    if moved.routing is None:
        log.warning(
            "case %s moved to %s but has no routing to publish again", activity.case_id, activity.to_queue
        )
        return []
    routed = rerouted_case(moved.routing, activity.case_id, activity.to_queue)
    return [
        CaseRouted(
            # Derived from the activity, so a redelivered reassignment publishes the same event again.
            id=derive_id(activity.activity_id, REASSIGNED),
            source=SOURCE,
            time=activity.at,
            subject=activity.case_id,
            partitionkey=activity.case_id,
            data=routed,
        )
    ]


async def apply_activity(event: CaseActivityRecorded, deps: Deps) -> list[CaseRouted]:
    """Keep the case's status in step with what the contact centre did."""
    activity = event.data
    if activity.type == "reassigned" and activity.to_queue is not None:
        return await reroute(event, deps)
    await deps.cases.record_activity(activity.case_id, activity.type, activity.at)
    return []


async def hand_off(
    events: list[CaseRouted], deps: Deps, traces: list[TraceContext | None] | None = None
) -> list[CaseRouted]:
    """Queue each routing for the contact centre's endpoint; the delivery itself happens elsewhere.

    Each delivery carries the trace context of the span that routed it (by default the current one), so
    the contact centre's endpoint receives the message's trace in `traceparent`.
    """
    if deps.handoff is not None and events:
        await deps.handoff.enqueue_many(events, traces or [current()] * len(events))
    return events


def handler_table(deps: Deps):
    """Map topics and event types to this service's handlers."""

    async def on_classified(events: Sequence[MessageClassified]) -> list[list[CaseRouted]]:
        routed = await route_messages(events, deps)
        traces = [
            context_of(event.id) for event, outputs in zip(events, routed, strict=True) for _ in outputs
        ]
        await hand_off([r for outputs in routed for r in outputs], deps, traces)
        return routed

    async def on_activity(event: CaseActivityRecorded) -> list[CaseRouted]:
        return await hand_off(await apply_activity(event, deps), deps)

    return {
        Topic.MESSAGES_CLASSIFIED.value: {event_type(MessageClassified): BatchHandler(on_classified)},
        Topic.CASES_ACTIVITY.value: {event_type(CaseActivityRecorded): on_activity},
    }
