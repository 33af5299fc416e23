"""The `kserve` deploy target with the real kubernetes client against a local HTTP server on loopback
speaking the Kubernetes REST paths of serving.kserve.io/v1beta1 inferenceservices (no API server can
run here; tests/support/fake_kserve.py). The fake plays KServe's controller: an object turns Ready on
the second read after a change. Every object it receives is validated against the upstream
InferenceService CRD schema. The fake enforces the RBAC the Helm chart renders, and the target acts as
the chart's pipeline service account (what the deploy step runs as)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from crd_schema import schema_errors
from fake_kserve import CRD, FakeKServe, running_fake_kserve
from kube_rbac import chart_rbac
from kubernetes import client

from kubeforge.deploy.kserve import (
    KServeSpec,
    apply_inference_service,
    delete_inference_service,
    inference_service,
)
from kubeforge.errors import InputError, ServingError


@pytest.fixture
def kubernetes() -> Iterator[tuple[FakeKServe, client.ApiClient]]:
    rbac = chart_rbac("ml")  # the chart installed in the namespace the tests deploy into
    with running_fake_kserve(rbac=rbac) as fake:
        configuration = client.Configuration(host=fake.url)
        configuration.proxy = None
        configuration.api_key = {"authorization": rbac.token_for("ml", "kubeforge-pipeline")}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        api = client.ApiClient(configuration)
        try:
            yield fake, api
            assert fake.denied == []
        finally:
            api.close()


def test_inference_service_matches_the_crd_schema() -> None:
    spec = KServeSpec(
        name="cancer",
        storage_uri="s3://models/cancer",
        canary_traffic_percent=10,
        min_replicas=0,
        max_replicas=3,
        cpu="2",
        memory="4Gi",
        gpus=1,
        service_account="kserve-models",
    )
    body = inference_service(spec)
    assert schema_errors(body, CRD) == []
    predictor = body["spec"]["predictor"]
    assert (predictor["canaryTrafficPercent"], predictor["minReplicas"], predictor["maxReplicas"]) == (10, 0, 3)
    container = predictor["containers"][0]
    assert container["env"] == [{"name": "STORAGE_URI", "value": "s3://models/cancer"}]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 1}
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert predictor["serviceAccountName"] == "kserve-models"
    assert container["args"][:2] == ["serve", "/mnt/models"]


def test_grpc_inference_service_routes_h2c_to_the_grpc_port() -> None:
    body = inference_service(KServeSpec(name="cancer", storage_uri="s3://models/cancer", grpc=True))
    assert schema_errors(body, CRD) == []
    container = body["spec"]["predictor"]["containers"][0]
    assert container["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]
    assert container["args"][-4:] == ["--port", "8080", "--grpc-port", "8081"]
    assert container["readinessProbe"] == {"tcpSocket": {"port": 8081}}
    rest = inference_service(KServeSpec(name="cancer", storage_uri="s3://models/cancer"))["spec"]["predictor"]
    assert "--grpc-port" not in rest["containers"][0]["args"]


def test_apply_creates_waits_replaces_and_deletes(kubernetes: tuple[FakeKServe, client.ApiClient]) -> None:
    fake, api = kubernetes
    spec = KServeSpec(name="cancer", storage_uri="s3://models/cancer/v1", namespace="ml")
    first = apply_inference_service(api, spec, timeout_s=10)
    assert (first.status, first.url) == ("created", "http://cancer.ml.example.com")
    fake.objects[("ml", "cancer")]["metadata"]["labels"]["team"] = "fraud"  # set by someone else
    canary = KServeSpec(name="cancer", storage_uri="s3://models/cancer/v2", namespace="ml", canary_traffic_percent=20)
    second = apply_inference_service(api, canary, timeout_s=10)
    assert second.status == "updated"
    stored = fake.objects[("ml", "cancer")]
    assert stored["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert stored["metadata"]["generation"] == 2
    assert stored["metadata"]["labels"]["team"] == "fraud"
    # Promoting the canary drops the setting; a merge patch would have left the old 20 % in place.
    apply_inference_service(api, KServeSpec(name="cancer", storage_uri="s3://models/cancer/v2", namespace="ml"))
    assert "canaryTrafficPercent" not in fake.objects[("ml", "cancer")]["spec"]["predictor"]
    assert fake.calls == ["create cancer", "replace cancer", "replace cancer"]
    assert delete_inference_service(api, "cancer", "ml") is True
    assert delete_inference_service(api, "cancer", "ml") is False


def test_a_conflicting_change_is_read_again_and_replaced(kubernetes: tuple[FakeKServe, client.ApiClient]) -> None:
    fake, api = kubernetes
    apply_inference_service(api, KServeSpec(name="cancer", storage_uri="s3://models/v1", namespace="ml"), timeout_s=10)
    fake.conflicts_to_inject = 2
    result = apply_inference_service(
        api, KServeSpec(name="cancer", storage_uri="s3://models/v2", namespace="ml"), timeout_s=10
    )
    assert result.status == "updated"
    stored = fake.objects[("ml", "cancer")]
    assert stored["spec"]["predictor"]["containers"][0]["env"] == [{"name": "STORAGE_URI", "value": "s3://models/v2"}]
    assert fake.calls.count("replace cancer") == 3
    fake.conflicts_to_inject = 10**6
    with pytest.raises(ServingError, match="409 Conflict each time"):
        apply_inference_service(
            api, KServeSpec(name="cancer", storage_uri="s3://models/v3", namespace="ml"), timeout_s=10
        )


def test_not_ready_in_time_is_a_serving_error(kubernetes: tuple[FakeKServe, client.ApiClient]) -> None:
    fake, api = kubernetes
    fake.ready_after_reads = 10**6
    with pytest.raises(ServingError, match=r"was not Ready after 0.3 s: Ready=False \(RevisionMissing\)"):
        apply_inference_service(api, KServeSpec(name="slow", storage_uri="gs://m/slow", namespace="ml"), timeout_s=0.3)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"storage_uri": ""}, "storage_uri: empty"),
        ({"canary_traffic_percent": 101}, "canary_traffic_percent: 101"),
        ({"min_replicas": 3, "max_replicas": 2}, "min_replicas/max_replicas"),
    ],
)
def test_bad_spec_is_an_input_error(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        KServeSpec(**{"name": "cancer", "storage_uri": "s3://m/c", **changes})


def test_the_deploy_target_may_not_act_outside_the_charts_namespace(
    kubernetes: tuple[FakeKServe, client.ApiClient],
) -> None:
    fake, api = kubernetes
    with pytest.raises(ServingError, match="HTTP 403 Forbidden; is KServe installed and may this service account"):
        apply_inference_service(api, KServeSpec(name="cancer", storage_uri="s3://m/v1", namespace="kube-system"))
    assert fake.denied == [
        'inferenceservices.serving.kserve.io "cancer" is forbidden: User "system:serviceaccount:ml:kubeforge-pipeline"'
        ' cannot get resource "inferenceservices" in API group "serving.kserve.io" in the namespace "kube-system"'
    ]
    fake.denied.clear()
