"""The HTTP answers every ingest route gives when messages could not be stored (yet)."""

from __future__ import annotations

from fastapi import HTTPException

from ingest.api import MessageIn, ahead_of
from ingest.gate import Gate, Outcome, Unavailable


def unavailable(retry_after_seconds: int, cause: Unavailable, what: str = "message") -> HTTPException:
    """Return the 503 that asks the sender to retry: the broker or the claim store did not answer."""
    return HTTPException(
        503,
        f"the {what} was not stored: {cause.reason}; retry later",
        headers={"Retry-After": str(retry_after_seconds)},
    )


async def store_or_refuse(
    gate: Gate, items: list[MessageIn], retry_after_seconds: int, what: str
) -> list[Outcome]:
    """Store messages through the gate; raise a 503 unless every one is now stored (or was already).

    A message written more than a day after now is refused (422) before anything is stored.
    """
    now = gate.clock()
    for item in items:
        reason = ahead_of(item.created_at, now)
        if reason is not None:
            gate.metrics.rejected.labels("invalid").inc()
            raise HTTPException(422, f"created_at {reason}")
    try:
        outcomes = await gate.accept(items) if items else []
    except Unavailable as exc:
        raise unavailable(retry_after_seconds, exc, what) from None
    if any(o.status == "retry" for o in outcomes):
        # Another delivery of the same message is being stored; its outcome is unknown, so ask for a retry.
        raise HTTPException(
            503, f"another request is storing the same {what}; retry", headers={"Retry-After": "1"}
        )
    return outcomes
