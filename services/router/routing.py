"""Decide which queue a classified message goes to. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.contract import ClassifiedMessage, Priority, Queue


@dataclass(frozen=True)
class Decision:
    """Where a message goes and why."""

    queue: Queue
    rule: str
    skill_group: str | None = None
    priority: Priority | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def decide(classified: ClassifiedMessage, review_threshold: float) -> Decision:
    """Send unsure decisions to triage, support to customer service and the rest to marketing."""
    c = classified.classification
    tags = ("complaint",) if c.is_complaint else ()
    if c.confidence < review_threshold:
        return Decision(Queue.REVIEW, "low-confidence", None, c.priority, (*tags, "unsure"))
    if c.category == "support":
        return Decision(Queue.CUSTOMER_SERVICE, "support", f"{c.intent}-{c.language}", c.priority, tags)
    return Decision(Queue.MARKETING, "marketing", f"community-{c.language}", c.priority, tags)
