"""helm/kubeforge with the real helm binary: lint, render with default values and with every option on,
validate every rendered manifest (core kinds with kubernetes-validate in strict mode, Kueue objects against
the upstream CRD schemas in ../shared/crds), scan with checkov, and check the schema and cross-field rules."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from infra_tools import CHECKOV, CRDS, HELM, REPO, require

import kubeforge

pytestmark = pytest.mark.infra
CHART = REPO / "helm" / "kubeforge"
ALL_ON = CHART / "ci" / "all-on-values.yaml"
KUBERNETES_VERSION = "1.31.0"
# Custom resources validated against their CRD; the Prometheus Operator's CRD is not in ../shared/crds.
CRD_FILES = {
    "ResourceFlavor": "kueue.x-k8s.io_resourceflavors.yaml",
    "ClusterQueue": "kueue.x-k8s.io_clusterqueues.yaml",
    "LocalQueue": "kueue.x-k8s.io_localqueues.yaml",
}
UNVALIDATED_CUSTOM_KINDS = {"ServiceMonitor"}


def _helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(require(HELM)), *args], capture_output=True, text=True, check=check)


def _render(*values: str) -> list[dict[str, Any]]:
    options = [argument for path in values for argument in ("-f", path)]
    text = _helm("template", "kf", str(CHART), "--namespace", "kubeforge", *options).stdout
    return [document for document in yaml.safe_load_all(text) if document]


def _crd_schema(kind: str, version: str) -> dict[str, Any]:
    if not CRDS.is_dir():
        pytest.skip(f"{CRDS} is absent: the CRD schemas for offline validation live in ../shared/crds")
    crd = yaml.safe_load((CRDS / CRD_FILES[kind]).read_text())
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"{kind}: version {version} not in {CRD_FILES[kind]}")


@pytest.mark.parametrize("values", [(), (str(ALL_ON),)], ids=["defaults", "all-on"])
def test_lint_and_validate_rendered_manifests(values: tuple[str, ...]) -> None:
    options = [argument for path in values for argument in ("-f", path)]
    lint = _helm("lint", str(CHART), "--strict", *options, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    documents = _render(*values)
    kinds = {document["kind"] for document in documents}
    assert {"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "PodDisruptionBudget"} <= kinds
    for document in documents:
        kind = document["kind"]
        if kind in CRD_FILES:
            version = document["apiVersion"].split("/")[1]
            jsonschema.validate(document, _crd_schema(kind, version))
        elif kind not in UNVALIDATED_CUSTOM_KINDS:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_every_option_renders_its_objects() -> None:
    kinds = [document["kind"] for document in _render(str(ALL_ON))]
    for kind in ("ResourceFlavor", "ClusterQueue", "LocalQueue", "ServiceMonitor", "NetworkPolicy"):
        assert kind in kinds
    assert kinds.count("Deployment") == 3  # scheduler API, dispatcher, model server


def test_pods_run_locked_down_with_the_pinned_image() -> None:
    for document in _render(str(ALL_ON)):
        if document["kind"] != "Deployment":
            continue
        pod = document["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
    scheduler = next(d for d in _render() if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("scheduler"))
    assert scheduler["spec"]["template"]["spec"]["containers"][0]["image"] == kubeforge.IMAGE


def test_rbac_is_limited_to_the_job_kinds_it_manages(tmp_path: Path) -> None:
    documents = _render()
    roles = {document["metadata"]["name"]: document for document in documents if document["kind"] == "Role"}

    def writable(name: str) -> set[str]:
        rules = roles[name]["rules"]
        return {resource for rule in rules if "create" in rule["verbs"] for resource in rule["resources"]}

    assert writable("kf-kubeforge-scheduler") == {"jobs", "pytorchjobs"}
    assert writable("kf-kubeforge-pipeline") == {"pytorchjobs", "trainjobs", "inferenceservices"}
    for role in roles.values():
        assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in role["rules"])
    [node_reader] = [document for document in documents if document["kind"] == "ClusterRole"]
    assert node_reader["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    # With the capacity given, the scheduler never lists nodes and the chart grants nothing cluster-wide.
    capacity = tmp_path / "capacity.yaml"
    capacity.write_text("scheduler:\n  capacity: {cpu: '8', memory: 32Gi, gpu: 0}\n")
    given = _render(str(capacity))
    assert not [d for d in given if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    api = next(d for d in given if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-scheduler"))
    assert {"--cpu=8", "--memory=32Gi", "--gpu=0"} <= set(api["spec"]["template"]["spec"]["containers"][0]["args"])


def test_the_store_url_and_job_policy_reach_the_scheduler_through_its_environment() -> None:
    for deployment in [
        d for d in _render() if d["kind"] == "Deployment" and "model-server" not in d["metadata"]["name"]
    ]:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert not any("STORE" in arg or "postgres" in arg for arg in container["args"])
        assert "--namespace=kubeforge" in container["args"]
        env = {item["name"]: item for item in container["env"]}
        assert env["KUBEFORGE_STORE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "kubeforge-postgres", "key": "url"}
        assert env["KUBEFORGE_JOB_SERVICE_ACCOUNT"]["value"] == "kf-kubeforge-job"
        assert json.loads(env["KUBEFORGE_JOB_ALLOWED_IMAGES"]["value"]) == {"*": [kubeforge.IMAGE]}
    job_account = next(d for d in _render() if d["kind"] == "ServiceAccount" and d["metadata"]["name"].endswith("-job"))
    assert job_account["automountServiceAccountToken"] is False


def _model_server(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(d for d in documents if d["kind"] == kind and d["metadata"]["name"] == "kf-kubeforge-model-server")


@pytest.mark.parametrize("grpc_port", [8081, 9000])
def test_the_model_server_serves_grpc_on_its_named_h2c_port(tmp_path: Path, grpc_port: int) -> None:
    values = tmp_path / "grpc.yaml"
    values.write_text(yaml.safe_dump({"modelServer": {"grpcPort": grpc_port}}))
    documents = _render(str(ALL_ON), str(values))
    container = _model_server(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert f"--grpc-port={grpc_port}" in container["args"] and "--port=8080" in container["args"]
    assert {"name": "grpc", "containerPort": grpc_port, "protocol": "TCP"} in container["ports"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    service_ports = {port["name"]: port for port in _model_server(documents, "Service")["spec"]["ports"]}
    assert service_ports["grpc"] == {
        "name": "grpc",
        "port": grpc_port,
        "targetPort": "grpc",
        "protocol": "TCP",
        "appProtocol": "kubernetes.io/h2c",
    }
    assert service_ports["http"]["nodePort"] == 30081
    policy = _model_server(documents, "NetworkPolicy")
    assert [port["port"] for port in policy["spec"]["ingress"][0]["ports"]] == ["http", "grpc"]


def test_grpc_port_zero_serves_rest_only(tmp_path: Path) -> None:
    values = tmp_path / "rest-only.yaml"
    values.write_text(yaml.safe_dump({"modelServer": {"grpcPort": 0}}))
    documents = _render(str(ALL_ON), str(values))
    container = _model_server(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert not any(arg.startswith("--grpc-port") for arg in container["args"])
    assert [port["name"] for port in container["ports"]] == ["http"]
    assert [port["name"] for port in _model_server(documents, "Service")["spec"]["ports"]] == ["http"]
    policy = _model_server(documents, "NetworkPolicy")
    assert [port["port"] for port in policy["spec"]["ingress"][0]["ports"]] == ["http"]
    scheduler_policy = next(
        d for d in documents if d["metadata"]["name"] == "kf-kubeforge-scheduler" and d["kind"] == "NetworkPolicy"
    )
    assert [port["port"] for port in scheduler_policy["spec"]["ingress"][0]["ports"]] == ["http"]


def test_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == kubeforge.__version__


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("scheduler.bogus=1", "additional properties 'bogus' not allowed"),
        ("scheduler.backend=docker", "at '/scheduler/backend'"),
        ("image.tag=latest", "at '/image/tag': 'not' failed"),
        ("modelServer.enabled=true", "modelServer.modelUri: required when modelServer.enabled is true"),
        ("serviceMonitor.enabled=true", "set modelServer.enabled=true too"),
        ("modelServer.grpcPort=8080", "modelServer.grpcPort: must differ from modelServer.port"),
        ("modelServer.grpcPort=80", "at '/modelServer/grpcPort'"),
    ],
)
def test_bad_values_fail_the_render_with_a_clear_message(option: str, message: str) -> None:
    result = _helm("template", "kf", str(CHART), "--set", option, check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_checkov_passes_the_rendered_chart(tmp_path: Path) -> None:
    checkov = require(CHECKOV)
    files = []
    for name, values in (("defaults", ()), ("all-on", (str(ALL_ON),))):
        target = tmp_path / f"{name}.yaml"
        target.write_text(yaml.safe_dump_all(_render(*values)))
        files += ["-f", str(target)]
    result = subprocess.run(
        [checkov, "--skip-download", "--quiet", "--compact", "--framework", "kubernetes", *files],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
