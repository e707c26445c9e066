"""Ingest settings (env prefix `INGEST_`)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from switchboard.config import ServiceSettings


class Settings(ServiceSettings):
    """What the HTTP front door needs to know."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    port: int = 8080
    max_batch_items: int = 500
    max_text_chars: int = 20_000
    max_body_bytes: int = 5_000_000
    # How long a channel+external_id pair is remembered to refuse republishing a retried webhook.
    dedupe_ttl_seconds: int = 30 * 24 * 3600
    publish_timeout_seconds: float = 10.0
    retry_after_seconds: int = 5
    # Channel webhooks: a channel whose secret is unset refuses its webhook (503), never accepts it unsigned.
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    x_consumer_secret: SecretStr | None = None
    sms_auth_token: SecretStr | None = None
    email_webhook_token: SecretStr | None = None
    # The public URL channels call (behind a proxy the request URL differs); SMS signatures cover it.
    public_base_url: str | None = None
