"""W3C Trace Context: the `traceparent` parser and formatter, child contexts, headers, the HTTP middleware."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from switchboard import tracing
from switchboard.tracing import (
    TraceContext,
    TraceMiddleware,
    activate,
    activate_run,
    context_of,
    continue_from,
    deactivate,
    deactivate_run,
    extract,
    format_traceparent,
    from_headers,
    from_text,
    handling,
    new_trace,
    parse_traceparent,
    to_text,
    valid_tracestate,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
EXAMPLE = f"00-{TRACE_ID}-{SPAN_ID}-01"
HEX = "0123456789abcdef"


def test_a_version_00_traceparent_is_read_into_its_ids_and_flags():
    assert parse_traceparent(EXAMPLE) == (TRACE_ID, SPAN_ID, 1)
    assert parse_traceparent(EXAMPLE.encode()) == (TRACE_ID, SPAN_ID, 1)
    assert parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-00") == (TRACE_ID, SPAN_ID, 0)
    assert parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-03") == (TRACE_ID, SPAN_ID, 3)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        EXAMPLE[:-1],
        EXAMPLE + "0",
        EXAMPLE + "-extra",  # version 00 is exactly 55 characters
        EXAMPLE.upper(),
        f"00-{TRACE_ID.upper()}-{SPAN_ID}-01",
        f"00-{TRACE_ID}-{SPAN_ID.upper()}-01",
        f"00-{'0' * 32}-{SPAN_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE_ID}-{SPAN_ID}-01",  # version ff is forbidden
        f"0-{TRACE_ID}-{SPAN_ID}-01",
        f"00_{TRACE_ID}_{SPAN_ID}_01",
        f"00-{TRACE_ID[:-1]}g-{SPAN_ID}-01",
        f"00-{TRACE_ID}-{SPAN_ID}-0g",
        f"00-{TRACE_ID}-{SPAN_ID}-1",
        f" 00-{TRACE_ID}-{SPAN_ID}-01",
        f"00-{TRACE_ID}{SPAN_ID}-01",
    ],
)
def test_an_invalid_traceparent_is_refused(value):
    assert parse_traceparent(value) is None


def test_a_missing_traceparent_is_none():
    assert parse_traceparent(None) is None


def test_a_higher_version_is_read_as_far_as_version_00_defines_it():
    # Only the sampled flag is known for a later version's flags; more fields follow after a dash.
    assert parse_traceparent(f"01-{TRACE_ID}-{SPAN_ID}-03") == (TRACE_ID, SPAN_ID, 1)
    assert parse_traceparent(f"cc-{TRACE_ID}-{SPAN_ID}-01-what-comes-next") == (TRACE_ID, SPAN_ID, 1)
    assert parse_traceparent(f"fe-{TRACE_ID}-{SPAN_ID}-00-x") == (TRACE_ID, SPAN_ID, 0)


@pytest.mark.parametrize(
    "value",
    [
        f"01-{TRACE_ID}-{SPAN_ID}-01x",  # more content must start with a dash
        f"01-{TRACE_ID}-{SPAN_ID}-0",  # shorter than 55
        f"01-{'0' * 32}-{SPAN_ID}-01-x",
        f"01-{TRACE_ID}-{'0' * 16}-01-x",
    ],
)
def test_a_higher_version_that_does_not_begin_as_version_00_does_is_refused(value):
    assert parse_traceparent(value) is None


def test_a_traceparent_is_formatted_as_version_00():
    assert format_traceparent(TRACE_ID, SPAN_ID, 1) == EXAMPLE
    assert format_traceparent(TRACE_ID, SPAN_ID, 0) == f"00-{TRACE_ID}-{SPAN_ID}-00"
    assert format_traceparent(TRACE_ID, SPAN_ID, 0x0A) == f"00-{TRACE_ID}-{SPAN_ID}-0a"


@given(
    st.integers(min_value=1, max_value=2**128 - 1),
    st.integers(min_value=1, max_value=2**64 - 1),
    st.integers(min_value=0, max_value=255),
)
def test_formatting_then_parsing_gives_back_the_ids_and_flags(trace, span, flags):
    trace_id, span_id = f"{trace:032x}", f"{span:016x}"
    assert parse_traceparent(format_traceparent(trace_id, span_id, flags)) == (trace_id, span_id, flags)


@given(st.text(alphabet=HEX + "-", min_size=50, max_size=60) | st.text(max_size=70))
def test_whatever_parses_formats_back_to_the_same_value(value):
    parsed = parse_traceparent(value)
    if parsed is not None and value.startswith("00"):
        assert format_traceparent(*parsed) == value


@given(
    st.integers(min_value=1, max_value=2**128 - 1),
    st.integers(min_value=1, max_value=2**64 - 1),
    st.integers(min_value=0, max_value=255),
    st.none() | st.just("vendor=opaque,other@sys=1"),
)
def test_a_stored_context_reads_back_the_same(trace, span, flags, state):
    context = TraceContext(f"{trace:032x}", f"{span:016x}", flags, state)
    assert from_text(to_text(context)) == context
    assert from_text(to_text(context).encode()) == context
    assert from_headers(context.headers) == context


def test_a_child_keeps_the_trace_and_its_state_and_names_its_parent():
    parent = TraceContext(TRACE_ID, SPAN_ID, 1, "congo=t61rcWkgMzE")
    child = parent.child()
    assert child.trace_id == TRACE_ID
    assert child.span_id != SPAN_ID and len(child.span_id) == 16 and int(child.span_id, 16)
    assert child.parent_id == SPAN_ID
    assert child.flags == 1 and child.state == "congo=t61rcWkgMzE"
    assert child.headers == (
        ("traceparent", f"00-{TRACE_ID}-{child.span_id}-01".encode()),
        ("tracestate", b"congo=t61rcWkgMzE"),
    )
    assert len({parent.child().span_id for _ in range(1000)}) == 1000


def test_a_new_trace_is_sampled_with_fresh_non_zero_ids_and_no_parent():
    context = new_trace()
    assert parse_traceparent(context.traceparent) == (context.trace_id, context.span_id, 1)
    assert context.parent_id is None and context.sampled
    assert context.headers == (("traceparent", context.traceparent.encode()),)
    assert new_trace().trace_id != context.trace_id


def test_an_unsampled_trace_stays_unsampled_down_the_line():
    remote = extract(f"00-{TRACE_ID}-{SPAN_ID}-00")
    assert remote is not None and not remote.sampled
    assert not continue_from(remote).sampled


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("congo=t61rcWkgMzE", True),
        ("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", True),
        ("rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE", True),
        ("tenant@vendor=value", True),
        ("", False),
        ("novalue", False),
        ("UPPER=1", False),
        ("key=has,comma=", False),
        ("key=a\tb", False),
        ("key=trailing space ", True),
        ("k=" + "v" * 300, False),
        (",".join(f"k{i}=v" for i in range(33)), False),
        ("k=é", False),
    ],
)
def test_a_tracestate_is_checked_member_by_member(value, valid):
    assert valid_tracestate(value) is valid


def test_a_malformed_tracestate_is_dropped_and_a_valid_one_kept():
    assert extract(EXAMPLE, "bad state!").state is None
    assert extract(EXAMPLE, b"congo=t61rcWkgMzE").state == "congo=t61rcWkgMzE"
    # Without a valid traceparent there is no context, whatever the tracestate.
    assert extract("nonsense", "congo=t61rcWkgMzE") is None


def test_handling_a_record_continues_its_trace_or_starts_one():
    headers = [("ce_type", b"switchboard.message.received"), ("traceparent", EXAMPLE.encode())]
    context = handling(headers)
    assert (context.trace_id, context.parent_id) == (TRACE_ID, SPAN_ID)
    assert context.span_id != SPAN_ID
    for missing in (None, [], [("ce_type", b"x")], [("traceparent", b"00-nonsense")]):
        fresh = handling(missing)
        assert fresh.parent_id is None and fresh.trace_id != TRACE_ID and fresh.sampled


def test_the_current_context_is_the_one_activated_until_it_is_deactivated():
    assert tracing.current() is None
    context = new_trace()
    token = tracing.activate(context)
    try:
        assert tracing.current() is context
    finally:
        tracing.deactivate(token)
    assert tracing.current() is None


def traced_app(seen: list[TraceContext | None]) -> TraceMiddleware:
    async def endpoint(request: Request) -> JSONResponse:
        seen.append(tracing.current())
        await asyncio.sleep(0)
        return JSONResponse({})

    return TraceMiddleware(Starlette(routes=[Route("/", endpoint, methods=["POST"])]))


async def post(app: TraceMiddleware, headers: list[tuple[str, str]]) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.post("/", headers=headers)).status_code == 200


async def test_a_request_with_a_valid_traceparent_continues_its_callers_trace():
    seen: list[TraceContext | None] = []
    await post(traced_app(seen), [("traceparent", EXAMPLE), ("tracestate", "a=1"), ("tracestate", "b=2")])
    (context,) = seen
    assert context is not None
    assert (context.trace_id, context.parent_id, context.state) == (TRACE_ID, SPAN_ID, "a=1,b=2")
    assert context.span_id != SPAN_ID
    assert tracing.current() is None


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("traceparent", f"00-{'0' * 32}-{SPAN_ID}-01")],
        [("traceparent", EXAMPLE.upper())],
        [("traceparent", EXAMPLE), ("traceparent", EXAMPLE)],  # several traceparents are invalid
    ],
)
async def test_a_request_without_a_valid_traceparent_starts_a_new_trace(headers):
    seen: list[TraceContext | None] = []
    await post(traced_app(seen), headers)
    (context,) = seen
    assert context is not None and context.parent_id is None and context.trace_id != TRACE_ID
    assert context.sampled


def test_a_record_sent_with_a_higher_version_is_continued_as_version_00():
    context = handling([("traceparent", f"01-{TRACE_ID}-{SPAN_ID}-03-more".encode())])
    assert context.traceparent.startswith(f"00-{TRACE_ID}-") and context.traceparent.endswith("-01")
    assert context.parent_id == SPAN_ID
    assert from_headers([("traceparent", None)]) is None


def test_during_a_run_each_event_finds_its_own_context_and_others_the_current_one():
    outer, first, second = new_trace(), new_trace(), new_trace()
    assert context_of("a") is None
    token = activate(outer)
    try:
        run = activate_run({"a": first, "b": second})
        try:
            assert (context_of("a"), context_of("b"), context_of("c")) == (first, second, outer)
        finally:
            deactivate_run(run)
        assert context_of("a") == outer
    finally:
        deactivate(token)
    assert context_of("a") is None
