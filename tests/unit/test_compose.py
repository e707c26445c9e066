"""Check the compose stack, Dockerfiles, Prometheus and Grafana files against the code they deploy."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

import classifier.config
import ingest.config
import router.config
import sla.config
from switchboard.config import env_vars

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": ingest.config.Settings,
    "classifier": classifier.config.Settings,
    "router": router.config.Settings,
    "sla": sla.config.Settings,
}
# Read by the Python runtime or pip inside the image, not by Switchboard, so no Settings lists them.
RUNTIME_VARS = frozenset(
    {"PATH", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_DISABLE_PIP_VERSION_CHECK"}
)
METRIC_NAME = re.compile(r"^(switchboard_(ingest|classifier|router|sla)_[a-z0-9_]+|up)$")
PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
)


@cache
def compose() -> dict[str, Any]:
    """Load compose.yaml once; YAML anchors and merge keys are resolved by the loader."""
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def services() -> dict[str, dict[str, Any]]:
    """Return the compose services by name."""
    return compose()["services"]


def command(spec: dict[str, Any]) -> list[str]:
    """Return a compose service's command as a list of words."""
    value = spec.get("command") or []
    return shlex.split(value) if isinstance(value, str) else [str(word) for word in value]


def served(spec: dict[str, Any]) -> str | None:
    """Return the service a `switchboard serve <service>` command runs, if it is one."""
    words = command(spec)
    return words[2] if words[:2] == ["switchboard", "serve"] and len(words) == 3 else None


def switchboard_services() -> dict[str, str]:
    """Map each compose service that runs `switchboard serve` to the service it serves."""
    return {name: svc for name, spec in services().items() if (svc := served(spec)) is not None}


def environment(spec: dict[str, Any]) -> dict[str, str]:
    """Return a compose service's environment, whether written as a mapping or a list."""
    env = spec.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def env_prefix(svc: str) -> str:
    """Return the env prefix of a service's settings, e.g. `INGEST_`."""
    return SETTINGS[svc].model_config["env_prefix"]


def listening_port(name: str) -> int:
    """Return the port a compose service's Switchboard process listens on."""
    svc = served(services()[name])
    assert svc is not None
    default = SETTINGS[svc].model_fields["port"].default
    return int(environment(services()[name]).get(f"{env_prefix(svc)}PORT", default))


def dockerfile_of(spec: dict[str, Any]) -> Path:
    """Return the Dockerfile a compose build section points at."""
    build = spec["build"]
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """Return a Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def dockerfile_env(dockerfile: Path) -> dict[str, str]:
    """Return the variables a Dockerfile's ENV instructions set."""
    env: dict[str, str] = {}
    for keyword, rest in instructions(dockerfile):
        if keyword != "ENV":
            continue
        words = shlex.split(rest)
        if words and "=" not in words[0]:
            env[words[0]] = " ".join(words[1:])
        else:
            env.update(word.split("=", 1) for word in words)
    return env


def mounts(spec: dict[str, Any]) -> dict[str, str]:
    """Map each short-syntax volume's container path to its source."""
    found = {}
    for volume in spec.get("volumes", []):
        source, target, *_ = volume.split(":")
        found[target] = source
    return found


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Yield every JSON object nested anywhere in a decoded document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects, leaving out functions, labels and ranges."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        followed_by_call = expr[match.end() :].lstrip().startswith("(")
        if not followed_by_call and match.group() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def dashboards() -> dict[str, Any]:
    """Decode every dashboard file, keyed by file name."""
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, f"no dashboards in {DASHBOARDS}"
    return {path.name: json.loads(path.read_text()) for path in files}


def test_compose_file_parses_and_runs_the_whole_stack():
    expected = {"kafka", "redis", "topics", "prometheus", "grafana", *SETTINGS}
    assert expected <= set(services())


def test_every_built_container_has_a_dockerfile_that_exists():
    built = {name: spec for name, spec in services().items() if "build" in spec}
    assert built
    for name, spec in built.items():
        assert dockerfile_of(spec).is_file(), f"{name}: {dockerfile_of(spec)} does not exist"


def test_each_service_has_a_dockerfile_in_its_folder():
    for svc in SETTINGS:
        assert (ROOT / "services" / svc / "Dockerfile").is_file(), f"services/{svc}/Dockerfile is missing"


def test_each_image_installs_the_extra_its_span_export_setting_needs():
    # SWITCHBOARD_OTEL_EXPORTER_OTLP_ENDPOINT is documented for every service; without the extra in the
    # image, setting it would only log that the exporter is missing.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "otel" in extras
    for svc in SETTINGS:
        installs = [
            rest for keyword, rest in instructions(ROOT / "services" / svc / "Dockerfile") if keyword == "RUN"
        ]
        assert any(re.search(r"pip install [^&]*/src\[otel\]", rest) for rest in installs), svc


def test_every_switchboard_serve_command_names_a_real_service_folder():
    commands = list(switchboard_services().items())
    for svc in SETTINGS:
        found = instructions(ROOT / "services" / svc / "Dockerfile")
        cmd = [rest for keyword, rest in found if keyword == "CMD"]
        assert cmd, f"services/{svc}/Dockerfile has no CMD"
        words = json.loads(cmd[-1])
        assert words == ["switchboard", "serve", svc], f"services/{svc}/Dockerfile runs {words}"
    for name, svc in commands:
        assert (ROOT / "services" / svc / "config.py").is_file(), f"{name} serves unknown service {svc!r}"
    assert sorted(svc for _, svc in commands) == sorted(SETTINGS)


def test_every_env_var_on_a_switchboard_container_is_read_by_its_settings():
    shared = set.intersection(*(env_vars(cls) for cls in SETTINGS.values()))
    for name, spec in services().items():
        if "build" not in spec:
            continue
        svc = served(spec)
        if svc is None:
            assert command(spec) == ["switchboard", "topics"], f"{name} runs {command(spec)}"
            known = shared
        else:
            known = env_vars(SETTINGS[svc])
        unknown = set(environment(spec)) - known - RUNTIME_VARS
        assert not unknown, f"{name} sets variables its settings never read: {sorted(unknown)}"


def test_every_env_var_a_dockerfile_sets_is_read_by_its_service_settings():
    for svc, settings in SETTINGS.items():
        env = dockerfile_env(ROOT / "services" / svc / "Dockerfile")
        unknown = set(env) - env_vars(settings) - RUNTIME_VARS
        assert not unknown, f"services/{svc}/Dockerfile sets variables {svc} never reads: {sorted(unknown)}"


def test_each_service_listens_on_all_interfaces_and_is_probed_on_its_own_port():
    for name, svc in switchboard_services().items():
        spec = services()[name]
        port = listening_port(name)
        assert environment(spec).get(f"{env_prefix(svc)}HOST") == "0.0.0.0", f"{name} is unreachable"
        probe = " ".join(str(word) for word in spec["healthcheck"]["test"])
        assert f":{port}/readyz" in probe, f"{name} healthcheck does not probe :{port}/readyz"
        published = [str(entry).rsplit(":", 1)[-1] for entry in spec.get("ports", [])]
        assert all(int(p) == port for p in published), f"{name} publishes {published}, listens on {port}"


def test_each_dockerfile_exposes_and_probes_its_service_port():
    for svc, settings in SETTINGS.items():
        port = settings.model_fields["port"].default
        dockerfile = ROOT / "services" / svc / "Dockerfile"
        found = instructions(dockerfile)
        exposed = [rest for keyword, rest in found if keyword == "EXPOSE"]
        probes = [rest for keyword, rest in found if keyword == "HEALTHCHECK"]
        listens = int(dockerfile_env(dockerfile).get(f"{env_prefix(svc)}PORT", port))
        assert exposed == [str(listens)], f"services/{svc}/Dockerfile exposes {exposed}, listens on {listens}"
        assert probes and f":{listens}/healthz" in probes[0], f"services/{svc}/Dockerfile does not probe it"


def test_every_long_running_container_has_a_healthcheck():
    one_shots = {
        dependency
        for spec in services().values()
        for dependency, condition in (spec.get("depends_on") or {}).items()
        if condition.get("condition") == "service_completed_successfully"
    }
    assert "topics" in one_shots
    for name, spec in services().items():
        if name in one_shots:
            continue
        healthcheck = spec.get("healthcheck") or {}
        assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"


def test_switchboard_services_start_only_after_topics_exist_and_stores_are_healthy():
    assert command(services()["topics"]) == ["switchboard", "topics"]
    expected = {
        "kafka": "service_healthy",
        "redis": "service_healthy",
        "topics": "service_completed_successfully",
    }
    for name in switchboard_services():
        depends = services()[name].get("depends_on") or {}
        conditions = {dependency: depends.get(dependency, {}).get("condition") for dependency in expected}
        assert conditions == expected, f"{name} depends on {conditions}"


def test_prometheus_scrapes_all_four_services_on_their_ports():
    prometheus = services()["prometheus"]
    config_file = mounts(prometheus).get("/etc/prometheus/prometheus.yml")
    assert config_file == "./deploy/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / config_file).read_text())
    jobs = {
        job["job_name"]: {target for static in job.get("static_configs", []) for target in static["targets"]}
        for job in config["scrape_configs"]
    }
    for name, svc in switchboard_services().items():
        # The dashboards select services by `job`, so the job must carry the service's name.
        assert f"{name}:{listening_port(name)}" in jobs.get(svc, set()), f"{svc} is not scraped"


def test_metric_names_are_found_apart_from_functions_labels_and_ranges():
    expr = 'sum by (c) (rate(foo_total{job="bar_baz"}[$__rate_interval] offset 5m)) / on (x) up or vector(0)'
    assert metric_names(expr) == {"foo_total", "up"}


@pytest.mark.parametrize("name", sorted(path.name for path in DASHBOARDS.glob("*.json")))
def test_every_dashboard_is_valid_json_and_queries_only_switchboard_metrics(name: str):
    dashboard = json.loads((DASHBOARDS / name).read_text())
    exprs = [node["expr"] for node in walk(dashboard) if isinstance(node.get("expr"), str)]
    assert exprs, f"{name} has no queries"
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"{name}: no metric in {expr!r}"
        strangers = sorted(metric for metric in names if not METRIC_NAME.match(metric))
        assert not strangers, f"{name}: {expr!r} uses {strangers}"


def test_dashboards_use_the_provisioned_datasource_uid():
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"]}
    assert uids == {"prometheus"}
    for name, dashboard in dashboards().items():
        refs = [node["datasource"] for node in walk(dashboard) if "datasource" in node]
        assert refs, f"{name} names no datasource"
        for ref in refs:
            # Grafana's built-in annotation source is always present and needs no provisioning.
            if isinstance(ref, dict) and ref.get("type") == "grafana":
                continue
            assert isinstance(ref, dict) and ref.get("uid") in uids, f"{name} refers to datasource {ref!r}"


def test_grafana_loads_dashboards_from_where_compose_mounts_them():
    grafana = mounts(services()["grafana"])
    assert grafana.get("/etc/grafana/provisioning") == "./deploy/grafana/provisioning"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "switchboard.yaml").read_text())["providers"]
    for provider in providers:
        path = provider["options"]["path"]
        assert grafana.get(path) == "./deploy/grafana/dashboards", f"nothing is mounted at {path}"


def interpolated() -> dict[str, str | None]:
    """Map each variable compose.yaml substitutes (`${NAME}`, `${NAME:-default}`) to its default."""
    text = (ROOT / "compose.yaml").read_text()
    found: dict[str, str | None] = {}
    for name, default in re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}", text):
        found[name] = default or found.get(name)
    return found


def passed_through() -> set[str]:
    """Return the variables compose passes from the environment to a container: entries with no value."""
    names = set()
    for spec in services().values():
        env = spec.get("environment") or {}
        if isinstance(env, list):
            names |= {item for item in env if "=" not in item}
        else:
            names |= {key for key, value in env.items() if value is None}
    return names


def env_example() -> dict[str, tuple[str, bool]]:
    """Map each variable .env.example names to its example value and whether it is commented out."""
    text = (ROOT / ".env.example").read_text()
    return {
        name: (value, bool(comment))
        for comment, name, value in re.findall(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", text, re.MULTILINE)
    }


def test_env_example_lists_exactly_what_compose_reads_from_the_environment():
    read = set(interpolated()) | passed_through()
    assert read, "compose.yaml reads nothing from the environment"
    assert set(env_example()) == read, f"differs by {sorted(set(env_example()) ^ read)}"


def test_env_example_shows_compose_defaults_and_leaves_secrets_commented_out():
    example = env_example()
    for name, default in interpolated().items():
        assert default is not None, f"${{{name}}} has no default: compose would need a .env to start"
        assert example[name] == (default, False), (
            f"{name}: .env.example says {example[name]}, compose {default}"
        )
    for name in passed_through():
        # A secret is the user's to fill in: the example sets none, not even empty (which reads as unset).
        assert example[name][1], f"{name} is not commented out in .env.example"
