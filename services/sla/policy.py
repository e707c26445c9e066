"""Which SLA target applies to a routed case. Pure: no I/O, no clock.

The skeleton's policies are built in (the published norms: X within 30 minutes, Facebook within
2 hours, public complaints within the hour); the YAML policy file with business hours replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.contract import Queue, RoutedCase, SlaClock

FIRST_RESPONSE_SECONDS: dict[str, float] = {
    "x": 30 * 60,
    "facebook": 2 * 3600,
    "instagram": 2 * 3600,
    "messenger": 2 * 3600,
    "whatsapp": 3600,
    "chat": 5 * 60,
    "sms": 3600,
    "email": 24 * 3600,
    "review": 24 * 3600,
}
PUBLIC_COMPLAINT_SECONDS = 3600.0
URGENT_SECONDS = 15 * 60.0
MARKETING_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Target:
    """One clock to start: its policy name, which clock, and how long it runs."""

    policy: str
    clock: SlaClock
    seconds: float


def first_response_target(case: RoutedCase, scale: float = 1.0) -> Target:
    """Return the first-response target of a newly opened case."""
    if case.queue is Queue.MARKETING:
        return Target("marketing-default", "first_response", MARKETING_SECONDS * scale)
    seconds = FIRST_RESPONSE_SECONDS.get(case.channel.value, 24 * 3600.0)
    name = f"{case.channel.value}-support"
    if (
        case.classification.is_complaint
        and case.visibility == "public"
        and seconds > PUBLIC_COMPLAINT_SECONDS
    ):
        seconds, name = PUBLIC_COMPLAINT_SECONDS, "complaint-public"
    if case.priority == "P1" and seconds > URGENT_SECONDS:
        seconds, name = URGENT_SECONDS, "urgent"
    return Target(name, "first_response", seconds * scale)
