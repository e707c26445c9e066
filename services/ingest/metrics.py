"""Ingest's Prometheus metrics, including request rate, errors and duration per route."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.metrics import Children


class IngestMetrics:
    """What ops watch at the front door."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "switchboard_ingest_messages_accepted",
            "Messages published, by channel.",
            ["channel"],
            registry=registry,
        )
        self.duplicates = Counter(
            "switchboard_ingest_messages_duplicate",
            "Messages received again and not republished, by channel.",
            ["channel"],
            registry=registry,
        )
        self.rejected = Counter(
            "switchboard_ingest_requests_rejected",
            "Requests refused, by reason.",
            ["reason"],
            registry=registry,
        )
        self.publish_failures = Counter(
            "switchboard_ingest_publish_failures",
            "Publishes the broker did not acknowledge in time (answered 503).",
            registry=registry,
        )
        self.claim_failures = Counter(
            "switchboard_ingest_claim_failures",
            "Redis calls of the exactly-once claims that failed, by step (a failed claim is answered 503).",
            ["step"],
            registry=registry,
        )
        for step in ("claim", "confirm", "release"):
            self.claim_failures.labels(step)
        self.activities = Counter(
            "switchboard_ingest_activities_accepted",
            "Case activities published, by type.",
            ["type"],
            registry=registry,
        )
        self.requests = Counter(
            "switchboard_ingest_http_requests",
            "HTTP requests, by route and status.",
            ["route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "switchboard_ingest_http_request_duration_seconds",
            "HTTP request duration, by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=registry,
        )


class RequestMetricsMiddleware:
    """Count and time every request by its route template (bounded labels, never an id)."""

    def __init__(self, app: ASGIApp, metrics: IngestMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children = Children()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self._children(self.metrics.requests, (template, str(status))).inc()
            self._children(self.metrics.duration, (template,)).observe(time.perf_counter() - started)
