"""Router settings (env prefix `ROUTER_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from switchboard.config import ServiceSettings


class Settings(ServiceSettings):
    """What the router needs to know."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")

    port: int = 8082
    # Below this classifier confidence a case goes to human triage instead of a guessed queue.
    review_confidence_threshold: float = 0.55
    # Messages of one conversation within this window join the same open case.
    case_window_seconds: int = 24 * 3600
