"""The router's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from switchboard.contract import ESCALATED, FOLLOW_CASE, REASSIGNED, Queue, RoutedCase
from switchboard.metrics import Children

# An attempt is bounded by ROUTER_HANDOFF_TIMEOUT_SECONDS (10 s by default); the top buckets show it.
HANDOFF_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HANDOFF_OUTCOMES = ("delivered", "retried", "dead_lettered", "rejected")
# What happened to a later message of a case: it went where it alone would go (own_queue), where its case
# is (followed_case), moved its case to customer service (escalated), or where a person put the case.
FOLLOW_UP_OUTCOMES = ("own_queue", "followed_case", "escalated", "reassigned")


class RouterMetrics:
    """What ops watch about routing."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._children = Children()
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
        self.linked = Counter(
            "switchboard_router_cases_linked",
            "Messages that joined an open case of another conversation through an identifier, by channel.",
            ["channel"],
            registry=registry,
        )
        self.follow_ups = Counter(
            "switchboard_router_follow_ups",
            "Later messages of an open case, by what decided their queue: their own routing (own_queue), "
            "their case's queue (followed_case), moving the case to customer service (escalated) or a "
            "person's reassignment (reassigned).",
            ["outcome"],
            registry=registry,
        )
        self.escalated = Counter(
            "switchboard_router_cases_escalated",
            "Cases a customer's later message moved to customer service, by the queue they left.",
            ["from_queue"],
            registry=registry,
        )
        self.rerouted = Counter(
            "switchboard_router_cases_rerouted",
            "Cases a person moved to another queue, by the queue they left and the one they joined.",
            ["from_queue", "to_queue"],
            registry=registry,
        )
        self.handoffs = Counter(
            "switchboard_router_handoff_deliveries",
            "Hand-off attempts to the contact centre, by queue and outcome.",
            ["queue", "outcome"],
            registry=registry,
        )
        self.handoff_seconds = Histogram(
            "switchboard_router_handoff_duration_seconds",
            "Duration of one hand-off attempt, answer or not.",
            ["queue"],
            buckets=HANDOFF_BUCKETS,
            registry=registry,
        )
        self.open_cases = Gauge(
            "switchboard_router_open_cases",
            "Cases open in each queue, across every router.",
            ["queue"],
            registry=registry,
        )
        self.oldest_open_age = Gauge(
            "switchboard_router_oldest_open_case_age_seconds",
            "Age of the oldest open case of each queue (0 when the queue is empty).",
            ["queue"],
            registry=registry,
        )
        self.handoff_pending = Gauge(
            "switchboard_router_handoff_pending",
            "Hand-offs waiting or in flight, across every router instance.",
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
        for outcome in FOLLOW_UP_OUTCOMES:
            self.follow_ups.labels(outcome)
        for queue in (Queue.MARKETING, Queue.REVIEW):
            self.escalated.labels(queue.value)
        for queue in Queue:
            for outcome in HANDOFF_OUTCOMES:
                self.handoffs.labels(queue.value, outcome)
        for source in Queue:
            for target in Queue:
                if source != target:
                    self.rerouted.labels(source.value, target.value)

    def observe(self, routed: RoutedCase) -> None:
        """Count one routing."""
        child = (routed.queue.value, routed.channel.value, routed.classification.category)
        self._children(self.routed, child).inc()
        if routed.is_new_case:
            self._children(self.opened, (routed.queue.value, routed.priority)).inc()
        else:
            self._children(self.follow_ups, (_follow_up_outcome(routed.rule, routed.tags),)).inc()

    def observe_link(self, routed: RoutedCase) -> None:
        """Count one message linked to a case of another conversation."""
        self.linked.labels(routed.channel.value).inc()

    def observe_escalation(self, from_queue: Queue) -> None:
        """Count one case a message moved to customer service."""
        self.escalated.labels(from_queue.value).inc()

    def observe_reroute(self, from_queue: Queue, to_queue: Queue) -> None:
        """Count one case moved between queues."""
        self.rerouted.labels(from_queue.value, to_queue.value).inc()


def _follow_up_outcome(rule: str, tags: list[str]) -> str:
    """Tell what decided a later message's queue, from its routing's rule and tags (see handlers)."""
    if rule == REASSIGNED:
        return "reassigned"
    if rule == FOLLOW_CASE:
        return "followed_case"
    return "escalated" if ESCALATED in tags else "own_queue"
