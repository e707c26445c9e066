"""What a routing decision says: the queue, the rule that chose it, skill group, priority and tags."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.contract import Priority, Queue


@dataclass(frozen=True)
class Decision:
    """Where a message goes and why."""

    queue: Queue
    rule: str
    skill_group: str | None = None
    priority: Priority | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
