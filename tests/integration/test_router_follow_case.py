"""A case's later messages go where the case is; a support message moves a marketing or review case to
customer service. Against a real Redis: the move is the store's script, atomic with the attachment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from router.app import bundled_rules, create_app
from router.config import Settings
from router.handlers import Deps, apply_activity, route_message, route_messages
from router.metrics import RouterMetrics
from router.rules import SHIPPED_RULES, RuleSet, load_rules, parse_rules
from router.store import RedisCaseStore
from switchboard import testing
from switchboard.contract import (
    CaseActivity,
    CaseActivityRecorded,
    MessageClassified,
    Queue,
)

pytestmark = pytest.mark.integration
# A Thursday at 11:00 in Paris: no after-hours rule applies.
NOW = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
RULES = load_rules(SHIPPED_RULES)
PER_MESSAGE = parse_rules(
    SHIPPED_RULES.read_text().replace("\nfollow_the_case: true\n", "\nfollow_the_case: false\n")
)


def said(
    message_id: str, text: str, category: str, intent: str, confidence: float = 0.95
) -> MessageClassified:
    """A message of conversation conv-1 on X, classified as given."""
    return testing.said(message_id, text, category, intent, at=NOW, confidence=confidence)


def complaint(message_id: str) -> MessageClassified:
    return said(message_id, "My parcel never arrived and nobody answers", "support", "delivery")


def praise(message_id: str) -> MessageClassified:
    return said(message_id, "Love the new collection, bravo!", "marketing", "praise")


def bare(message_id: str) -> MessageClassified:
    """A bare reply the model leans marketing on, and is unsure of: it goes to review alone."""
    return said(message_id, "done", "marketing", "chatter", confidence=0.6)


class Routing:
    """Routes messages at a given time, with given rules, and counts them as the service does."""

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self.rules: RuleSet = RULES
        self.now = NOW
        self.registry = CollectorRegistry()
        metrics = RouterMetrics(self.registry)
        self.deps = Deps(
            cases=RedisCaseStore(redis, key_prefix),
            rules=lambda: self.rules,
            window_seconds=3600,
            clock=lambda: self.now,
            on_routed=metrics.observe,
            on_escalated=metrics.observe_escalation,
        )

    async def __call__(self, *events: MessageClassified):
        return [routed.data for (routed,) in await route_messages(list(events), self.deps)]

    def follow_ups(self, outcome: str) -> float:
        value = self.registry.get_sample_value("switchboard_router_follow_ups_total", {"outcome": outcome})
        assert value is not None
        return value

    def escalations(self, from_queue: str) -> float:
        value = self.registry.get_sample_value(
            "switchboard_router_cases_escalated_total", {"from_queue": from_queue}
        )
        assert value is not None
        return value


@pytest.fixture
def route(redis: Redis, key_prefix: str) -> Routing:
    return Routing(redis, key_prefix)


async def test_a_bare_reply_in_a_support_case_stays_with_customer_service(route: Routing):
    (opened,) = await route(complaint("m1"))
    assert opened.queue == Queue.CUSTOMER_SERVICE and opened.skill_group is not None

    (reply,) = await route(bare("m2"))

    assert reply.case_id == opened.case_id and not reply.is_new_case
    assert reply.queue == Queue.CUSTOMER_SERVICE
    assert reply.rule == "follow-case" and "follow-case" in reply.tags
    # The case's team keeps it: its skill group, not the one the reply alone would have had.
    assert reply.skill_group == opened.skill_group
    assert "unsure" in reply.tags  # what the classifier said stays visible
    assert route.follow_ups("followed_case") == 1 and route.follow_ups("escalated") == 0
    assert (await route.deps.cases.get(opened.case_id))["queue"] == "customer-service"


async def test_nothing_but_a_person_takes_a_case_away_from_customer_service(route: Routing):
    (opened,) = await route(complaint("m1"))
    (thanks,) = await route(praise("m2"))

    assert thanks.case_id == opened.case_id
    assert thanks.queue == Queue.CUSTOMER_SERVICE and thanks.rule == "follow-case"
    assert await route.deps.cases.open_cases(Queue.MARKETING, 10) == []


async def test_a_support_message_moves_a_marketing_case_to_customer_service_keeping_its_age(
    route: Routing,
):
    (opened,) = await route(praise("m1"))
    assert opened.queue == Queue.MARKETING
    [before] = await route.deps.cases.open_cases(Queue.MARKETING, 10)
    route.now = NOW + timedelta(minutes=7)

    (problem,) = await route(complaint("m2"))

    assert problem.queue == Queue.CUSTOMER_SERVICE and problem.case_id == opened.case_id
    assert "escalated" in problem.tags and problem.rule != "follow-case"
    case = await route.deps.cases.get(opened.case_id)
    assert case["queue"] == "customer-service"
    assert case["escalated_from"] == "marketing" and case["previous_queue"] == "marketing"
    assert case["skill_group"] == problem.skill_group
    assert await route.deps.cases.open_cases(Queue.MARKETING, 10) == []
    # It keeps its place by opening time: the SLA and the queue see a case 7 minutes old, not a new one.
    assert await route.deps.cases.open_cases(Queue.CUSTOMER_SERVICE, 10) == [before]
    assert route.follow_ups("escalated") == 1
    assert (route.escalations("marketing"), route.escalations("review")) == (1, 0)

    # From then on the case is customer service's: a later thank-you follows it there.
    (thanks,) = await route(praise("m3"))
    assert thanks.queue == Queue.CUSTOMER_SERVICE and thanks.rule == "follow-case"


async def test_a_review_case_is_settled_by_a_support_message_not_by_a_marketing_one(route: Routing):
    (opened,) = await route(bare("m1"))
    assert opened.queue == Queue.REVIEW

    (praised,) = await route(praise("m2"))
    assert praised.queue == Queue.REVIEW and praised.rule == "follow-case"

    (problem,) = await route(complaint("m3"))
    assert problem.queue == Queue.CUSTOMER_SERVICE and "escalated" in problem.tags
    case = await route.deps.cases.get(opened.case_id)
    assert case["queue"] == "customer-service" and case["escalated_from"] == "review"
    assert (route.escalations("marketing"), route.escalations("review")) == (0, 1)
    assert await route.deps.cases.open_cases(Queue.REVIEW, 10) == []


async def test_messages_of_one_poll_see_the_escalation_of_the_one_before(route: Routing):
    opened, problem, reply = await route(praise("m1"), complaint("m2"), bare("m3"))

    assert opened.is_new_case and opened.queue == Queue.MARKETING
    assert problem.queue == Queue.CUSTOMER_SERVICE and "escalated" in problem.tags
    assert reply.queue == Queue.CUSTOMER_SERVICE and reply.rule == "follow-case"
    assert len({opened.case_id, problem.case_id, reply.case_id}) == 1


async def test_a_case_a_person_moved_stays_where_they_put_it(route: Routing):
    (opened,) = await route(complaint("m1"))
    moved = CaseActivity(
        activity_id="act-1",
        case_id=opened.case_id,
        type="reassigned",
        at=NOW + timedelta(minutes=1),
        agent="supervisor",
        to_queue=Queue.MARKETING,
    )
    await apply_activity(
        CaseActivityRecorded(source="test", subject=opened.case_id, partitionkey=opened.case_id, data=moved),
        route.deps,
    )

    (again,) = await route(complaint("m2"))

    assert again.queue == Queue.MARKETING and again.rule == "reassigned"
    assert (await route.deps.cases.get(opened.case_id))["queue"] == "marketing"
    assert route.follow_ups("reassigned") == 1 and route.follow_ups("escalated") == 0


async def test_a_resolved_marketing_case_reopened_by_a_complaint_reopens_in_customer_service(
    route: Routing,
):
    (opened,) = await route(praise("m1"))
    resolved = CaseActivity(
        activity_id="act-1", case_id=opened.case_id, type="resolved", at=NOW + timedelta(minutes=1)
    )
    await apply_activity(
        CaseActivityRecorded(
            source="test", subject=opened.case_id, partitionkey=opened.case_id, data=resolved
        ),
        route.deps,
    )
    assert await route.deps.cases.open_cases(Queue.MARKETING, 10) == []

    (problem,) = await route(complaint("m2"))

    assert problem.queue == Queue.CUSTOMER_SERVICE and "escalated" in problem.tags
    case = await route.deps.cases.get(opened.case_id)
    assert (case["status"], case["queue"]) == ("open", "customer-service")
    assert [c["case_id"] for c in await route.deps.cases.open_cases(Queue.CUSTOMER_SERVICE, 10)] == [
        opened.case_id
    ]
    assert await route.deps.cases.open_cases(Queue.MARKETING, 10) == []


async def test_with_follow_the_case_off_every_message_goes_where_it_alone_would(route: Routing):
    route.rules = PER_MESSAGE
    assert not PER_MESSAGE.follow_the_case and PER_MESSAGE.describe()["follow_the_case"] is False

    opened, problem, reply = await route(praise("m1"), complaint("m2"), bare("m3"))

    assert [opened.queue, problem.queue, reply.queue] == [
        Queue.MARKETING,
        Queue.CUSTOMER_SERVICE,
        Queue.REVIEW,
    ]
    assert "escalated" not in problem.tags and reply.rule != "follow-case"
    assert (await route.deps.cases.get(opened.case_id))["queue"] == "marketing"
    assert route.follow_ups("own_queue") == 2


async def test_a_redelivered_escalating_message_is_routed_as_an_escalation_again(route: Routing):
    await route(praise("m1"))
    (first,) = await route(complaint("m2"))
    # Read again, as after a router that attached it and died before publishing: the SLA service must
    # still learn that the case moved, so the routing says so again.
    (again,) = await route_message(complaint("m2"), route.deps)

    assert again.data.case_id == first.case_id
    assert again.data.queue == first.queue == Queue.CUSTOMER_SERVICE
    assert again.data.tags == first.tags and "escalated" in first.tags
    # A later message is no escalation, though the case was escalated.
    (later,) = await route(complaint("m3"))
    assert "escalated" not in later.tags


@pytest.mark.parametrize("opener", [complaint, praise, bare])
@pytest.mark.parametrize("later", [complaint, praise, bare])
async def test_the_dry_run_routes_a_later_message_as_the_router_does(
    route: Routing, tmp_path: Path, opener, later
):
    (opened,) = await route(opener("m1"))
    event = later("m2")
    (routed,) = await route(event)

    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(bundled_rules())
    app = create_app(Settings(rules_file=str(rules_file)))
    sample = {
        "channel": "x",
        "text": event.data.message.text,
        "classification": event.data.classification.model_dump(mode="json"),
        "at": NOW.isoformat(),
        "case_queue": opened.queue.value,
        "case_skill_group": opened.skill_group,
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router") as client:
        response = await client.post("/v1/rules/test", json=sample)
    assert response.status_code == 200, response.text
    dry = response.json()

    assert (dry["queue"], dry["rule"], dry["skill_group"], "escalated" in dry["tags"]) == (
        routed.queue.value,
        routed.rule,
        routed.skill_group,
        "escalated" in routed.tags,
    )
