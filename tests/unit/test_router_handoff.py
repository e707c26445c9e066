"""Hand-off decisions: the signature, what an answer means, when to try again, and the settings."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import ValidationError

from router import handoff
from router.config import Settings
from switchboard.bus import DLQ_HEADER_PREFIX, dead_letter_reason
from switchboard.contract import Queue

NOW = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
BODY = b'{"specversion":"1.0","id":"e1","type":"switchboard.case.routed"}'


def test_the_signature_is_the_hex_hmac_sha256_of_the_body_with_the_secret():
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert handoff.sign(BODY, b"s3cret") == f"sha256={expected}"


def test_a_signature_only_verifies_with_the_same_body_and_secret():
    signature = handoff.sign(BODY, b"s3cret")
    assert handoff.verify(BODY, b"s3cret", signature)
    assert not handoff.verify(BODY + b" ", b"s3cret", signature)
    assert not handoff.verify(BODY, b"other", signature)


def test_each_attempt_carries_the_content_type_signature_event_id_and_attempt_number():
    headers = handoff.request_headers("e1", 3, BODY, b"s3cret")
    assert headers == {
        "Content-Type": "application/cloudevents+json",
        "X-Switchboard-Signature": handoff.sign(BODY, b"s3cret"),
        "X-Switchboard-Event-Id": "e1",
        "X-Switchboard-Delivery-Attempt": "3",
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (400, "reject"),
        (401, "reject"),
        (404, "reject"),
        (410, "reject"),
        (422, "reject"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (302, "retry"),
        (None, "retry"),
    ],
)
def test_an_answer_delivers_refuses_for_good_or_asks_for_another_try(status, expected):
    assert handoff.verdict(status) == expected


def test_the_backoff_ceiling_doubles_from_the_base_until_the_cap():
    ceilings = [handoff.backoff_delay(n, 1.0, 300.0, rng=lambda: 1.0) for n in range(1, 12)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_full_jitter_draws_anywhere_between_zero_and_the_ceiling():
    rng = random.Random(7)
    delays = [handoff.backoff_delay(4, 1.0, 300.0, rng=rng.random) for _ in range(2000)]
    assert all(0 <= d < 8 for d in delays)
    assert min(delays) < 0.5 and max(delays) > 7.5
    assert 3.5 < sum(delays) / len(delays) < 4.5


def test_a_very_late_attempt_stays_at_the_cap_without_overflowing():
    assert handoff.backoff_delay(10_000, 1.0, 300.0, rng=lambda: 1.0) == 300.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header, expected):
    assert handoff.parse_retry_after(header, NOW) == expected


def test_a_retry_after_longer_than_the_backoff_is_honoured():
    assert handoff.retry_delay(1, 1.0, 300.0, retry_after=30.0, rng=lambda: 0.5) == 30.0


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it():
    assert handoff.retry_delay(6, 1.0, 300.0, retry_after=1.0, rng=lambda: 0.5) == 16.0


def test_a_retry_after_beyond_the_cap_is_cut_to_the_cap():
    assert handoff.retry_delay(1, 1.0, 300.0, retry_after=86_400.0, rng=lambda: 0.5) == 300.0


def test_dead_letter_headers_use_the_bus_format_and_read_back_with_its_reader():
    assert handoff.DLQ_HEADER_PREFIX == DLQ_HEADER_PREFIX
    headers = handoff.dead_letter_headers("cases.marketing", "HTTP 400: bad", "router", 1, NOW)
    assert dead_letter_reason(headers) == {
        "reason": "delivery_failed",
        "error": "HTTP 400: bad",
        "topic": "cases.marketing",
        "group": "router",
        "at": NOW.isoformat(),
        "attempts": "1",
    }


def test_hand_off_urls_are_read_per_queue_from_json_in_the_environment(monkeypatch):
    monkeypatch.setenv("ROUTER_HANDOFF_URLS", '{"customer-service": "https://cc.example/hooks/cases"}')
    monkeypatch.setenv("ROUTER_HANDOFF_SECRET", "s3cret")
    settings = Settings()
    assert settings.handoff_urls == {Queue.CUSTOMER_SERVICE: "https://cc.example/hooks/cases"}
    assert settings.handoff_secret.get_secret_value() == "s3cret"
    assert settings.handoff_lease_seconds > settings.handoff_timeout_seconds


def test_a_hand_off_url_without_a_secret_is_refused():
    with pytest.raises(ValidationError, match="ROUTER_HANDOFF_SECRET"):
        Settings(handoff_urls={"marketing": "https://cc.example/m"})


@pytest.mark.parametrize("url", ["ftp://cc.example/m", "cc.example/m", "https://"])
def test_a_hand_off_url_that_is_not_http_is_refused(url):
    with pytest.raises(ValidationError, match="http"):
        Settings(handoff_urls={"marketing": url}, handoff_secret="s3cret")


def test_a_hand_off_url_for_an_unknown_queue_is_refused():
    with pytest.raises(ValidationError):
        Settings(handoff_urls={"sales": "https://cc.example/s"}, handoff_secret="s3cret")


def test_without_urls_there_is_no_hand_off_and_no_secret_is_needed():
    assert Settings().handoff_urls == {}
