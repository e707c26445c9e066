"""The SLA service: starts clocks on routed cases, stops them on activity, fires warnings and breaches."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from sla import handlers
from sla.config import Settings
from sla.metrics import SlaMetrics
from sla.store import RedisTimerStore, TimerStore
from switchboard.bus import KafkaPublisher, Publisher
from switchboard.contract import SlaBreached
from switchboard.metrics import BusMetrics
from switchboard.service import consuming, open_infra, ops_router

NAME = "sla"
CLAIM_LIMIT = 1000
LEASE_SECONDS = 30.0

log = logging.getLogger(__name__)


async def fire_due(timers: TimerStore, publisher: Publisher, deps: handlers.Deps, metrics: SlaMetrics) -> int:
    """Publish the warnings and breaches now due, then forget them; return how many were claimed."""
    now = deps.clock()
    claimed = await timers.claim_due(now, CLAIM_LIMIT)
    if not claimed:
        return 0
    events = handlers.fired_events(claimed, now, deps.warn_fraction)
    await publisher.publish(events)
    await timers.done([c.member for c in claimed])
    for event in events:
        metrics.observe(event)
        if isinstance(event, SlaBreached):
            metrics.firing_lag.observe(max(0.0, (now - event.data.due_at).total_seconds()))
    return len(claimed)


async def run_ticker(
    timers: TimerStore, publisher: Publisher, deps: handlers.Deps, metrics: SlaMetrics, tick: float
) -> None:
    """Fire due timers every tick until cancelled; hand back stale claims of dead instances."""
    last_requeue = 0.0
    while True:
        try:
            if time.monotonic() - last_requeue > LEASE_SECONDS / 3:
                await timers.requeue_stale(deps.clock(), LEASE_SECONDS)
                metrics.open_timers.set(await timers.open_count())
                last_requeue = time.monotonic()
            while await fire_due(timers, publisher, deps, metrics) == CLAIM_LIMIT:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            # Claimed entries stay in `firing` and come back after the lease: nothing is lost.
            log.warning("firing due timers failed", exc_info=True)
        await asyncio.sleep(tick)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the SLA service's app; its lifespan runs the consumer loop and the ticker."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    bus_metrics = BusMetrics(NAME, registry)
    metrics = SlaMetrics(registry)
    checks: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_infra(settings, NAME) as infra:
            timers = RedisTimerStore(infra.redis, settings.redis.key_prefix)
            deps = handlers.Deps(
                timers=timers,
                target_scale=settings.target_scale,
                warn_fraction=settings.warn_fraction,
                on_event=metrics.observe,
            )
            async with consuming(infra, settings, NAME, handlers.handler_table(deps), bus_metrics):
                publisher = KafkaPublisher(infra.producer, lambda t, n: bus_metrics.produced.labels(t).inc(n))
                ticker = asyncio.create_task(
                    run_ticker(timers, publisher, deps, metrics, settings.tick_seconds)
                )
                checks.update(infra.checks)
                try:
                    yield
                finally:
                    ticker.cancel()
                    await asyncio.gather(ticker, return_exceptions=True)
        checks.clear()

    app = FastAPI(title="Switchboard SLA", version="0.1.0", lifespan=lifespan)
    app.include_router(ops_router(registry, lambda: checks))
    return app
