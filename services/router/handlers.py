"""The router's event handlers and their table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from router.rules import RuleSet
from router.store import CaseStore
from switchboard.contract import (
    CaseActivityRecorded,
    CaseRouted,
    MessageClassified,
    RoutedCase,
    Topic,
    derive_id,
    event_type,
)

SOURCE = "switchboard/router"


@dataclass(frozen=True)
class Deps:
    """What the router's handlers need."""

    cases: CaseStore
    rules: Callable[[], RuleSet]
    window_seconds: int
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    on_routed: Callable[[RoutedCase], None] = lambda _r: None


async def route_message(event: MessageClassified, deps: Deps) -> list[CaseRouted]:
    """Attach the message to its case and hand the case to its queue."""
    message = event.data.message
    classification = event.data.classification
    now = deps.clock()
    decision = deps.rules().decide(event.data, now)
    attached = await deps.cases.attach(message, decision, deps.window_seconds, now)
    routed = RoutedCase(
        case_id=attached.case_id,
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        channel=message.channel,
        external_id=message.external_id,
        text=message.text,
        author=message.author,
        visibility=message.visibility,
        queue=decision.queue,
        skill_group=decision.skill_group,
        priority=decision.priority or classification.priority,
        tags=list(decision.tags),
        rule=decision.rule,
        is_new_case=attached.is_new,
        message_created_at=message.created_at,
        classification=classification,
    )
    deps.on_routed(routed)
    return [
        CaseRouted(
            id=derive_id(event.id, "routed"),
            source=SOURCE,
            subject=attached.case_id,
            partitionkey=attached.case_id,
            data=routed,
        )
    ]


async def apply_activity(event: CaseActivityRecorded, deps: Deps) -> list[CaseRouted]:
    """Keep the case's status in step with what the contact centre did."""
    activity = event.data
    await deps.cases.record_activity(activity.case_id, activity.type, activity.at)
    return []


def handler_table(deps: Deps):
    """Map topics and event types to this service's handlers."""

    async def on_classified(event: MessageClassified) -> list[CaseRouted]:
        return await route_message(event, deps)

    async def on_activity(event: CaseActivityRecorded) -> list[CaseRouted]:
        return await apply_activity(event, deps)

    return {
        Topic.MESSAGES_CLASSIFIED.value: {event_type(MessageClassified): on_classified},
        Topic.CASES_ACTIVITY.value: {event_type(CaseActivityRecorded): on_activity},
    }
