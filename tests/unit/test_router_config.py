"""The router's settings: how long a resolved case is kept."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from router.config import Settings


def test_a_resolved_case_is_kept_30_days_by_default():
    assert Settings().resolved_case_retention_seconds == 30 * 24 * 3600


def test_the_retention_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ROUTER_RESOLVED_CASE_RETENTION_SECONDS", "172800")
    assert Settings().resolved_case_retention_seconds == 172800


def test_a_retention_shorter_than_the_case_window_is_refused(monkeypatch: pytest.MonkeyPatch):
    # A conversation pointer lives for the window: it would name a case Redis has already dropped.
    monkeypatch.setenv("ROUTER_CASE_WINDOW_SECONDS", "86400")
    monkeypatch.setenv("ROUTER_RESOLVED_CASE_RETENTION_SECONDS", "3600")
    with pytest.raises(ValidationError, match="ROUTER_RESOLVED_CASE_RETENTION_SECONDS must be at least"):
        Settings()
