"""Keep personal data out of the logs: email addresses, phone numbers and card-like numbers are masked.

Installed as a filter on the root logger's handlers, it rewrites each record before it is formatted:
the message with its arguments, the traceback and the stack, whatever logger the record came from.
"""

from __future__ import annotations

import logging
import re
import traceback

EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"

_SEP = r"[ .\-\u00a0\u202f]"  # space, dot, dash, and the no-break spaces French typography uses
# The local part leaves out quotes and `=` so that `email='a@b.fr'` keeps its name and quotes.
_EMAIL = re.compile(r"[\w.+\-]+(?:@|%40)(?:[\w\-]+\.)+[^\W\d_]{2,}")
# 13 to 19 digits, maybe grouped by single spaces or dashes, not inside a longer run of digits nor
# right after a letter (the digit groups of a UUID or a hash are not cards).
_CARD = re.compile(r"(?<![^\W_])(?:\d[ \-\u00a0\u202f]?){12,18}\d(?!\d)")
# `+` (or `%2B` in a form-encoded body) or `00`, a country code, then groups of digits; `(0)` and `(415)`
# are written in some countries.
_INTERNATIONAL = re.compile(
    rf"(?<![\w+])(?:\+|%2[Bb]|00)\d{{1,4}}(?:{_SEP}?(?:\(0\)|\(\d{{1,4}}\)|\d{{1,4}}))+"
)
# French national numbers: 0X XX XX XX XX, grouped by spaces, dots or dashes, or not at all.
_FRENCH = re.compile(rf"(?<![^\W_])0[1-9](?:{_SEP}?\d{{2}}){{4}}(?!\d)")
_MIN_PHONE_DIGITS = 8
# The `extra=` fields of a log call that may hold what a client sent (trace ids are hex, never personal).
IDS = ("event_id", "message_id", "case_id")


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    prefix = 2 if text.startswith("00") else 1 if text.startswith("%2") else 0
    digits = sum(c.isdigit() for c in text) - prefix
    # `+1 2` or a time offset `+02` is not a phone number; what has enough digits is masked.
    return PHONE if digits >= _MIN_PHONE_DIGITS else text


def redact(text: str) -> str:
    """Return the text with email addresses, card-like numbers and phone numbers masked."""
    if not any(c.isdigit() or c in "@%" for c in text):
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _CARD.sub(CARD, text)
    text = _INTERNATIONAL.sub(_phone, text)
    return _FRENCH.sub(PHONE, text)


class RedactedTraceback(Exception):
    """Stands in for a logged exception: its text is the original traceback, personal data masked."""


class RedactingFilter(logging.Filter):
    """Mask personal data in every record a handler emits; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # The arguments do not fit the format: keep both, masked, rather than let logging print them raw.
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        info = record.exc_info
        if info and info[0] is not None and info[0] is not RedactedTraceback:
            text = "".join(traceback.format_exception(*info)).rstrip()
            record.exc_info = (RedactedTraceback, RedactedTraceback(redact(text)), None)
            record.exc_text = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        # Ids a call names (`extra=`) go into the JSON line too; a case id is whatever a client chose.
        for name in IDS:
            value = record.__dict__.get(name)
            if isinstance(value, str):
                setattr(record, name, redact(value))
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put a redacting filter on each handler of the logger (the root logger by default), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
