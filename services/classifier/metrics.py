"""The classifier's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from switchboard.contract import Classification


class ClassifierMetrics:
    """What ops watch about the classifier's decisions."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.classified = Counter(
            "switchboard_classifier_messages_classified",
            "Messages classified, by category and language.",
            ["category", "language"],
            registry=registry,
        )
        self.confidence = Histogram(
            "switchboard_classifier_confidence",
            "Confidence of each decision.",
            ["category"],
            buckets=(0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
            registry=registry,
        )

    def observe(self, classification: Classification) -> None:
        """Count one decision."""
        self.classified.labels(classification.category, classification.language).inc()
        self.confidence.labels(classification.category).observe(classification.confidence)
