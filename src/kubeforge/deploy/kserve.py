"""The `kserve` deploy target: a serving.kserve.io/v1beta1 InferenceService running the kubeforge image.

The predictor is a custom container (`kubeforge serve /mnt/models`); KServe's storage initializer
copies `storage_uri` to /mnt/models. Applying an existing InferenceService replaces its spec
(`kubectl replace` with the resourceVersion just read, retried on a conflict): a new model or canary
percentage rolls out as a new revision, a setting dropped from the spec is dropped from the object
(a merge patch would keep it), labels and annotations others set are kept, and a re-run never
duplicates the service.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kubeforge import IMAGE
from kubeforge.deploy.base import DeployRequest, DeployResult
from kubeforge.errors import InputError, ServingError

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
MODEL_MOUNT = "/mnt/models"
GPU_RESOURCE = "nvidia.com/gpu"
HTTP_PORT = 8080
GRPC_PORT = 8081
_POLL_S = 2.0
_CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class KServeSpec:
    """What the InferenceService runs and how it scales.

    With `grpc` the predictor serves OIP v2 over gRPC and Knative routes its one port, named `h2c`
    (cleartext HTTP/2), to the gRPC port; REST stays on 8080 inside the pod.
    """

    name: str
    storage_uri: str
    namespace: str = "default"
    image: str = IMAGE
    canary_traffic_percent: int | None = None
    min_replicas: int = 1
    max_replicas: int = 1
    cpu: str = "1"
    memory: str = "2Gi"
    gpus: int = 0
    service_account: str = ""
    grpc: bool = False

    def __post_init__(self) -> None:
        if not self.storage_uri:
            raise InputError("storage_uri: empty; give the model's s3://, gs:// or pvc:// URI for KServe to mount")
        if self.canary_traffic_percent is not None and not 0 <= self.canary_traffic_percent <= 100:
            raise InputError(f"canary_traffic_percent: {self.canary_traffic_percent} is not within 0-100")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise InputError(
                f"min_replicas/max_replicas: {self.min_replicas}/{self.max_replicas}; need 0 <= min <= max and max >= 1"
            )


def inference_service(spec: KServeSpec) -> dict[str, Any]:
    """The InferenceService object for `spec`."""
    limits: dict[str, Any] = {"cpu": spec.cpu, "memory": spec.memory}
    if spec.gpus:
        limits[GPU_RESOURCE] = spec.gpus
    predictor: dict[str, Any] = {
        "minReplicas": spec.min_replicas,
        "maxReplicas": spec.max_replicas,
        "containers": [
            {
                "name": "kserve-container",
                "image": spec.image,
                "command": ["kubeforge"],
                "args": ["serve", MODEL_MOUNT, "--name", spec.name, "--host", "0.0.0.0", *_port_args(spec)],
                "env": [{"name": "STORAGE_URI", "value": spec.storage_uri}],
                **_ports(spec),
                "resources": {"requests": {"cpu": spec.cpu, "memory": spec.memory}, "limits": limits},
            }
        ],
    }
    if spec.service_account:
        predictor["serviceAccountName"] = spec.service_account
    if spec.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = spec.canary_traffic_percent
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": {"app.kubernetes.io/managed-by": "kubeforge"},
            "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
        },
        "spec": {"predictor": predictor},
    }


def _port_args(spec: KServeSpec) -> list[str]:
    grpc = ["--grpc-port", str(GRPC_PORT)] if spec.grpc else []
    return ["--port", str(HTTP_PORT), *grpc]


def _ports(spec: KServeSpec) -> dict[str, Any]:
    """The container's routed port and readiness probe: REST, or gRPC on a port named h2c for Knative."""
    if spec.grpc:  # the gRPC port opens only once every model is warm, so a TCP probe means ready
        return {
            "ports": [{"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}],
            "readinessProbe": {"tcpSocket": {"port": GRPC_PORT}},
        }
    return {
        "ports": [{"containerPort": HTTP_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": HTTP_PORT}},
    }


@dataclass(frozen=True)
class KServeDeployment:
    """The applied InferenceService: its URL and whether it was created or updated."""

    name: str
    url: str
    status: str


def apply_inference_service(api: client.ApiClient, spec: KServeSpec, timeout_s: float = 600.0) -> KServeDeployment:
    """Create or replace the InferenceService, then wait until its Ready condition is True."""
    objects = client.CustomObjectsApi(api)
    body = inference_service(spec)
    for _ in range(_CONFLICT_RETRIES):
        current = _read(objects, spec)
        if current is None:
            try:
                objects.create_namespaced_custom_object(GROUP, VERSION, spec.namespace, PLURAL, body)
            except ApiException as exc:
                if exc.status == 409:  # created by someone else since the read: replace it instead
                    continue
                raise _api_error("create", spec, exc) from exc
            status = "created"
            break
        try:
            objects.replace_namespaced_custom_object(
                GROUP, VERSION, spec.namespace, PLURAL, spec.name, _replacement(current, body)
            )
        except ApiException as exc:
            if exc.status == 409:  # changed since the read: read it again
                continue
            raise _api_error("replace", spec, exc) from exc
        status = "updated"
        break
    else:
        raise ServingError(
            f"InferenceService {spec.namespace}/{spec.name}: still changing under us after "
            f"{_CONFLICT_RETRIES} attempts (HTTP 409 Conflict each time); is another deployment running?"
        )
    url = _wait_ready(objects, spec, timeout_s)
    return KServeDeployment(name=spec.name, url=url, status=status)


def _read(objects: client.CustomObjectsApi, spec: KServeSpec) -> dict[str, Any] | None:
    try:
        current: dict[str, Any] = objects.get_namespaced_custom_object(
            GROUP, VERSION, spec.namespace, PLURAL, spec.name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise _api_error("read", spec, exc) from exc
    return current


def _replacement(current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """`body` as a replacement of `current`: its resourceVersion, and others' labels and annotations kept."""
    metadata = dict(current.get("metadata") or {})
    for field in ("labels", "annotations"):
        merged = {**(metadata.get(field) or {}), **(body["metadata"].get(field) or {})}
        if merged:
            metadata[field] = merged
    return {**body, "metadata": metadata}


def delete_inference_service(api: client.ApiClient, name: str, namespace: str = "default") -> bool:
    """Delete the InferenceService; False when there was none."""
    try:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise ServingError(
            f"InferenceService {namespace}/{name}: delete failed: HTTP {exc.status} {exc.reason}"
        ) from exc
    return True


def _wait_ready(objects: client.CustomObjectsApi, spec: KServeSpec, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    last = "no status yet"
    while True:
        current = objects.get_namespaced_custom_object(GROUP, VERSION, spec.namespace, PLURAL, spec.name)
        status = current.get("status") or {}
        stale = status.get("observedGeneration", 0) < current.get("metadata", {}).get("generation", 0)
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Ready":
                if condition.get("status") == "True" and status.get("url") and not stale:
                    return str(status["url"])
                last = f"Ready={condition.get('status')} ({condition.get('reason') or condition.get('message') or '-'})"
        if time.monotonic() > deadline:
            raise ServingError(
                f"InferenceService {spec.namespace}/{spec.name} was not Ready after {timeout_s:g} s: {last}; "
                f"see `kubectl describe inferenceservice -n {spec.namespace} {spec.name}`"
            )
        time.sleep(min(_POLL_S, max(0.05, timeout_s / 20)))


def _api_error(action: str, spec: KServeSpec, exc: ApiException) -> ServingError:
    return ServingError(
        f"InferenceService {spec.namespace}/{spec.name}: {action} failed: HTTP {exc.status} {exc.reason}; "
        "is KServe installed and may this service account manage inferenceservices?"
    )


def deploy_to_kserve(request: DeployRequest) -> DeployResult:
    """The `kserve` target: apply the InferenceService through the kubeconfig (or in-cluster) credentials."""
    from kubeforge.kube_client import default_api_client

    remote = request.remote
    spec = KServeSpec(
        name=request.model_name,
        storage_uri=request.storage_uri,
        namespace=remote.option("namespace", "default"),
        image=remote.image,
        canary_traffic_percent=None if remote.canary_traffic_percent < 0 else remote.canary_traffic_percent,
        min_replicas=remote.min_replicas,
        max_replicas=remote.max_replicas,
        cpu=remote.cpu,
        memory=remote.memory,
        gpus=remote.gpus,
        service_account=remote.option("service_account"),
    )
    with default_api_client() as api:
        deployed = apply_inference_service(api, spec, timeout_s=remote.timeout_s)
    return DeployResult(
        endpoint=deployed.url,
        target="kserve",
        status=deployed.status,
        model_name=request.model_name,
        infer_url=f"{deployed.url}/v2/models/{request.model_name}/infer",
    )


__all__ = [
    "KServeDeployment",
    "KServeSpec",
    "apply_inference_service",
    "delete_inference_service",
    "deploy_to_kserve",
    "inference_service",
]
