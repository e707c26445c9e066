"""Check the Kubernetes manifests (deploy/kubernetes) against the code they deploy.

The manifests are read as YAML, not rendered: no kubectl or kustomize is needed. What is checked is what
the code decides: which services exist, the ports and paths they serve, the settings they read, the
consumer groups they join and the topics they consume.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
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
from switchboard.config import KafkaSettings, env_vars

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
SECRET_EXAMPLE = BASE / "secret.example.yaml"

SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": ingest.config.Settings,
    "classifier": classifier.config.Settings,
    "router": router.config.Settings,
    "sla": sla.config.Settings,
}
# Read by every service: the only settings the ConfigMap all pods load, or the topics Job, may hold.
SHARED = set.intersection(*(env_vars(cls) for cls in SETTINGS.values()))
CONFIG_MAP = "switchboard-config"
SECRET = "switchboard-secrets"
# Services with a consumer loop: the ones with a handler table.
CONSUMERS = [svc for svc in SETTINGS if importlib.util.find_spec(f"{svc}.handlers") is not None]
KUSTOMIZATION_FILE_KEYS = ("resources", "components", "patchesStrategicMerge", "crds")


def documents(path: Path) -> list[Any]:
    """Return the non-empty YAML documents of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest_files() -> list[Path]:
    """Return every YAML file under deploy/kubernetes."""
    files = sorted(KUBE.rglob("*.yaml"))
    assert files, f"no manifests in {KUBE}"
    return files


def kustomization_dirs() -> list[Path]:
    """Return every directory that holds a kustomization."""
    return sorted(path.parent for path in KUBE.rglob("kustomization.yaml"))


@cache
def kustomization(directory: Path) -> dict[str, Any]:
    """Load a directory's kustomization.yaml."""
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def referenced_paths(directory: Path) -> list[str]:
    """Return every file or directory a kustomization names, relative to it."""
    kust = kustomization(directory)
    found = [entry for key in KUSTOMIZATION_FILE_KEYS for entry in kust.get(key) or []]
    found += [
        patch["path"]
        for key in ("patches", "patchesJson6902")
        for patch in kust.get(key) or []
        if "path" in patch
    ]
    found += [entry["path"] for entry in kust.get("replacements") or [] if "path" in entry]
    for generator in (kust.get("configMapGenerator") or []) + (kust.get("secretGenerator") or []):
        found += [entry.rpartition("=")[2] for entry in generator.get("files") or []]
        found += generator.get("envs") or []
    return found


def resource_objects(directory: Path) -> list[dict[str, Any]]:
    """Return the objects of the files a kustomization lists as resources (not those of other layers)."""
    files = [directory / entry for entry in kustomization(directory).get("resources") or []]
    return [doc for path in files if path.is_file() for doc in documents(path)]


@cache
def base() -> dict[tuple[str, str], dict[str, Any]]:
    """Return the base's objects by (kind, name)."""
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in resource_objects(BASE)}


def config_generators(directory: Path) -> list[dict[str, Any]]:
    """Return a kustomization's generators of the shared ConfigMap."""
    return [g for g in kustomization(directory).get("configMapGenerator") or [] if g["name"] == CONFIG_MAP]


def generated_config(directory: Path) -> dict[str, str]:
    """Return the literals a kustomization's generator of the shared ConfigMap sets."""
    return dict(
        entry.split("=", 1) for g in config_generators(directory) for entry in g.get("literals") or []
    )


def effective_config(directory: Path) -> dict[str, str]:
    """Return the shared ConfigMap the base, or an overlay directly on it, ends up with."""
    if directory == BASE or any(g.get("behavior") == "replace" for g in config_generators(directory)):
        return generated_config(directory)
    return {**generated_config(BASE), **generated_config(directory)}


def deleted(directory: Path) -> set[tuple[str, str]]:
    """Return the (kind, name) of the objects an overlay deletes with inline `$patch: delete` patches."""
    patches = [
        yaml.safe_load(p["patch"]) for p in kustomization(directory).get("patches") or [] if "patch" in p
    ]
    return {(p["kind"], p["metadata"]["name"]) for p in patches if p.get("$patch") == "delete"}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """Return the pod spec of a workload."""
    return obj["spec"]["template"]["spec"]


def container(svc: str) -> dict[str, Any]:
    """Return the container of a service's Deployment, named after the service."""
    containers = pod_spec(base()[("Deployment", svc)])["containers"]
    assert [c["name"] for c in containers] == [svc], f"{svc}: one container named {svc}, not {containers}"
    return containers[0]


def env(spec: dict[str, Any]) -> dict[str, Any]:
    """Map a container's env entries by name."""
    return {entry["name"]: entry for entry in spec.get("env") or []}


def listening_port(svc: str) -> int:
    """Return the port a service listens on: its <SERVICE>_PORT in the manifest, else its default."""
    prefix = SETTINGS[svc].model_config["env_prefix"]
    value = env(container(svc)).get(f"{prefix}PORT", {}).get("value")
    return int(value) if value is not None else SETTINGS[svc].model_fields["port"].default


def resolve_port(spec: dict[str, Any], port: int | str) -> int:
    """Return the number of a container port given by number or by name."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in spec.get("ports") or [] if "name" in p}
    assert port in named, f"{spec['name']} has no port named {port!r}"
    return named[port]


def selects(selector: dict[str, str], obj: dict[str, Any]) -> bool:
    """Tell whether a label selector matches a workload's pods."""
    labels = obj["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and selector.items() <= labels.items()


def workloads() -> Iterator[tuple[Path, dict[str, Any], dict[str, Any], set[str]]]:
    """Yield (file, workload, container, settings it may set) for every Switchboard container in any layer."""
    for path in manifest_files():
        for doc in documents(path):
            if not isinstance(doc, dict) or doc.get("kind") not in ("Deployment", "Job"):
                continue
            for spec in doc["spec"]["template"]["spec"].get("containers") or []:
                if spec["name"] in SETTINGS:
                    yield path, doc, spec, env_vars(SETTINGS[spec["name"]])
                elif spec.get("command") == ["switchboard", "topics"] or spec["name"] == "topics":
                    yield path, doc, spec, SHARED


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Yield every mapping nested anywhere in a document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def documented_secret_keys() -> set[str]:
    """Return the keys secret.example.yaml documents, commented out or not."""
    (secret,) = documents(SECRET_EXAMPLE)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == SECRET
    commented = re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*):", SECRET_EXAMPLE.read_text(), re.MULTILINE)
    return set(commented) | set(secret.get("stringData") or {})


def quantity(value: str | int) -> float:
    """Read a Kubernetes CPU or memory quantity (`250m`, `1`, `128Mi`, `1Gi`)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    text = str(value)
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def test_every_manifest_parses_and_says_what_it_is():
    for path in manifest_files():
        for doc in documents(path):
            if isinstance(doc, list):  # a JSON 6902 patch
                assert all({"op", "path"} <= op.keys() for op in doc), f"{path}: not a JSON patch"
                continue
            assert {"apiVersion", "kind"} <= doc.keys(), f"{path}: a document without apiVersion or kind"
            if doc["kind"] not in ("Kustomization", "Component"):
                assert doc.get("metadata", {}).get("name"), f"{path}: a {doc['kind']} without a name"


def test_kustomizations_list_only_files_that_exist():
    assert BASE in kustomization_dirs()
    for directory in kustomization_dirs():
        for entry in referenced_paths(directory):
            target = (directory / entry).resolve()
            assert target.exists(), f"{directory.relative_to(ROOT)} lists {entry}, which does not exist"
            if target.is_dir():
                assert (target / "kustomization.yaml").is_file(), f"{entry} is not a kustomization"


def test_every_manifest_is_used_by_a_kustomization():
    used = {
        (directory / entry).resolve()
        for directory in kustomization_dirs()
        for entry in referenced_paths(directory)
    }
    for path in manifest_files():
        if path.name == "kustomization.yaml" or path.name.endswith(".example.yaml"):
            continue
        assert path.resolve() in used, f"{path.relative_to(ROOT)} is listed by no kustomization"


@pytest.mark.parametrize("svc", sorted(SETTINGS))
def test_each_service_has_a_deployment_a_service_and_a_disruption_budget(svc: str):
    deployment = base().get(("Deployment", svc))
    assert deployment, f"no Deployment {svc} in the base"
    assert selects(deployment["spec"]["selector"]["matchLabels"], deployment)
    spec = container(svc)
    assert spec["image"] == f"switchboard/{svc}", f"{svc}: the tag belongs in kustomization.yaml `images`"
    assert spec["command"] == ["switchboard", "serve", svc]
    port = listening_port(svc)
    assert [p["containerPort"] for p in spec["ports"]] == [port]
    prefix = SETTINGS[svc].model_config["env_prefix"]
    host = env(spec).get(f"{prefix}HOST", {}).get("value")
    assert host == "0.0.0.0", f"{svc} would listen on loopback only"

    service = base().get(("Service", svc))
    assert service and selects(service["spec"]["selector"], deployment), f"Service {svc} selects no pod of it"
    assert [resolve_port(spec, p["targetPort"]) for p in service["spec"]["ports"]] == [port]

    budget = base().get(("PodDisruptionBudget", svc))
    assert budget and selects(budget["spec"]["selector"]["matchLabels"], deployment), f"no PDB for {svc}"


@pytest.mark.parametrize("svc", sorted(SETTINGS))
def test_probes_ask_for_health_and_readiness_on_the_service_port(svc: str):
    spec = container(svc)
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    if svc == "classifier" or "startupProbe" in spec:
        expected["startupProbe"] = "/healthz"
    for probe, path in expected.items():
        get = spec.get(probe, {}).get("httpGet")
        assert get, f"{svc} has no HTTP {probe}"
        assert get["path"] == path, f"{svc} {probe} asks for {get['path']}"
        assert resolve_port(spec, get["port"]) == listening_port(svc), f"{svc} {probe} asks another port"


def test_the_classifier_has_time_to_train_its_model_before_liveness_counts():
    startup = container("classifier")["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


@pytest.mark.parametrize("svc", sorted(SETTINGS))
def test_pods_announce_their_metrics_port_to_prometheus(svc: str):
    annotations = base()[("Deployment", svc)]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == listening_port(svc)


def test_every_switchboard_container_has_resource_requests_and_limits():
    found = list(workloads())
    assert {spec["name"] for _, _, spec, _ in found} >= set(SETTINGS) | {"topics"}
    for path, _, spec, _ in found:
        if path.parent != BASE:
            continue
        resources = spec.get("resources") or {}
        for kind in ("cpu", "memory"):
            request = resources.get("requests", {}).get(kind)
            limit = resources.get("limits", {}).get(kind)
            assert request and limit, f"{spec['name']}: no {kind} request or limit"
            assert quantity(request) <= quantity(limit), f"{spec['name']}: {kind} request above its limit"


def test_switchboard_pods_run_as_non_root_on_a_read_only_root_filesystem():
    for path, doc, spec, _ in workloads():
        if path.parent != BASE:
            continue
        pod = pod_spec(doc)
        context = {**(pod.get("securityContext") or {}), **(spec.get("securityContext") or {})}
        name = spec["name"]
        assert context.get("runAsNonRoot") is True and context.get("runAsUser", 0) > 0, (
            f"{name} may run as root"
        )
        assert context.get("allowPrivilegeEscalation") is False, f"{name} may escalate privileges"
        assert context.get("readOnlyRootFilesystem") is True, f"{name} has a writable root filesystem"
        # A Service named after a service would inject <SERVICE>_PORT=tcp://… into its settings.
        assert pod.get("enableServiceLinks") is False, f"{name}: service links are on"
        scratch = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
        mounted = {m["mountPath"] for m in spec.get("volumeMounts") or [] if m["name"] in scratch}
        assert "/tmp" in mounted, f"{name} has no writable /tmp"


def test_the_classifier_image_carries_the_model_its_service_reads_and_pods_do_not_hide_it():
    dockerfile = (ROOT / "services" / "classifier" / "Dockerfile").read_text()
    (cache,) = re.findall(r"CLASSIFIER_MODEL_CACHE=(\S+)", dockerfile)
    # The build trains the packaged model into that very directory.
    assert f"default_model('{cache}')" in dockerfile
    spec = container("classifier")
    assert "CLASSIFIER_MODEL_CACHE" not in env(spec), "the pod points the service away from the image's model"
    assert not any(Path(cache).is_relative_to(m["mountPath"]) for m in spec.get("volumeMounts") or []), (
        f"a volume mounted over {cache} hides the image's model"
    )


def test_every_env_var_a_manifest_sets_is_read_by_the_service_it_reaches():
    for path, doc, spec, known in workloads():
        where = f"{path.relative_to(ROOT)} {doc['metadata']['name']}/{spec['name']}"
        unknown = set(env(spec)) - known
        assert not unknown, f"{where} sets variables it never reads: {sorted(unknown)}"
        for source in spec.get("envFrom") or []:
            assert source.get("configMapRef", {}).get("name") == CONFIG_MAP, f"{where}: envFrom {source}"
    for directory in kustomization_dirs():
        unknown = set(generated_config(directory)) - SHARED
        assert not unknown, f"{directory.relative_to(ROOT)}: {CONFIG_MAP} sets {sorted(unknown)}, not shared"
        for patch in kustomization(directory).get("patches") or []:
            if "path" not in patch or not isinstance(ops := documents(directory / patch["path"])[0], list):
                continue
            target = patch.get("target") or {}
            svc = target.get("name") if target.get("kind") == "Deployment" else None
            known = env_vars(SETTINGS[svc]) if svc else SHARED
            names = {op["value"]["name"] for op in ops if re.search(r"/env/(-|\d+)$", op["path"])}
            assert names <= known, f"{patch['path']} adds {sorted(names - known)} to {target}"


def test_secrets_come_from_documented_keys_named_after_their_variable():
    documented = documented_secret_keys()
    refs = 0
    for path in manifest_files():
        for node in walk(documents(path)):
            if "secretKeyRef" in node.get("valueFrom", {}):
                ref = node["valueFrom"]["secretKeyRef"]
                refs += 1
                where = f"{path.relative_to(ROOT)} {node['name']}"
                assert ref["name"] == SECRET and ref["key"] == node["name"], f"{where}: {ref}"
                assert ref["key"] in documented, f"{where}: {ref['key']} is not in {SECRET_EXAMPLE.name}"
            if node.get("name") == SECRET and "key" in node:  # a KEDA secretTargetRef
                where = path.relative_to(ROOT)
                assert node["key"] in documented, f"{where}: {node['key']} is not in {SECRET_EXAMPLE.name}"
    assert refs


def test_only_consumers_have_scaled_objects_and_ingest_scales_on_cpu():
    scaled = {name for kind, name in base() if kind == "ScaledObject"}
    assert scaled == set(CONSUMERS)
    hpa = base()[("HorizontalPodAutoscaler", "ingest")]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ingest"}
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


@pytest.mark.parametrize("svc", CONSUMERS)
def test_scaled_objects_follow_the_lag_of_their_service_group_on_the_topics_it_consumes(svc: str):
    scaled = base()[("ScaledObject", svc)]
    target = scaled["spec"]["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment" and ("Deployment", target["name"]) in base()
    assert target["name"] == svc
    group = importlib.import_module(f"{svc}.app").NAME
    # The table only closes over its dependencies, so none are needed to read which topics it handles.
    consumed = set(importlib.import_module(f"{svc}.handlers").handler_table(None))
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"kafka"}
    assert {t["metadata"]["consumerGroup"] for t in triggers} == {group}
    assert sorted(t["metadata"]["topic"] for t in triggers) == sorted(consumed), f"{svc} consumes {consumed}"
    # The consumers start from the earliest offset when their group has none (switchboard/bus.py).
    assert {t["metadata"].get("offsetResetPolicy") for t in triggers} == {"earliest"}
    # The SLA ticker fires timers whatever the lag: no consumer may scale to zero.
    assert scaled["spec"]["minReplicaCount"] >= 1


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=lambda d: str(d.relative_to(KUBE)))
def test_no_scaled_object_asks_for_more_replicas_than_partitions(directory: Path):
    default = KafkaSettings.model_fields["topic_partitions"].default
    partitions = int(effective_config(directory).get("SWITCHBOARD_KAFKA_TOPIC_PARTITIONS", default))
    for svc in CONSUMERS:
        if ("ScaledObject", svc) in deleted(directory):
            continue
        most = base()[("ScaledObject", svc)]["spec"]["maxReplicaCount"]
        assert most <= partitions, f"{svc}: {most} replicas for {partitions} partitions in {directory.name}"


def test_scalers_watch_the_broker_the_services_use():
    broker = generated_config(BASE)["SWITCHBOARD_KAFKA_BOOTSTRAP_SERVERS"]
    for svc in CONSUMERS:
        for trigger in base()[("ScaledObject", svc)]["spec"]["triggers"]:
            assert trigger["metadata"]["bootstrapServers"] == broker
    source = {
        "kind": "ConfigMap",
        "name": CONFIG_MAP,
        "fieldPath": "data.SWITCHBOARD_KAFKA_BOOTSTRAP_SERVERS",
    }
    for directory in kustomization_dirs():
        if "SWITCHBOARD_KAFKA_BOOTSTRAP_SERVERS" not in generated_config(directory):
            continue
        copied = [
            path
            for replacement in kustomization(directory).get("replacements") or []
            if replacement.get("source") == source
            for target in replacement["targets"]
            if target["select"]["kind"] == "ScaledObject"
            for path in target["fieldPaths"]
        ]
        where = directory.relative_to(ROOT)
        assert copied == ["spec.triggers.*.metadata.bootstrapServers"], f"{where}: KEDA keeps the old broker"


def test_a_job_creates_the_topics_before_anything_needs_them():
    jobs = [doc for (kind, _), doc in base().items() if kind == "Job"]
    commands = [c["command"] for job in jobs for c in pod_spec(job)["containers"]]
    assert commands == [["switchboard", "topics"]]
    (job,) = jobs
    assert pod_spec(job)["containers"][0]["image"] in {f"switchboard/{svc}" for svc in SETTINGS}
    assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")


def test_kustomize_sets_the_tag_of_every_image():
    images = {image["name"]: image for image in kustomization(BASE)["images"]}
    for svc in SETTINGS:
        assert images.get(f"switchboard/{svc}", {}).get("newTag"), f"base sets no tag for switchboard/{svc}"


MODELS = KUBE / "components" / "classifier-models"


def test_the_model_volume_component_serves_the_directory_its_init_container_seeds():
    from switchboard.cli import build_parser

    assert kustomization(MODELS)["kind"] == "Component"
    (claim,) = resource_objects(MODELS)[:1]
    assert claim["kind"] == "PersistentVolumeClaim" and claim["spec"]["accessModes"] == ["ReadWriteMany"]
    (patch,) = documents(MODELS / "classifier.yaml")
    assert (patch["kind"], patch["metadata"]["name"]) == ("Deployment", "classifier")
    pod = pod_spec(patch)
    (volume,) = pod["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    (served,) = pod["containers"]
    mount = {m["name"]: m for m in served["volumeMounts"]}[volume["name"]]
    assert mount["readOnly"] is True
    live = env(served)["CLASSIFIER_MODEL"]["value"]
    shadow = env(served)["CLASSIFIER_SHADOW_MODEL"]["value"]
    assert Path(live).is_relative_to(mount["mountPath"]) and Path(shadow).is_relative_to(mount["mountPath"])
    assert live != shadow
    (seed,) = pod["initContainers"]
    # The seeding command is one the CLI takes, and it seeds the directory the classifier serves, writable.
    args = build_parser().parse_args(seed["command"][1:])
    assert seed["command"][0] == "switchboard" and args.source == "learned" and args.if_empty
    assert str(args.to) == live
    seed_mounts = {m["mountPath"]: m for m in seed["volumeMounts"]}
    assert not seed_mounts[mount["mountPath"]].get("readOnly")
    # Its scratch space is the base pod's own.
    base_volumes = {v["name"] for v in pod_spec(base()[("Deployment", "classifier")])["volumes"]}
    assert seed_mounts["/tmp"]["name"] in base_volumes


def test_the_workbench_reaches_the_broker_redis_and_the_model_volume_but_serves_nothing():
    bench = {doc["metadata"]["name"]: doc for doc in resource_objects(MODELS)}["classifier-workbench"]
    assert bench["spec"]["replicas"] == 0
    pod = pod_spec(bench)
    (spec,) = pod["containers"]
    assert spec["image"] == "switchboard/classifier" and "ports" not in spec
    assert [s["configMapRef"]["name"] for s in spec["envFrom"]] == [CONFIG_MAP]
    assert set(env(spec)) <= env_vars(classifier.config.Settings)
    (served,) = documents(MODELS / "classifier.yaml")
    # Its commands default to the model the classifier serves (`retrain --against`, `classify`).
    assert env(spec)["CLASSIFIER_MODEL"] == env(pod_spec(served)["containers"][0])["CLASSIFIER_MODEL"]
    # The broker's password as the base's services read it (an overlay adds the rest of the credentials).
    password = "SWITCHBOARD_KAFKA_SASL_PASSWORD"
    assert env(spec)[password] == env(container("classifier"))[password]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert set(claims.values()) == {
        v["persistentVolumeClaim"]["claimName"] for v in pod_spec(served)["volumes"]
    }
    writable = {m["mountPath"] for m in spec["volumeMounts"] if m["name"] in claims and not m.get("readOnly")}
    assert writable == {"/models"}


def test_the_model_volume_components_containers_are_bounded_and_locked_down():
    (patch,) = documents(MODELS / "classifier.yaml")
    bench = {doc["metadata"]["name"]: doc for doc in resource_objects(MODELS)}["classifier-workbench"]
    specs = [*pod_spec(patch)["initContainers"], *pod_spec(bench)["containers"]]
    for spec in specs:
        resources = spec["resources"]
        for kind in ("cpu", "memory"):
            assert quantity(resources["requests"][kind]) <= quantity(resources["limits"][kind]), spec["name"]
        context = spec["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert "/tmp" in {m["mountPath"] for m in spec["volumeMounts"]}, (
            f"{spec['name']} has no writable /tmp"
        )
    context = pod_spec(bench)["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
    # Both pods write and read the volume as the same group.
    assert pod_spec(patch)["securityContext"]["fsGroup"] == context["fsGroup"] == context["runAsGroup"]


def test_the_production_overlay_names_the_model_volume_component_to_enable():
    text = (KUBE / "overlays" / "production" / "kustomization.yaml").read_text()
    assert "#   - ../../components/classifier-models" in text
    assert (KUBE / "overlays" / "production" / "../../components/classifier-models").resolve() == MODELS
