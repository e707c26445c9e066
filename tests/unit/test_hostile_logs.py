"""Whatever text reaches a log line, the line stays one JSON object: no forged lines, no terminal escapes.

Ingest never logs a message's text; other values do reach the logs (a case id from a URL, an identifier,
an exception's message), and a client chooses them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.redact import RedactingFilter
from switchboard.service import configure_logging

HOSTILE = [
    'case-1\n{"ts": "2026-11-22T09:00:00", "level": "INFO", "msg": "forged line"}',
    "\x1b[2J\x1b]0;pwned\x07<script>alert(1)</script>",
    '=HYPERLINK("http://evil.example")\r\n\u2028\u2029\x00',
    "\ud800 lone surrogate",
]


@pytest.fixture(scope="module")
def formatter() -> Iterator[logging.Formatter]:
    """The formatter the services log with (one JSON object per line), the root logger left as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO")
    (handler,) = root.handlers
    assert handler.formatter is not None
    yield handler.formatter
    root.handlers[:] = handlers
    root.setLevel(level)


def line_of(formatter: logging.Formatter, value: str, exc: bool = False) -> str:
    record = logging.LogRecord("router", logging.WARNING, __file__, 1, "case %s moved", (value,), None)
    if exc:
        try:
            raise ValueError(value)
        except ValueError as error:
            record.exc_info = (ValueError, error, error.__traceback__)
    RedactingFilter().filter(record)
    return formatter.format(record)


def check(line: str) -> None:
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x00" not in line
    payload = json.loads(line)
    assert any(isinstance(v, str) and v.startswith("case ") for v in payload.values())


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("exc", [False, True], ids=["message", "traceback"])
def test_a_hostile_value_stays_inside_one_json_log_line(formatter, value: str, exc: bool):
    check(line_of(formatter, value, exc))


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_any_text_stays_inside_one_json_log_line(formatter, value: str):
    check(line_of(formatter, value))
