"""The Open Inference Protocol (KServe v2) REST payloads, as pure functions without HTTP.

Tabular requests carry one input tensor per raw feature column, the way KServe's pandas
codec sends a DataFrame::

    {"id": "42", "inputs": [{"name": "age", "shape": [2], "datatype": "FP64", "data": [31, 47]},
                            {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["Oslo", "Lima"]}]}

Every validation failure is an InputError whose message starts with the field path.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import kubeforge
from kubeforge.errors import InputError
from kubeforge.model_format import LoadedModel, Prediction
from kubeforge.preprocessor import CategoricalFeature

DATATYPES = ("FP32", "FP64", "INT32", "INT64", "BYTES", "BOOL")
PLATFORM = "pytorch_torchscript"
MODEL_VERSION = "1"
OUTPUT_NAMES = ("predictions", "probabilities")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

_NONE = type(None)
_ALLOWED_TYPES: dict[str, frozenset[type]] = {
    "FP32": frozenset({float, int, _NONE}),
    "FP64": frozenset({float, int, _NONE}),
    "INT32": frozenset({int, _NONE}),
    "INT64": frozenset({int, _NONE}),
    "BYTES": frozenset({str, _NONE}),
    "BOOL": frozenset({bool, _NONE}),
}
_EXPECTED_WORDS = {
    "FP32": "numbers",
    "FP64": "numbers",
    "INT32": "integers",
    "INT64": "integers",
    "BYTES": "strings",
    "BOOL": "true/false",
}


@dataclass
class InferRequest:
    """A parsed infer request: its id, one array of raw values per input, the row count, the requested outputs."""

    id: str | None
    columns: dict[str, np.ndarray]
    rows: int
    outputs: list[str] | None = None


def parse_infer_request(body: bytes) -> InferRequest:
    """Parse and validate a v2 infer request body into one array per input tensor."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"request body: not valid JSON ({exc}); send a v2 infer request object") from exc
    if not isinstance(payload, dict):
        raise InputError(f'request body: expected a JSON object with "inputs", got {type(payload).__name__}')
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InputError(f"id: must be a string, got {type(request_id).__name__}")
    parameters = payload.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InputError(f"parameters: must be a JSON object, got {type(parameters).__name__}")
    if "inputs" not in payload:
        raise InputError('inputs: missing; send one input tensor per feature column, e.g. {"inputs": [{"name": ...}]}')
    inputs = payload["inputs"]
    if not isinstance(inputs, list):
        raise InputError(f"inputs: must be a list of input tensors, got {type(inputs).__name__}")
    if not inputs:
        raise InputError("inputs: is empty; send one input tensor per feature column")
    columns: dict[str, np.ndarray] = {}
    rows: int | None = None
    for index, tensor in enumerate(inputs):
        name, values = _parse_tensor(tensor, f"inputs[{index}]")
        if name in columns:
            raise InputError(f"inputs[{index}].name: duplicate input {name!r}; send each feature column once")
        if rows is not None and len(values) != rows:
            first = next(iter(columns))
            raise InputError(
                f"inputs[{index}].shape: {name!r} has {len(values)} row(s) but {first!r} has {rows}; "
                "every input needs the same number of rows"
            )
        rows = len(values)
        columns[name] = values
    assert rows is not None
    return InferRequest(id=request_id, columns=columns, rows=rows, outputs=_requested_outputs(payload))


def _parse_tensor(tensor: Any, path: str) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, dict):
        raise InputError(f"{path}: must be an object with name, shape, datatype and data")
    try:
        name, shape, datatype, data = tensor["name"], tensor["shape"], tensor["datatype"], tensor["data"]
    except KeyError as exc:
        raise InputError(f"{path}.{exc.args[0]}: missing; every input needs name, shape, datatype and data") from None
    if not isinstance(name, str) or not name:
        raise InputError(f"{path}.name: must be a non-empty string naming a feature column")
    if not isinstance(datatype, str) or datatype not in _ALLOWED_TYPES:
        raise InputError(f"{path}.datatype: {datatype!r} is not supported; valid datatypes are {', '.join(DATATYPES)}")
    rows = _parse_shape(shape, f"{path}.shape")
    if not isinstance(data, list):
        raise InputError(f"{path}.data: must be a list of values, got {type(data).__name__}")
    data = _flatten(data, shape, f"{path}.data")
    if len(data) != rows:
        raise InputError(f"{path}.shape: {shape} declares {rows} value(s) but data holds {len(data)}; make them agree")
    _check_types(data, datatype, f"{path}.data")
    return name, _to_array(data, datatype, f"{path}.data")


def _parse_shape(shape: Any, path: str) -> int:
    if type(shape) is list and len(shape) == 1 and type(shape[0]) is int and shape[0] > 0:
        return shape[0]  # the common [N]
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(dim) is int and dim >= 0 for dim in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise InputError(f"{path}: {shape!r} is not supported; a feature column has shape [N] or [N, 1]")
    rows = int(shape[0])
    if rows == 0:
        raise InputError(f"{path}: {shape} has no rows; send at least one row")
    return rows


def _flatten(data: list[Any], shape: list[int], path: str) -> list[Any]:
    if len(shape) != 2 or not data or not isinstance(data[0], list):
        return data
    if not all(isinstance(row, list) and len(row) == 1 for row in data):
        raise InputError(f"{path}: nested data for shape {shape} must hold one single-value list per row")
    return [row[0] for row in data]


def _check_types(data: list[Any], datatype: str, path: str) -> None:
    allowed = _ALLOWED_TYPES[datatype]
    if set(map(type, data)) <= allowed:
        return
    position, value = next((i, v) for i, v in enumerate(data) if type(v) not in allowed)
    raise InputError(
        f"{path}: datatype {datatype} needs {_EXPECTED_WORDS[datatype]}, but position {position} holds "
        f"{type(value).__name__} {value!r}; fix the value or the datatype"
    )


def _to_array(data: list[Any], datatype: str, path: str) -> np.ndarray:
    try:
        if datatype in ("FP32", "FP64"):
            return np.asarray(data, dtype=np.float64)
        if datatype in ("INT32", "INT64") and None not in data:  # integers stay integers (e.g. coded categories)
            return np.asarray(data, dtype=np.int64)
    except OverflowError as exc:
        raise InputError(f"{path}: a value is out of range for {datatype} ({exc})") from exc
    return np.asarray(data, dtype=object)


def _requested_outputs(payload: dict[str, Any]) -> list[str] | None:
    requested = payload.get("outputs")
    if requested is None:
        return None
    if not isinstance(requested, list):
        raise InputError(f"outputs: must be a list of {{'name': ...}} objects, got {type(requested).__name__}")
    names: list[str] = []
    for index, entry in enumerate(requested):
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in OUTPUT_NAMES:
            raise InputError(
                f"outputs[{index}].name: {name!r} is not an output; valid outputs are predictions, probabilities"
            )
        names.append(name)
    return names


def require_features(columns: Mapping[str, np.ndarray], model: LoadedModel) -> None:
    """Raise an InputError for a feature column without an input tensor (categories are the preprocessor's check)."""
    missing = [f.name for f in model.preprocessor.features if f.name not in columns]
    if missing:
        raise InputError(
            f"inputs: no input tensor for feature column(s) {', '.join(repr(m) for m in missing)}; "
            f"model '{model.name}' needs one input per feature column (see GET /v2/models/{model.name})"
        )


def build_infer_response(
    model: LoadedModel, prediction: Prediction, request_id: str | None, outputs: list[str] | None = None
) -> dict[str, Any]:
    """The v2 infer response: `predictions` and, for classification, `probabilities`."""
    rows = len(prediction.labels)
    tensors: list[dict[str, Any]] = []
    if model.task == "regression":
        assert prediction.values is not None
        values = prediction.values.astype(np.float32, copy=False).tolist()
        tensors.append({"name": "predictions", "datatype": "FP32", "shape": [rows], "data": values})
    else:
        assert prediction.probabilities is not None
        datatype = label_datatype(model.classes or [])
        labels = [str(label) for label in prediction.labels] if datatype == "BYTES" else prediction.labels
        tensors.append({"name": "predictions", "datatype": datatype, "shape": [rows], "data": labels})
        probabilities = prediction.probabilities.astype(np.float32, copy=False)
        tensors.append(
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [rows, probabilities.shape[1]],
                "data": probabilities.ravel().tolist(),
            }
        )
    if outputs is not None:
        tensors = [tensor for tensor in tensors if tensor["name"] in outputs]
    return {
        "model_name": model.name,
        "model_version": MODEL_VERSION,
        "id": request_id if request_id is not None else str(uuid.uuid4()),
        "outputs": tensors,
    }


def label_datatype(classes: list[Any]) -> str:
    """INT64 for integer class labels, FP64 for other numbers, BYTES otherwise."""
    if classes and all(type(c) is int for c in classes):
        return "INT64"
    if classes and all(type(c) in (int, float) for c in classes):
        return "FP64"
    return "BYTES"


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    """The v2 model metadata: one input per raw feature column, and the outputs."""
    inputs = [
        {"name": f.name, "datatype": "BYTES" if isinstance(f, CategoricalFeature) else "FP64", "shape": [-1]}
        for f in model.preprocessor.features
    ]
    if model.task == "regression":
        outputs = [{"name": "predictions", "datatype": "FP32", "shape": [-1]}]
    else:
        classes = model.classes or []
        outputs = [
            {"name": "predictions", "datatype": label_datatype(classes), "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(classes)]},
        ]
    return {
        "name": model.name,
        "versions": [MODEL_VERSION],
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs,
    }


def check_model_name(name: str, field: str = "model_name") -> str:
    """Return `name` when it can appear in a URL path; otherwise raise an InputError naming `field`."""
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise InputError(
            f"{field}: {name!r} is not a valid model name; use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def server_metadata() -> dict[str, Any]:
    """The v2 server metadata."""
    return {"name": "kubeforge", "version": kubeforge.__version__, "extensions": []}


def example_frame(model: LoadedModel) -> pd.DataFrame:
    """One typical raw row (every feature at its imputation value), used to warm a model up."""
    return pd.DataFrame({f.name: [f.impute] for f in model.preprocessor.features})


__all__ = [
    "DATATYPES",
    "MODEL_VERSION",
    "OUTPUT_NAMES",
    "PLATFORM",
    "InferRequest",
    "build_infer_response",
    "check_model_name",
    "example_frame",
    "label_datatype",
    "model_metadata",
    "parse_infer_request",
    "require_features",
    "server_metadata",
]
