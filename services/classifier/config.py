"""Classifier settings (env prefix `CLASSIFIER_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchboard.config import OptionalPath, ServiceSettings


class Settings(ServiceSettings):
    """What the classifier needs to know."""

    model_config = SettingsConfigDict(env_prefix="CLASSIFIER_", extra="ignore")

    port: int = 8081
    # `learned` (trained from the packaged corpus, cached), `lexicon` (the transparent baseline) or the
    # path of a model directory written by `switchboard train`, reloaded live (POST /v1/model/reload, or
    # on change of the directory's content).
    model: str = "learned"
    # Where the learned model is cached; unset: $XDG_CACHE_HOME or ~/.cache/switchboard/models.
    model_cache: str | None = None
    # A candidate that decides every batch too, for comparison only (metrics): `learned`, `lexicon` or a
    # model directory, reloaded like the live one. Unset (or blank): no shadow.
    shadow_model: OptionalPath = None
    # The share of support expected in the traffic, strictly between 0 and 1. The learned model was
    # trained on balanced classes: 0.5 leaves it as trained, 0.8 moves its category odds by log(0.8/0.2)
    # toward support (live and shadow alike). The lexicon ignores it.
    support_prior: float = Field(default=0.5, gt=0.0, lt=1.0)
    # How long an agent's correction (a case moved between customer service and marketing) is kept in
    # Redis as a labelled example for `switchboard corrections` and retraining: the customer's message
    # text is kept that long. 0: corrections are not recorded.
    corrections_retention_days: int = Field(default=90, ge=0)
    # How often a model directory is checked for a new model.
    model_poll_seconds: float = Field(default=2.0, gt=0)
