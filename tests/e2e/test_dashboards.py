"""Every Grafana panel's query returns data from a real Prometheus scraping the running stack.

The four services run as processes against the session's broker and Redis (the embedded stack, as in
test_pipeline.py), with an SLA policy of seconds-long targets. A `prometheus` server of our own scrapes
their /metrics every second and evaluates deploy/prometheus/alerts.yml. Traffic goes in through ingest:
support and marketing messages in French and English, a retried message, then answers and resolutions,
one of them after a breach and an escalation. Then every panel query of deploy/grafana/dashboards runs
as an instant query and must return something: an empty panel is also what ops see when the metric
pipeline is broken, so a panel whose series may legitimately not exist yet returns 0 instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from switchboard.contract import decode
from switchboard.demo import demo_messages
from switchboard.stack import (
    SERVICES,
    EmbeddedStack,
    StackConfig,
    free_port,
    stop_process,
    wait_until,
)
from switchboard.testing import TopicReader, eventually, keys_removed

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = shutil.which("prometheus")

pytestmark = pytest.mark.e2e

# Support cases are due in seconds: an unanswered one warns at 1.5 s, breaches at 3 s and escalates
# at 4 s. Marketing cases keep a deadline a minute ahead, so the next-deadline gauge has one to show.
POLICY = """
policies:
  - name: marketing
    match: {queue: marketing}
    first_response: 60s
    warn_at: [0.8]
  - name: support
    first_response: 3s
    next_response: 3s
    resolution: 8s
    warn_at: [0.5]
    escalate_after_breach: [1s]
"""
QUEUE_TOPICS = ("cases.customer-service", "cases.marketing", "cases.review")
# What Grafana puts in place of its built-in interval variables; $__range is the dashboard's time range.
INTERVALS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


@dataclass(frozen=True)
class Query:
    """One panel target, as Prometheus receives it."""

    dashboard: str
    panel: str
    ref: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel!r} {self.ref}: {self.expr}"


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield every panel, those inside collapsed rows included."""
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """Return what each variable of a dashboard stands for, as Grafana substitutes it by default."""
    time_range = dashboard.get("time", {}).get("from", "now-1h").removeprefix("now-")
    values = {**INTERVALS, "__range": time_range}
    seconds = prometheus_seconds(time_range)
    values |= {"__range_s": str(seconds), "__range_ms": str(seconds * 1000)}
    for variable in dashboard.get("templating", {}).get("list", []):
        current = variable.get("current", {}).get("value")
        chosen = current[0] if isinstance(current, list) and current else current
        if chosen in (None, "$__all") and variable.get("includeAll"):
            chosen = variable.get("allValue") or ".*"
        values[variable["name"]] = str(chosen)
    return values


def prometheus_seconds(duration: str) -> int:
    """Return the seconds of a duration such as `30m` or `6h`."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhdw])", duration))


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana's variables in a panel query; an unknown variable is left for the test to report."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return values.get(name, match.group())

    return VARIABLE.sub(value, expr)


def dashboard_queries() -> list[Query]:
    """Return every panel target expression of every dashboard, its variables substituted."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        values = variable_values(dashboard)
        for panel in walk_panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if isinstance(target.get("expr"), str) and not target.get("hide"):
                    expr = substitute(target["expr"], values)
                    queries.append(Query(path.name, panel.get("title", ""), target.get("refId", ""), expr))
    return queries


def label_value_queries() -> list[tuple[str, str, str]]:
    """Return each `label_values(metric, label)` variable as (dashboard, metric, label)."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for variable in dashboard.get("templating", {}).get("list", []):
            definition = str(variable.get("definition", ""))
            for metric, label in re.findall(r"label_values\(\s*([\w:]+)\s*,\s*(\w+)\s*\)", definition):
                found.append((path.name, metric, label))
    return found


def test_the_query_reader_substitutes_grafana_variables_as_grafana_would():
    dashboard = {
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {"name": "policy", "includeAll": True, "allValue": ".*", "current": {"value": ["$__all"]}},
                {"name": "queue", "current": {"value": "marketing"}},
            ]
        },
    }
    values = variable_values(dashboard)
    expr = 'rate(x{p=~"$policy", q="${queue}", r="[[queue]]"}[$__rate_interval]) offset $__range'
    assert substitute(expr, values) == 'rate(x{p=~".*", q="marketing", r="marketing"}[1m]) offset 6h'
    assert substitute("sum(increase(x[${__range_s}s]))", values) == "sum(increase(x[21600s]))"
    assert substitute("up[$__interval]", values) == "up[15s]"
    assert substitute("x{a=~'$unknown'}", values) == "x{a=~'$unknown'}"


@pytest.fixture
def stack(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[EmbeddedStack]:
    """The four services as processes against the session's broker and Redis, with fast SLA targets."""
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    host, port = kafka_bootstrap.rsplit(":", 1)
    prefix = f"e2e:{uuid.uuid4().hex[:8]}:"
    config = StackConfig(
        kafka_host=host,
        kafka_port=int(port),
        redis_url=redis_url,
        ports={s: free_port() for s in SERVICES},
        state_dir=tmp_path / "stack",
        redis_persistence=False,
        env={
            "SWITCHBOARD_REDIS_KEY_PREFIX": prefix,
            "SLA_POLICY_FILE": str(policy),
            "SLA_TICK_SECONDS": "0.1",
            # A shadow model, so that the shadow panels have decisions to show.
            "CLASSIFIER_SHADOW_MODEL": "lexicon",
        },
    )
    # The stack's keys go once it has stopped: the shared Redis does not keep them.
    with keys_removed(redis_url, prefix), EmbeddedStack(config, say=lambda *_: None) as running:
        yield running


@pytest.fixture
def prometheus(stack: EmbeddedStack, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server scraping the four services every second and evaluating the alert rules."""
    if PROMETHEUS is None:
        pytest.fail("no prometheus binary on PATH: CI must run this test (apt-get install prometheus)")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": service,
                "static_configs": [{"targets": [stack.url(service).removeprefix("http://")]}],
            }
            for service in SERVICES
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "prometheus.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 30, "prometheus", interval=0.2)
        yield url
    finally:
        stop_process(process)


async def instant(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    """Run an instant query; return its result, or raise with Prometheus's error."""
    response = await client.get("/api/v1/query", params={"query": query})
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"{body.get('errorType')}: {body.get('error')}")
    result = body["data"]["result"]
    return result if body["data"]["resultType"] in ("vector", "matrix") else [result]


async def post_messages(client: httpx.AsyncClient) -> list[str]:
    """Post two support and two marketing messages in each of French and English; return their ids."""
    picked: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in demo_messages():
        group = picked.setdefault((item["expected_category"], item["language"]), [])
        if len(group) < 2 and all(item["channel"] != other["channel"] for other in group):
            group.append(item)
    bodies = []
    for item in (item for group in picked.values() for item in group):
        body = {k: v for k, v in item.items() if k not in ("expected_category", "expected_intent")}
        body["external_id"] = f"dash-{uuid.uuid4().hex}"
        body["created_at"] = datetime.now(UTC).isoformat()
        bodies.append(body)
    assert len(bodies) == 8
    ids = []
    for body in bodies[:4]:
        response = await client.post("/v1/messages", json=body)
        assert response.status_code == 202, response.text
        ids.append(response.json()["message_id"])
    response = await client.post("/v1/messages/batch", json={"messages": bodies[4:]})
    assert response.status_code == 200, response.text
    ids += [r["message_id"] for r in response.json()["results"]]
    # A channel retrying its webhook: answered as a duplicate, counted, not published again.
    again = await client.post("/v1/messages", json=bodies[0])
    assert again.status_code == 200 and again.json()["status"] == "duplicate", again.text
    return ids


async def act(client: httpx.AsyncClient, case_id: str, kind: str) -> None:
    """Record what the contact centre did on a case, now."""
    body = {"type": kind, "at": datetime.now(UTC).isoformat(), "agent": "agent-7"}
    response = await client.post(f"/v1/cases/{case_id}/activity", json=body)
    assert response.status_code == 202, response.text


async def play_the_contact_centre(stack: EmbeddedStack, ingest: httpx.AsyncClient) -> None:
    """Send messages, then answer and resolve some cases in time and one after its breach and escalation."""
    async with TopicReader(stack.config.bootstrap, *QUEUE_TOPICS, "sla.events") as reader:
        message_ids = set(await post_messages(ingest))

        def routed(record) -> bool:
            return record.topic in QUEUE_TOPICS and decode(record.value).data.message_id in message_ids

        case_ids = {decode(r.value).data.case_id for r in await reader.wait_for(routed, len(message_ids))}

        def first_response(type_: str, *of: str):
            """Match the first-response clock's events of this type, of our cases or of the ones named."""

            def match(record) -> bool:
                if record.topic != "sla.events":
                    return False
                event = decode(record.value)
                return (
                    event.type == f"switchboard.sla.{type_}"
                    and event.data.clock == "first_response"
                    and event.data.case_id in (of or case_ids)
                )

            return match

        started = [
            decode(r.value).data for r in await reader.wait_for(first_response("started"), len(case_ids))
        ]
        support = sorted(timer.case_id for timer in started if timer.policy == "support")
        assert len(support) >= 3, f"too few support cases: {[(t.case_id, t.policy) for t in started]}"
        late, answered, resolved = support[:3]

        # Answered well within the 3 s target; one of them resolved within its 8 s too.
        await act(ingest, answered, "responded")
        await act(ingest, resolved, "responded")
        await act(ingest, resolved, "resolved")
        # Nobody answers the others: they warn, breach and escalate; one is answered late after all.
        await reader.wait_for(first_response("escalated", late))
        await act(ingest, late, "responded")
        await reader.wait_for(first_response("stopped", late))


async def failing_queries(api: httpx.AsyncClient, queries: list[Query]) -> list[str]:
    """Run every panel query and every variable's label lookup; describe those that return nothing."""
    failures = []
    for query in queries:
        try:
            if not await instant(api, query.expr):
                failures.append(f"no data: {query}")
        except AssertionError as exc:
            failures.append(f"{exc}: {query}")
    for dashboard, metric, label in label_value_queries():
        response = await api.get(f"/api/v1/label/{label}/values", params={"match[]": metric})
        if not response.json()["data"]:
            failures.append(f"no values: {dashboard} variable label_values({metric}, {label})")
    return failures


@pytest.mark.skipif(
    PROMETHEUS is None and os.environ.get("CI") != "true",
    reason="no prometheus binary on PATH (apt-get install prometheus); CI installs it and runs this test",
)
async def test_every_dashboard_panel_query_returns_data_from_prometheus(
    stack: EmbeddedStack, prometheus: str
):
    queries = dashboard_queries()
    assert len(queries) > 50, "the dashboards' queries were not found"
    async with (
        httpx.AsyncClient(base_url=prometheus, timeout=10) as api,
        httpx.AsyncClient(base_url=stack.url("ingest"), timeout=10) as ingest,
    ):

        async def all_scraped() -> bool:
            return len(await instant(api, 'up{job=~"ingest|classifier|router|sla"} == 1')) == len(SERVICES)

        # Scraped once before any traffic, so that the first increments show as increases.
        await eventually(all_scraped, timeout=20, interval=0.2)
        await play_the_contact_centre(stack, ingest)

        async def seen_by_prometheus() -> bool:
            late = 'switchboard_sla_clocks_completed_total{clock="first_response", outcome="late"} >= 1'
            return bool(await instant(api, late)) and bool(
                await instant(api, "switchboard_sla_escalations_total >= 1")
            )

        await eventually(seen_by_prometheus, timeout=15, interval=0.5)

        failures: list[str] = []

        async def every_query_has_data() -> bool:
            failures[:] = await failing_queries(api, queries)
            return not failures

        # A rate or an increase needs two scrapes of a series after it appeared: a few seconds at most.
        try:
            await eventually(every_query_has_data, timeout=10, interval=0.5)
        except AssertionError:
            pytest.fail("\n".join(failures))

        groups = (await api.get("/api/v1/rules")).json()["data"]["groups"]
        broken = [
            f"{rule['name']}: {rule.get('lastError')}"
            for group in groups
            for rule in group["rules"]
            if rule.get("health") == "err"
        ]
        assert not broken, f"alert rules fail to evaluate against the real series: {broken}"
