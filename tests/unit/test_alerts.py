"""Metric expositions, alert rules and dashboards, checked with promtool and against the catalogue."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from classifier.metrics import ClassifierMetrics
from ingest.metrics import IngestMetrics
from router.metrics import RouterMetrics
from sla.metrics import SlaMetrics
from switchboard.metrics import BusMetrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
CATALOGUE = ROOT / "docs" / "metrics.md"
CONSUMERS = ("classifier", "router", "sla")
SEVERITIES = frozenset({"page", "ticket"})
ANNOTATIONS = frozenset({"summary", "description", "runbook"})
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
    | {"inf", "nan", "Inf", "NaN"}
)
# Values Grafana puts in place of its variables before a query reaches Prometheus.
GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
GRAFANA_VARIABLES = re.compile(r"\$\{\w+(?::\w+)?\}|\$\w+")


def promtool_or_skip() -> str:
    """Return promtool's path; skip without it, except on CI, which installs it and must run these checks."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "promtool is not installed; CI must run the alert checks (apt-get install prometheus)"
            )
        pytest.skip("promtool is not installed (apt-get install prometheus); CI runs these checks")
    return path


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool and return what it did, whatever its exit status."""
    command = [promtool_or_skip(), *(str(arg) for arg in args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)


def succeeded(result: subprocess.CompletedProcess[str]) -> bool:
    """Say whether promtool passed, printing its output for the failure report when not."""
    if result.returncode != 0:
        print(result.stdout, result.stderr)
    return result.returncode == 0


@cache
def catalogue() -> frozenset[str]:
    """Every series name docs/metrics.md allows: `<svc>` expanded, histograms as _bucket, _sum and _count."""
    names = {"up"}
    for name, kind in re.findall(r"^\| `(switchboard_[a-z_<>]+)` \| (\w+) \|", CATALOGUE.read_text(), re.M):
        for service in CONSUMERS if "<svc>" in name else ("",):
            metric = name.replace("<svc>", service)
            if kind == "histogram":
                names.update(f"{metric}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(metric)
    return frozenset(names)


@cache
def cluster_wide_gauges() -> dict[str, list[str]]:
    """Return the gauges docs/metrics.md lists as cluster-wide (same on every replica), with their labels."""
    text = CATALOGUE.read_text()
    section = text.split("\n## Cluster-wide gauges\n", 1)[1].split("\n## ", 1)[0]
    labels = {
        name: [label.strip() for label in found.split(",") if label.strip()]
        for name, found in re.findall(r"^\| `(switchboard_[a-z_]+)` \| gauge \|([^|]*)\|", text, re.M)
    }
    return {name: labels[name] for name in re.findall(r"^\| `(switchboard_[a-z_]+)` \|", section, re.M)}


def two_replicas_report(value: int) -> list[dict[str, str]]:
    """Return input series where two replicas of each service report `value` for every cluster-wide gauge."""
    series = []
    for name, labels in cluster_wide_gauges().items():
        service = name.split("_")[1]
        for replica in ("a", "b"):
            selector = [f'job="{service}"', f'instance="{service}-{replica}:8080"']
            selector += [f'{label}="x"' for label in labels]
            series.append({"series": f"{name}{{{', '.join(selector)}}}", "values": f"{value}x20"})
    return series


def queries_of_cluster_wide_gauges() -> dict[str, str]:
    """Return every dashboard query and alert expression that reads a cluster-wide gauge, by where it is."""
    found = {
        f"{name} {where}": expr
        for name, queries in dashboard_queries().items()
        for where, expr in queries.items()
    }
    found |= {f"alert {rule['alert']}": rule["expr"] for rule in alert_rules()}
    return {where: expr for where, expr in found.items() if metric_names(expr) & set(cluster_wide_gauges())}


def replica_count_failures(exprs: dict[str, str], tmp_path: Path) -> str | None:
    """Run each expression over two replicas reporting 7; return promtool's complaint unless it answers 7."""
    cases = []
    for expr in exprs.values():
        query = as_prometheus_sees_it(expr)
        # Some answer, and every sample of it is the value one replica reports.
        cases.append({"expr": f"absent({query})", "eval_time": "10m", "exp_samples": []})
        cases.append({"expr": f"({query}) != 7", "eval_time": "10m", "exp_samples": []})
    tests = {
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": two_replicas_report(7), "promql_expr_test": cases}],
    }
    path = tmp_path / "replicas.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", path)
    return None if result.returncode == 0 else result.stdout + result.stderr


def alert_rules() -> list[dict[str, Any]]:
    """Return every alerting rule in alerts.yml."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_cases() -> list[dict[str, Any]]:
    """Return every alert_rule_test case of alerts.test.yml."""
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    return [case for test in tests for case in test.get("alert_rule_test", [])]


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Yield every JSON object nested anywhere in a decoded document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def dashboard_queries() -> dict[str, dict[str, str]]:
    """Return each dashboard's panel queries by `panel<id>_<refId>`, keyed by file name."""
    found = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        nodes = list(walk(json.loads(path.read_text())))
        queries = {
            f"panel{node['id']}_{target['refId']}": target["expr"]
            for node in nodes
            for target in node.get("targets", [])
            if isinstance(target.get("expr"), str)
        }
        everywhere = [node["expr"] for node in nodes if isinstance(node.get("expr"), str)]
        assert sorted(queries.values()) == sorted(everywhere), f"{path.name} has a query outside a panel"
        found[path.name] = queries
    return found


def variable_metrics(dashboard: dict[str, Any]) -> set[str]:
    """Return the metrics a dashboard's `label_values(metric, label)` variables read."""
    queries = []
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        queries.append(query.get("query", "") if isinstance(query, dict) else str(query or ""))
        queries.append(str(variable.get("definition", "")))
    return {m for q in queries for m in re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,", q)}


def as_prometheus_sees_it(expr: str) -> str:
    """Replace Grafana's variables with values of the kind Grafana substitutes."""
    return GRAFANA_VARIABLES.sub(".*", GRAFANA_RANGES.sub("5m", expr))


def name_regex_expansions(pattern: str) -> set[str] | None:
    """Expand a regex made of words and `(a|b|c)` groups into every name it matches; None if it is richer."""
    parts = re.split(r"\(([\w|]+)\)", pattern)
    literals, groups = parts[::2], parts[1::2]
    if not all(re.fullmatch(r"[\w:]*", literal) for literal in literals):
        return None
    names = set()
    for choice in itertools.product(*(group.split("|") for group in groups)):
        pieces = [piece for pair in itertools.zip_longest(literals, choice, fillvalue="") for piece in pair]
        names.add("".join(pieces))
    return names


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects, `{__name__=~"..."}` regexes expanded."""
    names = set()
    for op, pattern in re.findall(r'__name__\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"', expr):
        expanded = {pattern} if op == "=" else name_regex_expansions(pattern)
        if expanded is None:
            # Too rich to expand: it must at least select something the catalogue knows.
            expanded = {name for name in catalogue() if re.fullmatch(pattern, name)} or {pattern}
        names |= expanded
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        followed_by_call = expr[match.end() :].lstrip().startswith("(")
        if not followed_by_call and match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def parse_errors(exprs: dict[str, str], tmp_path: Path) -> str | None:
    """Check expressions as recording rules with `promtool check rules`; return its complaint, if any."""
    rules = [{"record": name, "expr": as_prometheus_sees_it(expr)} for name, expr in exprs.items()]
    path = tmp_path / "queries.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}, sort_keys=False))
    result = promtool("check", "rules", path)
    return None if result.returncode == 0 else result.stdout + result.stderr


def test_the_prometheus_config_and_its_rule_files_pass_promtool_check_config():
    assert yaml.safe_load(CONFIG.read_text())["rule_files"] == ["alerts.yml"]
    assert succeeded(promtool("check", "config", CONFIG))


def test_the_alert_rules_pass_promtool_check_rules():
    assert succeeded(promtool("check", "rules", ALERTS))


def test_the_alert_unit_tests_pass_promtool_test_rules():
    assert succeeded(promtool("test", "rules", ALERT_TESTS))


def test_the_unit_tests_load_the_alert_rules_prometheus_loads():
    assert yaml.safe_load(ALERT_TESTS.read_text())["rule_files"] == ["alerts.yml"]


def test_every_alert_has_a_unit_test_case_that_fires_it():
    fired = {
        alert["exp_labels"].get("alertname", case["alertname"])
        for case in alert_cases()
        for alert in case.get("exp_alerts") or []
    }
    untested = sorted({rule["alert"] for rule in alert_rules()} - fired)
    assert not untested, f"no promtool test case expects these alerts to fire: {untested}"


def test_every_alert_has_a_unit_test_case_where_it_stays_silent():
    silent = {case["alertname"] for case in alert_cases() if not case.get("exp_alerts")}
    untested = sorted({rule["alert"] for rule in alert_rules()} - silent)
    assert not untested, f"no promtool test case expects these alerts to stay silent: {untested}"


def test_each_firing_case_fails_when_its_rule_can_never_fire(tmp_path: Path):
    # Proves the cases depend on the rules: with every expression made empty, every alert's firing case fails.
    document = yaml.safe_load(ALERTS.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["expr"] = "vector(1) == 0"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    shutil.copy(ALERT_TESTS, tmp_path / "alerts.test.yml")
    result = promtool("test", "rules", tmp_path / "alerts.test.yml")
    assert result.returncode != 0
    failed = set(re.findall(r"alertname: (\w+),", result.stdout + result.stderr))
    survivors = sorted({rule["alert"] for rule in alert_rules()} - failed)
    assert not survivors, f"these alerts' test cases still pass when the rule never fires: {survivors}"


def test_every_alert_says_how_urgent_it_is_how_long_it_waits_and_what_to_do():
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "two alerts share a name"
    for rule in alert_rules():
        name = rule["alert"]
        assert name.startswith("Switchboard"), name
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name} has no `for:` duration"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name} has no page/ticket severity"
        annotations = rule.get("annotations", {})
        assert set(annotations) >= ANNOTATIONS, f"{name} lacks {sorted(ANNOTATIONS - set(annotations))}"
        assert all(annotations[key].strip() for key in ANNOTATIONS), f"{name} has an empty annotation"


def test_every_alert_keeps_the_job_label_of_the_service_it_is_about():
    # promtool compares label sets exactly, so an expected `job` proves the alert carries it.
    for case in alert_cases():
        for alert in case.get("exp_alerts") or []:
            assert "job" in alert["exp_labels"], f"{case['alertname']} fires without saying which service"


def test_every_metric_an_alert_uses_is_in_the_catalogue():
    for rule in alert_rules():
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric in its expression"
        unknown = sorted(names - catalogue())
        assert not unknown, f"{rule['alert']} uses metrics docs/metrics.md does not list: {unknown}"


def test_every_metric_a_dashboard_uses_is_in_the_catalogue():
    for name, exprs in dashboard_queries().items():
        assert exprs, f"{name} has no queries"
        for expr in exprs.values():
            names = metric_names(expr)
            assert names, f"{name}: no metric in {expr!r}"
            unknown = sorted(names - catalogue())
            assert not unknown, f"{name}: {expr!r} uses metrics docs/metrics.md does not list: {unknown}"
        variables = variable_metrics(json.loads((DASHBOARDS / name).read_text()))
        assert not variables - catalogue(), (
            f"{name}: variables read unknown {sorted(variables - catalogue())}"
        )


def test_the_three_dashboards_are_there_with_unique_uids_and_panel_ids():
    dashboards = {path.name: json.loads(path.read_text()) for path in DASHBOARDS.glob("*.json")}
    expected = {"switchboard-overview.json", "switchboard-sla.json", "switchboard-pipeline.json"}
    assert expected <= set(dashboards)
    uids = [dashboard["uid"] for dashboard in dashboards.values()]
    assert len(uids) == len(set(uids)), f"dashboard uids collide: {uids}"
    for name, dashboard in dashboards.items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{name} reuses panel ids"
        for panel in dashboard["panels"]:
            refs = [target["refId"] for target in panel.get("targets", [])]
            assert len(refs) == len(set(refs)), f"{name}: panel {panel['title']!r} reuses a refId"


def test_every_dashboard_query_parses_with_promtool(tmp_path: Path):
    exprs = {
        f"dashboard:{Path(name).stem.replace('-', '_')}:{where}": expr
        for name, queries in dashboard_queries().items()
        for where, expr in queries.items()
    }
    assert exprs
    errors = parse_errors(exprs, tmp_path)
    assert errors is None, errors


def test_a_zero_fallback_never_adds_a_series_beside_the_real_ones():
    # `x or vector(0)` keeps the unlabelled 0 beside every labelled series of x; `or on()` adds it only
    # when x is empty, which is what a panel that must never be blank needs.
    for name, queries in dashboard_queries().items():
        for where, expr in queries.items():
            assert not re.search(r"\bor\s+vector\(", expr), f"{name} {where}: use `or on() vector(0)`"


def test_the_query_check_reports_a_query_that_does_not_parse(tmp_path: Path):
    errors = parse_errors({"ok": "sum(rate(up[$__rate_interval]))", "broken": "sum(rate(up[5m])"}, tmp_path)
    assert errors is not None and '"broken"' in errors


def test_grafana_variables_are_replaced_before_promtool_parses_a_query():
    expr = 'rate(x{policy=~"$policy", b="${b}"}[$__rate_interval]) offset $__range'
    assert as_prometheus_sees_it(expr) == 'rate(x{policy=~".*", b=".*"}[5m]) offset 5m'


def test_metric_names_are_found_in_selectors_and_in_name_regexes():
    expr = (
        'sum by (job) (rate({__name__=~"switchboard_(classifier|router)_bus_errors_total", kind="x"}[5m]))'
        ' > 0 unless on (job) up{job="sla"} offset 10m or histogram_quantile(0.9, a_bucket) > bool 1'
    )
    assert metric_names(expr) == {
        "switchboard_classifier_bus_errors_total",
        "switchboard_router_bus_errors_total",
        "up",
        "a_bucket",
    }


def test_the_catalogue_check_rejects_a_misspelt_service_in_a_name_regex():
    names = metric_names('{__name__=~"switchboard_(clasifier|router)_consumer_lag_records"}')
    assert names - catalogue() == {"switchboard_clasifier_consumer_lag_records"}


def test_a_histogram_is_queried_by_its_series_not_its_bare_name():
    assert "switchboard_sla_firing_lag_seconds_bucket" in catalogue()
    assert "switchboard_sla_firing_lag_seconds" not in catalogue()


def test_compose_mounts_every_rule_file_beside_the_prometheus_config():
    spec = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["prometheus"]
    mounted = {}
    for volume in spec.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounted[target] = source
    assert mounted.get("/etc/prometheus/prometheus.yml") == "./deploy/prometheus/prometheus.yml"
    for rule_file in yaml.safe_load(CONFIG.read_text()).get("rule_files", []):
        target = f"/etc/prometheus/{rule_file}"
        assert mounted.get(target) == f"./deploy/prometheus/{rule_file}", f"compose does not mount {target}"


def test_the_catalogue_names_the_gauges_every_replica_reports_alike():
    assert cluster_wide_gauges() == {
        "switchboard_sla_open_timers": [],
        "switchboard_router_open_cases": ["queue"],
        "switchboard_router_oldest_open_case_age_seconds": ["queue"],
        "switchboard_router_handoff_pending": [],
        "switchboard_sla_next_deadline_seconds": [],
    }


def test_queries_of_cluster_wide_gauges_count_a_value_once_whatever_the_replicas(tmp_path: Path):
    # Every replica reads these gauges from the same Redis: a `sum` over two replicas would double them.
    exprs = queries_of_cluster_wide_gauges()
    assert exprs, "no dashboard or alert reads a cluster-wide gauge"
    failures = replica_count_failures(exprs, tmp_path)
    assert failures is None, f"{sorted(exprs)}: {failures}"


def test_the_replica_check_catches_a_sum_over_replicas(tmp_path: Path):
    assert replica_count_failures({"max": "max by (queue) (switchboard_router_open_cases)"}, tmp_path) is None
    assert replica_count_failures({"sum": "sum(switchboard_sla_open_timers)"}, tmp_path) is not None
    nothing = 'max(switchboard_sla_open_timers{job="nothing"})'
    assert replica_count_failures({"none": nothing}, tmp_path) is not None


@pytest.mark.parametrize(
    ("service", "build"),
    [
        ("ingest", IngestMetrics),
        ("classifier", ClassifierMetrics),
        ("router", RouterMetrics),
        ("sla", SlaMetrics),
    ],
)
def test_each_service_s_exposition_passes_promtool_check_metrics(service: str, build):
    registry = CollectorRegistry()
    metrics = build(registry)
    if service != "ingest":
        BusMetrics(service, registry)
    exposition = generate_latest(registry)
    assert metrics is not None and b"# TYPE switchboard_" in exposition
    result = subprocess.run(
        [promtool_or_skip(), "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
