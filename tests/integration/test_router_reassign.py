"""Re-routing: a person moves a case to another queue and the router publishes it there, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from router.handlers import Deps, apply_activity, route_message
from router.rules import SHIPPED_RULES, load_rules
from router.store import RedisCaseStore
from switchboard.contract import (
    CaseActivity,
    CaseActivityRecorded,
    MessageClassified,
    Queue,
    derive_id,
)
from switchboard.testing import said

pytestmark = pytest.mark.integration
# A Thursday at 11:00 in Paris: no after-hours rule applies.
NOW = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
RULES = load_rules(SHIPPED_RULES)


def classified(message_id: str, text: str, category: str, intent: str, conversation: str = "conv-1"):
    return said(message_id, text, category, intent, at=NOW, channel="instagram", conversation=conversation)


def praise(message_id: str = "m1", conversation: str = "conv-1") -> MessageClassified:
    return classified(message_id, "Love the new collection, bravo!", "marketing", "praise", conversation)


def reassigned(case_id: str, to_queue: Queue | None, activity_id: str = "act-1", minutes: int = 5):
    activity = CaseActivity(
        activity_id=activity_id,
        case_id=case_id,
        type="reassigned",
        at=NOW + timedelta(minutes=minutes),
        agent="community-manager",
        to_queue=to_queue,
    )
    return CaseActivityRecorded(source="test", subject=case_id, partitionkey=case_id, data=activity)


class Moves:
    """Records what the handler reports as re-routes."""

    def __init__(self) -> None:
        self.seen: list[tuple[Queue, Queue]] = []

    def __call__(self, source: Queue, target: Queue) -> None:
        self.seen.append((source, target))


@pytest.fixture
def moves() -> Moves:
    return Moves()


@pytest.fixture
def deps(redis: Redis, key_prefix: str, moves: Moves) -> Deps:
    return Deps(
        cases=RedisCaseStore(redis, key_prefix),
        rules=lambda: RULES,
        window_seconds=3600,
        clock=lambda: NOW,
        on_rerouted=moves,
    )


async def test_a_reassigned_case_is_published_to_its_new_queue_with_the_message_that_put_it_there(
    deps: Deps, moves: Moves
):
    (opened,) = await route_message(praise("m1"), deps)
    # A bare reply that, alone, would go to review: it follows its case and decided nothing.
    unsure = classified("m2", "done", "marketing", "chatter")
    unsure.data.classification = unsure.data.classification.model_copy(update={"confidence": 0.6})
    (follow_up,) = await route_message(unsure, deps)
    case_id = opened.data.case_id
    assert opened.data.queue == Queue.MARKETING and follow_up.data.case_id == case_id
    assert follow_up.data.rule == "follow-case"

    (event,) = await apply_activity(reassigned(case_id, Queue.CUSTOMER_SERVICE), deps)

    assert event.topic() == "cases.customer-service"
    assert event.id == derive_id("act-1", "reassigned")
    assert event.partitionkey == case_id
    routed = event.data
    # The person disagreed with what put the case in marketing: its opening message, not the reply.
    assert (routed.case_id, routed.message_id, routed.queue) == (case_id, "m1", Queue.CUSTOMER_SERVICE)
    assert routed.rule == "reassigned" and not routed.is_new_case and routed.skill_group is None
    assert routed.tags == ["reassigned"]
    assert routed.text == opened.data.text
    assert routed.classification == opened.data.classification
    assert moves.seen == [(Queue.MARKETING, Queue.CUSTOMER_SERVICE)]


async def test_a_case_moved_after_an_escalation_is_published_with_the_message_that_escalated_it(
    deps: Deps,
):
    (opened,) = await route_message(praise("m1"), deps)
    (problem,) = await route_message(classified("m2", "My parcel never arrived", "support", "delivery"), deps)
    await route_message(praise("m3"), deps)
    case_id = opened.data.case_id
    assert "escalated" in problem.data.tags

    (event,) = await apply_activity(reassigned(case_id, Queue.MARKETING), deps)

    assert (event.data.message_id, event.data.queue) == ("m2", Queue.MARKETING)
    assert event.data.tags == ["complaint", "reassigned"]


async def test_a_moved_case_changes_queue_in_redis_and_keeps_its_age(deps: Deps):
    (opened,) = await route_message(praise(), deps)
    case_id = opened.data.case_id
    before = await deps.cases.open_cases(Queue.MARKETING, 10)

    await apply_activity(reassigned(case_id, Queue.CUSTOMER_SERVICE), deps)

    case = await deps.cases.get(case_id)
    assert case["queue"] == "customer-service"
    assert case["skill_group"] == ""
    assert case["previous_queue"] == "marketing"
    assert await deps.cases.open_cases(Queue.MARKETING, 10) == []
    assert await deps.cases.open_cases(Queue.CUSTOMER_SERVICE, 10) == before


async def test_a_redelivered_reassignment_publishes_the_same_event_and_counts_one_move(
    deps: Deps, moves: Moves
):
    (opened,) = await route_message(praise(), deps)
    activity = reassigned(opened.data.case_id, Queue.CUSTOMER_SERVICE)
    first = await apply_activity(activity, deps)
    again = await apply_activity(activity, deps)
    assert [e.id for e in again] == [e.id for e in first]
    assert again[0].data == first[0].data
    assert len(moves.seen) == 1


async def test_a_reassignment_to_the_queue_the_case_is_in_publishes_nothing(deps: Deps, moves: Moves):
    (opened,) = await route_message(praise(), deps)
    assert await apply_activity(reassigned(opened.data.case_id, Queue.MARKETING), deps) == []
    assert moves.seen == []


async def test_a_case_moved_twice_ends_in_the_last_queue_and_each_move_is_published(deps: Deps, moves: Moves):
    (opened,) = await route_message(praise(), deps)
    case_id = opened.data.case_id
    (there,) = await apply_activity(reassigned(case_id, Queue.CUSTOMER_SERVICE, "act-1"), deps)
    (back,) = await apply_activity(reassigned(case_id, Queue.MARKETING, "act-2", minutes=9), deps)
    assert (there.data.queue, back.data.queue) == (Queue.CUSTOMER_SERVICE, Queue.MARKETING)
    assert there.id != back.id
    assert back.data.tags.count("reassigned") == 1
    assert moves.seen == [
        (Queue.MARKETING, Queue.CUSTOMER_SERVICE),
        (Queue.CUSTOMER_SERVICE, Queue.MARKETING),
    ]
    assert (await deps.cases.get(case_id))["queue"] == "marketing"


async def test_later_messages_of_a_moved_case_follow_it_to_its_new_queue(deps: Deps):
    (opened,) = await route_message(praise("m1"), deps)
    await apply_activity(reassigned(opened.data.case_id, Queue.CUSTOMER_SERVICE), deps)
    (later,) = await route_message(praise("m2"), deps)
    assert later.data.case_id == opened.data.case_id
    assert later.data.queue == Queue.CUSTOMER_SERVICE
    assert later.data.rule == "reassigned"


async def test_a_case_leaves_review_when_triage_hands_it_to_customer_service(deps: Deps):
    unsure = praise()
    unsure.data.classification.confidence = 0.2
    (opened,) = await route_message(unsure, deps)
    assert opened.data.queue == Queue.REVIEW
    (event,) = await apply_activity(reassigned(opened.data.case_id, Queue.CUSTOMER_SERVICE), deps)
    assert event.topic() == "cases.customer-service"
    assert await deps.cases.open_cases(Queue.REVIEW, 10) == []
    assert len(await deps.cases.open_cases(Queue.CUSTOMER_SERVICE, 10)) == 1


async def test_reassigning_an_unknown_case_publishes_nothing(deps: Deps, moves: Moves):
    assert await apply_activity(reassigned("no-such-case", Queue.MARKETING), deps) == []
    assert moves.seen == []


async def test_a_reassignment_without_a_target_queue_only_records_the_activity(deps: Deps):
    (opened,) = await route_message(praise(), deps)
    assert await apply_activity(reassigned(opened.data.case_id, None), deps) == []
    case = await deps.cases.get(opened.data.case_id)
    assert case["queue"] == "marketing"
    assert "reassigned_at" in case


async def test_a_resolved_case_moved_to_another_queue_is_open_there(deps: Deps):
    (opened,) = await route_message(praise(), deps)
    case_id = opened.data.case_id
    await deps.cases.record_activity(case_id, "resolved", NOW)
    await apply_activity(reassigned(case_id, Queue.CUSTOMER_SERVICE), deps)
    assert (await deps.cases.get(case_id))["status"] == "open"
    assert [c["case_id"] for c in await deps.cases.open_cases(Queue.CUSTOMER_SERVICE, 10)] == [case_id]
