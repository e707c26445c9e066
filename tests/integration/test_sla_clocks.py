"""SLA clocks through their life, with the real handlers and Redis and a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from redis.asyncio import Redis

from sla.handlers import Deps, fired_events, on_activity, on_routed, on_routed_many
from sla.policies import parse_policies
from sla.store import RedisCaseState, RedisTimerStore
from switchboard.contract import CaseActivity, CaseActivityRecorded, CaseRouted
from switchboard.testing import case_routed, support_classification

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # a Friday, 17:30 in Paris

POLICIES = """
calendars:
  paris-office:
    timezone: Europe/Paris
    hours: {mon-fri: "09:00-18:00", sat: "10:00-13:00"}
    holidays: FR
policies:
  - name: x-support
    match: {channel: x}
    first_response: 30m
    next_response: 1h
    resolution: 24h
    warn_at: [0.5, 0.8]
    escalate_after_breach: [15m, 1h]
  - name: email-office
    match: {channel: email}
    first_response: 1h
    calendar: paris-office
"""


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def handlers_with(policies_text: str, redis: Redis, key_prefix: str, clock: Clock) -> Deps:
    """The SLA handlers' dependencies: these policies, the real Redis under the test's prefix, the clock."""
    policies = parse_policies(policies_text)
    return Deps(
        timers=RedisTimerStore(redis, key_prefix),
        cases=RedisCaseState(redis, key_prefix),
        policies=lambda: policies,
        clock=clock,
    )


@pytest.fixture
def deps(redis: Redis, key_prefix: str, clock: Clock) -> Deps:
    return handlers_with(POLICIES, redis, key_prefix, clock)


def routed(case_id: str, *, new: bool = True, channel: str = "x") -> CaseRouted:
    return case_routed(
        case_id,
        message_id=f"{case_id}-{new}",
        channel=channel,
        external_id="1",
        visibility="public",
        is_new_case=new,
        message_created_at=START,
        classification=support_classification(language="fr"),
    )


def activity(case_id: str, kind: str, at: datetime) -> CaseActivityRecorded:
    data = CaseActivity(activity_id=f"{case_id}-{kind}-{at}", case_id=case_id, type=kind, at=at)
    return CaseActivityRecorded(source="test", subject=case_id, partitionkey=case_id, data=data)


async def fire(deps: Deps, at: datetime) -> list[tuple[str, str, float | int | None]]:
    claimed = await deps.timers.claim_due(at, 1000)
    await deps.timers.done([c.member for c in claimed])
    events = fired_events(claimed, at, deps.policies())
    return [(e.type.rsplit(".", 1)[1], e.data.clock, e.data.threshold or e.data.level) for e in events]


async def test_an_unanswered_case_warns_at_each_threshold_breaches_then_escalates(deps: Deps, clock: Clock):
    started = await on_routed(routed("c1"), deps)
    assert [(e.type, e.data.clock) for e in started] == [
        ("switchboard.sla.started", "first_response"),
        ("switchboard.sla.started", "resolution"),
    ]
    assert started[0].data.due_at == START + timedelta(minutes=30)
    assert await fire(deps, START + timedelta(minutes=14)) == []
    assert await fire(deps, START + timedelta(minutes=15)) == [("warning", "first_response", 0.5)]
    assert await fire(deps, START + timedelta(minutes=24)) == [("warning", "first_response", 0.8)]
    assert await fire(deps, START + timedelta(minutes=30)) == [("breached", "first_response", 1)]
    assert await fire(deps, START + timedelta(minutes=45)) == [("escalated", "first_response", 2)]
    assert await fire(deps, START + timedelta(minutes=90)) == [("escalated", "first_response", 3)]
    # Nothing fires twice.
    assert await fire(deps, START + timedelta(hours=3)) == []


async def test_a_response_stops_the_clock_and_the_next_customer_message_starts_next_response(
    deps: Deps, clock: Clock
):
    await on_routed(routed("c2"), deps)
    stopped = await on_activity(activity("c2", "responded", clock.advance(minutes=10)), deps)
    assert [(e.data.clock, e.data.reason, e.data.elapsed_seconds) for e in stopped] == [
        ("first_response", "responded", 600)
    ]
    assert await fire(deps, START + timedelta(hours=1)) == []
    clock.advance(minutes=5)
    restarted = await on_routed(routed("c2", new=False), deps)
    assert [e.data.clock for e in restarted] == ["next_response"]
    assert restarted[0].data.due_at == clock.now + timedelta(hours=1)
    # Another customer message while waiting for the answer does not restart anything.
    assert await on_routed(routed("c2", new=False), deps) == []


async def test_waiting_on_the_customer_pauses_resolution_and_their_reply_resumes_it(deps: Deps, clock: Clock):
    await on_routed(routed("c3"), deps)
    events = await on_activity(activity("c3", "waiting_on_customer", clock.advance(hours=2)), deps)
    assert {(e.data.clock, e.data.reason) for e in events} == {
        ("first_response", "waiting_on_customer"),
        ("resolution", "paused"),
    }
    clock.advance(hours=30)
    resumed = await on_routed(routed("c3", new=False), deps)
    resolution = next(e for e in resumed if e.data.clock == "resolution")
    # Two of its 24 hours were used before the pause: 22 remain from the customer's reply.
    assert resolution.data.elapsed_seconds == 2 * 3600
    assert resolution.data.due_at == clock.now + timedelta(hours=22)


async def test_a_reassignment_is_not_a_customer_message_and_starts_no_clock(deps: Deps, clock: Clock):
    await on_routed(routed("c8"), deps)
    await on_activity(activity("c8", "responded", clock.advance(minutes=5)), deps)
    moved = routed("c8", new=False)
    moved.data.rule = "reassigned"
    assert await on_routed(moved, deps) == []
    assert [e.data.clock for e in await on_routed(routed("c8", new=False), deps)] == ["next_response"]


async def test_resolving_stops_every_clock(deps: Deps, clock: Clock):
    await on_routed(routed("c4"), deps)
    stopped = await on_activity(activity("c4", "resolved", clock.advance(minutes=5)), deps)
    assert {e.data.clock for e in stopped} == {"first_response", "resolution"}
    assert await fire(deps, START + timedelta(days=3)) == []


async def test_business_hours_put_a_friday_evening_email_due_on_saturday_morning(deps: Deps):
    (started,) = await on_routed(routed("c5", channel="email"), deps)
    # Friday 17:30 Paris + 1 h of office time = Saturday 10:30 Paris (09:30 UTC).
    assert started.data.due_at == datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


async def test_an_answer_that_overtakes_the_routing_keeps_the_first_clock_from_starting(
    deps: Deps, clock: Clock
):
    assert await on_activity(activity("c6", "responded", clock.now), deps) == []
    started = await on_routed(routed("c6"), deps)
    assert [e.data.clock for e in started] == ["resolution"]


async def test_a_reopened_case_starts_its_clocks_again(deps: Deps, clock: Clock):
    await on_routed(routed("c7"), deps)
    await on_activity(activity("c7", "resolved", clock.advance(minutes=5)), deps)
    clock.advance(days=1)
    reopened = await on_activity(activity("c7", "reopened", clock.now), deps)
    assert {e.data.clock for e in reopened} == {"first_response", "resolution"}
    assert reopened[0].data.started_at == clock.now


async def test_an_activity_dated_far_ahead_or_before_the_clock_counts_only_the_time_that_passed(
    deps: Deps, clock: Clock
):
    await on_routed(routed("c9", channel="email"), deps)
    clock.advance(minutes=20)
    # Counting office hours up to year 9999 took the handler about 20 s, then overflowed the calendar.
    future = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    (stopped,) = await on_activity(activity("c9", "responded", future), deps)
    assert (stopped.data.reason, stopped.data.elapsed_seconds) == ("responded", 20 * 60)
    await on_routed(routed("c10", channel="email"), deps)
    # Year 1 at +14:00 is before year 1 in UTC: converting it overflowed; no time has passed at it.
    past = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    (stopped,) = await on_activity(activity("c10", "responded", past), deps)
    assert stopped.data.elapsed_seconds == 0


def _summary(outputs) -> list[list[tuple[str, str, str, str, datetime]]]:
    return [[(e.id, e.type, e.data.case_id, e.data.clock, e.data.due_at) for e in out] for out in outputs]


async def test_a_run_of_routings_gives_what_handling_them_one_at_a_time_gives(
    redis: Redis, key_prefix: str, clock: Clock
):
    # New cases opened together, a later message of one of them, a case no policy matches (chat), and a
    # redelivery of the whole run: the batch path must decide as the one-at-a-time path does.
    policies = parse_policies(POLICIES)

    def deps_under(prefix: str) -> Deps:
        return Deps(
            timers=RedisTimerStore(redis, prefix),
            cases=RedisCaseState(redis, prefix),
            policies=lambda: policies,
            clock=clock,
        )

    run = [
        routed("b1"),
        routed("b2", channel="email"),
        routed("b3", channel="chat"),
        routed("b1", new=False),
        routed("b4"),
    ]
    one_by_one, batched = deps_under(f"{key_prefix}single:"), deps_under(f"{key_prefix}batch:")
    expected = [await on_routed(event, one_by_one) for event in run]
    got = await on_routed_many(run, batched)
    assert _summary(got) == _summary(expected)
    # b1 and b4: first response and resolution; b2: its policy's first response; b3: no policy; b1's
    # later message: nothing, its first response still runs.
    assert [len(out) for out in got] == [2, 1, 0, 0, 2]
    # Redelivered after a crash: the same started events (same ids), nothing new started.
    assert _summary(await on_routed_many(run, batched)) == _summary(
        [await on_routed(event, one_by_one) for event in run]
    )
    assert await batched.timers.open_count() == await one_by_one.timers.open_count() == 5
    # The timers fire alike.
    at = START + timedelta(minutes=31)
    assert sorted(await fire(batched, at)) == sorted(await fire(one_by_one, at))


ESCALATION_POLICIES = """
policies:
  - name: marketing
    match: {queue: marketing}
    first_response: 24h
  - name: support
    match: {queue: customer-service}
    first_response: 30m
    next_response: 1h
    resolution: 8h
"""


@pytest.fixture
def escalating(redis: Redis, key_prefix: str, clock: Clock) -> Deps:
    """The SLA handlers with a marketing policy and a customer-service one."""
    return handlers_with(ESCALATION_POLICIES, redis, key_prefix, clock)


def in_queue(case_id: str, queue: str, *, new: bool, tags: list[str] | None = None) -> CaseRouted:
    return case_routed(
        case_id,
        message_id=f"{case_id}-{queue}-{new}",
        queue=queue,
        is_new_case=new,
        tags=tags or [],
        message_created_at=START,
    )


async def test_a_case_escalated_to_customer_service_runs_on_its_policy_from_then_on(
    escalating: Deps, clock: Clock
):
    deps = escalating
    opened = await on_routed(in_queue("c1", "marketing", new=True), deps)
    assert [(e.data.policy, e.data.clock) for e in opened] == [("marketing", "first_response")]
    clock.advance(minutes=10)

    escalation = in_queue("c1", "customer-service", new=False, tags=["complaint", "escalated"])
    moved = await on_routed(escalation, deps)

    assert [(e.type.rsplit(".", 1)[1], e.data.policy, e.data.clock, e.data.reason) for e in moved] == [
        ("stopped", "marketing", "first_response", "escalated"),
        ("started", "support", "first_response", None),
        ("started", "support", "resolution", None),
    ]
    # The support team's 30 minutes run from the escalation, not the marketing 24 hours from the opening.
    assert moved[1].data.due_at == clock.now + timedelta(minutes=30)
    assert (await deps.cases.get("c1"))["policy"] == "support"
    assert await fire(deps, clock.now + timedelta(minutes=30)) == [
        ("warning", "first_response", 0.8),
        ("breached", "first_response", 1),
    ]
    # Read again (a redelivery), the routing finds the case under its new policy and starts nothing.
    assert await on_routed(escalation, deps) == []


async def test_a_later_message_that_did_not_escalate_keeps_the_case_on_its_policy(escalating: Deps):
    deps = escalating
    await on_routed(in_queue("c1", "marketing", new=True), deps)
    # Only the escalated tag moves a case: this later message follows its case to marketing.
    assert await on_routed(in_queue("c1", "marketing", new=False, tags=["follow-case"]), deps) == []
    assert (await deps.cases.get("c1"))["policy"] == "marketing"


async def test_an_escalation_read_before_the_opening_leaves_the_case_on_its_new_policy(
    escalating: Deps, clock: Clock
):
    deps = escalating
    # The queue topics are read side by side: the escalation, on cases.customer-service, comes first.
    escalation = in_queue("c1", "customer-service", new=False, tags=["complaint", "escalated"])
    moved = await on_routed(escalation, deps)
    assert [(e.type.rsplit(".", 1)[1], e.data.policy, e.data.clock) for e in moved] == [
        ("started", "support", "first_response"),
        ("started", "support", "resolution"),
    ]

    opened = await on_routed(in_queue("c1", "marketing", new=True), deps)

    # The opening starts no marketing clock and does not put the case back under marketing's policy.
    assert {e.data.policy for e in opened} == {"support"}
    assert (await deps.cases.get("c1"))["policy"] == "support"
    assert (await deps.timers.running("c1", "first_response")).policy == "support"
