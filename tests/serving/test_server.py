"""The v2 model server over real HTTP, serving a real model trained on real data."""

from __future__ import annotations

import copy
import http.client
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

import kubeforge

from .conftest import (
    CATEGORICAL,
    FLAKY_NAME,
    LABEL,
    MODEL_NAME,
    TEST_MAX_BODY_BYTES,
    Server,
    TrainedModel,
    v2_request,
)


def _post(server: Server, payload: Any, name: str = MODEL_NAME) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = server.session.post(server.infer_url(name), data=body, timeout=30)
    return response.status_code, response.json()


def _outputs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tensor["name"]: tensor for tensor in body["outputs"]}


@pytest.fixture
def rows(trained: TrainedModel) -> pd.DataFrame:
    return trained.features.head(5)


def test_health_and_server_metadata(server: Server) -> None:
    live = server.session.get(f"{server.url}/v2/health/live", timeout=10)
    assert (live.status_code, live.json()) == (200, {"live": True})
    ready = server.session.get(f"{server.url}/v2/health/ready", timeout=10)
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert ready.headers["content-type"] == "application/json"
    for path in ("/v2", "/v2/"):
        meta = server.session.get(f"{server.url}{path}", timeout=10)
        assert meta.json() == {
            "name": "kubeforge",
            "version": kubeforge.__version__,
            "extensions": ["binary_tensor_data", "explain"],
        }
    model_ready = server.session.get(f"{server.url}/v2/models/{MODEL_NAME}/ready", timeout=10)
    assert (model_ready.status_code, model_ready.json()) == (200, {"name": MODEL_NAME, "ready": True})


def test_model_metadata(server: Server, trained: TrainedModel) -> None:
    for path in (f"/v2/models/{MODEL_NAME}", f"/v2/models/{MODEL_NAME}/versions/1"):
        meta = server.session.get(f"{server.url}{path}", timeout=10).json()
        assert meta["name"] == MODEL_NAME
        assert meta["versions"] == ["1"]
        assert meta["platform"] == "pytorch_torchscript"
        inputs = {tensor["name"]: tensor for tensor in meta["inputs"]}
        assert set(inputs) == set(trained.features.columns)
        assert inputs[CATEGORICAL] == {"name": CATEGORICAL, "datatype": "BYTES", "shape": [-1]}
        assert inputs["mean radius"] == {"name": "mean radius", "datatype": "FP64", "shape": [-1]}
        assert meta["outputs"] == [
            {"name": "predictions", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        ]


def test_infer_matches_the_model_and_is_accurate(server: Server, trained: TrainedModel) -> None:
    features = trained.features
    status, body = _post(server, v2_request(features, request_id="batch-1"))
    assert status == 200, body
    assert (body["model_name"], body["model_version"], body["id"]) == (MODEL_NAME, "1", "batch-1")
    outputs = _outputs(body)
    predictions, probabilities = outputs["predictions"], outputs["probabilities"]
    assert (predictions["datatype"], predictions["shape"]) == ("BYTES", [len(features)])
    assert (probabilities["datatype"], probabilities["shape"]) == ("FP32", [len(features), 2])

    expected = server.model.predict_frame(features)
    assert predictions["data"] == expected.labels
    assert expected.probabilities is not None
    served = np.asarray(probabilities["data"]).reshape(len(features), 2)
    np.testing.assert_allclose(served, expected.probabilities, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served.sum(axis=1), 1.0, atol=1e-5)
    accuracy = float(np.mean(np.asarray(predictions["data"]) == trained.test[LABEL].to_numpy()))
    assert accuracy > 0.9, accuracy


def test_infer_accepts_codec_variants(server: Server, rows: pd.DataFrame) -> None:
    """[N, 1] shapes with nested data, integer datatypes, nulls (imputed), requested outputs, generated id."""
    request = v2_request(rows)
    inputs: list[dict[str, Any]] = request["inputs"]  # type: ignore[assignment]
    inputs[0].update(shape=[len(rows), 1], data=[[value] for value in inputs[0]["data"]])
    inputs[1].update(datatype="INT64", data=[round(value) for value in inputs[1]["data"]])
    inputs[2]["data"][0] = None
    request["outputs"] = [{"name": "predictions"}]
    status, body = _post(server, request)
    assert status == 200, body
    assert [tensor["name"] for tensor in body["outputs"]] == ["predictions"]
    assert len(body["outputs"][0]["data"]) == len(rows)
    assert isinstance(body["id"], str) and body["id"]


def _bad(rows: pd.DataFrame, edit: Any) -> dict[str, Any]:
    request = copy.deepcopy(v2_request(rows))
    edit(request)
    return request


def _set_input(index: int, **fields: Any) -> Any:
    return lambda request: request["inputs"][index].update(fields)


@pytest.mark.usefixtures("still_serving")
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("malformed_json", ["request body", "not valid JSON"]),
        ("not_an_object", ["request body", "JSON object"]),
        ("missing_inputs", ["inputs: missing"]),
        ("inputs_not_a_list", ["inputs: must be a list"]),
        ("missing_datatype", ["inputs[0].datatype: missing"]),
        ("unknown_datatype", ["inputs[0].datatype", "'FP16'", "FP32, FP64, INT32, INT64, BYTES, BOOL"]),
        ("shape_mismatch", ["inputs[2].shape", "declares 6 value(s) but data holds 5"]),
        ("shape_3d", ["inputs[1].shape", "[N] or [N, 1]"]),
        ("row_counts_differ", ["inputs[1].shape", "same number of rows"]),
        ("duplicate_name", ["inputs[1].name", "duplicate input 'mean radius'"]),
        ("text_in_fp32", ["inputs[3].data", "FP32 needs numbers", "'abc'"]),
        ("missing_feature", ["'mean texture'", "no input tensor"]),
        ("text_in_numeric_column", ["column 'mean area' is numeric", "'n/a'"]),
        ("id_not_a_string", ["id: must be a string"]),
        ("int_overflow", ["inputs[0].data", "out of range for INT64"]),
        ("unknown_output", ["outputs[0].name", "'logits'"]),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    server: Server, rows: pd.DataFrame, case: str, expected: list[str]
) -> None:
    area = list(rows.columns).index("mean area")
    cases: dict[str, Any] = {
        "malformed_json": b'{"inputs": [',
        "not_an_object": b"[1, 2, 3]",
        "missing_inputs": {"id": "x"},
        "inputs_not_a_list": {"inputs": {"mean radius": [1.0]}},
        "missing_datatype": _bad(rows, lambda r: r["inputs"][0].pop("datatype")),
        "unknown_datatype": _bad(rows, _set_input(0, datatype="FP16")),
        "shape_mismatch": _bad(rows, _set_input(2, shape=[6])),
        "shape_3d": _bad(rows, _set_input(1, shape=[5, 1, 1])),
        "row_counts_differ": _bad(rows, _set_input(1, shape=[4], data=[1.0, 2.0, 3.0, 4.0])),
        "duplicate_name": _bad(rows, _set_input(1, name="mean radius")),
        "text_in_fp32": _bad(rows, _set_input(3, datatype="FP32", data=[1.0, 2.0, "abc", 4.0, 5.0])),
        "missing_feature": _bad(rows, lambda r: r["inputs"].pop(1)),
        "text_in_numeric_column": _bad(
            rows, _set_input(area, datatype="BYTES", data=["500", "n/a", "600", "700", "800"])
        ),
        "id_not_a_string": _bad(rows, lambda r: r.update(id=7)),
        "int_overflow": _bad(rows, _set_input(0, datatype="INT64", data=[10**30, 1, 2, 3, 4])),
        "unknown_output": _bad(rows, lambda r: r.update(outputs=[{"name": "logits"}])),
    }
    status, body = _post(server, cases[case])
    assert status == 400, body
    assert set(body) == {"error"}
    for fragment in expected:
        assert fragment in body["error"], body["error"]


@pytest.mark.usefixtures("still_serving")
def test_unknown_model_and_path_are_404(server: Server, rows: pd.DataFrame) -> None:
    status, body = _post(server, v2_request(rows), name="nope")
    assert status == 404
    assert "'nope'" in body["error"] and f"{MODEL_NAME}, {FLAKY_NAME}" in body["error"]
    for path in ("/v1/models/x:predict", "/v2/models", f"/v2/models/{MODEL_NAME}/explainer", "/v2/models/x/versions/1"):
        response = server.session.get(f"{server.url}{path}", timeout=10)
        assert response.status_code == 404, path
        assert response.json()["error"]
    response = server.session.get(f"{server.url}/v2/models/{MODEL_NAME}/versions/7", timeout=10)
    assert response.status_code == 404 and "only version 1" in response.json()["error"]


@pytest.mark.usefixtures("still_serving")
def test_wrong_method_is_405(server: Server) -> None:
    response = server.session.get(server.infer_url(), timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "use POST" in response.json()["error"]
    response = server.session.post(f"{server.url}/v2/health/ready", data=b"{}", timeout=10)
    assert (response.status_code, response.headers["allow"]) == (405, "GET")


@pytest.mark.usefixtures("still_serving")
def test_oversized_bodies_are_413(server: Server) -> None:
    # a whole oversized body with Content-Length
    response = server.session.post(server.infer_url(), data=b" " * (TEST_MAX_BODY_BYTES + 1), timeout=30)
    assert response.status_code == 413
    assert f"the limit is {TEST_MAX_BODY_BYTES} bytes" in response.json()["error"]

    # a chunked body (no Content-Length) that grows past the limit while it is read
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b" " * (TEST_MAX_BODY_BYTES // 4)

    response = server.session.post(server.infer_url(), data=chunks(), timeout=30)
    assert response.status_code == 413
    assert "the body reached" in response.json()["error"]

    # refused from the header alone: the body is never sent
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("POST", f"/v2/models/{MODEL_NAME}/infer")
        connection.putheader("Content-Length", str(10 * 1024 * 1024 * 1024))
        connection.endheaders()
        raw = connection.getresponse()
        assert raw.status == 413
        assert "Content-Length is 10737418240 bytes" in json.loads(raw.read())["error"]
    finally:
        connection.close()


@pytest.mark.usefixtures("still_serving")
def test_genuine_bug_is_500_with_a_generic_message(
    server: Server, rows: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="kubeforge.serving"):
        status, body = _post(server, v2_request(rows), name=FLAKY_NAME)
    assert status == 500
    assert body == {"error": "internal server error; the server log has the traceback"}
    assert "simulated bug" not in json.dumps(body)
    logged = [record for record in caplog.records if record.exc_info]
    assert logged and "simulated bug in the network" in str(logged[0].exc_info[1])  # type: ignore[index]


def test_concurrent_requests_get_their_own_answers(server: Server, trained: TrainedModel) -> None:
    features = trained.features
    slices = [features.iloc[start : start + 7] for start in range(0, 70, 7)]

    def infer(part: pd.DataFrame) -> list[Any]:
        status, body = _post(server, v2_request(part))
        assert status == 200, body
        return list(_outputs(body)["predictions"]["data"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(infer, slices))
    for part, labels in zip(slices, results, strict=True):
        assert labels == server.model.predict_frame(part).labels
