"""core.deploy() end to end on its remote targets, configured the way a component run configures them.

None of the platforms can be reached here, so each real client library talks to a stand-in on
loopback: `kserve` through a kubeconfig file ($KUBECONFIG) to a local HTTP server speaking the
Kubernetes REST paths of inferenceservices (tests/support/fake_kserve.py, objects validated
against the upstream CRD); `sagemaker` through boto3 ($AWS_ENDPOINT_URL) to moto's server;
`vertex` through google-cloud-aiplatform's REST transport (`api_endpoint` target option) to a
local HTTP server speaking the Vertex AI REST paths (tests/support/fake_vertex.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_kserve import running_fake_kserve
from fake_vertex import isolated_aiplatform_config, running_fake_vertex
from moto_server import running_moto_server

from kubeforge.components.serving.deploy.core import RemoteOptions, deploy
from kubeforge.errors import InputError

ROLE = "arn:aws:iam::123456789012:role/kubeforge-serving"


def _kubeconfig(path: Path, server: str) -> Path:
    cluster = {"name": "fake", "cluster": {"server": server}}
    user = {"name": "fake", "user": {"token": "test-token"}}
    context = {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "ml"}}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [user],
        "contexts": [context],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_kserve_from_a_kubeconfig_creates_then_rolls_out_a_canary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not inside a cluster
    with running_fake_kserve() as fake:
        monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "kubeconfig", fake.url)))
        options = {"namespace": "ml", "service_account": "models"}
        remote = RemoteOptions(max_replicas=2, gpus=1, timeout_s=10, target_options=options)
        first = deploy("s3://models/cancer/v1", target="kserve", model_name="cancer", remote=remote)
        assert (first.status, first.endpoint) == ("created", "http://cancer.ml.example.com")
        assert first.infer_url == "http://cancer.ml.example.com/v2/models/cancer/infer"
        predictor = fake.objects[("ml", "cancer")]["spec"]["predictor"]
        assert predictor["serviceAccountName"] == "models"
        assert predictor["containers"][0]["env"] == [{"name": "STORAGE_URI", "value": "s3://models/cancer/v1"}]
        assert predictor["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1

        canary = RemoteOptions(storage_uri="s3://models/cancer/v2", canary_traffic_percent=10, target_options=options)
        second = deploy("s3://ignored/when/storage_uri/is/set", target="kserve", model_name="cancer", remote=canary)
        assert second.status == "updated"
        predictor = fake.objects[("ml", "cancer")]["spec"]["predictor"]
        assert predictor["canaryTrafficPercent"] == 10
        assert predictor["containers"][0]["env"][0]["value"] == "s3://models/cancer/v2"
        assert fake.calls == ["create cancer", "replace cancer"]


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with running_moto_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield url


def test_sagemaker_through_aws_endpoint_url_creates_then_reattaches(moto_endpoint: str) -> None:
    import boto3

    remote = RemoteOptions(min_replicas=2, timeout_s=10, target_options={"role_arn": ROLE, "region": "eu-west-1"})
    first = deploy("s3://models/cancer/v1", target="sagemaker", model_name="cancer", remote=remote)
    assert first.status == "created"
    assert first.endpoint == "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/cancer/invocations"
    assert deploy("s3://models/cancer/v1", target="sagemaker", model_name="cancer", remote=remote).status == (
        "reattached"
    )
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1", endpoint_url=moto_endpoint)
    [endpoint] = sagemaker.list_endpoints()["Endpoints"]
    config = sagemaker.describe_endpoint_config(
        EndpointConfigName=sagemaker.list_endpoint_configs()["EndpointConfigs"][0]["EndpointConfigName"]
    )
    assert endpoint["EndpointStatus"] == "InService"
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2


@pytest.fixture
def fake_vertex() -> Iterator[Any]:
    """The Vertex fake; anonymous credentials set process-wide, as a pod's service account would be."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    with running_fake_vertex() as fake, isolated_aiplatform_config():
        aiplatform.init(credentials=AnonymousCredentials())
        yield fake


def test_vertex_uploads_deploys_and_versions_through_the_rest_api(fake_vertex: Any) -> None:
    options = {"project": "proj", "location": "us-central1", "api_endpoint": fake_vertex.url}
    remote = RemoteOptions(max_replicas=2, target_options={**options, "machine_type": "n1-standard-4"})
    first = deploy("gs://models/cancer/v1", target="vertex", model_name="cancer", remote=remote)
    endpoint = "projects/proj/locations/us-central1/endpoints/1"
    assert (first.status, first.endpoint) == ("created", f"{fake_vertex.url}/v1/{endpoint}:predict")
    [deployed] = fake_vertex.endpoints[endpoint]["deployedModels"]
    assert deployed["dedicatedResources"]["machineSpec"]["machineType"] == "n1-standard-4"
    assert deployed["dedicatedResources"]["maxReplicaCount"] == 2

    canary = RemoteOptions(storage_uri="gs://models/cancer/v2", canary_traffic_percent=25, target_options=options)
    second = deploy("gs://models/cancer/v1", target="vertex", model_name="cancer", remote=canary)
    assert (second.status, second.endpoint) == ("updated", first.endpoint)
    assert sorted(fake_vertex.endpoints[endpoint]["trafficSplit"].values()) == [25, 75]
    assert len(fake_vertex.models) == 1 and len(fake_vertex.models["projects/proj/locations/us-central1/models/1"]) == 2


@pytest.mark.parametrize(
    ("target", "remote", "fragment"),
    [
        ("kserve", RemoteOptions(target_options={"project": "p"}), "project not known to the kserve target"),
        ("vertex", RemoteOptions(target_options={"project": "p"}), "the vertex target needs location"),
        ("sagemaker", RemoteOptions(), "the sagemaker target needs role_arn"),
        ("local", RemoteOptions(target_options={"namespace": "ml"}), "it accepts none"),
        (
            "sagemaker",
            RemoteOptions(canary_traffic_percent=10, target_options={"role_arn": ROLE}),
            "replaces the endpoint's model blue/green",
        ),
        ("sagemaker", RemoteOptions(gpus=1, target_options={"role_arn": ROLE}), "'ml.m5.large' has no accelerator"),
        ("vertex", RemoteOptions(target_options={"project": "p", "location": "l"}), "is not a gs:// prefix"),
    ],
)
def test_bad_remote_settings_are_input_errors(target: str, remote: RemoteOptions, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        deploy("s3://models/cancer", target=target, model_name="cancer", remote=remote)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "target_options: not valid JSON"),
        ("[1]", "target_options: expected a JSON object"),
        ('{"role": "x"}', "role not known to the sagemaker target; it accepts role_arn, instance_type, region"),
    ],
)
def test_target_options_text_is_checked(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        RemoteOptions.from_parameters("sagemaker", text)
    assert RemoteOptions.from_parameters("kserve", '{"namespace": "ml"}', image="").image.startswith("ghcr.io/")


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"canary_traffic_percent": 101}, "canary_traffic_percent: 101"),
        ({"gpus": -1}, "gpus: must be 0 or more"),
        ({"timeout_s": 0}, "timeout_s: must be positive"),
    ],
)
def test_bad_shared_settings_are_input_errors(values: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        RemoteOptions(**values)
