"""Pure decisions: which queue a message goes to, and which SLA target a case gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from router.routing import decide
from sla.handlers import fired_events
from sla.policy import first_response_target
from sla.store import Claimed
from switchboard.contract import (
    Author,
    Classification,
    ClassifiedMessage,
    Message,
    Queue,
    RoutedCase,
    SlaTimer,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def classified(category="support", confidence=0.9, intent="delivery", complaint=False) -> ClassifiedMessage:
    message = Message(
        message_id="m",
        channel="x",
        external_id="1",
        conversation_id="c",
        author=Author(id="a"),
        text="t",
        created_at=NOW,
        received_at=NOW,
        visibility="public",
    )
    c = Classification(
        category=category,
        intent=intent,
        is_complaint=complaint,
        language="en",
        sentiment="neutral",
        sentiment_score=0.0,
        priority="P3",
        reply_privately=False,
        confidence=confidence,
        model_version="test",
    )
    return ClassifiedMessage(message=message, classification=c)


def case(
    queue=Queue.CUSTOMER_SERVICE, channel="x", complaint=False, priority="P3", visibility="public"
) -> RoutedCase:
    c = classified(complaint=complaint)
    return RoutedCase(
        case_id="c1",
        message_id="m",
        conversation_id="c",
        channel=channel,
        external_id="1",
        text="t",
        author=Author(id="a"),
        visibility=visibility,
        queue=queue,
        priority=priority,
        rule="r",
        is_new_case=True,
        message_created_at=NOW,
        classification=c.classification,
    )


def test_support_goes_to_customer_service_with_a_skill_group():
    decision = decide(classified("support"), review_threshold=0.6)
    assert decision.queue is Queue.CUSTOMER_SERVICE
    assert decision.skill_group == "delivery-en"


def test_marketing_goes_to_the_marketing_queue():
    assert decide(classified("marketing", intent="praise"), 0.6).queue is Queue.MARKETING


def test_an_unsure_decision_goes_to_human_triage_whatever_its_category():
    assert decide(classified("support", confidence=0.59), 0.6).queue is Queue.REVIEW
    assert decide(classified("marketing", confidence=0.5, intent="chatter"), 0.6).queue is Queue.REVIEW


def test_complaints_are_tagged():
    assert "complaint" in decide(classified(complaint=True), 0.6).tags


def test_x_support_must_be_answered_within_30_minutes():
    assert first_response_target(case(channel="x")).seconds == 1800


def test_a_public_facebook_complaint_gets_the_one_hour_complaint_target():
    target = first_response_target(case(channel="facebook", complaint=True))
    assert (target.policy, target.seconds) == ("complaint-public", 3600)


def test_a_private_complaint_keeps_its_channel_target():
    assert (
        first_response_target(case(channel="messenger", complaint=True, visibility="private")).seconds == 7200
    )


def test_a_p1_case_gets_the_urgent_target():
    assert first_response_target(case(channel="email", priority="P1")).policy == "urgent"


def test_marketing_cases_get_the_marketing_policy_and_the_scale_applies():
    target = first_response_target(case(queue=Queue.MARKETING), scale=0.5)
    assert (target.policy, target.seconds) == ("marketing-default", 12 * 3600)


def timer() -> SlaTimer:
    return SlaTimer(
        case_id="c1",
        clock="first_response",
        policy="x-support",
        queue=Queue.CUSTOMER_SERVICE,
        channel="x",
        priority="P3",
        started_at=NOW,
        due_at=NOW + timedelta(minutes=30),
        target_seconds=1800,
        elapsed_seconds=0,
    )


def test_due_entries_become_warning_and_breach_events_with_stable_ids():
    claimed = [
        Claimed("c1|first_response|warning", "warning", timer()),
        Claimed("c1|first_response|breached", "breached", timer()),
    ]
    now = NOW + timedelta(minutes=31)
    events = fired_events(claimed, now, 0.8)
    assert [e.type for e in events] == ["switchboard.sla.warning", "switchboard.sla.breached"]
    assert events[1].data.elapsed_seconds == 31 * 60
    assert events[0].data.threshold == 0.8
    assert [e.id for e in fired_events(claimed, now, 0.8)] == [e.id for e in events]


def test_a_stopped_timer_fires_nothing():
    assert fired_events([Claimed("c1|first_response|breached", "breached", None)], NOW, 0.8) == []
