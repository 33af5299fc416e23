"""The `sagemaker` deploy target with real boto3 against moto's SageMaker API server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto_server import running_moto_server

from kubeforge.deploy.sagemaker import SageMakerSpec, deploy_sagemaker
from kubeforge.errors import InputError, ServingError

ROLE = "arn:aws:iam::123456789012:role/kubeforge-serving"


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    with running_moto_server() as url:
        yield boto3.client("sagemaker", endpoint_url=url, region_name="eu-west-1")


def test_create_reattach_then_update_never_duplicates(sagemaker: Any) -> None:
    spec = SageMakerSpec(endpoint_name="cancer", model_s3_uri="s3://models/cancer/v1", role_arn=ROLE)
    first = deploy_sagemaker(sagemaker, spec, timeout_s=10)
    assert first.status == "created"
    assert first.url == "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/cancer/invocations"
    endpoint = sagemaker.describe_endpoint(EndpointName="cancer")
    assert endpoint["EndpointStatus"] == "InService"
    model = sagemaker.describe_model(ModelName=endpoint["EndpointConfigName"])
    assert model["PrimaryContainer"]["Environment"] == {"KUBEFORGE_HOST": "0.0.0.0"}
    assert model["ExecutionRoleArn"] == ROLE

    assert deploy_sagemaker(sagemaker, spec, timeout_s=10).status == "reattached"
    assert len(sagemaker.list_endpoints()["Endpoints"]) == 1
    assert len(sagemaker.list_models()["Models"]) == 1

    # a new model: the re-run updates the one endpoint in place. moto 5.2's server does not implement
    # UpdateEndpoint (it answers 500), so this proves the call chosen and that its failure is reported.
    newer = SageMakerSpec(endpoint_name="cancer", model_s3_uri="s3://models/cancer/v2", role_arn=ROLE)
    with pytest.raises(ServingError, match="when calling the UpdateEndpoint operation"):
        deploy_sagemaker(sagemaker, newer, timeout_s=10)
    assert sagemaker.describe_model(ModelName=newer.revision)["ModelName"] == newer.revision
    assert len(sagemaker.list_endpoints()["Endpoints"]) == 1
    assert len(sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 2


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"model_s3_uri": "gs://models/x"}, "not an s3:// prefix"),
        ({"role_arn": "kubeforge"}, "not an IAM role ARN"),
        ({"instance_count": 0}, "instance_count: must be at least 1"),
    ],
)
def test_bad_spec_is_an_input_error(changes: dict[str, Any], fragment: str) -> None:
    values = {"endpoint_name": "cancer", "model_s3_uri": "s3://models/cancer", "role_arn": ROLE, **changes}
    with pytest.raises(InputError, match=fragment):
        SageMakerSpec(**values)
