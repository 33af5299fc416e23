"""The outputs of an Open Inference Protocol v2 infer response, for every transport.

`predictions` (and `probabilities` for classification) as typed arrays; the JSON response with
binary outputs (the binary tensor data extension) where the request asked for them.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from kubeforge.model_format import LoadedModel, Prediction
from kubeforge.serving.binary import OutputTensor, encode_tensor, json_values

MODEL_VERSION = "1"
_LABEL_DTYPES: dict[str, type] = {"INT64": np.int64, "FP64": np.float64, "BYTES": object}


def output_tensors(model: LoadedModel, prediction: Prediction, outputs: list[str] | None = None) -> list[OutputTensor]:
    """The v2 outputs: `predictions` and, for classification, `probabilities` (only those in `outputs` if given)."""
    rows = len(prediction.labels)
    if model.task == "regression":
        assert prediction.values is not None
        tensors = [OutputTensor("predictions", "FP32", [rows], prediction.values.astype(np.float32, copy=False))]
    else:
        assert prediction.probabilities is not None
        datatype = label_datatype(model.classes or [])
        labels: np.ndarray = np.asarray(prediction.labels, dtype=_LABEL_DTYPES[datatype])
        probabilities = prediction.probabilities.astype(np.float32, copy=False)
        tensors = [
            OutputTensor("predictions", datatype, [rows], labels),
            OutputTensor("probabilities", "FP32", [rows, probabilities.shape[1]], probabilities),
        ]
    if outputs is not None:
        tensors = [tensor for tensor in tensors if tensor.name in outputs]
    return tensors


def build_infer_response(
    model: LoadedModel,
    prediction: Prediction,
    request_id: str | None,
    outputs: list[str] | None = None,
    binary_outputs: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], list[bytes]]:
    """The v2 infer response as JSON, and the binary data of the outputs named in `binary_outputs`, in order.

    A binary output carries `parameters.binary_data_size` in place of `data`; its bytes follow the JSON.
    """
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for tensor in output_tensors(model, prediction, outputs):
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": tensor.shape}
        if tensor.name in binary_outputs:
            blobs.append(encode_tensor(tensor))
            entry["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            entry["data"] = json_values(tensor)
        described.append(entry)
    response = {
        "model_name": model.name,
        "model_version": MODEL_VERSION,
        "id": request_id if request_id is not None else str(uuid.uuid4()),
        "outputs": described,
    }
    return response, blobs


def label_datatype(classes: list[Any]) -> str:
    """INT64 for integer class labels, FP64 for other numbers, BYTES otherwise."""
    if classes and all(type(c) is int for c in classes):
        return "INT64"
    if classes and all(type(c) in (int, float) for c in classes):
        return "FP64"
    return "BYTES"


__all__ = ["MODEL_VERSION", "build_infer_response", "label_datatype", "output_tensors"]
