"""The classifier service: reads `messages.received`, publishes `messages.classified`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from classifier import handlers
from classifier.choice import load_model
from classifier.config import Settings
from classifier.metrics import ClassifierMetrics
from switchboard.metrics import BusMetrics
from switchboard.service import consuming, open_infra, ops_router

NAME = "classifier"
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, deps: handlers.Deps | None = None) -> FastAPI:
    """Build the classifier's app; its lifespan runs the consumer loop."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    bus_metrics = BusMetrics(NAME, registry)
    metrics = ClassifierMetrics(registry)
    if deps is None:
        model = load_model(settings.model, settings.model_cache)
        log.info("classifier model %s", model.version)
        deps = handlers.Deps(model=lambda: model, on_classified=metrics.observe)
    checks: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            open_infra(settings, NAME) as infra,
            consuming(infra, settings, NAME, handlers.handler_table(deps), bus_metrics),
        ):
            checks.update(infra.checks)
            yield
        checks.clear()

    app = FastAPI(title="Switchboard classifier", version="0.1.0", lifespan=lifespan)
    app.include_router(ops_router(registry, lambda: checks))
    return app
