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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import kubeforge
from kubeforge.errors import InputError
from kubeforge.model_format import LoadedModel
from kubeforge.preprocessor import CategoricalFeature
from kubeforge.serving.binary import decode_tensor
from kubeforge.serving.outputs import MODEL_VERSION, label_datatype

DATATYPES = ("FP32", "FP64", "INT32", "INT64", "BYTES", "BOOL")
PLATFORM = "pytorch_torchscript"
OUTPUT_NAMES = ("predictions", "probabilities")
EXTENSIONS = ("binary_tensor_data", "explain")  # explain: POST /v2/models/{name}/explain (REST)
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
    """A parsed infer request: its id, one array of raw values per input, the row count, the requested outputs.

    `binary_outputs` names the outputs to answer as binary tensor data (REST's binary extension).
    """

    id: str | None
    columns: dict[str, np.ndarray]
    rows: int
    outputs: list[str] | None = None
    binary_outputs: frozenset[str] = frozenset()


class ColumnSet:
    """Input tensors gathered one by one: each name once, every column with the same number of rows."""

    def __init__(self) -> None:
        self.columns: dict[str, np.ndarray] = {}
        self.rows: int | None = None

    def add(self, index: int, name: str, values: np.ndarray) -> None:
        """Add input `index` (its column of values), or raise an InputError naming the field."""
        if name in self.columns:
            raise InputError(f"inputs[{index}].name: duplicate input {name!r}; send each feature column once")
        if self.rows is not None and len(values) != self.rows:
            first = next(iter(self.columns))
            raise InputError(
                f"inputs[{index}].shape: {name!r} has {len(values)} row(s) but {first!r} has {self.rows}; "
                "every input needs the same number of rows"
            )
        self.rows = len(values)
        self.columns[name] = values

    def finish(self) -> tuple[dict[str, np.ndarray], int]:
        """The columns and their row count; an InputError when there is none."""
        if self.rows is None:
            raise InputError("inputs: is empty; send one input tensor per feature column")
        return self.columns, self.rows


class _BinaryData:
    """The bytes after the JSON header, handed out to inputs in order."""

    def __init__(self, data: memoryview | None):
        self.data = data
        self.offset = 0

    def take(self, size: Any, path: str) -> memoryview:
        if self.data is None:
            raise InputError(
                f"{path}: binary_data_size is set but the request has no Inference-Header-Content-Length header; "
                "send the header with the JSON part's length"
            )
        if type(size) is not int or size < 0:
            raise InputError(f"{path}: binary_data_size must be a non-negative integer, got {size!r}")
        if self.offset + size > len(self.data):
            raise InputError(
                f"{path}: binary_data_size {size} reaches past the end of the body "
                f"({len(self.data) - self.offset} binary bytes left)"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def check_consumed(self) -> None:
        if self.data is not None and self.offset != len(self.data):
            raise InputError(
                f"request body: {len(self.data) - self.offset} byte(s) of binary data after the last input's "
                "binary_data_size; Inference-Header-Content-Length or a binary_data_size is wrong"
            )


def parse_infer_request(body: bytes, json_length: int | None = None) -> InferRequest:
    """Parse and validate a v2 infer request body into one array per input tensor.

    With `json_length` (the Inference-Header-Content-Length header) the body is a JSON header of that
    many bytes followed by the binary tensor data of the inputs that carry `binary_data_size`.
    """
    binary: memoryview | None = None
    if json_length is not None:
        if not 0 < json_length <= len(body):
            raise InputError(
                f"Inference-Header-Content-Length: {json_length} is not within the body's {len(body)} bytes; "
                "send the length of the JSON part"
            )
        binary = memoryview(body)[json_length:]
        body = body[:json_length]
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"request body: not valid JSON ({exc}); send a v2 infer request object") from exc
    if not isinstance(payload, dict):
        raise InputError(f'request body: expected a JSON object with "inputs", got {type(payload).__name__}')
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InputError(f"id: must be a string, got {type(request_id).__name__}")
    parameters = _parameters(payload, "parameters")
    if "inputs" not in payload:
        raise InputError('inputs: missing; send one input tensor per feature column, e.g. {"inputs": [{"name": ...}]}')
    inputs = payload["inputs"]
    if not isinstance(inputs, list):
        raise InputError(f"inputs: must be a list of input tensors, got {type(inputs).__name__}")
    found = ColumnSet()
    data = _BinaryData(binary)
    for index, tensor in enumerate(inputs):
        name, values = _parse_tensor(tensor, f"inputs[{index}]", data)
        found.add(index, name, values)
    data.check_consumed()
    columns, rows = found.finish()
    outputs, binary_outputs = _requested_outputs(payload, _flag(parameters, "binary_data_output", "parameters"))
    return InferRequest(request_id, columns, rows, outputs, binary_outputs)


def _parameters(entry: dict[str, Any], path: str) -> dict[str, Any]:
    parameters = entry.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise InputError(f"{path}: must be a JSON object, got {type(parameters).__name__}")
    return parameters


def _flag(parameters: dict[str, Any], name: str, path: str) -> bool | None:
    value = parameters.get(name)
    if value is not None and not isinstance(value, bool):
        raise InputError(f"{path}.{name}: must be true or false, got {value!r}")
    return value


def _parse_tensor(tensor: Any, path: str, binary: _BinaryData) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, dict):
        raise InputError(f"{path}: must be an object with name, shape, datatype and data")
    size = _parameters(tensor, f"{path}.parameters").get("binary_data_size")
    try:
        name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
        data = tensor["data"] if size is None else None
    except KeyError as exc:
        raise InputError(f"{path}.{exc.args[0]}: missing; every input needs name, shape, datatype and data") from None
    if not isinstance(name, str) or not name:
        raise InputError(f"{path}.name: must be a non-empty string naming a feature column")
    check_datatype(datatype, f"{path}.datatype")
    rows = parse_shape(shape, f"{path}.shape")
    if size is not None:
        if "data" in tensor:
            raise InputError(f"{path}: has both data and parameters.binary_data_size; send the values one way")
        return name, decode_tensor(binary.take(size, f"{path}.parameters"), datatype, rows, f"{path}.binary data")
    if not isinstance(data, list):
        raise InputError(f"{path}.data: must be a list of values, got {type(data).__name__}")
    data = _flatten(data, shape, f"{path}.data")
    if len(data) != rows:
        raise InputError(f"{path}.shape: {shape} declares {rows} value(s) but data holds {len(data)}; make them agree")
    _check_types(data, datatype, f"{path}.data")
    return name, _to_array(data, datatype, f"{path}.data")


def check_output_name(name: Any, path: str) -> str:
    """`name` when it names an output of the served models, else an InputError naming `path`."""
    if name not in OUTPUT_NAMES:
        raise InputError(f"{path}: {name!r} is not an output; valid outputs are {', '.join(OUTPUT_NAMES)}")
    return str(name)


def check_datatype(datatype: Any, path: str) -> str:
    """`datatype` when the server takes it for an input, else an InputError naming `path`."""
    if not isinstance(datatype, str) or datatype not in _ALLOWED_TYPES:
        raise InputError(f"{path}: {datatype!r} is not supported; valid datatypes are {', '.join(DATATYPES)}")
    return datatype


def parse_shape(shape: Any, path: str) -> int:
    """The row count of a feature column's shape ([N] or [N, 1]), or an InputError naming `path`."""
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


def _requested_outputs(payload: dict[str, Any], binary_default: bool | None) -> tuple[list[str] | None, frozenset[str]]:
    """The requested output names (None: all) and those to answer as binary data."""
    requested = payload.get("outputs")
    if requested is None:
        return None, frozenset(OUTPUT_NAMES) if binary_default else frozenset()
    if not isinstance(requested, list):
        raise InputError(f"outputs: must be a list of {{'name': ...}} objects, got {type(requested).__name__}")
    names: list[str] = []
    binary: set[str] = set()
    for index, entry in enumerate(requested):
        path = f"outputs[{index}]"
        name = check_output_name(entry.get("name") if isinstance(entry, dict) else None, f"{path}.name")
        parameters = _parameters(entry, f"{path}.parameters")
        if parameters.get("class_count", 0) != 0:
            raise InputError(
                f"{path}.parameters.class_count: the classification extension is not served; "
                "drop class_count and read the probabilities output"
            )
        wanted = _flag(parameters, "binary_data", f"{path}.parameters")
        if wanted or (wanted is None and binary_default):
            binary.add(name)
        names.append(name)
    return names, frozenset(binary)


def require_features(columns: Mapping[str, np.ndarray], model: LoadedModel) -> None:
    """Raise an InputError for a feature column without an input tensor (categories are the preprocessor's check)."""
    missing = [f.name for f in model.preprocessor.features if f.name not in columns]
    if missing:
        raise InputError(
            f"inputs: no input tensor for feature column(s) {', '.join(repr(m) for m in missing)}; "
            f"model '{model.name}' needs one input per feature column (see GET /v2/models/{model.name})"
        )


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
    """The v2 server metadata: the binary tensor data and explain extensions are served (REST)."""
    return {"name": "kubeforge", "version": kubeforge.__version__, "extensions": list(EXTENSIONS)}


def example_frame(model: LoadedModel) -> pd.DataFrame:
    """One typical raw row (every feature at its imputation value), used to warm a model up."""
    return pd.DataFrame({f.name: [f.impute] for f in model.preprocessor.features})


__all__ = [
    "DATATYPES",
    "EXTENSIONS",
    "MODEL_VERSION",
    "OUTPUT_NAMES",
    "PLATFORM",
    "ColumnSet",
    "InferRequest",
    "check_datatype",
    "check_output_name",
    "check_model_name",
    "example_frame",
    "model_metadata",
    "parse_shape",
    "parse_infer_request",
    "require_features",
    "server_metadata",
]
