"""Router settings (env prefix `ROUTER_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from switchboard.config import ServiceSettings


class Settings(ServiceSettings):
    """What the router needs to know."""

    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")

    port: int = 8082
    # The YAML routing rules (ROUTER_RULES_FILE); unset: the example that ships with the router. The
    # confidence below which a case goes to human triage is set in that file.
    rules_file: str | None = None
    # How often the rules file is checked for changes; a valid change is live without a restart.
    rules_poll_seconds: float = 2.0
    # Messages of one conversation within this window join the same open case.
    case_window_seconds: int = 24 * 3600
