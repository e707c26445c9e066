"""Pure decisions: which queue a message goes to."""

from __future__ import annotations

from datetime import UTC, datetime

from router.routing import decide
from switchboard.contract import (
    Author,
    Classification,
    ClassifiedMessage,
    Message,
    Queue,
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
