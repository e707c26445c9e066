"""The router service: turns classified messages into cases and hands them to their queue."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query
from prometheus_client import CollectorRegistry

from router import handlers
from router.config import Settings
from router.metrics import RouterMetrics
from router.store import CaseStore, RedisCaseStore
from switchboard.contract import Queue
from switchboard.metrics import BusMetrics
from switchboard.service import consuming, open_infra, ops_router

NAME = "router"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the router's app; its lifespan runs the consumer loop."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    bus_metrics = BusMetrics(NAME, registry)
    metrics = RouterMetrics(registry)
    checks: dict = {}
    state: dict[str, CaseStore] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_infra(settings, NAME) as infra:
            store = RedisCaseStore(infra.redis, settings.redis.key_prefix)
            deps = handlers.Deps(
                cases=store,
                review_threshold=settings.review_confidence_threshold,
                window_seconds=settings.case_window_seconds,
                on_routed=metrics.observe,
            )
            async with consuming(infra, settings, NAME, handlers.handler_table(deps), bus_metrics):
                checks.update(infra.checks)
                state["cases"] = store
                yield
        checks.clear()
        state.clear()

    app = FastAPI(title="Switchboard router", version="0.1.0", lifespan=lifespan)
    app.include_router(ops_router(registry, lambda: checks))

    def cases() -> CaseStore:
        if "cases" not in state:
            raise HTTPException(503, "the router is starting")
        return state["cases"]

    @app.get("/v1/cases/{case_id}", summary="One case: its queue, status, channels and messages")
    async def get_case(case_id: Annotated[str, Path(max_length=128)]) -> dict[str, Any]:
        case = await cases().get(case_id)
        if case is None:
            raise HTTPException(404, f"no case {case_id!r}")
        return case

    @app.get("/v1/queues/{queue}", summary="Open cases of a queue, oldest first, with their age")
    async def get_queue(queue: Queue, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        now = time.time()
        entries = await cases().open_cases(queue, limit)
        for entry in entries:
            entry["age_seconds"] = round(now - entry.pop("opened_at_epoch"), 3)
        return {"queue": queue.value, "cases": entries}

    return app
