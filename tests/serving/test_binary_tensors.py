"""The binary tensor data extension on REST, with hand-built bodies: layout, equivalence, and every malformed case."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pandas as pd
import pytest

from .conftest import CATEGORICAL, Server, TrainedModel, v2_request


@pytest.fixture
def rows(trained: TrainedModel) -> pd.DataFrame:
    return trained.features.head(6)


def _strings(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(item.encode())) + item.encode() for item in values)


def binary_request(rows: pd.DataFrame, outputs: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], bytes]:
    """The JSON header and binary data of a request sending every column as binary tensor data."""
    request = v2_request(rows)
    blobs = []
    for tensor in request["inputs"]:  # type: ignore[attr-defined]
        data = tensor.pop("data")
        blob = _strings(data) if tensor["datatype"] == "BYTES" else np.asarray(data, dtype="<f8").tobytes()
        tensor["parameters"] = {"binary_data_size": len(blob)}
        blobs.append(blob)
    if outputs is not None:
        request["outputs"] = outputs
    return request, b"".join(blobs)


def _post(server: Server, header: dict[str, Any], data: bytes, length: int | None = None) -> Any:
    head = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(head) if length is None else length)}
    return server.session.post(server.infer_url(), data=head + data, headers=headers, timeout=30)


def _split(response: Any) -> tuple[dict[str, Any], bytes]:
    length = int(response.headers["Inference-Header-Content-Length"])
    return json.loads(response.content[:length]), response.content[length:]


def test_binary_inputs_and_outputs_match_json(server: Server, rows: pd.DataFrame) -> None:
    plain = server.session.post(server.infer_url(), data=json.dumps(v2_request(rows)), timeout=30).json()
    expected = {tensor["name"]: tensor for tensor in plain["outputs"]}

    header, data = binary_request(rows)  # binary in, JSON out
    response = _post(server, header, data)
    assert response.status_code == 200, response.text
    assert "Inference-Header-Content-Length" not in response.headers
    assert {t["name"]: t for t in response.json()["outputs"]} == expected

    header, data = binary_request(rows, [{"name": "probabilities", "parameters": {"binary_data": True}}])
    response = _post(server, header, data)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    meta, blob = _split(response)
    size = len(rows) * 2 * 4
    assert meta["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [len(rows), 2], "parameters": {"binary_data_size": size}}
    ]
    assert blob == np.asarray(expected["probabilities"]["data"], dtype="<f4").tobytes()

    header, data = binary_request(rows)
    header["parameters"] = {"binary_data_output": True}
    header["outputs"] = [{"name": "predictions"}, {"name": "probabilities", "parameters": {"binary_data": False}}]
    meta, blob = _split(_post(server, header, data))
    labels = expected["predictions"]["data"]
    assert meta["outputs"][0]["parameters"] == {"binary_data_size": len(_strings(labels))}
    assert blob == _strings(labels)
    assert meta["outputs"][1]["data"] == expected["probabilities"]["data"]


def test_json_and_binary_inputs_mix(server: Server, rows: pd.DataFrame) -> None:
    header, _ = binary_request(rows)
    header["inputs"][0] = v2_request(rows)["inputs"][0]  # type: ignore[index]
    data = b"".join(
        _strings(rows[t["name"]].tolist()) if t["datatype"] == "BYTES" else rows[t["name"]].to_numpy("<f8").tobytes()
        for t in header["inputs"][1:]
    )
    response = _post(server, header, data)
    assert response.status_code == 200, response.text


def _edit(rows: pd.DataFrame, case: str) -> tuple[dict[str, Any], bytes, int | None]:
    header, data = binary_request(rows)
    categorical = [t["name"] for t in header["inputs"]].index(CATEGORICAL)
    length: int | None = None
    if case == "size_past_end":
        header["inputs"][-1]["parameters"]["binary_data_size"] += 8
    elif case == "bytes_left_over":
        data += b"\0" * 8
    elif case == "size_not_int":
        header["inputs"][0]["parameters"]["binary_data_size"] = "48"
    elif case == "fp64_size_wrong":
        header["inputs"][0]["parameters"]["binary_data_size"] -= 8
        header["inputs"][1]["parameters"]["binary_data_size"] += 8
    elif case == "both_data_and_binary":
        header["inputs"][0]["data"] = [1.0] * len(rows)
    elif case == "header_length_too_big":
        length = 10**9
    elif case == "header_length_not_a_number":
        length = -5
    elif case == "bad_utf8":
        start = sum(t["parameters"]["binary_data_size"] for t in header["inputs"][:categorical])
        data = data[: start + 4] + b"\xff" + data[start + 5 :]
    elif case == "bytes_count_wrong":
        header["inputs"][categorical]["shape"] = [len(rows) + 1]
    return header, data, length


@pytest.mark.usefixtures("still_serving")
@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("size_past_end", "reaches past the end of the body"),
        ("bytes_left_over", "8 byte(s) of binary data after the last input"),
        ("size_not_int", "binary_data_size must be a non-negative integer"),
        ("fp64_size_wrong", "FP64 needs 8 bytes per value"),
        ("both_data_and_binary", "has both data and parameters.binary_data_size"),
        ("header_length_too_big", "Inference-Header-Content-Length: 1000000000 is not within"),
        ("header_length_not_a_number", "is not a byte count"),
        ("bad_utf8", "is not valid UTF-8"),
        ("bytes_count_wrong", "the binary data holds 6"),
    ],
)
def test_malformed_binary_requests_are_400(server: Server, rows: pd.DataFrame, case: str, fragment: str) -> None:
    header, data, length = _edit(rows, case)
    response = _post(server, header, data, length)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


@pytest.mark.usefixtures("still_serving")
def test_binary_size_without_the_header_is_400(server: Server, rows: pd.DataFrame) -> None:
    header, data = binary_request(rows)
    response = server.session.post(server.infer_url(), data=json.dumps(header).encode() + data, timeout=30)
    assert response.status_code == 400  # the body is then JSON with trailing bytes
    response = server.session.post(server.infer_url(), data=json.dumps(header).encode(), timeout=30)
    assert response.status_code == 400
    assert "no Inference-Header-Content-Length header" in response.json()["error"]
