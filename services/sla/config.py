"""SLA settings (env prefix `SLA_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from switchboard.config import ServiceSettings


class Settings(ServiceSettings):
    """What the SLA service needs to know."""

    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore")

    port: int = 8083
    # How often due timers are collected; the firing lag is at most about this long.
    tick_seconds: float = 0.25
    # The YAML policy file (SLA_POLICY_FILE); unset: the example that ships with the service.
    policy_file: str | None = None
    # How often the policy file is checked for changes; a valid change is live without a restart.
    policy_poll_seconds: float = 2.0
    # Scales every policy duration (tests and demos shrink hours to seconds); 1.0 in production.
    target_scale: float = 1.0
