"""The Open Inference Protocol's reference client (tritonclient) against the server, over REST and gRPC.

JSON and binary tensors, sync and asyncio clients: metadata, infer, errors, large batches. Every
path must answer the very predictions of the plain JSON path, to the last bit.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcclient_aio
import tritonclient.http as httpclient
import tritonclient.http.aio as httpclient_aio
from tritonclient.utils import InferenceServerException

import kubeforge
from kubeforge.model_format import load_model
from kubeforge.serving.app import create_app

from .conftest import (
    CATEGORICAL,
    MODEL_NAME,
    TEST_MAX_BODY_BYTES,
    Server,
    TrainedModel,
    loopback_session,
    running_endpoints,
    v2_request,
)

Client = Any  # one of tritonclient's four clients


@pytest.fixture
def rows(trained: TrainedModel) -> pd.DataFrame:
    return trained.features.head(24)


@pytest.fixture(scope="module")
def big(trained: TrainedModel) -> Iterator[Server]:
    """A server with the default 8 MiB limit, for requests of thousands of rows."""
    model = load_model(trained.directory, name=MODEL_NAME)
    with running_endpoints(create_app({MODEL_NAME: model})) as endpoints, loopback_session() as session:
        yield Server(url=endpoints.url, model=model, session=session, grpc=endpoints.grpc)


def _inputs(module: Any, rows: pd.DataFrame, binary: bool) -> list[Any]:
    """One tritonclient input per column: FP64 numbers, BYTES text."""
    inputs = []
    for column in rows.columns:
        numeric = column != CATEGORICAL
        values = rows[column].to_numpy(dtype=np.float64 if numeric else object)
        tensor = module.InferInput(column, [len(rows)], "FP64" if numeric else "BYTES")
        if module in (httpclient, httpclient_aio):
            tensor.set_data_from_numpy(values, binary_data=binary)
        else:
            tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    return inputs


def _outputs(module: Any, binary: bool) -> list[Any]:
    if module in (httpclient, httpclient_aio):
        return [module.InferRequestedOutput(name, binary_data=binary) for name in ("predictions", "probabilities")]
    return [module.InferRequestedOutput(name) for name in ("predictions", "probabilities")]


def _json_path(server: Server, rows: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Labels and float32 probabilities from a plain JSON request, the reference for every other path."""
    response = server.session.post(server.infer_url(), data=json.dumps(v2_request(rows)), timeout=60)
    assert response.status_code == 200, response.text
    outputs = {tensor["name"]: tensor for tensor in response.json()["outputs"]}
    probabilities = np.asarray(outputs["probabilities"]["data"], dtype=np.float32).reshape(len(rows), -1)
    return outputs["predictions"]["data"], probabilities


def _assert_same(result: Any, expected: tuple[list[str], np.ndarray]) -> None:
    labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("predictions")]
    probabilities = result.as_numpy("probabilities")
    assert labels == expected[0]
    assert probabilities.dtype == np.float32 and probabilities.shape == expected[1].shape
    assert probabilities.tobytes() == expected[1].tobytes()  # to the last bit


def _http(server: Server, aio: bool = False) -> Client:
    module = httpclient_aio if aio else httpclient
    return module.InferenceServerClient(server.url.removeprefix("http://"))


def _grpc(server: Server, aio: bool = False) -> Client:
    module = grpcclient_aio if aio else grpcclient
    return module.InferenceServerClient(server.grpc)


def test_metadata_over_http_and_grpc(server: Server, trained: TrainedModel) -> None:
    for client, as_json in ((_http(server), {}), (_grpc(server), {"as_json": True})):
        try:
            assert client.is_server_live() and client.is_server_ready()
            assert client.is_model_ready(MODEL_NAME) and client.is_model_ready(MODEL_NAME, "1")
            meta = client.get_server_metadata(**as_json)
            assert (meta["name"], meta["version"]) == ("kubeforge", kubeforge.__version__)
            assert meta["extensions"] == ["binary_tensor_data", "explain"]
            model = client.get_model_metadata(MODEL_NAME, **as_json)
            assert (model["name"], model["versions"], model["platform"]) == (MODEL_NAME, ["1"], "pytorch_torchscript")
            inputs = {tensor["name"]: tensor for tensor in model["inputs"]}
            assert set(inputs) == set(trained.features.columns)
            assert inputs[CATEGORICAL]["datatype"] == "BYTES" and inputs["mean radius"]["datatype"] == "FP64"
            assert [(t["name"], t["datatype"]) for t in model["outputs"]] == [
                ("predictions", "BYTES"),
                ("probabilities", "FP32"),
            ]
            with pytest.raises(InferenceServerException, match="'nope' is not served here"):
                client.get_model_metadata("nope")
        finally:
            client.close()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_http_infer_sync_and_async_match_the_json_path(server: Server, rows: pd.DataFrame, binary: bool) -> None:
    expected = _json_path(server, rows)
    client = _http(server)
    try:
        result = client.infer(
            MODEL_NAME, _inputs(httpclient, rows, binary), outputs=_outputs(httpclient, binary), request_id="r1"
        )
        _assert_same(result, expected)
        assert result.get_response()["id"] == "r1"
        _assert_same(client.infer(MODEL_NAME, _inputs(httpclient, rows, binary)), expected)  # all outputs, binary
    finally:
        client.close()

    async def infer_async() -> Any:
        client = _http(server, aio=True)
        try:
            return await client.infer(
                MODEL_NAME, _inputs(httpclient_aio, rows, binary), outputs=_outputs(httpclient_aio, binary)
            )
        finally:
            await client.close()

    _assert_same(asyncio.run(infer_async()), expected)


def test_grpc_infer_sync_and_async_match_the_json_path(server: Server, rows: pd.DataFrame) -> None:
    expected = _json_path(server, rows)
    client = _grpc(server)
    try:
        result = client.infer(
            MODEL_NAME, _inputs(grpcclient, rows, True), outputs=_outputs(grpcclient, True), request_id="g1"
        )
        _assert_same(result, expected)
        assert result.get_response().id == "g1"
        only = client.infer(
            MODEL_NAME, _inputs(grpcclient, rows, True), outputs=[grpcclient.InferRequestedOutput("predictions")]
        )
        assert [output.name for output in only.get_response().outputs] == ["predictions"]
    finally:
        client.close()

    async def infer_async() -> Any:
        client = _grpc(server, aio=True)
        try:
            return await client.infer(MODEL_NAME, _inputs(grpcclient_aio, rows, True))
        finally:
            await client.close()

    _assert_same(asyncio.run(infer_async()), expected)


def test_gzip_compressed_http_request(server: Server, rows: pd.DataFrame) -> None:
    client = _http(server)
    try:
        result = client.infer(MODEL_NAME, _inputs(httpclient, rows, True), request_compression_algorithm="gzip")
    finally:
        client.close()
    _assert_same(result, _json_path(server, rows))
    bomb = gzip.compress(b" " * (TEST_MAX_BODY_BYTES * 4))
    response = server.session.post(server.infer_url(), data=bomb, headers={"Content-Encoding": "gzip"}, timeout=30)
    assert response.status_code == 413 and "inflated body" in response.json()["error"]


def test_large_batches_match_the_json_path(big: Server, trained: TrainedModel) -> None:
    rows = pd.concat([trained.features] * 30, ignore_index=True)  # ~4,000 rows
    expected = _json_path(big, rows)
    http, grpc = _http(big), _grpc(big)
    try:
        _assert_same(http.infer(MODEL_NAME, _inputs(httpclient, rows, True)), expected)
        _assert_same(
            http.infer(MODEL_NAME, _inputs(httpclient, rows, False), outputs=_outputs(httpclient, False)), expected
        )
        _assert_same(grpc.infer(MODEL_NAME, _inputs(grpcclient, rows, True)), expected)
    finally:
        http.close()
        grpc.close()


def _bad_inputs(module: Any, rows: pd.DataFrame, case: str) -> list[Any]:
    inputs = _inputs(module, rows, binary=True)
    binary = {"binary_data": True} if module is httpclient else {}
    if case == "bad_shape":
        inputs[0] = module.InferInput("mean radius", [len(rows), 2], "FP64")
        inputs[0].set_data_from_numpy(np.ones((len(rows), 2)), **binary)
    elif case == "wrong_datatype":
        inputs[0] = module.InferInput("mean radius", [len(rows)], "FP16")
        inputs[0].set_data_from_numpy(np.ones(len(rows), dtype=np.float16), **binary)
    elif case == "text_in_numeric_column":
        position = list(rows.columns).index("mean area")
        inputs[position] = module.InferInput("mean area", [len(rows)], "BYTES")
        inputs[position].set_data_from_numpy(np.asarray(["n/a"] * len(rows), dtype=object), **binary)
    elif case == "oversize":
        big = pd.concat([rows] * 200, ignore_index=True)
        inputs = _inputs(module, big, binary=True)
    return inputs


@pytest.mark.parametrize(
    ("case", "http_status", "grpc_code", "fragment"),
    [
        ("bad_shape", "400", "StatusCode.INVALID_ARGUMENT", "inputs[0].shape"),
        ("wrong_datatype", "400", "StatusCode.INVALID_ARGUMENT", "inputs[0].datatype: 'FP16' is not supported"),
        ("text_in_numeric_column", "400", "StatusCode.INVALID_ARGUMENT", "column 'mean area' is numeric"),
        ("oversize", "413", "StatusCode.RESOURCE_EXHAUSTED", ""),
    ],
)
def test_errors_reach_the_clients_with_their_status(
    server: Server, rows: pd.DataFrame, case: str, http_status: str, grpc_code: str, fragment: str
) -> None:
    http, grpc = _http(server), _grpc(server)
    try:
        with pytest.raises(InferenceServerException) as raised:
            http.infer(MODEL_NAME, _bad_inputs(httpclient, rows, case))
        assert raised.value.status() == http_status and fragment in raised.value.message()
        with pytest.raises(InferenceServerException) as raised:
            grpc.infer(MODEL_NAME, _bad_inputs(grpcclient, rows, case))
        assert raised.value.status() == grpc_code and fragment in raised.value.message()
        with pytest.raises(InferenceServerException) as raised:
            grpc.infer("nope", _inputs(grpcclient, rows, True))
        assert raised.value.status() == "StatusCode.NOT_FOUND"
        # the server keeps answering
        _assert_same(grpc.infer(MODEL_NAME, _inputs(grpcclient, rows, True)), _json_path(server, rows))
    finally:
        http.close()
        grpc.close()
