"""JSON log lines: the trace of the work in hand and the ids a call names, never what a customer wrote."""

from __future__ import annotations

import json
import logging

from pydantic import BaseModel

from switchboard.bus import describe_error, log_ids
from switchboard.contract import CaseActivity, CaseActivityRecorded
from switchboard.service import JsonFormatter
from switchboard.tracing import activate, deactivate, new_trace


def formatted(message: str, *args: object, exc: BaseException | None = None, **extra: object) -> dict:
    record = logging.LogRecord("test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    if exc is not None:
        record.exc_info = (type(exc), exc, None)
    return json.loads(JsonFormatter().format(record))


def test_a_line_logged_while_handling_carries_the_trace_and_span_ids():
    context = new_trace()
    token = activate(context)
    try:
        line = formatted("handled %s", "ev-1")
    finally:
        deactivate(token)
    assert line["msg"] == "handled ev-1"
    assert (line["trace_id"], line["span_id"]) == (context.trace_id, context.span_id)
    assert "trace_id" not in formatted("outside any trace")


def test_a_line_carries_the_ids_its_call_names_and_nothing_else_it_was_given():
    line = formatted("x", event_id="ev-1", case_id="case-9", message_id="m-3", text="what the customer wrote")
    assert (line["event_id"], line["case_id"], line["message_id"]) == ("ev-1", "case-9", "m-3")
    assert "text" not in line and "what the customer wrote" not in json.dumps(line)


def test_a_trace_id_named_by_the_call_wins_over_the_current_one():
    current = new_trace()
    token = activate(current)
    try:
        line = formatted("dead-lettering", trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    finally:
        deactivate(token)
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "span_id" not in line


def test_the_ids_of_an_event_name_its_case_or_its_message():
    activity = CaseActivityRecorded(
        id="ev-7",
        source="t",
        subject="case-1",
        partitionkey="case-1",
        data=CaseActivity(activity_id="a", case_id="case-1", type="responded", at="2026-11-22T10:00:00Z"),
    )
    assert log_ids(activity) == {"event_id": "ev-7", "case_id": "case-1"}


def test_a_validation_error_is_described_without_the_value_it_quotes():
    class Model(BaseModel):
        n: int

    try:
        Model(n="my parcel never came, call 06 12 34 56 78")
    except ValueError as exc:
        described = describe_error(exc)
    assert described.startswith("ValidationError: n: Input should be a valid integer")
    assert "parcel" not in described
