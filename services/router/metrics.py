"""The router's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from switchboard.contract import RoutedCase


class RouterMetrics:
    """What ops watch about routing."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.routed = Counter(
            "switchboard_router_cases_routed",
            "Messages handed to a queue, by queue, channel and category.",
            ["queue", "channel", "category"],
            registry=registry,
        )
        self.opened = Counter(
            "switchboard_router_cases_opened",
            "Cases opened, by queue and priority.",
            ["queue", "priority"],
            registry=registry,
        )

        self.reloads = Counter(
            "switchboard_router_rules_reloads",
            "Routing-rule file reloads, by outcome.",
            ["outcome"],
            registry=registry,
        )

        for outcome in ("loaded", "rejected"):
            self.reloads.labels(outcome)

    def observe(self, routed: RoutedCase) -> None:
        """Count one routing."""
        self.routed.labels(routed.queue.value, routed.channel.value, routed.classification.category).inc()
        if routed.is_new_case:
            self.opened.labels(routed.queue.value, routed.priority).inc()
