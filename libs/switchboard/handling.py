"""What a handler is, for the bus and for the services: one event in, the events it causes out.

Kept apart from `bus.py` so that handler modules name these types without importing aiokafka.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from switchboard.contract import CloudEvent

Handler = Callable[[Any], Awaitable[Sequence[CloudEvent]]]


class DeadLetter(Exception):
    """A record that cannot be handled; it goes to the dead-letter topic with this reason."""

    def __init__(self, reason: str, error: BaseException | None = None):
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass(frozen=True)
class BatchHandler:
    """A handler that takes every event of its type in a poll at once.

    `handle` returns, for each event in order, the events it causes (or a `DeadLetter` for an event it
    refuses). Handling a poll in one call lets a service pay one Redis round trip (or one model
    inference) per poll instead of one per event. When the call fails with anything but a broker or
    Redis error, the bus calls `handle` again one event at a time, so only the failing event is
    dead-lettered; `handle` must therefore be idempotent, as every handler is.

    The bus knows which events each result belongs to, so each output carries the trace context of its
    own cause; during a call for several events no single trace is current (`switchboard.tracing`).
    """

    handle: Callable[[Sequence[Any]], Awaitable[Sequence[Sequence[CloudEvent] | DeadLetter]]]


# topic -> CloudEvents type -> handler
HandlerTable = Mapping[str, Mapping[str, Handler | BatchHandler]]
