"""The classifier service: reads `messages.received`, publishes `messages.classified`.

It also reads the routings of `cases.customer-service` and `cases.marketing` and keeps those a person
made (a case moved between the two) as corrected labels for retraining.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import partial
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field

from classifier import handlers
from classifier.choice import LIVE, SHADOW, BatchModel, load_model
from classifier.config import Settings
from classifier.examples import GivenMessage, Inbound
from classifier.holder import ModelHolder, ReloadError
from classifier.metrics import ClassifierMetrics
from classifier.store import RedisCorrectionStore
from switchboard.contract import Classification
from switchboard.metrics import BusMetrics
from switchboard.service import consuming, invalid_request, open_infra, ops_router

NAME = "classifier"
log = logging.getLogger(__name__)
# A dry run is for a person trying messages, not for traffic: a few at a time, as long as ingest's default
# (INGEST_MAX_TEXT_CHARS) lets a message be.
TRIAL_MESSAGES = 100
TRIAL_TEXT_CHARS = 20_000


class TrialMessage(GivenMessage):
    """A message to try, with what its channel would tell the classifier."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=TRIAL_TEXT_CHARS)


class Trial(BaseModel):
    """Messages to classify without publishing anything."""

    model_config = ConfigDict(extra="forbid")

    messages: list[TrialMessage] = Field(min_length=1, max_length=TRIAL_MESSAGES)


class TrialDecisions(BaseModel):
    """One model's decisions on the messages tried, in their order."""

    version: str
    classifications: list[Classification]

    @classmethod
    def of(cls, model: BatchModel, items: list[Inbound]) -> TrialDecisions:
        """Decide the messages with one model."""
        return cls(version=model.version, classifications=model.classify_many(items))


class TrialAnswer(BaseModel):
    """The live model's decisions and, with a candidate in shadow, the candidate's."""

    live: TrialDecisions
    shadow: TrialDecisions | None = None
    shadow_error: str | None = Field(
        default=None, description="why the shadow could not decide, if it failed"
    )


def create_app(settings: Settings | None = None, load: Callable[[str], BatchModel] | None = None) -> FastAPI:
    """Build the classifier's app; its lifespan runs the consumer loop and the model directory watch.

    `load` turns a model spec (`learned`, `lexicon` or a directory) into a model; tests pass fakes.
    """
    settings = settings or Settings()
    registry = CollectorRegistry()
    bus_metrics = BusMetrics(NAME, registry)
    metrics = ClassifierMetrics(registry)
    load = load or partial(load_model, cache=settings.model_cache, support_prior=settings.support_prior)
    holders: dict[str, ModelHolder] = {}
    for role, spec in ((LIVE, settings.model), (SHADOW, settings.shadow_model)):
        if spec is not None:
            metrics.expect_reloads(role)
            holders[role] = ModelHolder(
                role,
                spec,
                load,
                # A shadow that cannot load must not keep the live model from classifying.
                required=role == LIVE,
                on_reload=metrics.reloaded,
                on_swap=metrics.swapped,
            )
            log.info("%s model %s from %s", role, holders[role].version, spec)
    live, shadow = holders[LIVE], holders.get(SHADOW)
    if shadow is not None:
        metrics.expect_judgements()
    deps = handlers.Deps(
        model=lambda: live.model,
        shadow=lambda: shadow.model if shadow is not None else None,
        on_classified=metrics.observe,
        on_timed=metrics.timed,
        on_compared=metrics.compared,
        on_shadow_failed=metrics.shadow_failed,
        on_corrected=metrics.corrected,
        on_judged=metrics.judged_correction,
    )
    retention = settings.corrections_retention_days * 86400
    checks: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_infra(settings, NAME) as infra:
            corrections = (
                RedisCorrectionStore(infra.redis, settings.redis.key_prefix, retention) if retention else None
            )
            table = handlers.handler_table(replace(deps, corrections=corrections))
            async with consuming(infra, settings, NAME, table, bus_metrics):
                watchers = [
                    asyncio.create_task(h.watch(settings.model_poll_seconds)) for h in holders.values()
                ]
                checks.update(infra.checks)
                try:
                    yield
                finally:
                    for watcher in watchers:
                        watcher.cancel()
                    await asyncio.gather(*watchers, return_exceptions=True)
        checks.clear()

    app = FastAPI(title="Switchboard classifier", version="0.1.0", lifespan=lifespan)
    app.include_router(ops_router(registry, lambda: checks))
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.state.models = holders

    @app.get("/v1/model", summary="The models in force: version, where each came from, when it was loaded")
    async def get_model() -> dict[str, Any]:
        models = {role: holders[role].describe() if role in holders else None for role in (LIVE, SHADOW)}
        return {**models, "support_prior": settings.support_prior}

    @app.post(
        "/v1/classify",
        summary="Classify messages with the models in force, as the service would, without publishing, "
        "counting or keeping anything: why a message went where it went, or what a candidate in shadow "
        "would decide",
        responses={422: {"description": "A message is empty, too long, or there are too many."}},
    )
    async def classify(trial: Trial) -> TrialAnswer:
        items = [m.inbound() for m in trial.messages]
        live_model = live.model
        answer = TrialAnswer(live=TrialDecisions.of(live_model, items))
        shadow_model = shadow.model if shadow is not None else None
        if shadow_model is not None:
            # As in the service: a shadow that fails does not keep the live decision from being told.
            try:
                answer.shadow = TrialDecisions.of(shadow_model, items)
            except Exception as exc:
                answer.shadow_error = f"{type(exc).__name__}: {exc}"
        return answer

    @app.post(
        "/v1/model/reload",
        summary="Load the model again (a new artefact in its directory); a model that fails to load is "
        "refused and the one in force keeps deciding",
        responses={422: {"description": "The model could not be loaded; the reason says why."}},
    )
    async def reload_model(role: Literal["live", "shadow"] | None = None) -> dict[str, Any]:
        if role is not None and role not in holders:
            raise HTTPException(404, f"no {role} model is configured")
        refused = []
        for name, holder in holders.items():
            if role in (None, name):
                try:
                    await holder.reload()
                except ReloadError as exc:
                    kept = holder.version or "no model"
                    refused.append(f"{name} model refused, {kept} stays in force: {exc}")
        if refused:
            raise HTTPException(422, "; ".join(refused))
        return await get_model()

    return app
