"""The SLA service's durations, attainment and next-deadline metrics, with fake stores and a moved clock."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from sla.app import report_next_deadline, run_ticker
from sla.handlers import Deps, handler_table
from sla.metrics import SlaMetrics, outcome, seconds_until
from sla.policies import parse_policies
from sla.store import Claimed, Firing
from switchboard.contract import (
    CaseActivity,
    CaseActivityRecorded,
    CloudEvent,
    Queue,
    SlaStopped,
    SlaTimer,
    Topic,
    event_type,
)
from switchboard.testing import eventually

# A Friday, 17:30 in Paris: half an hour of office time left before the weekend.
START = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
POLICIES = parse_policies(
    """
calendars:
  paris-office: {timezone: Europe/Paris, hours: {mon-fri: "09:00-18:00", sat: "10:00-13:00"}}
policies:
  - name: email-office
    match: {channel: email}
    first_response: 1h
    resolution: 4h
    calendar: paris-office
  - name: x-support
    first_response: 30m
    next_response: 1h
"""
)


class FakeTimers:
    """Running timers in a dict and due entries in a list: the parts of TimerStore these tests reach."""

    def __init__(self) -> None:
        self.timers: dict[tuple[str, str], SlaTimer] = {}
        self.due: list[datetime] = []
        self.broken = False

    async def start(self, timer: SlaTimer, firings: list[Firing], first: bool = True) -> bool:
        self.timers[(timer.case_id, timer.clock)] = timer
        self.due += [f.at for f in firings]
        return True

    async def stop(self, case_id: str, clock: str) -> SlaTimer | None:
        return self.timers.pop((case_id, clock), None)

    async def running(self, case_id: str, clock: str) -> SlaTimer | None:
        return self.timers.get((case_id, clock))

    async def claim_due(self, now: datetime, limit: int) -> list[Claimed]:
        return []

    async def done(self, members: list[str]) -> None:
        return None

    async def release(self, claimed: list[Claimed]) -> None:
        return None

    async def requeue_stale(self, now: datetime, lease_seconds: float) -> int:
        return 0

    async def open_count(self) -> int:
        return len(self.timers)

    async def next_due(self) -> datetime | None:
        if self.broken:
            raise ConnectionError("redis is down")
        return min(self.due, default=None)


class FakeCases:
    async def remember_many(self, cases, *, keep_known: bool = False) -> None:
        return None

    async def get(self, case_id: str) -> dict[str, str] | None:
        return None

    async def pause(self, case_id: str, elapsed_seconds: float) -> None:
        return None

    async def resume(self, case_id: str) -> float | None:
        return None


class NoPublisher:
    async def publish(self, events: Sequence[CloudEvent], traces: Sequence[object] | None = None) -> None:
        raise AssertionError("nothing is due in these tests")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> SlaMetrics:
    return SlaMetrics(registry)


def timer(clock: str = "first_response", *, policy: str = "email-office", channel: str = "email") -> SlaTimer:
    return SlaTimer(
        case_id="case-1",
        clock=clock,
        policy=policy,
        queue=Queue.CUSTOMER_SERVICE,
        channel=channel,
        priority="P2",
        started_at=START,
        due_at=START + timedelta(hours=1),
        target_seconds=3600.0,
        elapsed_seconds=0.0,
    )


def stopped(clock: str, reason: str, elapsed: float, **kwargs: str) -> SlaStopped:
    data = timer(clock, **kwargs).model_copy(update={"reason": reason, "elapsed_seconds": elapsed})
    return SlaStopped(source="test", subject="case-1", partitionkey="case-1", data=data)


def activity(kind: str, at: datetime) -> CaseActivityRecorded:
    data = CaseActivity(activity_id=f"a-{kind}", case_id="case-1", type=kind, at=at)
    return CaseActivityRecorded(source="test", subject="case-1", partitionkey="case-1", data=data)


WHERE = {"queue": "customer-service", "channel": "email", "priority": "P2"}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_an_answer_within_target_is_timed_by_queue_channel_and_priority_and_counted_on_time(
    registry: CollectorRegistry, metrics: SlaMetrics
):
    metrics.observe(stopped("first_response", "responded", 1200.0))
    assert value(registry, "switchboard_sla_first_response_seconds_count", **WHERE) == 1
    assert value(registry, "switchboard_sla_first_response_seconds_sum", **WHERE) == 1200.0
    assert value(registry, "switchboard_sla_first_response_seconds_bucket", **WHERE, le="900.0") == 0
    assert value(registry, "switchboard_sla_first_response_seconds_bucket", **WHERE, le="1800.0") == 1
    done = {"clock": "first_response", "policy": "email-office"}
    assert value(registry, "switchboard_sla_clocks_completed_total", **done, outcome="within_target") == 1
    assert value(registry, "switchboard_sla_clocks_completed_total", **done, outcome="late") is None
    assert value(registry, "switchboard_sla_clocks_stopped_total", **done, reason="responded") == 1


def test_an_answer_after_the_target_counts_late_and_one_exactly_at_it_on_time(
    registry: CollectorRegistry, metrics: SlaMetrics
):
    metrics.observe(stopped("first_response", "responded", 3600.5))
    metrics.observe(stopped("first_response", "responded", 3600.0))
    done = {"clock": "first_response", "policy": "email-office"}
    assert value(registry, "switchboard_sla_clocks_completed_total", **done, outcome="late") == 1
    assert value(registry, "switchboard_sla_clocks_completed_total", **done, outcome="within_target") == 1
    assert value(registry, "switchboard_sla_first_response_seconds_count", **WHERE) == 2


def test_a_resolution_is_timed_in_the_resolution_histogram_not_the_first_response_one(
    registry: CollectorRegistry, metrics: SlaMetrics
):
    metrics.observe(stopped("resolution", "resolved", 20000.0))
    assert value(registry, "switchboard_sla_resolution_seconds_count", **WHERE) == 1
    assert value(registry, "switchboard_sla_resolution_seconds_bucket", **WHERE, le="28800.0") == 1
    assert value(registry, "switchboard_sla_resolution_seconds_bucket", **WHERE, le="14400.0") == 0
    assert value(registry, "switchboard_sla_first_response_seconds_count", **WHERE) is None
    done = {"clock": "resolution", "policy": "email-office"}
    assert value(registry, "switchboard_sla_clocks_completed_total", **done, outcome="late") == 1


def test_a_next_response_counts_towards_attainment_but_not_the_first_response_histogram(
    registry: CollectorRegistry, metrics: SlaMetrics
):
    metrics.observe(stopped("next_response", "responded", 10.0, policy="x-support", channel="x"))
    done = {"clock": "next_response", "policy": "x-support"}
    assert value(registry, "switchboard_sla_clocks_completed_total", **done, outcome="within_target") == 1
    assert (
        value(registry, "switchboard_sla_first_response_seconds_count", **{**WHERE, "channel": "x"}) is None
    )


@pytest.mark.parametrize(
    ("clock", "reason"),
    [
        ("resolution", "paused"),
        ("first_response", "waiting_on_customer"),
        ("first_response", "resolved"),
        ("next_response", "resolved"),
    ],
)
def test_stops_that_neither_answer_nor_resolve_are_not_timed_nor_counted_as_completed(
    registry: CollectorRegistry, metrics: SlaMetrics, clock: str, reason: str
):
    event = stopped(clock, reason, 10.0)
    assert outcome(event.data) is None
    metrics.observe(event)
    assert value(
        registry, "switchboard_sla_clocks_stopped_total", clock=clock, policy="email-office", reason=reason
    )
    for name in ("first_response", "resolution"):
        assert value(registry, f"switchboard_sla_{name}_seconds_count", **WHERE) is None
    for result in ("within_target", "late"):
        labels = {"clock": clock, "policy": "email-office", "outcome": result}
        assert value(registry, "switchboard_sla_clocks_completed_total", **labels) is None


def test_every_policy_clock_has_its_completed_series_at_zero_before_its_first_answer(
    registry: CollectorRegistry, metrics: SlaMetrics
):
    metrics.declare(POLICIES)
    declared = {
        (s.labels["clock"], s.labels["policy"], s.labels["outcome"]): s.value
        for family in registry.collect()
        if family.name == "switchboard_sla_clocks_completed"
        for s in family.samples
        if s.name.endswith("_total")
    }
    clocks = [("email-office", "first_response"), ("email-office", "resolution")]
    clocks += [("x-support", "first_response"), ("x-support", "next_response")]
    expected = {(c, p, o): 0.0 for p, c in clocks for o in ("within_target", "late")}
    assert declared == expected


async def test_an_answer_through_the_handlers_is_timed_in_business_seconds(
    registry: CollectorRegistry, metrics: SlaMetrics
):
    timers = FakeTimers()
    await timers.start(timer("first_response"), [])
    deps = Deps(timers=timers, cases=FakeCases(), policies=lambda: POLICIES, on_event=metrics.observe)
    handle = handler_table(deps)[Topic.CASES_ACTIVITY.value][event_type(CaseActivityRecorded)]
    # Answered Saturday 10:20 in Paris: 30 minutes on Friday and 20 on Saturday; the night does not count.
    (event,) = await handle(activity("responded", datetime(2026, 11, 21, 9, 20, tzinfo=UTC)))
    assert event.data.elapsed_seconds == 50 * 60
    assert value(registry, "switchboard_sla_first_response_seconds_sum", **WHERE) == 50 * 60
    done = {"clock": "first_response", "policy": "email-office", "outcome": "within_target"}
    assert value(registry, "switchboard_sla_clocks_completed_total", **done) == 1


def test_seconds_until_a_deadline_are_negative_once_it_passed_and_nan_without_one():
    assert seconds_until(START + timedelta(seconds=90), START) == 90
    assert seconds_until(START - timedelta(seconds=2), START) == -2
    assert math.isnan(seconds_until(None, START))


def test_the_next_deadline_is_unknown_until_the_ticker_has_read_it(registry: CollectorRegistry):
    SlaMetrics(registry)
    assert math.isnan(value(registry, "switchboard_sla_next_deadline_seconds"))


async def test_the_next_deadline_is_the_earliest_due_entry_and_unknown_when_redis_fails(
    registry: CollectorRegistry, metrics: SlaMetrics
):
    timers, clock = FakeTimers(), Clock()
    deps = Deps(timers=timers, cases=FakeCases(), policies=lambda: POLICIES, clock=clock)
    await report_next_deadline(timers, deps, metrics)
    assert math.isnan(value(registry, "switchboard_sla_next_deadline_seconds"))
    timers.due = [START + timedelta(seconds=300), START + timedelta(seconds=45)]
    await report_next_deadline(timers, deps, metrics)
    assert value(registry, "switchboard_sla_next_deadline_seconds") == 45
    clock.now = START + timedelta(seconds=50)
    await report_next_deadline(timers, deps, metrics)
    assert value(registry, "switchboard_sla_next_deadline_seconds") == -5
    timers.broken = True
    await report_next_deadline(timers, deps, metrics)
    assert math.isnan(value(registry, "switchboard_sla_next_deadline_seconds"))


async def test_the_ticker_reports_the_next_deadline_every_tick(
    registry: CollectorRegistry, metrics: SlaMetrics
):
    timers, clock = FakeTimers(), Clock()
    timers.due = [START + timedelta(seconds=120)]
    deps = Deps(timers=timers, cases=FakeCases(), policies=lambda: POLICIES, clock=clock)
    task = asyncio.create_task(run_ticker(timers, NoPublisher(), deps, metrics, 0.01))
    try:
        await eventually(lambda: value(registry, "switchboard_sla_next_deadline_seconds") == 120, 5)
        clock.now = START + timedelta(seconds=20)
        await eventually(lambda: value(registry, "switchboard_sla_next_deadline_seconds") == 100, 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
