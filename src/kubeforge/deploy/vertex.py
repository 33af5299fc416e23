"""The `vertex` deploy target: a Vertex AI Model running the kubeforge image, deployed to an Endpoint.

The model and the endpoint carry kubeforge labels; each model version carries an alias derived
from what it runs (image and artifact URI). A re-run with the same model finds that version and
the endpoint by label and re-attaches; a new model is uploaded as a new version of the same
Vertex model (`parent_model`) and deployed to the same endpoint with the requested traffic share.
When the new version takes all the traffic, the versions it replaces are undeployed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from kubeforge import IMAGE
from kubeforge.deploy.base import DeployRequest, DeployResult
from kubeforge.errors import InputError, ServingError

MODEL_LABEL = "kubeforge-model"
ENDPOINT_LABEL = "kubeforge-endpoint"
PREDICT_ROUTE = "/predict"
HEALTH_ROUTE = "/health"
CONTAINER_PORT = 8080
_LABEL_INVALID = re.compile(r"[^a-z0-9_-]")


@dataclass(frozen=True)
class VertexSpec:
    """What the endpoint runs: the image, the model's gs:// URI, the machines and the traffic share."""

    name: str
    artifact_uri: str
    image: str = IMAGE
    endpoint_name: str = ""
    machine_type: str = "n1-standard-2"
    min_replicas: int = 1
    max_replicas: int = 1
    traffic_percent: int = 100
    accelerator_type: str = "NVIDIA_TESLA_T4"
    accelerator_count: int = 0
    service_account: str = ""

    def __post_init__(self) -> None:
        if not self.artifact_uri.startswith("gs://"):
            raise InputError(
                f"storage_uri: {self.artifact_uri!r} is not a gs:// prefix; Vertex AI reads models from Cloud Storage"
            )
        if not 0 <= self.traffic_percent <= 100:
            raise InputError(f"canary_traffic_percent: {self.traffic_percent} is not within 0-100")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise InputError(
                f"min_replicas/max_replicas: {self.min_replicas}/{self.max_replicas}; Vertex AI needs 1 <= min <= max"
            )
        if self.accelerator_count < 0:
            raise InputError(f"gpus: must be 0 or more, got {self.accelerator_count}")

    @property
    def endpoint(self) -> str:
        """The endpoint's display name: `endpoint_name`, else the model's name."""
        return self.endpoint_name or self.name

    @property
    def version_alias(self) -> str:
        """`kf-{digest}`: the alias of the model version that runs this image on this artifact."""
        digest = hashlib.sha256(json.dumps([self.image, self.artifact_uri.rstrip("/")]).encode())
        return f"kf-{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class VertexDeployment:
    """The endpoint: its resource name, prediction URL and whether it was created, updated or re-attached."""

    endpoint_name: str
    url: str
    status: str
    model_version: str


def label_value(name: str) -> str:
    """`name` as a Vertex AI label value: lower case, letters, digits, '_' and '-', at most 63 characters."""
    return _LABEL_INVALID.sub("-", name.lower())[:63]


def deploy_vertex(aiplatform: Any, spec: VertexSpec, predict_base_url: str) -> VertexDeployment:
    """Upload (or find) the model version, create (or find) the endpoint and deploy the version to it.

    `aiplatform` is the initialised `google.cloud.aiplatform` module; `predict_base_url` is the
    scheme and host that answer predictions (the regional Vertex AI API).
    """
    from google.api_core.exceptions import GoogleAPIError

    try:
        model = _model_version(aiplatform, spec)
        endpoint, created = _endpoint(aiplatform, spec)
        deployed = endpoint.list_models()
        if any(_runs(entry, model) for entry in deployed):
            status = "reattached"
        else:
            _deploy(endpoint, model, spec)
            status = "created" if created else "updated"
            if spec.traffic_percent == 100:
                for replaced in deployed:
                    endpoint.undeploy(deployed_model_id=replaced.id)
    except GoogleAPIError as exc:
        raise ServingError(f"Vertex AI endpoint {spec.endpoint!r}: {exc}") from exc
    url = f"{predict_base_url.rstrip('/')}/v1/{endpoint.resource_name}:predict"
    return VertexDeployment(
        endpoint_name=endpoint.resource_name,
        url=url,
        status=status,
        model_version=f"{model.resource_name}@{model.version_id}",
    )


def _model_version(aiplatform: Any, spec: VertexSpec) -> Any:
    """The version for `spec`: found by label and alias, else uploaded (a new version when the model exists)."""
    from google.api_core.exceptions import NotFound

    label = label_value(spec.name)
    existing = aiplatform.Model.list(filter=f'labels.{MODEL_LABEL}="{label}"')
    parent = min((model.resource_name for model in existing), default=None)
    if parent is not None:
        try:
            return aiplatform.Model(model_name=parent, version=spec.version_alias)
        except NotFound:
            pass
    return aiplatform.Model.upload(
        display_name=spec.name,
        serving_container_image_uri=spec.image,
        artifact_uri=spec.artifact_uri,
        serving_container_command=["kubeforge"],
        serving_container_args=["serve", "--name", spec.name, "--host", "0.0.0.0"],
        serving_container_predict_route=PREDICT_ROUTE,
        serving_container_health_route=HEALTH_ROUTE,
        serving_container_ports=[CONTAINER_PORT],
        parent_model=parent,
        version_aliases=[spec.version_alias],
        labels={MODEL_LABEL: label},
    )


def _endpoint(aiplatform: Any, spec: VertexSpec) -> tuple[Any, bool]:
    """The endpoint labelled with `spec.endpoint`, created when there is none; True when created."""
    label = label_value(spec.endpoint)
    existing = aiplatform.Endpoint.list(filter=f'labels.{ENDPOINT_LABEL}="{label}"')
    if existing:
        return min(existing, key=lambda endpoint: endpoint.resource_name), False
    return aiplatform.Endpoint.create(display_name=spec.endpoint, labels={ENDPOINT_LABEL: label}), True


def _runs(deployed: Any, model: Any) -> bool:
    return bool(deployed.model == model.resource_name and deployed.model_version_id == model.version_id)


def _deploy(endpoint: Any, model: Any, spec: VertexSpec) -> None:
    gpus = spec.accelerator_count
    endpoint.deploy(
        model,
        deployed_model_display_name=f"{spec.name}-{spec.version_alias}",
        traffic_percentage=spec.traffic_percent,
        machine_type=spec.machine_type,
        min_replica_count=spec.min_replicas,
        max_replica_count=spec.max_replicas,
        accelerator_type=spec.accelerator_type if gpus else None,
        accelerator_count=gpus or None,
        service_account=spec.service_account or None,
    )


def deploy_to_vertex(request: DeployRequest) -> DeployResult:
    """The `vertex` target: initialise aiplatform from the target options, then `deploy_vertex`."""
    try:
        from google.cloud import aiplatform
    except ImportError as exc:
        raise InputError("the vertex target needs google-cloud-aiplatform: pip install 'kubeforge[gcp]'") from exc

    remote = request.remote
    location = remote.option("location")
    spec = VertexSpec(
        name=request.model_name,
        artifact_uri=request.storage_uri,
        image=remote.image,
        endpoint_name=remote.option("endpoint_name"),
        machine_type=remote.option("machine_type", VertexSpec.machine_type),
        min_replicas=remote.min_replicas,
        max_replicas=remote.max_replicas,
        traffic_percent=100 if remote.canary_traffic_percent < 0 else remote.canary_traffic_percent,
        accelerator_type=remote.option("accelerator_type", VertexSpec.accelerator_type),
        accelerator_count=remote.gpus,
        service_account=remote.option("service_account"),
    )
    api_endpoint = remote.option("api_endpoint")
    aiplatform.init(
        project=remote.option("project"),
        location=location,
        api_endpoint=api_endpoint or None,
        api_transport="rest",
    )
    if not api_endpoint:
        api_endpoint = f"{location}-aiplatform.googleapis.com"
    base_url = api_endpoint if "://" in api_endpoint else f"https://{api_endpoint}"
    deployed = deploy_vertex(aiplatform, spec, base_url)
    return DeployResult(
        endpoint=deployed.url,
        target="vertex",
        status=deployed.status,
        model_name=request.model_name,
        infer_url=deployed.url,
    )


__all__ = [
    "ENDPOINT_LABEL",
    "MODEL_LABEL",
    "VertexDeployment",
    "VertexSpec",
    "deploy_to_vertex",
    "deploy_vertex",
    "label_value",
]
