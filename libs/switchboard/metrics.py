"""Generic Prometheus metrics every consuming service exposes, in a registry of its own."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BusMetrics:
    """Records in, out and dead-lettered, batch latency and lag of one service's consumer loop."""

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        prefix = f"switchboard_{service}"
        self.consumed = Counter(
            f"{prefix}_records_consumed", "Records read from Kafka.", ["topic"], registry=registry
        )
        self.produced = Counter(
            f"{prefix}_records_produced", "Records published and acknowledged.", ["topic"], registry=registry
        )
        self.dead_lettered = Counter(
            f"{prefix}_records_dead_lettered",
            "Records sent to a dead-letter topic.",
            ["topic", "reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            f"{prefix}_duplicates_skipped",
            "Redelivered events skipped because they were already handled.",
            ["topic"],
            registry=registry,
        )
        self.ignored = Counter(
            f"{prefix}_events_ignored",
            "Valid events of a type this service has no handler for.",
            ["topic"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            f"{prefix}_batch_duration_seconds",
            "Time to handle, publish and commit one consumed batch.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.batch_records = Histogram(
            f"{prefix}_batch_records",
            "Records per consumed batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500),
            registry=registry,
        )
        self.lag = Gauge(
            f"{prefix}_consumer_lag_records",
            "Records on the partition not yet consumed (end offset minus position).",
            ["topic", "partition"],
            registry=registry,
        )
        self.errors = Counter(
            f"{prefix}_bus_errors",
            "Batches retried after a broker or Redis error.",
            ["kind"],
            registry=registry,
        )
        # Rare series exist from the start at zero, so an alert sees their first increase.
        for kind in ("transient", "unexpected"):
            self.errors.labels(kind)


class Children:
    """Labelled children of metrics, each looked up once.

    `labels()` takes a lock and checks every value on each call, microseconds that add up when a
    service counts every message. Only for series that are never removed: a removed child stays cached.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}

    def __call__(self, metric: MetricWrapperBase, values: tuple[str, ...]) -> Any:
        """Return the child of `metric` with these label values."""
        child = self._cache.get((metric, values))
        if child is None:
            child = self._cache[(metric, values)] = metric.labels(*values)
        return child
