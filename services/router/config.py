"""Router settings (env prefix `ROUTER_`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from switchboard.config import OptionalSecret, ServiceSettings
from switchboard.contract import Queue


class Settings(ServiceSettings):
    """What the router needs to know."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")

    port: int = 8082
    # The YAML routing rules (ROUTER_RULES_FILE); unset: the example that ships with the router. The
    # confidence below which a case goes to human triage is set in that file.
    rules_file: str | None = None
    # How often the rules file is checked for changes; a valid change is live without a restart.
    rules_poll_seconds: float = 2.0
    # How often the open-cases and oldest-age gauges per queue are refreshed from Redis.
    queue_gauge_seconds: float = 5.0
    # Messages of one conversation within this window join the same open case.
    case_window_seconds: int = 24 * 3600
    # How long Redis keeps a resolved case (its hash, channels and messages); reopening it cancels the
    # expiry. At least the case window, so a conversation pointer never names a case already gone.
    resolved_case_retention_seconds: int = Field(default=30 * 24 * 3600, ge=1)

    # Join a message of a new conversation to the open case one of its identifiers (order number, email,
    # phone, X account) already names; see identifiers.py for the rules.
    link_cases: bool = True
    # Identifiers that never link, as JSON: the brand's own addresses, an "@domain", phone numbers, e.g.
    # ROUTER_LINK_IGNORE='["@brand.example", "+33 1 00 00 00 00"]'.
    link_ignore: list[str] = Field(default_factory=list)

    # Hand-off to the contact centre over HTTP, per queue, as JSON:
    # ROUTER_HANDOFF_URLS='{"customer-service": "https://cc.example/hooks/cases"}'. Empty: no hand-off.
    handoff_urls: dict[Queue, str] = Field(default_factory=dict)
    # The HMAC-SHA256 key of the X-Switchboard-Signature header; required when a URL is set. An empty or
    # blank value is unset.
    handoff_secret: OptionalSecret = None
    # One attempt, connection to last byte; a slower endpoint counts as down and is tried again.
    handoff_timeout_seconds: float = Field(default=10.0, gt=0)
    # Attempts before a delivery is dead-lettered to `<queue topic>.dlq`.
    handoff_max_attempts: int = Field(default=10, ge=1)
    # Deliveries in flight at once per queue and per router process; a stuck endpoint holds only its own.
    handoff_concurrency: int = Field(default=8, ge=1)
    # Retries wait a random time below min(cap, base * 2^(attempt-1)); Retry-After is honoured up to the cap.
    handoff_backoff_base_seconds: float = Field(default=1.0, gt=0)
    handoff_backoff_cap_seconds: float = Field(default=300.0, gt=0)
    # How often an idle delivery worker looks for deliveries due (enqueued by another instance, or retries).
    handoff_poll_seconds: float = Field(default=0.5, gt=0)

    @field_validator("handoff_urls")
    @classmethod
    def _http_urls(cls, urls: dict[Queue, str]) -> dict[Queue, str]:
        for queue, url in urls.items():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"the hand-off URL of {queue.value} must be an http(s) URL, not {url!r}")
        return urls

    @model_validator(mode="after")
    def _retention_covers_the_window(self) -> Settings:
        if self.resolved_case_retention_seconds < self.case_window_seconds:
            raise ValueError(
                "ROUTER_RESOLVED_CASE_RETENTION_SECONDS must be at least ROUTER_CASE_WINDOW_SECONDS: a "
                "conversation or identifier pointer would otherwise outlive the case it names"
            )
        return self

    @model_validator(mode="after")
    def _secret_with_urls(self) -> Settings:
        if self.handoff_urls and self.handoff_secret is None:
            raise ValueError("ROUTER_HANDOFF_SECRET is required when ROUTER_HANDOFF_URLS is set")
        return self

    @property
    def handoff_lease_seconds(self) -> float:
        """How long a claimed delivery stays with its instance: an attempt and its dead letter, with room."""
        return self.handoff_timeout_seconds + 60.0
