"""Hand-off decisions, pure: the signature, what an answer means, when to try again, the dead-letter headers.

The contact centre receives each routed case as the CloudEvent JSON, signed with HMAC-SHA256 over the
exact body bytes. A 2xx answer delivers it; a 4xx other than 408 and 429 refuses it for good; anything
else (5xx, 408, 429, a timeout, a refused connection) is tried again after an exponentially growing,
fully jittered delay, or after the `Retry-After` the endpoint asked for when that is longer.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

CONTENT_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "X-Switchboard-Signature"
EVENT_ID_HEADER = "X-Switchboard-Event-Id"
ATTEMPT_HEADER = "X-Switchboard-Delivery-Attempt"
# The bus's dead-letter header prefix (switchboard.bus.DLQ_HEADER_PREFIX), repeated here so this module
# stays free of Kafka imports; a test keeps the two equal.
DLQ_HEADER_PREFIX = "switchboard.dlq."
DELIVERY_FAILED = "delivery_failed"
# Answers that say "not now" rather than "never".
RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})

Verdict = Literal["delivered", "retry", "reject"]


def sign(body: bytes, secret: bytes) -> str:
    """Return the signature header value of a body: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: bytes, signature: str) -> bool:
    """Tell whether a signature header value is the body's, in constant time (for receivers and tests)."""
    return hmac.compare_digest(sign(body, secret), signature)


def request_headers(event_id: str, attempt: int, body: bytes, secret: bytes) -> dict[str, str]:
    """Return the headers of one delivery attempt."""
    return {
        "Content-Type": CONTENT_TYPE,
        SIGNATURE_HEADER: sign(body, secret),
        EVENT_ID_HEADER: event_id,
        ATTEMPT_HEADER: str(attempt),
    }


def verdict(status: int | None) -> Verdict:
    """Say what an HTTP status means for a delivery; None stands for no answer (timeout, connection error)."""
    if status is None:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    if 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS:
        return "reject"
    return "retry"


def backoff_delay(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Return a delay drawn uniformly below `min(cap, base * 2**(attempt - 1))` (full jitter).

    Full jitter spreads the retries of many deliveries that failed together, so a recovering endpoint
    is not hit by all of them at once.
    """
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 60))
    return ceiling * rng()


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Read a `Retry-After` header (seconds or an HTTP date) as seconds from `now`; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Return the wait before the next attempt: the jittered backoff, or longer if the endpoint asked."""
    delay = backoff_delay(attempt, base, cap, rng)
    if retry_after is None:
        return delay
    # The endpoint's wish is honoured up to the cap, so a bogus header cannot park a delivery for days.
    return max(delay, min(retry_after, cap))


def dead_letter_headers(
    topic: str, error: str, group: str, attempts: int, at: datetime
) -> list[tuple[str, bytes]]:
    """Describe a delivery that gave up, in the headers the bus uses for its dead letters."""
    headers = {
        "reason": DELIVERY_FAILED,
        "error": error[:2000],
        "topic": topic,
        "group": group,
        "at": at.isoformat(),
        "attempts": str(attempts),
    }
    return [(DLQ_HEADER_PREFIX + k, v.encode()) for k, v in headers.items()]
