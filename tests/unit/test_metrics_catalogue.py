"""docs/metrics.md lists exactly the metrics the services expose, with their types."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from classifier.metrics import ClassifierMetrics
from ingest.metrics import IngestMetrics
from router.metrics import RouterMetrics
from sla.metrics import SlaMetrics
from switchboard.metrics import BusMetrics

CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
CONSUMERS = ("classifier", "router", "sla")


def exposed() -> dict[str, str]:
    """Every metric name as scraped, with its type."""
    registry = CollectorRegistry()
    IngestMetrics(registry)
    ClassifierMetrics(registry)
    RouterMetrics(registry)
    SlaMetrics(registry)
    for service in CONSUMERS:
        BusMetrics(service, registry)
    names = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        names[name] = family.type
    return names


def documented() -> dict[str, str]:
    """Every metric name in the catalogue's tables, `<svc>` expanded, with its type."""
    names = {}
    for name, kind in re.findall(r"^\| `(switchboard_[a-z_<>]+)` \| (\w+) \|", CATALOGUE.read_text(), re.M):
        for service in CONSUMERS if "<svc>" in name else ("",):
            names[name.replace("<svc>", service)] = kind
    return names


def test_the_catalogue_lists_every_exposed_metric_with_its_type():
    assert documented() == exposed()


def test_metric_names_follow_prometheus_conventions():
    for name, kind in exposed().items():
        assert re.fullmatch(r"switchboard_(ingest|classifier|router|sla)_[a-z_]+", name), name
        if kind == "counter":
            assert name.endswith("_total"), name
        else:
            assert not name.endswith("_total"), name
