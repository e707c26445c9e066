"""The classifier's Prometheus metrics."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from classifier.choice import LIVE, SHADOW
from switchboard.contract import Classification
from switchboard.metrics import BATCH_BUCKETS, Children

# What the router acts on: where a case goes, whether it is a complaint, how soon it is due.
COMPARED = ("category", "intent", "is_complaint", "priority")


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
        self.reloads = Counter(
            "switchboard_classifier_model_reloads",
            "Model reloads (HTTP or directory watch), by role and outcome.",
            ["role", "outcome"],
            registry=registry,
        )
        self.model_info = Gauge(
            "switchboard_classifier_model_info",
            "1 for each model in force, by role and version.",
            ["role", "version"],
            registry=registry,
        )
        self.inference_seconds = Histogram(
            "switchboard_classifier_inference_duration_seconds",
            "Time a model took to classify one batch, by role.",
            ["role"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.shadow_decisions = Counter(
            "switchboard_classifier_shadow_decisions",
            "Messages the shadow model decided too, compared with the live decision.",
            registry=registry,
        )
        self.shadow_disagreements = Counter(
            "switchboard_classifier_shadow_disagreements",
            "Messages on which the shadow model decided a field otherwise than the live one.",
            ["field"],
            registry=registry,
        )
        self.shadow_failures = Counter(
            "switchboard_classifier_shadow_failures",
            "Batches the shadow model failed on (the live decisions stood).",
            registry=registry,
        )
        for field in COMPARED:
            self.shadow_disagreements.labels(field)
        self.corrections = Counter(
            "switchboard_classifier_corrections",
            "Reassignments between customer service and marketing recorded as corrected labels.",
            ["from_category", "to_category"],
            registry=registry,
        )
        for from_category in ("support", "marketing"):
            for to_category in ("support", "marketing"):
                self.corrections.labels(from_category, to_category)
        self.judged = Counter(
            "switchboard_classifier_corrections_judged",
            "Corrections recorded while a shadow ran, by model and by whether it had the category the "
            "person chose (live: its decision when the message came in; shadow: its decision then).",
            ["role", "verdict"],
            registry=registry,
        )
        self._child = Children()

    def expect_reloads(self, role: str) -> None:
        """Show a role's reload series at zero from the start, so an alert sees their first increase."""
        for outcome in ("loaded", "rejected"):
            self.reloads.labels(role, outcome)

    def expect_judgements(self) -> None:
        """Show the judged-corrections series at zero from the start, when a shadow runs."""
        for role in (LIVE, SHADOW):
            for verdict in ("right", "wrong"):
                self.judged.labels(role, verdict)

    def reloaded(self, role: str, outcome: str) -> None:
        """Count one reload."""
        self.reloads.labels(role, outcome).inc()

    def swapped(self, role: str, old: str | None, new: str | None) -> None:
        """Mark `new` as the model of `role` (None: the role is empty), and drop the series of the model it
        replaced."""
        if old is not None and old != new:
            try:
                self.model_info.remove(role, old)
            except KeyError:
                pass
        if new is not None:
            self.model_info.labels(role, new).set(1)

    def observe(self, classifications: Sequence[Classification]) -> None:
        """Count a batch of decisions: one increment per category and language, one observation each."""
        child = self._child
        for labels, n in Tally((c.category, c.language) for c in classifications).items():
            child(self.classified, labels).inc(n)
        for c in classifications:
            child(self.confidence, (c.category,)).observe(c.confidence)

    def timed(self, role: str, seconds: float) -> None:
        """Record how long a model took over a batch."""
        self._child(self.inference_seconds, (role,)).observe(seconds)

    def compared(self, live: Sequence[Classification], shadow: Sequence[Classification]) -> None:
        """Count the shadow's decisions and, field by field, those that differ from the live ones."""
        self.shadow_decisions.inc(len(live))
        for field in COMPARED:
            differ = sum(getattr(a, field) != getattr(b, field) for a, b in zip(live, shadow, strict=True))
            if differ:
                self._child(self.shadow_disagreements, (field,)).inc(differ)

    def shadow_failed(self) -> None:
        """Count a batch the shadow failed on."""
        self.shadow_failures.inc()

    def corrected(self, from_category: str, to_category: str) -> None:
        """Count a correction: the category the model gave and the one a person chose."""
        self.corrections.labels(from_category, to_category).inc()

    def judged_correction(self, role: str, right: bool) -> None:
        """Count whether a model had the category a person chose for a corrected message."""
        self.judged.labels(role, "right" if right else "wrong").inc()
