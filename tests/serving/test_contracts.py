"""The Vertex AI and SageMaker contracts and the metrics endpoint, over real HTTP on the real model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kubeforge.model_format import load_model
from kubeforge.serving.app import ServerOptions, create_app
from kubeforge.serving.server import options_from_env

from .conftest import CATEGORICAL, MODEL_NAME, Server, TrainedModel, loopback_session, running


def _instances(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in rows.to_dict("records")
    ]


def _expected(server: Server, rows: pd.DataFrame) -> tuple[list[Any], np.ndarray]:
    prediction = server.model.predict_frame(rows)
    assert prediction.probabilities is not None
    return prediction.labels, prediction.probabilities


def test_vertex_predict_takes_objects_or_ordered_lists(server: Server, trained: TrainedModel) -> None:
    rows = trained.features.head(6)
    labels, probabilities = _expected(server, rows)
    order = [feature.name for feature in server.model.preprocessor.features]
    as_lists = [[row[name] for name in order] for row in _instances(rows)]
    for instances in (_instances(rows), as_lists):
        response = server.session.post(f"{server.url}/predict", json={"instances": instances}, timeout=30)
        assert response.status_code == 200, response.text
        answers = response.json()["predictions"]
        assert [answer["label"] for answer in answers] == labels
        np.testing.assert_allclose([answer["probabilities"] for answer in answers], probabilities, rtol=1e-5)
    health = server.session.get(f"{server.url}/health", timeout=10)
    assert (health.status_code, health.json()) == (200, {"ready": True})


def test_vertex_missing_values_are_imputed_like_the_preprocessor(server: Server, trained: TrainedModel) -> None:
    rows = trained.features.head(3).copy()
    rows.loc[0, "mean radius"] = np.nan
    rows.loc[1, CATEGORICAL] = None
    instances = _instances(rows)
    response = server.session.post(f"{server.url}/predict", json={"instances": instances}, timeout=30)
    assert response.status_code == 200, response.text
    assert [answer["label"] for answer in response.json()["predictions"]] == _expected(server, rows)[0]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"instances": []}, "instances: must be a non-empty list"),
        ({"rows": [1]}, "instances: must be a non-empty list of rows, got missing"),
        ({"instances": [[1.0, 2.0]]}, "instances[0]: has 2 value(s)"),
        ({"instances": [{"mean radius": 1.0}]}, "instances[0]: missing feature(s)"),
        ({"instances": [7]}, "instances[0]: must be an object keyed by feature or a list"),
        ({"instances": [{}], "parameters": []}, "parameters: must be a JSON object"),
    ],
)
def test_vertex_bad_requests_are_400(server: Server, payload: dict[str, Any], fragment: str) -> None:
    response = server.session.post(f"{server.url}/predict", json=payload, timeout=30)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_vertex_wrong_types_name_the_feature_and_unknown_categories_take_the_reserved_level(
    server: Server, trained: TrainedModel
) -> None:
    instance = _instances(trained.features.head(1))[0]
    for feature, value, fragment in (
        ("mean area", "big", "instances[*].mean area: row 0 holds 'big'"),
        ("mean area", True, "a numeric feature takes a number"),
    ):
        response = server.session.post(
            f"{server.url}/predict", json={"instances": [{**instance, feature: value}]}, timeout=30
        )
        assert response.status_code == 400, response.text
        assert fragment in response.json()["error"]
    unseen = trained.features.head(1).assign(**{CATEGORICAL: "huge"})
    response = server.session.post(f"{server.url}/predict", json={"instances": _instances(unseen)}, timeout=30)
    assert response.status_code == 200, response.text
    labels, _ = _expected(server, unseen)
    assert [p["label"] for p in response.json()["predictions"]] == labels


def test_vertex_parameters_choose_the_model(server: Server, trained: TrainedModel) -> None:
    instances = _instances(trained.features.head(2))
    response = server.session.post(
        f"{server.url}/predict", json={"instances": instances, "parameters": {"model": "nope"}}, timeout=30
    )
    assert response.status_code == 404 and "'nope' is not served" in response.json()["error"]


def test_sagemaker_ping_and_invocations_json_and_csv(server: Server, trained: TrainedModel) -> None:
    rows = trained.features.head(5)
    labels, _ = _expected(server, rows)
    assert server.session.get(f"{server.url}/ping", timeout=10).status_code == 200
    response = server.session.post(f"{server.url}/invocations", json={"instances": _instances(rows)}, timeout=30)
    assert response.status_code == 200, response.text
    assert [answer["label"] for answer in response.json()["predictions"]] == labels
    order = [feature.name for feature in server.model.preprocessor.features]
    csv_body = rows[order].to_csv(header=False, index=False).encode()
    response = server.session.post(
        f"{server.url}/invocations",
        data=csv_body,
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv"
    assert response.text.splitlines() == [str(label) for label in labels]
    response = server.session.post(
        f"{server.url}/invocations",
        json={"instances": _instances(rows)},
        headers={"X-Amzn-SageMaker-Target-Model": MODEL_NAME},
        timeout=30,
    )
    assert response.status_code == 200


def test_sagemaker_bad_requests_are_4xx(server: Server, trained: TrainedModel) -> None:
    post = server.session.post
    response = post(f"{server.url}/invocations", data=b"a,b\n", headers={"Content-Type": "text/csv"}, timeout=10)
    assert response.status_code == 400 and "CSV line 1: has 2 value(s)" in response.json()["error"]
    for unreadable in (b"\r\x00", b"x" * 140_000):  # a stray carriage return (found by the fuzz test), a huge field
        response = post(f"{server.url}/invocations", data=unreadable, headers={"Content-Type": "text/csv"}, timeout=10)
        assert response.status_code == 400, response.text
    assert "not readable as CSV (field larger than field limit" in response.json()["error"]
    response = post(f"{server.url}/invocations", data=b"<x/>", headers={"Content-Type": "application/xml"}, timeout=10)
    assert response.status_code == 415 and "application/json or text/csv" in response.json()["error"]
    response = post(
        f"{server.url}/invocations",
        json={"instances": [[]]},
        headers={"X-Amzn-SageMaker-Target-Model": "nope"},
        timeout=10,
    )
    assert response.status_code == 404
    assert server.session.get(f"{server.url}/invocations", timeout=10).status_code == 405


def test_metrics_count_requests_latency_batches_and_queue(server: Server, trained: TrainedModel) -> None:
    server.session.post(f"{server.url}/predict", json={"instances": _instances(trained.features.head(3))}, timeout=30)
    server.session.post(f"{server.url}/predict", json={"instances": []}, timeout=30)
    text = server.session.get(f"{server.url}/metrics", timeout=10).text
    assert f'kubeforge_requests_total{{code="200",contract="vertex",model="{MODEL_NAME}"}}' in text
    assert f'kubeforge_requests_total{{code="400",contract="vertex",model="{MODEL_NAME}"}}' in text
    assert f'kubeforge_request_latency_seconds_bucket{{contract="vertex",le="0.05",model="{MODEL_NAME}"}}' in text
    assert f'kubeforge_batch_size_rows_count{{model="{MODEL_NAME}"}}' in text
    assert f'kubeforge_queue_depth{{model="{MODEL_NAME}"}} 0.0' in text


def test_metrics_count_rows_with_unseen_categories(server: Server, trained: TrainedModel) -> None:
    def counted() -> float:
        text = server.session.get(f"{server.url}/metrics", timeout=10).text
        name = f'kubeforge_unknown_category_rows_total{{column="{CATEGORICAL}",model="{MODEL_NAME}"}} '
        return sum(float(line.removeprefix(name)) for line in text.splitlines() if line.startswith(name))

    before = counted()
    rows = trained.features.head(3).assign(**{CATEGORICAL: ["tiny", trained.features[CATEGORICAL].iloc[1], "giant"]})
    response = server.session.post(f"{server.url}/predict", json={"instances": _instances(rows)}, timeout=30)
    assert response.status_code == 200, response.text
    assert counted() == before + 2


def test_vertex_routes_come_from_the_environment(trained: TrainedModel) -> None:
    env = {"AIP_PREDICT_ROUTE": "/v1/endpoints/1/deployedModels/2:predict", "AIP_HEALTH_ROUTE": "/healthz"}
    model = load_model(trained.directory, name=MODEL_NAME)
    app = create_app({MODEL_NAME: model}, options=options_from_env(ServerOptions(), env))
    rows = trained.features.head(2)
    with running(app) as url, loopback_session() as session:
        assert session.get(f"{url}/healthz", timeout=10).status_code == 200
        response = session.post(f"{url}{env['AIP_PREDICT_ROUTE']}", json={"instances": _instances(rows)}, timeout=30)
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 2
        assert session.post(f"{url}/predict", json={"instances": _instances(rows)}, timeout=30).status_code == 404
