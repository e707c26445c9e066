"""The router service: turns classified messages into cases and hands them to their queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from router import handlers
from router.config import Settings
from router.delivery import HandoffConfig, HandoffWorker
from router.handoff import DELIVERY_FAILED
from router.identifiers import LinkPolicy, identify
from router.metrics import RouterMetrics
from router.outbox import RedisOutbox
from router.rules import RuleSet, parse_rules
from router.store import Attached, CaseStore, RedisCaseStore
from switchboard.contract import (
    Author,
    Channel,
    Classification,
    ClassifiedMessage,
    Message,
    Queue,
    Visibility,
)
from switchboard.live import ConfigError, LiveConfig
from switchboard.metrics import BusMetrics
from switchboard.service import consuming, invalid_request, open_infra, ops_router

NAME = "router"
EARLIEST_DRY_RUN = datetime(1, 1, 2, tzinfo=UTC)
LATEST_DRY_RUN = datetime(9999, 12, 30, tzinfo=UTC)
log = logging.getLogger(__name__)


class RuleTest(BaseModel):
    """A sample message and its classification, to see which rule would route it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel": "x",
                    "text": "Je veux être remboursée, vous m'avez facturé deux fois",
                    "author": {"id": "42", "handle": "@marie_l"},
                    "classification": {
                        "category": "support",
                        "intent": "billing",
                        "is_complaint": True,
                        "language": "fr",
                        "sentiment": "negative",
                        "sentiment_score": -0.6,
                        "priority": "P2",
                        "reply_privately": True,
                        "confidence": 0.91,
                        "model_version": "sample",
                    },
                }
            ]
        },
    )

    channel: Channel
    text: str = Field(min_length=1, max_length=20_000)
    author: Author = Field(default_factory=lambda: Author(id="sample"))
    visibility: Visibility = "public"
    account: str | None = Field(
        default=None,
        min_length=1,
        max_length=320,
        description="The brand account the sample was written to, as its channel's id (783214 on X, "
        "sav@brand.example for email): what `account` rules match, as `<channel>:<this>`.",
    )
    classification: Classification
    at: AwareDatetime | None = Field(
        default=None,
        description="When to pretend it arrives (time rules): any time from 0001-01-02 to 9999-12-30 (UTC).",
    )
    case_queue: Queue | None = Field(
        default=None,
        description="The queue of the open case the sample would join as a later message (a case nobody "
        "moved by hand); unset: the sample opens a case.",
    )
    case_skill_group: str | None = Field(
        default=None,
        max_length=200,
        description="That case's skill group, as `GET /v1/cases/{id}` shows it: a message that follows the "
        "case keeps it. Only with `case_queue`.",
    )

    @field_validator("at")
    @classmethod
    def _a_date_in_every_timezone(cls, value: datetime | None) -> datetime | None:
        # Time rules read the time in their timezone: a day inside the range a datetime holds keeps it a
        # date there too, where year 9999 at 23:59 UTC is year 10000 in Paris and overflowed (a 500).
        if value is not None and not EARLIEST_DRY_RUN <= value <= LATEST_DRY_RUN:
            raise ValueError("the time must lie between 0001-01-02 and 9999-12-30 (UTC)")
        return value

    @model_validator(mode="after")
    def _a_skill_group_belongs_to_a_case(self) -> RuleTest:
        if self.case_skill_group is not None and self.case_queue is None:
            raise ValueError("case_skill_group describes the case of case_queue: give case_queue too")
        return self


def bundled_rules() -> str:
    """Return the example rules that ship with the router."""
    return resources.files("router").joinpath("rules.yaml").read_text(encoding="utf-8")


async def watch_queues(store: CaseStore, metrics: RouterMetrics, interval: float) -> None:
    """Keep the open-cases and oldest-age gauges of every queue current; run until cancelled."""
    while True:
        try:
            now = time.time()
            for queue in Queue:
                count, oldest = await store.queue_depth(queue)
                metrics.open_cases.labels(queue.value).set(count)
                metrics.oldest_open_age.labels(queue.value).set(now - oldest if oldest is not None else 0.0)
        except Exception:
            log.warning("reading queue depths failed", exc_info=True)
        await asyncio.sleep(interval)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the router's app; its lifespan runs the consumer loop and the rules-file watch."""
    settings = settings or Settings()
    registry = CollectorRegistry()
    bus_metrics = BusMetrics(NAME, registry)
    metrics = RouterMetrics(registry)
    rules: LiveConfig[RuleSet] = LiveConfig(
        "routing rules",
        settings.rules_file,
        bundled_rules,
        lambda text: parse_rules(text, settings.rules_file or "bundled routing rules"),
        lambda outcome: metrics.reloads.labels(outcome).inc(),
    )
    link_policy = LinkPolicy.from_entries(settings.link_ignore, settings.link_cases)
    checks: dict = {}
    state: dict[str, CaseStore] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_infra(settings, NAME) as infra:
            store = RedisCaseStore(
                infra.redis, settings.redis.key_prefix, settings.resolved_case_retention_seconds
            )
            producer = infra.producer

            async def dead_letter(
                topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
            ) -> None:
                await producer.send_and_wait(topic, value, key=key, headers=headers)
                bus_metrics.dead_lettered.labels(topic.removesuffix(".dlq"), DELIVERY_FAILED).inc()

            outbox = RedisOutbox(infra.redis, settings.redis.key_prefix, settings.redis.dedupe_ttl_seconds)
            worker = HandoffWorker(outbox, HandoffConfig.from_settings(settings, NAME), metrics, dead_letter)
            deps = handlers.Deps(
                cases=store,
                rules=lambda: rules.current,
                window_seconds=settings.case_window_seconds,
                on_routed=metrics.observe,
                on_rerouted=metrics.observe_reroute,
                identify=lambda classified: identify(classified, link_policy),
                on_linked=metrics.observe_link,
                on_escalated=metrics.observe_escalation,
                handoff=worker if settings.handoff_urls else None,
            )
            async with consuming(infra, settings, NAME, handlers.handler_table(deps), bus_metrics):
                watcher = asyncio.create_task(rules.watch(settings.rules_poll_seconds))
                gauges = asyncio.create_task(watch_queues(store, metrics, settings.queue_gauge_seconds))
                worker.start()
                checks.update(infra.checks)
                state["cases"] = store
                try:
                    yield
                finally:
                    watcher.cancel()
                    gauges.cancel()
                    await asyncio.gather(watcher, gauges, return_exceptions=True)
                    await worker.stop()
        checks.clear()
        state.clear()

    app = FastAPI(title="Switchboard router", version="0.1.0", lifespan=lifespan)
    app.include_router(ops_router(registry, lambda: checks))
    app.add_exception_handler(RequestValidationError, invalid_request)

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

    @app.get("/v1/rules", summary="The routing rules in force: source, digest, rule names in order")
    async def get_rules() -> dict[str, Any]:
        return {**rules.describe(), "rules": rules.current.describe()}

    @app.post(
        "/v1/rules/reload",
        summary="Reload the rules file; an invalid file is rejected and the previous rules stay live",
        responses={422: {"description": "The file is invalid; the reason names the rule and field."}},
    )
    async def reload_rules() -> dict[str, Any]:
        try:
            rules.reload()
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        return await get_rules()

    @app.post("/v1/rules/test", summary="Show where a sample message would go, without routing anything")
    async def test_rules(sample: RuleTest) -> dict[str, Any]:
        at = sample.at or datetime.now(UTC)
        message = Message(
            message_id="sample",
            channel=sample.channel,
            external_id="sample",
            conversation_id="sample",
            author=sample.author,
            text=sample.text,
            created_at=at,
            received_at=at,
            visibility=sample.visibility,
            metadata={} if sample.account is None else {"account": sample.account},
        )
        current = rules.current
        decision = current.decide(
            ClassifiedMessage(message=message, classification=sample.classification), at
        )
        if sample.case_queue is not None and current.follow_the_case:
            # As the router would route it inside that case.
            held = sample.case_queue
            escalated = held if handlers.escalates(decision.queue, held) else None
            case = Attached(
                "sample", False, queue=held, skill_group=sample.case_skill_group, escalated_from=escalated
            )
            decision = handlers.follow_case(decision, case)
        return {
            "queue": decision.queue.value,
            "rule": decision.rule,
            "skill_group": decision.skill_group,
            "priority": decision.priority,
            "tags": list(decision.tags),
            "rules_digest": rules.digest,
        }

    return app
