"""deploy/kubernetes/: every manifest validates against the Kubernetes schemas (`kubernetes-validate`,
which ships them: no network), KEDA's ScaledObject (a CRD it does not know) has its required fields,
and the manifests agree with MediaFlow itself: every variable is a real setting and the values parse,
the probes are real routes, the worker's grace period covers its drain, selectors and references match."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mediaflow.settings import Settings
from tests.apptools import REPO

DEPLOY = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]  # the oldest we claim to support, and the newest the validator knows
# The seed's variable names, all of which a deployment sets (docs/configuration.md).
SEED_NAMES = {
    "DB_BACKEND",
    "MONGO_URL",
    "DB_NAME",
    "MONGO_JOBS_COLLECTION",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
    "KAFKA_CONSUMER_GROUP",
    "OUTPUT_BUCKET",
    "OUTPUT_PREFIX",
    "AWS_REGION",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
}
# After the job's and the webhooks' grace: releasing the job, closing Kafka/store/S3 clients.
WORKER_SHUTDOWN_MARGIN_S = 10


def manifest_files() -> list[Path]:
    return sorted(path for path in DEPLOY.glob("*.yaml") if path.name != "kustomization.yaml")


def documents() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def find(kind: str, name: str | None = None) -> dict:
    matches = [doc for _, doc in documents() if doc["kind"] == kind and name in (None, doc["metadata"]["name"])]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def config_values() -> dict[str, str]:
    return find("ConfigMap")["data"] | find("Secret")["stringData"]


def pod_specs() -> dict[str, dict]:
    return {
        doc["metadata"]["name"]: doc["spec"]["template"]["spec"]
        for _, doc in documents()
        if doc["kind"] == "Deployment"
    }


# --- schemas ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_builtin_manifest_validates_strictly(version):
    checked = 0
    for path, doc in documents():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked below
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 9


def test_validator_refuses_a_broken_manifest():
    """The validator really checks (and works offline): a misspelt field and a wrong type fail."""
    deployment = find("Deployment", "mediaflow-worker")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_keda_scaled_object_has_its_required_fields_and_matches_the_config():
    scaled = find("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert set(scaled["metadata"]) >= {"name"}
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] in pod_specs(), "scales a Deployment of ours"
    assert isinstance(spec["minReplicaCount"], int) and isinstance(spec["maxReplicaCount"], int)
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    [trigger] = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert all(isinstance(value, str) for value in metadata.values()), "KEDA trigger metadata values are strings"
    config = config_values()
    assert metadata["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    assert metadata["consumerGroup"] == config["KAFKA_CONSUMER_GROUP"]
    assert metadata["topic"] == config["KAFKA_TOPIC"]
    assert int(metadata["lagThreshold"]) > 0
    assert metadata["offsetResetPolicy"] in ("earliest", "latest")
    slots = spec["maxReplicaCount"] * int(config["WORKER_CONCURRENCY"])
    assert slots <= int(config["KAFKA_TOPIC_PARTITIONS"]), "every worker slot can own a partition"


def test_kustomization_lists_every_manifest_but_the_hpa_alternative():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert all((DEPLOY / name).is_file() for name in listed)
    assert {path.name for path in manifest_files()} - listed == {"worker-hpa.yaml"}
    hpa = find("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == find("ScaledObject")["spec"]["scaleTargetRef"]["name"]


# --- agreement with MediaFlow ----------------------------------------------------------------------


def test_every_variable_is_a_setting_and_the_values_parse():
    names = set(config_values())
    for spec in pod_specs().values():
        for container in spec["containers"]:
            names |= {variable["name"] for variable in container.get("env", [])}
            sources = {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]}
            assert sources == {"mediaflow-config", "mediaflow-secrets"}
    unknown = {name for name in names - set(Settings.model_fields) if not name.startswith("OTEL_")}  # OTEL_*: the SDK's
    assert not unknown, f"not MediaFlow settings: {sorted(unknown)}"
    assert names >= SEED_NAMES, f"seed names missing: {sorted(SEED_NAMES - names)}"
    settings = Settings(_env_file=None, **config_values())  # e.g. a malformed whsec_ WEBHOOK_SECRET fails here
    assert settings.QUEUE_BACKEND == "kafka" and settings.STORAGE_BACKEND == "s3" and settings.API_WORKERS == 0


def test_worker_grace_period_covers_its_drain():
    config = config_values()
    drain = float(config["SHUTDOWN_GRACE_S"]) + float(config["WEBHOOK_SHUTDOWN_GRACE_S"]) + WORKER_SHUTDOWN_MARGIN_S
    assert pod_specs()["mediaflow-worker"]["terminationGracePeriodSeconds"] == drain
    api = pod_specs()["mediaflow-api"]
    [container] = api["containers"]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # `mediaflow serve` lets requests finish for SHUTDOWN_GRACE_S + 5 s after the preStop pause.
    assert api["terminationGracePeriodSeconds"] >= pre_stop + float(config["SHUTDOWN_GRACE_S"]) + 5


def test_ffmpeg_memory_cap_fits_in_the_worker_limit():
    """A job that needs more memory fails naming FFMPEG_MAX_MEMORY_MB, instead of the pod being OOM-killed."""
    [container] = pod_specs()["mediaflow-worker"]["containers"]
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Gi")
    assert int(config_values()["FFMPEG_MAX_MEMORY_MB"]) + 512 <= int(limit[:-2]) * 1024


def test_api_probes_are_real_routes():
    from mediaflow.api.app import create_app

    paths = set(create_app(Settings(_env_file=None)).openapi()["paths"])
    [container] = pod_specs()["mediaflow-api"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in paths
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" in paths
    port_names = {port["name"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["port"] in port_names
    service = find("Service")
    assert service["spec"]["ports"][0]["targetPort"] in port_names


def test_pods_run_as_non_root_with_resources():
    for name, spec in pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}, name
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, name
            if security.get("readOnlyRootFilesystem"):
                mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
                assert {"/tmp", config_values()["WORK_DIR"]} <= mounts, f"{name}: writable temp dirs"


def test_selectors_match_their_pods():
    labels = {name: find("Deployment", name)["spec"]["template"]["metadata"]["labels"] for name in pod_specs()}
    for name in labels:
        assert find("Deployment", name)["spec"]["selector"]["matchLabels"].items() <= labels[name].items()
    selected = [find("Service")["spec"]["selector"]] + [
        doc["spec"]["selector"]["matchLabels"] for _, doc in documents() if doc["kind"] == "PodDisruptionBudget"
    ]
    for selector in selected:
        assert any(selector.items() <= pod_labels.items() for pod_labels in labels.values()), selector
    assert len(selected) == 3, "a Service and a PodDisruptionBudget for each Deployment"
