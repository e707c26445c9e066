"""The SLA service's event handlers, its firing step, and their table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sla import policy
from sla.store import Claimed, TimerStore
from switchboard.contract import (
    CaseActivityRecorded,
    CaseRouted,
    CloudEvent,
    SlaBreached,
    SlaStarted,
    SlaStopped,
    SlaTimer,
    SlaWarning,
    Topic,
    derive_id,
    event_type,
)

SOURCE = "switchboard/sla"
# Activities that stop the first-response clock, and the reason recorded on the stop event.
STOPPING_ACTIVITIES = {"responded": "responded", "resolved": "resolved"}


@dataclass(frozen=True)
class Deps:
    """What the SLA handlers need."""

    timers: TimerStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    target_scale: float = 1.0
    warn_fraction: float = 0.8
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


async def start_clock(event: CaseRouted, deps: Deps) -> list[CloudEvent]:
    """Start the first-response clock of a newly opened case."""
    case = event.data
    if not case.is_new_case:
        return []
    target = policy.first_response_target(case, deps.target_scale)
    started = deps.clock()
    timer = SlaTimer(
        case_id=case.case_id,
        clock=target.clock,
        policy=target.policy,
        queue=case.queue,
        channel=case.channel,
        priority=case.priority,
        started_at=started,
        due_at=started + timedelta(seconds=target.seconds),
        target_seconds=target.seconds,
        elapsed_seconds=0.0,
    )
    warn_at = started + timedelta(seconds=target.seconds * deps.warn_fraction)
    if not await deps.timers.start(timer, warn_at):
        return []
    out = [_event(SlaStarted, timer, "started")]
    deps.on_event(out[0])
    return out


async def stop_clock(event: CaseActivityRecorded, deps: Deps) -> list[CloudEvent]:
    """Stop the first-response clock when the contact centre answered or resolved the case."""
    reason = STOPPING_ACTIVITIES.get(event.data.type)
    if reason is None:
        return []
    timer = await deps.timers.stop(event.data.case_id, "first_response")
    if timer is None:
        return []
    stopped = timer.model_copy(
        update={"reason": reason, "elapsed_seconds": (event.data.at - timer.started_at).total_seconds()}
    )
    out = [_event(SlaStopped, stopped, "stopped")]
    deps.on_event(out[0])
    return out


def fired_events(claimed: list[Claimed], now: datetime, warn_fraction: float) -> list[CloudEvent]:
    """Turn claimed due entries into warning and breach events; stopped timers yield nothing."""
    events: list[CloudEvent] = []
    for entry in claimed:
        if entry.timer is None:
            continue
        elapsed = (now - entry.timer.started_at).total_seconds()
        if entry.kind == "warning":
            timer = entry.timer.model_copy(update={"elapsed_seconds": elapsed, "threshold": warn_fraction})
            events.append(_event(SlaWarning, timer, f"warning/{warn_fraction}"))
        else:
            timer = entry.timer.model_copy(update={"elapsed_seconds": elapsed, "level": 1})
            events.append(_event(SlaBreached, timer, "breached"))
    return events


def handler_table(deps: Deps):
    """Map topics and event types to this service's handlers."""

    async def on_routed(event: CaseRouted) -> list[CloudEvent]:
        return await start_clock(event, deps)

    async def on_activity(event: CaseActivityRecorded) -> list[CloudEvent]:
        return await stop_clock(event, deps)

    routed = {event_type(CaseRouted): on_routed}
    return {
        Topic.CASES_CUSTOMER_SERVICE.value: routed,
        Topic.CASES_MARKETING.value: routed,
        Topic.CASES_REVIEW.value: routed,
        Topic.CASES_ACTIVITY.value: {event_type(CaseActivityRecorded): on_activity},
    }
