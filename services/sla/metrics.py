"""The SLA service's Prometheus metrics."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sla.policies import Policy
from switchboard.contract import CloudEvent, SlaTimer

# Business seconds: chat answers within minutes, email within a working day or two.
FIRST_RESPONSE_BUCKETS = (30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0)
RESOLUTION_BUCKETS = (900.0, 3600.0, 14400.0, 28800.0, 86400.0, 172800.0, 345600.0, 604800.0)
# The stop that completes a clock: an answer for the response clocks, the resolution for the resolution
# clock. Other stops (a pause, waiting on the customer, a case resolved before any answer) neither keep
# nor break the promise, so they are not counted as completed.
COMPLETED_BY = {"first_response": "responded", "next_response": "responded", "resolution": "resolved"}
OUTCOMES = ("within_target", "late")
# The timer's queue stands for the "category": it is what the router decided from it.
DURATION_LABELS = ["queue", "channel", "priority"]


def seconds_until(due: datetime | None, now: datetime) -> float:
    """Return the seconds from `now` to `due` (negative once it passed); NaN when nothing is due."""
    return math.nan if due is None else (due - now).total_seconds()


def outcome(timer: SlaTimer) -> str | None:
    """Say whether a stopped clock completed within its target or late; None when it did not complete."""
    if COMPLETED_BY.get(timer.clock) != timer.reason:
        return None
    return "within_target" if timer.elapsed_seconds <= timer.target_seconds else "late"


class SlaMetrics:
    """What ops watch about SLA clocks."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["clock", "policy"]
        self.started = Counter("switchboard_sla_clocks_started", "Clocks started.", labels, registry=registry)
        self.stopped = Counter(
            "switchboard_sla_clocks_stopped", "Clocks stopped.", [*labels, "reason"], registry=registry
        )
        self.completed = Counter(
            "switchboard_sla_clocks_completed",
            "Clocks stopped by an answer (response clocks) or the resolution, within target or late.",
            [*labels, "outcome"],
            registry=registry,
        )
        self.warnings = Counter("switchboard_sla_warnings", "Warnings fired.", labels, registry=registry)
        self.breaches = Counter("switchboard_sla_breaches", "Breaches fired.", labels, registry=registry)
        self.escalations = Counter(
            "switchboard_sla_escalations",
            "Escalations fired, by level.",
            [*labels, "level"],
            registry=registry,
        )
        self.reloads = Counter(
            "switchboard_sla_policy_reloads",
            "Policy file reloads, by outcome.",
            ["outcome"],
            registry=registry,
        )
        for result in ("loaded", "rejected"):
            self.reloads.labels(result)
        self.open_timers = Gauge("switchboard_sla_open_timers", "Clocks running now.", registry=registry)
        self.next_deadline = Gauge(
            "switchboard_sla_next_deadline_seconds",
            "Seconds until the earliest due warning, breach or escalation; NaN when none is due.",
            registry=registry,
        )
        # Unknown until the ticker has read Redis once: NaN, not a deadline 0 s away.
        self.next_deadline.set(math.nan)
        self.first_response = Histogram(
            "switchboard_sla_first_response_seconds",
            "Business seconds from a case's opening to the contact centre's first answer.",
            DURATION_LABELS,
            buckets=FIRST_RESPONSE_BUCKETS,
            registry=registry,
        )
        self.resolution = Histogram(
            "switchboard_sla_resolution_seconds",
            "Business seconds from a case's opening to its resolution, pauses excluded.",
            DURATION_LABELS,
            buckets=RESOLUTION_BUCKETS,
            registry=registry,
        )
        self.firing_lag = Histogram(
            "switchboard_sla_firing_lag_seconds",
            "How long after its due time a warning, breach or escalation was published.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0),
            registry=registry,
        )

    def declare(self, policies: Iterable[Policy]) -> None:
        """Create these policies' completed series at zero, so that their first increment is an increase."""
        for policy in policies:
            for clock in policy.targets:
                for result in OUTCOMES:
                    self.completed.labels(clock, policy.name, result)

    def observe(self, event: CloudEvent) -> None:
        """Count one SLA event."""
        timer = event.data
        kind = event.type.rsplit(".", 1)[1]
        if kind == "started":
            self.started.labels(timer.clock, timer.policy).inc()
        elif kind == "stopped":
            self.stopped.labels(timer.clock, timer.policy, timer.reason or "").inc()
            self._completed(timer)
        elif kind == "warning":
            self.warnings.labels(timer.clock, timer.policy).inc()
        elif kind == "breached":
            self.breaches.labels(timer.clock, timer.policy).inc()
        elif kind == "escalated":
            self.escalations.labels(timer.clock, timer.policy, str(timer.level)).inc()

    def _completed(self, timer: SlaTimer) -> None:
        result = outcome(timer)
        if result is None:
            return
        self.completed.labels(timer.clock, timer.policy, result).inc()
        elapsed = max(0.0, timer.elapsed_seconds)
        where = (timer.queue.value, timer.channel.value, timer.priority)
        if timer.clock == "first_response":
            self.first_response.labels(*where).observe(elapsed)
        elif timer.clock == "resolution":
            self.resolution.labels(*where).observe(elapsed)

    def deadline(self, due: datetime | None, now: datetime) -> None:
        """Report the earliest due entry (None: nothing due) as seconds from `now`."""
        self.next_deadline.set(seconds_until(due, now))
