"""The `sagemaker` deploy target: a SageMaker real-time endpoint running the kubeforge image.

Model and endpoint config are named after the endpoint plus a digest of what they hold, so a
re-run with the same model re-attaches to the endpoint, and a new model updates it in place
(`update_endpoint`) instead of creating a second one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubeforge import IMAGE, settings
from kubeforge.deploy.base import DeployRequest, DeployResult
from kubeforge.errors import InputError, ServingError

_GPU_INSTANCE_FAMILIES = ("ml.g", "ml.p", "ml.inf", "ml.trn")


@dataclass(frozen=True)
class SageMakerSpec:
    """What the endpoint runs: the image, the model's S3 prefix, the execution role and the instances."""

    endpoint_name: str
    model_s3_uri: str
    role_arn: str
    image: str = IMAGE
    instance_type: str = "ml.m5.large"
    instance_count: int = 1

    def __post_init__(self) -> None:
        if not self.model_s3_uri.startswith("s3://"):
            raise InputError(f"model_uri: {self.model_s3_uri!r} is not an s3:// prefix; SageMaker reads models from S3")
        if not self.role_arn.startswith("arn:"):
            raise InputError(f"role_arn: {self.role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
        if self.instance_count < 1:
            raise InputError(f"instance_count: must be at least 1, got {self.instance_count}")

    @property
    def revision(self) -> str:
        """`{endpoint}-{digest}`: the name of this model and endpoint config."""
        digest = hashlib.sha256(
            json.dumps([self.image, self.model_s3_uri, self.instance_type, self.instance_count]).encode()
        )
        return f"{self.endpoint_name[:54]}-{digest.hexdigest()[:8]}"


@dataclass(frozen=True)
class SageMakerDeployment:
    """The endpoint: its invocation URL and whether it was created, updated or re-attached."""

    endpoint_name: str
    url: str
    status: str


def deploy_sagemaker(sagemaker: Any, spec: SageMakerSpec, timeout_s: float = 1800.0) -> SageMakerDeployment:
    """Create or update the endpoint for `spec` with a boto3 SageMaker client, then wait until InService."""
    from botocore.exceptions import ClientError, WaiterError

    revision = spec.revision
    try:
        if not _exists(sagemaker.describe_model, ModelName=revision):
            sagemaker.create_model(
                ModelName=revision,
                ExecutionRoleArn=spec.role_arn,
                PrimaryContainer={
                    "Image": spec.image,
                    "ModelDataSource": {
                        "S3DataSource": {
                            "S3Uri": spec.model_s3_uri.rstrip("/") + "/",
                            "S3DataType": "S3Prefix",
                            "CompressionType": "None",
                        }
                    },
                    "Environment": {settings.HOST.name: "0.0.0.0"},
                },
            )
        if not _exists(sagemaker.describe_endpoint_config, EndpointConfigName=revision):
            sagemaker.create_endpoint_config(
                EndpointConfigName=revision,
                ProductionVariants=[
                    {
                        "VariantName": "kubeforge",
                        "ModelName": revision,
                        "InstanceType": spec.instance_type,
                        "InitialInstanceCount": spec.instance_count,
                    }
                ],
            )
        current = _describe_endpoint(sagemaker, spec.endpoint_name)
        if current is None:
            sagemaker.create_endpoint(EndpointName=spec.endpoint_name, EndpointConfigName=revision)
            status = "created"
        elif current["EndpointConfigName"] != revision:
            sagemaker.update_endpoint(EndpointName=spec.endpoint_name, EndpointConfigName=revision)
            status = "updated"
        else:
            status = "reattached"
        delay = 15 if timeout_s >= 60 else 1
        sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName=spec.endpoint_name,
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, int(timeout_s // delay))},
        )
    except WaiterError as exc:
        raise ServingError(
            f"SageMaker endpoint {spec.endpoint_name!r} did not reach InService within {timeout_s:g} s: {exc}; "
            "see its FailureReason with `aws sagemaker describe-endpoint`"
        ) from exc
    except ClientError as exc:
        raise ServingError(f"SageMaker endpoint {spec.endpoint_name!r}: {exc}") from exc
    region = sagemaker.meta.region_name
    url = f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{spec.endpoint_name}/invocations"
    return SageMakerDeployment(endpoint_name=spec.endpoint_name, url=url, status=status)


def _exists(describe: Any, **name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        describe(**name)
    except ClientError as exc:
        if _not_found(exc):
            return False
        raise
    return True


def _describe_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return dict(sagemaker.describe_endpoint(EndpointName=name))
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise


def _not_found(exc: Any) -> bool:
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return "could not find" in message or "does not exist" in message or "not found" in message


def deploy_to_sagemaker(request: DeployRequest) -> DeployResult:
    """The `sagemaker` target: a boto3 client for the target's region, then `deploy_sagemaker`."""
    import boto3

    remote = request.remote
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
        endpoint_name=request.model_name,
        model_s3_uri=request.storage_uri,
        role_arn=remote.option("role_arn"),
        image=remote.image,
        instance_type=instance_type,
        instance_count=max(1, remote.min_replicas),
    )
    sagemaker = boto3.client("sagemaker", region_name=remote.option("region") or None)
    deployed = deploy_sagemaker(sagemaker, spec, timeout_s=remote.timeout_s)
    return DeployResult(
        endpoint=deployed.url,
        target="sagemaker",
        status=deployed.status,
        model_name=request.model_name,
        infer_url=deployed.url,
    )


__all__ = ["SageMakerDeployment", "SageMakerSpec", "deploy_sagemaker", "deploy_to_sagemaker"]
