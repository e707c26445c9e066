"""W3C Trace Context for Switchboard: parse and format `traceparent`, derive child contexts, carry them.

A trace context travels with each message from the HTTP request that brought it to its SLA events, in
Kafka record headers (`traceparent`, and `tracestate` when the caller sent one). The format is small and
the bus handles it for every record, so it is implemented here rather than through OpenTelemetry's
propagators: without an exporter configured, no OpenTelemetry code runs at all (see `switchboard.otel`).

The context of the work in hand (an HTTP request, an event being handled) is in a context variable, so
log lines carry its trace id and stores can keep it for later (the SLA timers do), while handlers never
deal with tracing.
"""

from __future__ import annotations

import os
import random
import re
import time
from binascii import hexlify
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from contextvars import ContextVar, Token
from typing import Any, Literal, Protocol

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
SAMPLED = 0x01
VERSION = "00"
ZERO_TRACE_ID = "0" * 32
ZERO_SPAN_ID = "0" * 16
# Vendors must propagate at least 512 characters of `tracestate`; a longer one may be dropped whole.
MAX_TRACESTATE = 512

# version-trace_id-parent_id-flags, lowercase hex only. A version other than 00 may append fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# What Switchboard itself writes, checked without decoding: the bus reads one per record.
_VERSION_00 = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE_ID_BYTES = ZERO_TRACE_ID.encode()
_ZERO_SPAN_ID_BYTES = ZERO_SPAN_ID.encode()
# One list member: a key (simple or tenant@system) `=` a value of printable ASCII but `,` and `=`.
_MEMBER = re.compile(
    r"(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)
_MAX_MEMBERS = 32

# Ids need to be unique, not secret: a private generator seeded from the OS, so that code which seeds the
# `random` module (tests, simulations) cannot make two processes draw the same ids.
_ids = random.Random(os.urandom(32))

SpanKind = Literal["server", "consumer", "producer", "internal"]


def parse_traceparent(value: str | bytes | None) -> tuple[str, str, int] | None:
    """Return (trace id, parent id, flags) of a `traceparent` value, or None when it is not valid.

    Version 00 is exactly 55 characters. A higher version (01 to fe) is read as far as version 00
    defines it, as the W3C recommendation asks: its trace id, parent id and sampled flag, provided any
    further content starts with `-`. Version ff, uppercase hex and all-zero ids are invalid.
    """
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = value.decode("latin-1")
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == VERSION:
        if len(value) != 55:
            return None
        trace_flags = int(flags, 16)
    elif version == "ff" or (len(value) > 55 and value[55] != "-"):
        return None
    else:
        # Only the sampled flag is known for what a later version means by its flags.
        trace_flags = int(flags, 16) & SAMPLED
    if trace_id == ZERO_TRACE_ID or parent_id == ZERO_SPAN_ID:
        return None
    return trace_id, parent_id, trace_flags


def format_traceparent(trace_id: str, span_id: str, flags: int = SAMPLED) -> str:
    """Return the version 00 `traceparent` value of a trace id, a span id and flags."""
    return f"{VERSION}-{trace_id}-{span_id}-{flags:02x}"


def valid_tracestate(value: str) -> bool:
    """Tell whether a `tracestate` value is a list of 1 to 32 well-formed members, in 512 characters."""
    if len(value) > MAX_TRACESTATE:
        return False
    members = [m.strip(" \t") for m in value.split(",")]
    members = [m for m in members if m]
    return 0 < len(members) <= _MAX_MEMBERS and all(_MEMBER.fullmatch(m) for m in members)


def _new_span_bytes() -> bytes:
    while True:
        span = hexlify(_ids.getrandbits(64).to_bytes(8, "big"))
        if span != _ZERO_SPAN_ID_BYTES:
            return span


def new_span_id() -> str:
    """Return a random, non-zero span id (16 lowercase hex digits)."""
    return _new_span_bytes().decode()


def _new_trace_bytes() -> bytes:
    while True:
        trace = hexlify(_ids.getrandbits(128).to_bytes(16, "big"))
        if trace != _ZERO_TRACE_ID_BYTES:
            return trace


def new_trace_id() -> str:
    """Return a random, non-zero trace id (32 lowercase hex digits)."""
    return _new_trace_bytes().decode()


class TraceContext:
    """A span's place in a trace: what goes in `traceparent` (and `tracestate`) for what it causes.

    `parent_id` is the span this one continues (None for the root of a trace, or for a context read
    from a record, whose parent is not known). `headers` are the Kafka record headers of the events this
    span publishes, built once. The bus makes one of these per record, so it is kept as the header bytes,
    and the ids are read from them only when asked for.
    """

    __slots__ = ("_parent", "_state", "headers", "raw")

    def __init__(
        self,
        trace_id: str,
        span_id: str,
        flags: int = SAMPLED,
        state: str | None = None,
        parent_id: str | None = None,
    ) -> None:
        self._set(
            f"{VERSION}-{trace_id}-{span_id}-{flags:02x}".encode(),
            state.encode() if state else None,
            parent_id.encode() if parent_id else None,
        )

    def _set(self, raw: bytes, state: bytes | None, parent: bytes | None) -> None:
        self.raw = raw
        self._state = state
        self._parent = parent
        self.headers: tuple[tuple[str, bytes], ...] = (
            ((TRACEPARENT, raw), (TRACESTATE, state)) if state else ((TRACEPARENT, raw),)
        )

    @classmethod
    def _of(cls, raw: bytes, state: bytes | None, parent: bytes | None) -> TraceContext:
        # From a version 00 `traceparent` already checked, without formatting it again.
        context = object.__new__(cls)
        context._set(raw, state, parent)
        return context

    @property
    def traceparent(self) -> str:
        """Return the `traceparent` value of this span (version 00)."""
        return self.raw.decode()

    @property
    def trace_id(self) -> str:
        """Return the trace id, 32 lowercase hex digits."""
        return self.raw[3:35].decode()

    @property
    def span_id(self) -> str:
        """Return this span's id, 16 lowercase hex digits."""
        return self.raw[36:52].decode()

    @property
    def flags(self) -> int:
        """Return the trace flags."""
        return int(self.raw[53:55], 16)

    @property
    def state(self) -> str | None:
        """Return the `tracestate` passed along, if any."""
        return self._state.decode("latin-1") if self._state else None

    @property
    def parent_id(self) -> str | None:
        """Return the id of the span this one continues, when known."""
        return self._parent.decode() if self._parent else None

    @property
    def sampled(self) -> bool:
        """Tell whether the caller asked for this trace to be recorded."""
        return bool(self.flags & SAMPLED)

    def child(self) -> TraceContext:
        """Return a new span of the same trace whose parent is this one."""
        raw = self.raw
        return TraceContext._of(raw[:36] + _new_span_bytes() + raw[52:], self._state, raw[36:52])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TraceContext):
            return NotImplemented
        return (self.raw, self._state, self._parent) == (other.raw, other._state, other._parent)

    def __hash__(self) -> int:
        return hash((self.raw, self._state, self._parent))

    def __repr__(self) -> str:
        state = f", state={self.state!r}" if self._state else ""
        return f"TraceContext({self.traceparent!r}{state}, parent_id={self.parent_id!r})"


def new_trace(state: str | None = None) -> TraceContext:
    """Start a new trace, sampled: its root span."""
    raw = b"00-" + _new_trace_bytes() + b"-" + _new_span_bytes() + b"-01"
    return TraceContext._of(raw, state.encode() if state else None, None)


def extract(traceparent: str | bytes | None, tracestate: str | bytes | None = None) -> TraceContext | None:
    """Return the context a caller sent (its span is the caller's), or None when `traceparent` is invalid.

    A `tracestate` that is malformed or too long is dropped; without a valid `traceparent` it is ignored.
    """
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return None
    state: str | None = None
    if tracestate:
        text = tracestate.decode("latin-1") if isinstance(tracestate, bytes) else tracestate
        state = text.strip(" \t") if valid_tracestate(text) else None
    trace_id, span_id, flags = parsed
    return TraceContext(trace_id, span_id, flags, state)


def _sent_in(headers: Iterable[tuple[str, bytes]] | None) -> tuple[bytes, bytes | None] | None:
    """Return a record's `traceparent` as version 00 bytes (checked) and its `tracestate`, or None."""
    traceparent = tracestate = None
    for key, value in headers or ():
        if key == TRACEPARENT:
            traceparent = value
        elif key == TRACESTATE:
            tracestate = value
    if not traceparent:
        return None
    # Written by a producer, not typed by a caller: `tracestate` is checked for length only, which is cheap.
    state = tracestate if tracestate and len(tracestate) <= MAX_TRACESTATE else None
    if (
        len(traceparent) == 55
        and _VERSION_00.fullmatch(traceparent)
        and traceparent[3:35] != _ZERO_TRACE_ID_BYTES
        and traceparent[36:52] != _ZERO_SPAN_ID_BYTES
    ):
        return traceparent, state
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return None
    return format_traceparent(*parsed).encode(), state


def from_headers(headers: Iterable[tuple[str, bytes]] | None) -> TraceContext | None:
    """Return the context in a Kafka record's headers, or None when there is none or it is invalid."""
    sent = _sent_in(headers)
    return TraceContext._of(sent[0], sent[1], None) if sent is not None else None


def handling(headers: Iterable[tuple[str, bytes]] | None) -> TraceContext:
    """Return the span that handles a Kafka record: a child of the span that sent it, else a new trace.

    The same as `continue_from(from_headers(headers))`, without building the sender's context.
    """
    sent = _sent_in(headers)
    if sent is None:
        return new_trace()
    raw, state = sent
    return TraceContext._of(raw[:36] + _new_span_bytes() + raw[52:], state, raw[36:52])


def continue_from(remote: TraceContext | None) -> TraceContext:
    """Return the span that handles what `remote` sent: its child, or the root of a new trace."""
    return remote.child() if remote is not None else new_trace()


def to_text(context: TraceContext) -> str:
    """Write a context as one string (`traceparent`, then `tracestate` on a second line), to store it."""
    return f"{context.traceparent}\n{context.state}" if context.state else context.traceparent


def from_text(text: str | bytes | None) -> TraceContext | None:
    """Read back what `to_text` wrote; None for nothing or anything invalid."""
    if not text:
        return None
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    traceparent, _, state = text.partition("\n")
    return extract(traceparent, state or None)


_current: ContextVar[TraceContext | None] = ContextVar("switchboard_trace", default=None)


def current() -> TraceContext | None:
    """Return the context of the work in hand (the HTTP request, the event being handled), if any."""
    return _current.get()


def activate(context: TraceContext | None) -> Token[TraceContext | None]:
    """Make `context` the current one; pass the token to `deactivate` when the work is done."""
    return _current.set(context)


def deactivate(token: Token[TraceContext | None]) -> None:
    """Restore the context that was current before `activate`."""
    _current.reset(token)


# While a batch handler handles a run of events, no single context is current: each event's is here.
_handling: ContextVar[Mapping[str, TraceContext] | None] = ContextVar("switchboard_traces", default=None)


def activate_run(contexts: Mapping[str, TraceContext]) -> Token[Mapping[str, TraceContext] | None]:
    """Make each event's context (by event id) findable by `context_of` during a batch handler's call."""
    return _handling.set(contexts)


def deactivate_run(token: Token[Mapping[str, TraceContext] | None]) -> None:
    """Forget the contexts of the run `activate_run` set."""
    _handling.reset(token)


def context_of(event_id: str) -> TraceContext | None:
    """Return the context of the span handling this event: its run's entry, else the current one."""
    run = _handling.get()
    if run is not None and event_id in run:
        return run[event_id]
    return _current.get()


class Spans(Protocol):
    """Where finished spans go when export is on (see `switchboard.otel`); None everywhere when it is off."""

    def record(
        self,
        name: str,
        context: TraceContext,
        kind: SpanKind,
        start_ns: int,
        end_ns: int | None = None,
        attributes: Mapping[str, str | int] | None = None,
        error: str | None = None,
    ) -> None:
        """Export one finished span; `end_ns` defaults to now."""
        ...


ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class TraceMiddleware:
    """Give each HTTP request its context: the caller's `traceparent` continued, else a new trace.

    A pure ASGI middleware, so the context variable it sets is the one the route sees. Several
    `traceparent` headers make the request's context invalid, as W3C Trace Context says; several
    `tracestate` headers are one list.
    """

    def __init__(self, app: ASGIApp, spans: Callable[[], Spans | None] = lambda: None) -> None:
        self.app = app
        self._spans = spans

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parents: list[bytes] = []
        states: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"traceparent":
                parents.append(value.strip(b" \t"))
            elif name == b"tracestate":
                states.append(value)
        remote = extract(parents[0], b",".join(states) or None) if len(parents) == 1 else None
        context = continue_from(remote)
        token = _current.set(context)
        spans = self._spans()
        if spans is None or not context.sampled:
            try:
                await self.app(scope, receive, send)
            finally:
                _current.reset(token)
            return
        started = time.time_ns()
        status: list[int] = []

        async def send_and_note(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            _current.reset(token)
            route = getattr(scope.get("route"), "path", None)
            code = status[0] if status else 500
            spans.record(
                f"{scope['method']} {route}" if route else scope["method"],
                context,
                "server",
                started,
                attributes={
                    "http.request.method": scope["method"],
                    "url.path": scope.get("path", ""),
                    "http.route": route or "",
                    "http.response.status_code": code,
                },
                error=f"HTTP {code}" if code >= 500 else None,
            )
