"""The SLA service's event handlers, its firing step, and their table.

Clocks per case: `first_response` from the case's opening until the contact centre responds;
`next_response` from a later customer message until the next response; `resolution` from the opening
until the case is resolved, paused while waiting on the customer. Targets, warnings, escalations and
business hours come from the first policy that matches the case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sla.policies import Policy, PolicySet
from sla.store import CaseState, Claimed, Firing, TimerStore
from switchboard.contract import (
    ESCALATED,
    REASSIGNED,
    CaseActivityRecorded,
    CaseRouted,
    CloudEvent,
    RoutedCase,
    SlaBreached,
    SlaClock,
    SlaEscalated,
    SlaStarted,
    SlaStopped,
    SlaTimer,
    SlaWarning,
    Topic,
    derive_id,
    event_type,
)
from switchboard.handling import BatchHandler
from switchboard.tracing import context_of

SOURCE = "switchboard/sla"
RESPONSE_CLOCKS: tuple[SlaClock, ...] = ("first_response", "next_response")
ALL_CLOCKS: tuple[SlaClock, ...] = ("first_response", "next_response", "resolution")


@dataclass(frozen=True)
class Deps:
    """What the SLA handlers need; `policies` returns the set in force (it can be reloaded)."""

    timers: TimerStore
    cases: CaseState
    policies: Callable[[], PolicySet]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    on_event: Callable[[CloudEvent], None] = lambda _e: None


def _timer_id(timer: SlaTimer) -> str:
    return f"{timer.case_id}|{timer.clock}|{timer.started_at.isoformat()}"


def _event(cls: type[CloudEvent], timer: SlaTimer, step: str) -> CloudEvent:
    return cls(
        id=derive_id(_timer_id(timer), step),
        source=SOURCE,
        subject=timer.case_id,
        partitionkey=timer.case_id,
        data=timer,
    )


def firings(policy: Policy, start: datetime, target: float, consumed: float = 0.0) -> list[Firing]:
    """List a clock's warnings, breach and escalations, in business time of the policy's calendar.

    `consumed` is business time the clock already ran before a pause; thresholds it passed then are
    not armed again.
    """
    calendar = policy.calendar
    due = calendar.add_business_time(start, max(0.0, target - consumed))
    out = [
        Firing(f"warning:{f:g}", calendar.add_business_time(start, f * target - consumed))
        for f in policy.warn_at
        if f * target > consumed
    ]
    out.append(Firing("breached", due))
    out += [
        Firing(f"escalated:{level}", calendar.add_business_time(due, delay))
        for level, delay in enumerate(policy.escalate_after_breach, start=2)
    ]
    return out


def _planned(
    deps: Deps, policy: Policy, state: dict[str, str], case_id: str, clock: SlaClock, consumed: float = 0.0
) -> tuple[SlaTimer, list[Firing]] | None:
    """Return the timer a clock starts now and its firings, or None when the policy has no such clock."""
    if clock not in policy.targets:
        return None
    now = deps.clock()
    target = policy.targets[clock]
    plan = firings(policy, now, target, consumed)
    timer = SlaTimer(
        case_id=case_id,
        clock=clock,
        policy=policy.name,
        queue=state["queue"],
        channel=state["channel"],
        priority=state["priority"],
        started_at=now,
        due_at=next(f.at for f in plan if f.kind == "breached"),
        target_seconds=target,
        elapsed_seconds=consumed,
    )
    return timer, plan


async def _started(deps: Deps, timer: SlaTimer, started: bool) -> list[CloudEvent]:
    """Return the SlaStarted of a timer the store started, or of the one already running in its place."""
    if started:
        return [_event(SlaStarted, timer, "started")]
    # Already running: maybe a redelivery whose first attempt stored the timer, then died before
    # publishing. The stored timer yields the same event id, so consumers drop the copy if it got out.
    running = await deps.timers.running(timer.case_id, timer.clock)
    return [_event(SlaStarted, running, "started")] if running else []


async def _start(
    deps: Deps,
    policy: Policy,
    state: dict[str, str],
    case_id: str,
    clock: SlaClock,
    *,
    first: bool,
    consumed: float = 0.0,
) -> list[CloudEvent]:
    planned = _planned(deps, policy, state, case_id, clock, consumed)
    if planned is None:
        return []
    timer, plan = planned
    return await _started(deps, timer, await deps.timers.start(timer, plan, first=first))


async def _stop(deps: Deps, case_id: str, clock: SlaClock, reason: str, at: datetime) -> list[CloudEvent]:
    timer = await deps.timers.stop(case_id, clock)
    if timer is None:
        return []
    # Time passes from the clock's start to the activity, at most until now: an activity dated before the
    # start (or before year 1 in UTC) counts nothing, one dated ahead counts no time that has not passed.
    at = max(timer.started_at, min(at, deps.clock()))
    policy = deps.policies().get(timer.policy)
    elapsed = policy.elapsed(timer.started_at, at) if policy else (at - timer.started_at).total_seconds()
    stopped = timer.model_copy(update={"reason": reason, "elapsed_seconds": timer.elapsed_seconds + elapsed})
    return [_event(SlaStopped, stopped, f"stopped/{reason}")]


def _policy_for(deps: Deps, state: dict[str, str]) -> Policy | None:
    return deps.policies().get(state["policy"])


def _state(policy: Policy, case: RoutedCase) -> dict[str, str]:
    return {
        "policy": policy.name,
        "queue": case.queue.value,
        "channel": case.channel.value,
        "priority": case.priority,
    }


async def on_routed_many(events: Sequence[CaseRouted], deps: Deps) -> list[list[CloudEvent]]:
    """Handle a run of routings in order, as `on_routed` handles each, and return each one's events.

    Consecutive new cases (most of the traffic) are opened together: their policies recorded in one
    round trip and all their clocks started in another. The other routings read what earlier ones
    stored, so they are handled one at a time, in order.
    """
    out: list[list[CloudEvent]] = []
    i = 0
    while i < len(events):
        j = i
        while j < len(events) and events[j].data.is_new_case:
            j += 1
        if j > i:
            out += await _open_cases(events[i:j], deps)
            i = j
        else:
            out.append(await on_routed(events[i], deps))
            i += 1
    return out


async def _open_cases(events: Sequence[CaseRouted], deps: Deps) -> list[list[CloudEvent]]:
    """Start the clocks of new cases, as `on_routed` does for each, in two round trips for them all."""
    policies = deps.policies()
    remembered: list[tuple[str, dict[str, str]]] = []
    planned: list[list[tuple[SlaTimer, list[Firing]]]] = []
    for event in events:
        case = event.data
        policy = policies.match(case)
        if policy is None:
            planned.append([])
            continue
        state = _state(policy, case)
        remembered.append((case.case_id, state))
        clocks = [_planned(deps, policy, state, case.case_id, c) for c in ("first_response", "resolution")]
        planned.append([c for c in clocks if c is not None])
    # The queue topics are read side by side, so the routing that escalated a case can be read before the
    # one that opened it: a case already recorded (under its new policy) keeps its record.
    await deps.cases.remember_many(remembered, keep_known=True)
    # Each timer keeps the trace of the routing that started it, for its firings.
    starts = [
        (timer, plan, context_of(event.id))
        for event, clocks in zip(events, planned, strict=True)
        for timer, plan in clocks
    ]
    started = iter(await deps.timers.start_many(starts, first=True))
    out: list[list[CloudEvent]] = []
    for clocks in planned:
        events_out: list[CloudEvent] = []
        for timer, _ in clocks:
            events_out += await _started(deps, timer, next(started))
        out.append(events_out)
    return out


async def on_routed(event: CaseRouted, deps: Deps) -> list[CloudEvent]:
    """Start a new case's clocks; on a later customer message, start next-response or resume resolution."""
    case = event.data
    if case.is_new_case:
        (opened,) = await _open_cases([event], deps)
        return opened
    if case.rule == REASSIGNED:
        # A person moved the case to another queue: no customer wrote, so no clock starts.
        return []
    state = await deps.cases.get(case.case_id)
    if ESCALATED in case.tags:
        escalated = await _escalate(deps, case, state)
        if escalated is not None:
            return escalated
    policy = _policy_for(deps, state) if state else None
    if state is None or policy is None:
        return []
    out: list[CloudEvent] = []
    consumed = await deps.cases.resume(case.case_id)
    if consumed is not None:
        out += await _start(deps, policy, state, case.case_id, "resolution", first=False, consumed=consumed)
    if not any([await deps.timers.running(case.case_id, c) for c in RESPONSE_CLOCKS]):
        out += await _start(deps, policy, state, case.case_id, "next_response", first=False)
    return out


async def _escalate(deps: Deps, case: RoutedCase, state: dict[str, str] | None) -> list[CloudEvent] | None:
    """Put a case the router moved to customer service under that queue's policy; None if it already is.

    A customer's message turned a marketing or review case into support: the response clocks of the old
    policy stop (reason `escalated`) and the new policy's first response and resolution clocks start now,
    for the team that has the case from now on. A redelivered routing finds the new policy recorded.
    """
    policy = deps.policies().match(case)
    if policy is None or (state is not None and state.get("policy") == policy.name):
        return None
    moved = _state(policy, case)
    await deps.cases.remember_many([(case.case_id, moved)])
    at = deps.clock()
    out: list[CloudEvent] = []
    for clock in RESPONSE_CLOCKS:
        out += await _stop(deps, case.case_id, clock, "escalated", at)
    out += await _start(deps, policy, moved, case.case_id, "first_response", first=False)
    if not await deps.timers.running(case.case_id, "resolution"):
        out += await _start(deps, policy, moved, case.case_id, "resolution", first=False)
    return out


async def on_activity(event: CaseActivityRecorded, deps: Deps) -> list[CloudEvent]:
    """Stop, pause or restart a case's clocks as the contact centre acts on it."""
    activity = event.data
    case_id, at, kind = activity.case_id, activity.at, activity.type
    out: list[CloudEvent] = []
    if kind == "responded":
        for clock in RESPONSE_CLOCKS:
            out += await _stop(deps, case_id, clock, "responded", at)
    elif kind == "resolved":
        for clock in ALL_CLOCKS:
            out += await _stop(deps, case_id, clock, "resolved", at)
        await deps.cases.resume(case_id)
    elif kind == "waiting_on_customer":
        for clock in RESPONSE_CLOCKS:
            out += await _stop(deps, case_id, clock, "waiting_on_customer", at)
        paused = await _stop(deps, case_id, "resolution", "paused", at)
        if paused:
            await deps.cases.pause(case_id, paused[0].data.elapsed_seconds)
        out += paused
    elif kind == "reopened":
        state = await deps.cases.get(case_id)
        policy = _policy_for(deps, state) if state else None
        if state and policy:
            out += await _start(deps, policy, state, case_id, "first_response", first=False)
            out += await _start(deps, policy, state, case_id, "resolution", first=False)
    return out


def fired_events(claimed: list[Claimed], now: datetime, policies: PolicySet) -> list[CloudEvent]:
    """Turn claimed due entries into warning, breach and escalation events; stopped timers yield none."""
    return [event for _, event in fired(claimed, now, policies)]


def fired(claimed: list[Claimed], now: datetime, policies: PolicySet) -> list[tuple[Claimed, CloudEvent]]:
    """Pair each claimed due entry with the event it fires; stopped timers yield none."""
    events: list[tuple[Claimed, CloudEvent]] = []
    for entry in claimed:
        timer = entry.timer
        if timer is None:
            continue
        policy = policies.get(timer.policy)
        ran = policy.elapsed(timer.started_at, now) if policy else (now - timer.started_at).total_seconds()
        elapsed = timer.elapsed_seconds + ran
        kind, _, arg = entry.kind.partition(":")
        if kind == "warning":
            data = timer.model_copy(update={"elapsed_seconds": elapsed, "threshold": float(arg)})
            events.append((entry, _event(SlaWarning, data, entry.kind)))
        elif kind == "breached":
            data = timer.model_copy(update={"elapsed_seconds": elapsed, "level": 1})
            events.append((entry, _event(SlaBreached, data, entry.kind)))
        elif kind == "escalated":
            data = timer.model_copy(update={"elapsed_seconds": elapsed, "level": int(arg)})
            events.append((entry, _event(SlaEscalated, data, entry.kind)))
    return events


def handler_table(deps: Deps):
    """Map topics and event types to this service's handlers."""

    async def routed(events: Sequence[CaseRouted]) -> list[list[CloudEvent]]:
        outs = await on_routed_many(events, deps)
        for out in outs:
            for e in out:
                deps.on_event(e)
        return outs

    async def activity(event: CaseActivityRecorded) -> list[CloudEvent]:
        out = await on_activity(event, deps)
        for e in out:
            deps.on_event(e)
        return out

    table = {event_type(CaseRouted): BatchHandler(routed)}
    return {
        Topic.CASES_CUSTOMER_SERVICE.value: table,
        Topic.CASES_MARKETING.value: table,
        Topic.CASES_REVIEW.value: table,
        Topic.CASES_ACTIVITY.value: {event_type(CaseActivityRecorded): activity},
    }
