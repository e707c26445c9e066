"""Classifier settings (env prefix `CLASSIFIER_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from switchboard.config import ServiceSettings


class Settings(ServiceSettings):
    """What the classifier needs to know."""

    model_config = SettingsConfigDict(env_prefix="CLASSIFIER_", extra="ignore")

    port: int = 8081
