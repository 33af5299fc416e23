"""KFP definition of `serving/deploy`: declares inputs and outputs, calls the core."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Input, Model

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy_model(
    model: Input[Model],
    model_name: str,
    target: str = "local",
    port: int = 0,
    storage_uri: str = "",
    image: str = "",
    canary_traffic_percent: int = -1,
    min_replicas: int = 1,
    max_replicas: int = 1,
    cpu: str = "1",
    memory: str = "2Gi",
    gpus: int = 0,
    timeout_seconds: int = 900,
    target_options: str = "{}",
) -> NamedTuple("Outputs", [("endpoint", str), ("status", str), ("infer_url", str)]):  # type: ignore[valid-type]
    """Serve the model on `target` (local, kserve, vertex, sagemaker); outputs the endpoint URL and status.

    Remote targets read the model from `storage_uri` (default: the model artifact's URI) and run
    `image` (default: the kubeforge image of this version). `target_options` is a JSON object of
    the target's own settings: kserve {namespace, service_account}; vertex {project, location,
    endpoint_name, machine_type, accelerator_type, service_account, api_endpoint}; sagemaker
    {role_arn, instance_type, region}. A re-run re-attaches or updates, never duplicates.
    """
    from collections import namedtuple

    from kubeforge.components.serving.deploy import core

    remote = core.RemoteOptions.from_parameters(
        target,
        target_options,
        image=image,
        storage_uri=storage_uri,
        canary_traffic_percent=canary_traffic_percent,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        cpu=cpu,
        memory=memory,
        gpus=gpus,
        timeout_s=float(timeout_seconds),
    )
    model_dir = model.path if target == "local" else model.uri
    result = core.deploy(model_dir, target=target, model_name=model_name, port=port, remote=remote)
    outputs = namedtuple("outputs", ["endpoint", "status", "infer_url"])
    return outputs(result.endpoint, result.status, result.infer_url)
