"""Personal data never reaches the logs: emails, phone numbers and card-like numbers are masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from ingest.app import Deps, create_app
from ingest.config import Settings
from ingest.redact import RedactingFilter, install, redact
from ingest.store import MemorySeenStore
from switchboard.service import JsonFormatter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("écrire à marie.dupont+sav@exemple.fr svp", "écrire à [email] svp"),
        ("from=<Jean.Martin@mail.sub.exemple.co.uk>", "from=<[email]>"),
        ("email='léa@exemple.fr'", "email='[email]'"),
        ("callback?to=marie%40exemple.fr&x=1", "callback?to=[email]&x=1"),
        ("appelez le 06 12 34 56 78", "appelez le [phone]"),
        ("06.12.34.56.78 / 06-12-34-56-78 / 0612345678", "[phone] / [phone] / [phone]"),
        ("fixe 01\u00a023\u00a045\u00a067\u00a089.", "fixe [phone]."),
        ("+33 6 12 34 56 78", "[phone]"),
        ("+33 (0)6 12 34 56 78", "[phone]"),
        ("+33612345678,+447911123456", "[phone],[phone]"),
        ("tel:+1 (415) 555-0132", "tel:[phone]"),
        ("+44 20 7946 0958", "[phone]"),
        ("From=%2B33612345678&To=%2b447911123456", "From=[phone]&To=[phone]"),
        ("carte 4970 1012 3456 7890 exp", "carte [card] exp"),
        ("4111-1111-1111-1111", "[card]"),
        ("amex 378282246310005.", "amex [card]."),
        ("pan=5555555555554444;", "pan=[card];"),
    ],
)
def test_personal_data_is_masked(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T09:15:00+02:00 took 0.0123s",
        "redis://127.0.0.1:6379/0 broker 127.0.0.1:9092",
        "commande #A-48213, case-9, HTTP 503, retry in 5s, 500 items",
        "message 550e8400-e29b-41d4-a716-446655440000",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "user@localhost and @marie_l",
        "version 0.14.0, +1 2, 20 digits 12345678901234567890123",
        "",
    ],
)
def test_what_is_not_personal_data_is_left_alone(text):
    assert redact(text) == text


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.redact")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    install(logger)
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def test_the_arguments_of_a_record_are_masked(captured):
    logger, stream = captured
    logger.info("message from %s (%r) on %d", "marie@exemple.fr", {"phone": "+33612345678"}, 4)
    assert stream.getvalue() == "message from [email] ({'phone': '[phone]'}) on 4\n"


def test_a_traceback_is_masked_and_kept(captured):
    logger, stream = captured
    try:
        raise ValueError("no account for jean@exemple.fr, card 4111 1111 1111 1111")
    except ValueError:
        logger.exception("lookup failed")
    out = stream.getvalue()
    assert "jean@exemple.fr" not in out and "4111 1111" not in out
    assert "ValueError: no account for [email], card [card]" in out
    assert "raise ValueError" in out


def test_a_stack_is_masked(captured):
    logger, stream = captured

    def log_here(_: str) -> None:
        logger.info("here", stack_info=True)

    log_here("marie@exemple.fr")  # this source line is part of the stack
    out = stream.getvalue()
    assert "log_here([email])" in out.replace('"', "")
    assert "marie@exemple.fr" not in out


def test_arguments_that_do_not_fit_the_format_are_masked_not_dumped(captured):
    logger, stream = captured
    logger.info("only %s here", "marie@exemple.fr", "+33612345678")
    out = stream.getvalue()
    assert "marie@exemple.fr" not in out and "+33612345678" not in out
    assert "[email]" in out


def test_the_ids_a_json_line_carries_are_masked_but_its_trace_id_is_kept(captured):
    logger, stream = captured
    trace_id = "1234567890123456abcdef0123456789"
    handler = next(h for h in logger.handlers if getattr(h, "stream", None) is stream)
    handler.setFormatter(JsonFormatter())
    logger.warning("activity refused", extra={"case_id": "marie@exemple.fr", "trace_id": trace_id})
    line = json.loads(stream.getvalue())
    assert (line["case_id"], line["trace_id"]) == ("[email]", trace_id)


def test_installing_twice_adds_one_filter(captured):
    logger, stream = captured
    install(logger)
    # pytest's own log capture may add a handler too; this test is about the one writing to `stream`.
    (handler,) = [h for h in logger.handlers if getattr(h, "stream", None) is stream]
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1


async def test_ingest_installs_the_filter_on_the_root_handlers_at_startup():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        app = create_app(Settings(), Deps(publisher=None, seen=MemorySeenStore()))  # type: ignore[arg-type]
        async with app.router.lifespan_context(app):
            logging.getLogger("ingest.test").warning("mail from %s", "marie@exemple.fr")
    finally:
        root.removeHandler(handler)
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    assert "mail from [email]" in stream.getvalue()


async def test_a_message_that_cannot_be_published_logs_no_personal_data():
    class Down:
        async def publish(self, events, traces=None):
            raise ConnectionError("cannot send to marie@exemple.fr +33612345678")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install()
        app = create_app(Settings(), Deps(publisher=Down(), seen=MemorySeenStore()))
        body = {
            "channel": "sms",
            "external_id": "SM1",
            "author": {"id": "+33612345678"},
            "text": "rappelez-moi au 06 12 34 56 78 ou marie@exemple.fr",
            "created_at": "2026-11-22T09:15:00Z",
        }
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://i") as c:
            response = await c.post("/v1/messages", json=body)
    finally:
        root.removeHandler(handler)
    assert response.status_code == 503
    out = stream.getvalue()
    assert "publish failed" in out
    assert "6 12 34" not in out and "@exemple" not in out and "612345678" not in out
