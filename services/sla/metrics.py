"""The SLA service's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from switchboard.contract import CloudEvent


class SlaMetrics:
    """What ops watch about SLA clocks."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["clock", "policy"]
        self.started = Counter("switchboard_sla_clocks_started", "Clocks started.", labels, registry=registry)
        self.stopped = Counter(
            "switchboard_sla_clocks_stopped", "Clocks stopped.", [*labels, "reason"], registry=registry
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
        for outcome in ("loaded", "rejected"):
            self.reloads.labels(outcome)
        self.open_timers = Gauge("switchboard_sla_open_timers", "Clocks running now.", registry=registry)
        self.firing_lag = Histogram(
            "switchboard_sla_firing_lag_seconds",
            "How long after its due time a warning, breach or escalation was published.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0),
            registry=registry,
        )

    def observe(self, event: CloudEvent) -> None:
        """Count one SLA event."""
        timer = event.data
        kind = event.type.rsplit(".", 1)[1]
        if kind == "started":
            self.started.labels(timer.clock, timer.policy).inc()
        elif kind == "stopped":
            self.stopped.labels(timer.clock, timer.policy, timer.reason or "").inc()
        elif kind == "warning":
            self.warnings.labels(timer.clock, timer.policy).inc()
        elif kind == "breached":
            self.breaches.labels(timer.clock, timer.policy).inc()
        elif kind == "escalated":
            self.escalations.labels(timer.clock, timer.policy, str(timer.level)).inc()
