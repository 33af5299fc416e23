"""The client helpers against the real server over HTTP on loopback: each contract answers each row
with the same prediction as the model applied in-process."""

from __future__ import annotations

import numpy as np
import pytest

from kubeforge.errors import InputError, ServingError
from kubeforge.serving.client import frame_to_instances, infer, invoke_sagemaker, output_by_name, predict_instances

from .conftest import MODEL_NAME, Server, TrainedModel


def test_all_three_contracts_agree_with_the_model(server: Server, trained: TrainedModel) -> None:
    frame = trained.features.head(7).copy()
    frame.loc[2, "mean radius"] = np.nan  # a missing value travels as null (JSON) or an empty cell (CSV)
    prediction = server.model.predict_frame(frame)
    assert prediction.probabilities is not None
    labels = [str(label) for label in prediction.labels]

    response = infer(server.url, MODEL_NAME, frame)
    assert [str(label) for label in output_by_name(response, "predictions")] == labels

    vertex = predict_instances(f"{server.url}/predict", frame)
    assert [p["label"] for p in vertex] == labels
    np.testing.assert_allclose([p["probabilities"] for p in vertex], prediction.probabilities, rtol=1e-5)

    sagemaker = invoke_sagemaker(server.url, frame, target_model=MODEL_NAME)
    assert [p["label"] for p in sagemaker] == labels
    in_feature_order = frame[[feature.name for feature in server.model.preprocessor.features]]
    assert invoke_sagemaker(server.url, in_feature_order, content_type="text/csv") == labels


def test_instances_are_rows_keyed_by_column_with_nan_as_null(trained: TrainedModel) -> None:
    frame = trained.features.head(2).copy()
    frame.loc[0, "size_band"] = None
    instances = frame_to_instances(frame)
    assert len(instances) == 2 and list(instances[0]) == [str(c) for c in frame.columns]
    assert instances[0]["size_band"] is None and isinstance(instances[1]["size_band"], str)
    assert instances[1]["mean radius"] == pytest.approx(float(frame["mean radius"].iloc[1]))


def test_server_errors_carry_the_servers_message(server: Server, trained: TrainedModel) -> None:
    frame = trained.features.head(1)
    with pytest.raises(ServingError, match=r"HTTP 404: .*'nope'"):
        invoke_sagemaker(server.url, frame, target_model="nope")
    with pytest.raises(ServingError, match=r"HTTP 400: .*missing feature"):
        predict_instances(f"{server.url}/predict", frame.drop(columns=["mean radius"]))
    with pytest.raises(InputError, match="content_type: 'text/plain'"):
        invoke_sagemaker(server.url, frame, content_type="text/plain")
    with pytest.raises(ServingError, match="cannot reach the model server"):
        predict_instances("http://127.0.0.1:9/predict", frame, timeout_s=2)
