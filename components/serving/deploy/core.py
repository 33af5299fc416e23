"""Deploy a Model artifact to a serving target; the component wraps this function.

Targets: `local` (a detached kubeforge model server on this machine), `kserve` (an
InferenceService, see kserve.py), `vertex` (a Vertex AI Model on an Endpoint, see vertex.py) and
`sagemaker` (a real-time endpoint, see sagemaker.py). Every target is re-runnable: a second run
with the same model re-attaches, a new model updates in place, nothing is duplicated.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeforge.errors import InputError
from kubeforge.serving.local import start_local_server
from kubeforge.serving.protocol import check_model_name

from .options import RemoteOptions, check_target_options

TARGETS = ("local", "kserve", "vertex", "sagemaker")
_GPU_INSTANCE_FAMILIES = ("ml.g", "ml.p", "ml.inf", "ml.trn")


@dataclass(frozen=True)
class DeployResult:
    """Where a deployed model answers (`endpoint` is the server's base URL) and the deployment's state."""

    endpoint: str
    target: str
    status: str
    model_name: str
    infer_url: str = ""


def deploy(
    model_dir: str,
    target: str,
    model_name: str,
    port: int = 0,
    state_dir: str | None = None,
    remote: RemoteOptions | None = None,
) -> DeployResult:
    """Serve `model_dir` on `target` under `model_name` and wait until it answers.

    Remote targets read the model from `remote.storage_uri` (default: `model_dir`, then the
    artifact's s3:// or gs:// URI). Status is `started`/`created` for a new deployment,
    `reattached` when the same model was already served under that name and `updated` when a
    remote deployment moved to a new model.
    """
    _check_target(target)
    check_model_name(model_name)
    remote = remote or RemoteOptions()
    check_target_options(target, remote.target_options)
    if target != "local":
        storage_uri = remote.storage_uri or model_dir
        if target == "kserve":
            return _deploy_kserve(model_name, storage_uri, remote)
        if target == "vertex":
            return _deploy_vertex(model_name, storage_uri, remote)
        return _deploy_sagemaker(model_name, storage_uri, remote)
    if not model_dir:
        raise InputError("model_dir: empty; give the directory of a trained kubeforge model")
    endpoint = start_local_server(model_dir, model_name, port=port, state_dir=state_dir)
    return DeployResult(
        endpoint=endpoint.url,
        target=target,
        status="reattached" if endpoint.reattached else "started",
        model_name=model_name,
        infer_url=endpoint.infer_url,
    )


def _deploy_kserve(model_name: str, storage_uri: str, remote: RemoteOptions) -> DeployResult:
    from kubeforge.kube_client import default_api_client

    from .kserve import KServeSpec, apply_inference_service

    spec = KServeSpec(
        name=model_name,
        storage_uri=storage_uri,
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
        model_name=model_name,
        infer_url=f"{deployed.url}/v2/models/{model_name}/infer",
    )


def _deploy_vertex(model_name: str, storage_uri: str, remote: RemoteOptions) -> DeployResult:
    try:
        from google.cloud import aiplatform
    except ImportError as exc:
        raise InputError("the vertex target needs google-cloud-aiplatform: pip install 'kubeforge[gcp]'") from exc

    from .vertex import VertexSpec, deploy_vertex

    location = remote.option("location")
    spec = VertexSpec(
        name=model_name,
        artifact_uri=storage_uri,
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
        endpoint=deployed.url, target="vertex", status=deployed.status, model_name=model_name, infer_url=deployed.url
    )


def _deploy_sagemaker(model_name: str, storage_uri: str, remote: RemoteOptions) -> DeployResult:
    import boto3

    from .sagemaker import SageMakerSpec, deploy_sagemaker

    if remote.canary_traffic_percent >= 0:
        raise InputError(
            "canary_traffic_percent: the sagemaker target replaces the endpoint's model blue/green; leave it at -1"
        )
    instance_type = remote.option("instance_type", SageMakerSpec.instance_type)
    if remote.gpus and not instance_type.startswith(_GPU_INSTANCE_FAMILIES):
        raise InputError(
            f"gpus: {remote.gpus} asked, but instance_type {instance_type!r} has no accelerator; "
            'choose one in target_options, e.g. {"instance_type": "ml.g5.xlarge"}'
        )
    spec = SageMakerSpec(
        endpoint_name=model_name,
        model_s3_uri=storage_uri,
        role_arn=remote.option("role_arn"),
        image=remote.image,
        instance_type=instance_type,
        instance_count=max(1, remote.min_replicas),
    )
    sagemaker = boto3.client("sagemaker", region_name=remote.option("region") or None)
    deployed = deploy_sagemaker(sagemaker, spec, timeout_s=remote.timeout_s)
    return DeployResult(
        endpoint=deployed.url, target="sagemaker", status=deployed.status, model_name=model_name, infer_url=deployed.url
    )


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise InputError(f"target: {target!r} is not a deploy target; valid targets are {', '.join(TARGETS)}")


__all__ = ["TARGETS", "DeployResult", "RemoteOptions", "deploy"]
