"""Ingest settings (env prefix `INGEST_`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ingest.keys import ApiKey, parse_entries
from switchboard.config import OptionalSecret, ServiceSettings


class Settings(ServiceSettings):
    """What the HTTP front door needs to know."""

    # A bad entry is reported without echoing it: a key pasted in place of its hash stays out of the logs.
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", hide_input_in_errors=True)

    port: int = 8080
    max_batch_items: int = 500
    max_text_chars: int = 20_000
    max_body_bytes: int = Field(default=5_000_000, ge=1)
    # How long a channel+external_id pair is remembered to refuse republishing a retried webhook.
    dedupe_ttl_seconds: int = 30 * 24 * 3600
    publish_timeout_seconds: float = 10.0
    # How long a message being published blocks its retries ("retry" 503) when the process storing it
    # dies before confirming: longer than a publish may take, short enough for a channel's next retry.
    pending_claim_seconds: int = Field(default=30, ge=1)
    retry_after_seconds: int = 5
    # Keys of the generic and activity APIs, as `name:sha256hex[:rate_per_minute]` separated by commas;
    # none configured (unset, empty or blank) leaves those APIs open (local development), with a warning
    # at startup.
    api_keys: Annotated[list[ApiKey], NoDecode] = Field(default_factory=list)
    # The rate of a key whose entry names none; a key may burst up to its whole minute at once.
    api_key_rate_per_minute: int = Field(default=600, ge=1)
    # Channel webhooks: a channel whose secret is unset refuses its webhook (503), never accepts it unsigned.
    # An empty or blank value is unset (OptionalSecret), so `INGEST_META_APP_SECRET=` cannot configure a
    # webhook that accepts payloads signed with an empty key.
    meta_app_secret: OptionalSecret = None
    meta_verify_token: OptionalSecret = None
    x_consumer_secret: OptionalSecret = None
    sms_auth_token: OptionalSecret = None
    email_webhook_token: OptionalSecret = None
    # The public URL channels call (behind a proxy the request URL differs); SMS signatures cover it.
    public_base_url: str | None = None

    @field_validator("api_keys", mode="before")
    @classmethod
    def _read_api_keys(cls, value: object) -> list[ApiKey]:
        return parse_entries(value)
