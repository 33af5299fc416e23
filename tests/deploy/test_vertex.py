"""The `vertex` deploy target with the real google-cloud-aiplatform client (REST transport) against
a local HTTP server on loopback speaking the Vertex AI v1 REST paths of models and endpoints
(tests/support/fake_vertex.py); Vertex AI itself cannot be reached here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fake_vertex import FakeVertex, isolated_aiplatform_config, running_fake_vertex

from kubeforge.deploy.vertex import VertexSpec, deploy_vertex, label_value
from kubeforge.errors import InputError, ServingError

PARENT = "projects/proj/locations/europe-west4"


@pytest.fixture
def vertex() -> Iterator[tuple[FakeVertex, Any]]:
    """The fake, and the aiplatform module initialised against it (its global config restored afterwards)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    with running_fake_vertex() as fake, isolated_aiplatform_config():
        aiplatform.init(
            project="proj",
            location="europe-west4",
            api_endpoint=fake.url,
            api_transport="rest",
            credentials=AnonymousCredentials(),
        )
        yield fake, aiplatform


def _spec(**changes: Any) -> VertexSpec:
    values: dict[str, Any] = {"name": "cancer", "artifact_uri": "gs://models/cancer/v1", "max_replicas": 3, **changes}
    return VertexSpec(**values)


def test_upload_deploy_reattach_then_new_version_takes_over(vertex: tuple[FakeVertex, Any]) -> None:
    fake, aiplatform = vertex
    first = deploy_vertex(aiplatform, _spec(), fake.url)
    assert first.status == "created"
    assert first.url == f"{fake.url}/v1/{PARENT}/endpoints/1:predict"
    assert first.model_version == f"{PARENT}/models/1@1"
    [model] = fake.models[f"{PARENT}/models/1"]
    container = model["containerSpec"]
    assert container["imageUri"].startswith("ghcr.io/kubeforge/kubeforge:")
    assert (container["predictRoute"], container["healthRoute"]) == ("/predict", "/health")
    assert container["ports"] == [{"containerPort": 8080}]
    assert container["args"] == ["serve", "--name", "cancer", "--host", "0.0.0.0"]
    assert model["artifactUri"] == "gs://models/cancer/v1"
    assert model["labels"] == {"kubeforge-model": "cancer"}
    endpoint = fake.endpoints[f"{PARENT}/endpoints/1"]
    [deployed] = endpoint["deployedModels"]
    resources = deployed["dedicatedResources"]
    assert resources["machineSpec"] == {"machineType": "n1-standard-2"}
    assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (1, 3)
    assert endpoint["trafficSplit"] == {deployed["id"]: 100}

    again = deploy_vertex(aiplatform, _spec(), fake.url)
    assert (again.status, again.url, again.model_version) == ("reattached", first.url, first.model_version)
    assert sum(call.startswith("POST") for call in fake.calls) == 3  # upload, create endpoint, deploy

    canary = deploy_vertex(aiplatform, _spec(artifact_uri="gs://models/cancer/v2", traffic_percent=20), fake.url)
    assert (canary.status, canary.model_version) == ("updated", f"{PARENT}/models/1@2")
    assert len(fake.models) == 1 and len(fake.endpoints) == 1  # a new version of the same model
    assert [v["versionId"] for v in fake.models[f"{PARENT}/models/1"]] == ["1", "2"]
    assert sorted(endpoint["trafficSplit"].values()) == [20, 80]

    promoted = deploy_vertex(aiplatform, _spec(artifact_uri="gs://models/cancer/v3"), fake.url)
    assert (promoted.status, promoted.model_version) == ("updated", f"{PARENT}/models/1@3")
    [only] = endpoint["deployedModels"]  # the versions it replaced are undeployed
    assert (only["modelVersionId"], endpoint["trafficSplit"]) == ("3", {only["id"]: 100})


def test_gpus_and_service_account_reach_the_deployed_model(vertex: tuple[FakeVertex, Any]) -> None:
    fake, aiplatform = vertex
    spec = _spec(
        name="Cancer.GPU",
        endpoint_name="shared",
        accelerator_count=1,
        machine_type="n1-standard-8",
        service_account="serve@proj.iam.gserviceaccount.com",
    )
    deploy_vertex(aiplatform, spec, fake.url)
    [endpoint] = fake.endpoints.values()
    assert (endpoint["displayName"], endpoint["labels"]) == ("shared", {"kubeforge-endpoint": "shared"})
    [deployed] = endpoint["deployedModels"]
    assert deployed["dedicatedResources"]["machineSpec"] == {
        "machineType": "n1-standard-8",
        "acceleratorType": aiplatform.gapic.AcceleratorType.NVIDIA_TESLA_T4.value,  # enums travel as integers
        "acceleratorCount": 1,
    }
    assert deployed["serviceAccount"] == "serve@proj.iam.gserviceaccount.com"
    assert label_value(spec.name) == "cancer-gpu"


def test_api_errors_are_serving_errors(vertex: tuple[FakeVertex, Any]) -> None:
    fake, aiplatform = vertex
    deploy_vertex(aiplatform, _spec(), fake.url)
    # the list shows an endpoint that is gone by the time it is read: Vertex answers 404
    fake.endpoints = {"listed": {"name": f"{PARENT}/endpoints/9", "labels": {"kubeforge-endpoint": "cancer"}}}
    with pytest.raises(ServingError, match=r"Vertex AI endpoint 'cancer': 404"):
        deploy_vertex(aiplatform, _spec(artifact_uri="gs://models/cancer/v2"), fake.url)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"artifact_uri": "s3://models/x"}, "not a gs:// prefix"),
        ({"traffic_percent": 101}, "canary_traffic_percent: 101"),
        ({"min_replicas": 0}, "Vertex AI needs 1 <= min <= max"),
        ({"accelerator_count": -1}, "gpus: must be 0 or more"),
    ],
)
def test_bad_spec_is_an_input_error(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        _spec(**changes)
