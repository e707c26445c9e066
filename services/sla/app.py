"""The SLA service: starts clocks on routed cases, stops them on activity, fires warnings and breaches.

A firing carries the trace of the event that started its clock (kept with the timer): a child span of the
one that handled it. A timer started before the store kept it starts a new trace; its events still name
the case (`subject`, `partitionkey`), which links them to the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry

from sla import handlers
from sla.config import Settings
from sla.metrics import SlaMetrics
from sla.policies import PolicySet, default_policies_path, parse_policies
from sla.store import RedisCaseState, RedisTimerStore, TimerStore
from switchboard.bus import KafkaPublisher, Publisher
from switchboard.live import ConfigError, LiveConfig
from switchboard.metrics import BusMetrics
from switchboard.service import consuming, invalid_request, open_infra, ops_router
from switchboard.tracing import Spans, continue_from

NAME = "sla"
CLAIM_LIMIT = 1000
LEASE_SECONDS = 30.0

log = logging.getLogger(__name__)


def live_policies(settings: Settings, on_reload: Callable[[str], None]) -> LiveConfig[PolicySet]:
    """Load the policy file (or the bundled example), scaled by SLA_TARGET_SCALE."""

    def parse(text: str) -> PolicySet:
        policies = parse_policies(text, settings.policy_file or "bundled SLA policies")
        return policies.scaled(settings.target_scale) if settings.target_scale != 1.0 else policies

    return LiveConfig(
        "SLA policies",
        settings.policy_file,
        lambda: default_policies_path().read_text(encoding="utf-8"),
        parse,
        on_reload,
    )


async def fire_due(
    timers: TimerStore,
    publisher: Publisher,
    deps: handlers.Deps,
    metrics: SlaMetrics,
    spans: Spans | None = None,
) -> int:
    """Publish what is due now (warnings, breaches, escalations), then forget it; return how many."""
    now = deps.clock()
    started = time.time_ns() if spans is not None else 0
    claimed = await timers.claim_due(now, CLAIM_LIMIT)
    if not claimed:
        return 0
    pairs = handlers.fired(claimed, now, deps.policies())
    events = [event for _, event in pairs]
    traces = [continue_from(entry.trace) for entry, _ in pairs]
    try:
        await publisher.publish(events, traces)
    except BaseException:
        # Not acknowledged (broker trouble, or a stop cancelled us): hand the entries back now rather
        # than after the lease. Some may have reached the broker; their repeat carries the same ids.
        await asyncio.shield(timers.release(claimed))
        raise
    await timers.done([c.member for c in claimed])
    for event in events:
        metrics.observe(event)
    if spans is not None:
        for event, trace in zip(events, traces, strict=True):
            spans.record(
                f"fire {event.type}",
                trace,
                "producer",
                started,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": event.topic(),
                    "messaging.message.id": event.id,
                    "switchboard.case_id": event.subject,
                },
            )
    for entry in claimed:
        metrics.firing_lag.observe(max(0.0, (now - entry.due).total_seconds()))
    return len(claimed)


async def report_next_deadline(timers: TimerStore, deps: handlers.Deps, metrics: SlaMetrics) -> None:
    """Read the earliest due entry from Redis and report how far away it is."""
    try:
        due = await timers.next_due()
    except Exception:
        # Unknown rather than stale: a frozen "3 s away" would hide deadlines passing. The firing step
        # of the same tick has already logged what is wrong with Redis.
        metrics.deadline(None, deps.clock())
        log.debug("reading the next deadline failed", exc_info=True)
        return
    metrics.deadline(due, deps.clock())


async def run_ticker(
    timers: TimerStore,
    publisher: Publisher,
    deps: handlers.Deps,
    metrics: SlaMetrics,
    tick: float,
    spans: Spans | None = None,
) -> None:
    """Fire due timers every tick until cancelled; hand back stale claims of dead instances."""
    last_requeue = 0.0
    while True:
        try:
            if time.monotonic() - last_requeue > LEASE_SECONDS / 3:
                await timers.requeue_stale(deps.clock(), LEASE_SECONDS)
                metrics.open_timers.set(await timers.open_count())
                last_requeue = time.monotonic()
            while await fire_due(timers, publisher, deps, metrics, spans) == CLAIM_LIMIT:
                pass
        except asyncio.CancelledError:
            raise
        except Exception:
            # Claimed entries stay in `firing` and come back after the lease: nothing is lost.
            log.warning("firing due timers failed", exc_info=True)
        # Also after a failed firing: entries that could not be published stay due and show as overdue.
        await report_next_deadline(timers, deps, metrics)
        await asyncio.sleep(tick)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the SLA service's app; its lifespan runs the consumer loop, the ticker and the file watch."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    bus_metrics = BusMetrics(NAME, registry)
    metrics = SlaMetrics(registry)

    def reloaded(outcome: str) -> None:
        metrics.reloads.labels(outcome).inc()
        if outcome == "loaded":
            metrics.declare(policies.current)

    policies = live_policies(settings, reloaded)
    metrics.declare(policies.current)
    checks: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_infra(settings, NAME) as infra:
            timers = RedisTimerStore(infra.redis, settings.redis.key_prefix)
            deps = handlers.Deps(
                timers=timers,
                cases=RedisCaseState(infra.redis, settings.redis.key_prefix),
                policies=lambda: policies.current,
                on_event=metrics.observe,
            )
            publisher = KafkaPublisher(infra.producer, lambda t, n: bus_metrics.produced.labels(t).inc(n))
            # Firing needs Redis and the producer only: it must not wait until the consumer has joined
            # its group, which takes a rebalance (seconds, or longer while a member is stuck).
            tasks = [
                asyncio.create_task(
                    run_ticker(timers, publisher, deps, metrics, settings.tick_seconds, infra.spans)
                ),
                asyncio.create_task(policies.watch(settings.policy_poll_seconds)),
            ]
            try:
                async with consuming(infra, settings, NAME, handlers.handler_table(deps), bus_metrics):
                    checks.update(infra.checks)
                    yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        checks.clear()

    app = FastAPI(title="Switchboard SLA", version="0.1.0", lifespan=lifespan)
    app.include_router(ops_router(registry, lambda: checks))
    app.add_exception_handler(RequestValidationError, invalid_request)

    @app.get("/v1/policies", summary="The SLA policies in force, in match order")
    async def get_policies() -> dict[str, Any]:
        return {**policies.describe(), "policies": [describe(p) for p in policies.current]}

    @app.post(
        "/v1/policies/reload",
        summary="Reload the policy file; an invalid file is rejected and the previous policies stay",
        responses={422: {"description": "The file is invalid; the reason names the policy and field."}},
    )
    async def reload_policies() -> dict[str, Any]:
        try:
            policies.reload()
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        return await get_policies()

    return app


def describe(policy: Any) -> dict[str, Any]:
    """Describe one policy for operators: its targets, warnings, escalations and calendar."""
    return {
        "name": policy.name,
        "targets_seconds": dict(policy.targets),
        "warn_at": list(policy.warn_at),
        "escalate_after_breach_seconds": list(policy.escalate_after_breach),
        "calendar": repr(policy.calendar),
        "match": {k: sorted(map(str, v)) for k, v in policy.match.items()},
    }
