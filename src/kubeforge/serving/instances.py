"""The Vertex AI and SageMaker payloads: rows as `instances` (or CSV) in, `predictions` out.

An instance is either an object keyed by feature column or a list of values in the model's
feature order (the order of `GET /v2/models/{name}` inputs)::

    {"instances": [{"mean radius": 14.2, "size_band": "mid", ...}, [14.2, "mid", ...]]}

A classification prediction is `{"label": ..., "probabilities": [...]}` (probabilities in
the order of the model's classes), a regression prediction is a number. SageMaker also
accepts `text/csv`: one row per line, values in feature order, no header.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kubeforge.errors import InputError
from kubeforge.model_format import LoadedModel, Prediction
from kubeforge.preprocessor import CategoricalFeature

MAX_INSTANCES = 100_000
_NUMBER = (int, float)


@dataclass
class InstancesRequest:
    """Parsed instances: one array per feature column, the row count and the optional parameters."""

    columns: dict[str, np.ndarray]
    rows: int
    parameters: dict[str, Any]


def parse_json_payload(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body, naming what is wrong."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InputError(f'request body: not valid JSON ({exc}); send {{"instances": [...]}}') from exc
    if not isinstance(payload, dict):
        raise InputError(f'request body: expected a JSON object with "instances", got {type(payload).__name__}')
    return payload


def instances_parameters(payload: dict[str, Any]) -> dict[str, Any]:
    """The optional `parameters` object of an instances request."""
    parameters = payload.get("parameters", {})
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise InputError(f"parameters: must be a JSON object, got {type(parameters).__name__}")
    return parameters


def parse_instances(payload: dict[str, Any], model: LoadedModel) -> InstancesRequest:
    """Turn `{"instances": [...]}` into one array per feature column of `model`."""
    parameters = instances_parameters(payload)
    instances = payload.get("instances")
    if not isinstance(instances, list) or not instances:
        got = "missing" if instances is None else f"a {type(instances).__name__}" if instances else "empty"
        raise InputError(f"instances: must be a non-empty list of rows, got {got}; see GET /v2/models/{model.name}")
    if len(instances) > MAX_INSTANCES:
        raise InputError(f"instances: {len(instances)} rows exceed the limit of {MAX_INSTANCES}; split the request")
    features = model.preprocessor.features
    names = [feature.name for feature in features]
    values: list[list[Any]] = [[] for _ in features]
    for row_index, instance in enumerate(instances):
        row = _instance_values(instance, names, f"instances[{row_index}]")
        for column, value in zip(values, row, strict=True):
            column.append(value)
    columns = {
        feature.name: _column(column, isinstance(feature, CategoricalFeature), f"instances[*].{feature.name}")
        for feature, column in zip(features, values, strict=True)
    }
    return InstancesRequest(columns=columns, rows=len(instances), parameters=parameters)


def _instance_values(instance: Any, names: list[str], path: str) -> list[Any]:
    if isinstance(instance, dict):
        missing = [name for name in names if name not in instance]
        if missing:
            shown = ", ".join(repr(name) for name in missing[:10])
            raise InputError(f"{path}: missing feature(s) {shown}; every instance needs all {len(names)} features")
        return [instance[name] for name in names]
    if isinstance(instance, list):
        if len(instance) != len(names):
            raise InputError(
                f"{path}: has {len(instance)} value(s) but the model has {len(names)} features; "
                "send the values in the order of GET /v2/models/{name} inputs, or an object keyed by feature"
            )
        return instance
    raise InputError(f"{path}: must be an object keyed by feature or a list of values, got {type(instance).__name__}")


def _column(values: list[Any], categorical: bool, path: str) -> np.ndarray:
    if categorical:
        for index, value in enumerate(values):
            if value is not None and type(value) not in (str, int, float):
                raise InputError(f"{path}: row {index} holds {value!r}; a categorical feature takes a string")
        return np.array(values, dtype=object)
    for index, value in enumerate(values):
        if value is not None and type(value) not in _NUMBER:
            raise InputError(f"{path}: row {index} holds {value!r}; a numeric feature takes a number or null")
    try:
        return np.array([math.nan if value is None else value for value in values], dtype=np.float64)
    except OverflowError as exc:
        raise InputError(f"{path}: a value is out of range for a 64-bit float ({exc})") from exc


def parse_csv(body: bytes, model: LoadedModel) -> InstancesRequest:
    """Turn `text/csv` rows (values in feature order, no header) into one array per feature column."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"request body: CSV must be UTF-8 ({exc})") from exc
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise InputError(
            f"request body: not readable as CSV ({exc}); send one row per line, values in feature order"
        ) from exc
    if not rows:
        raise InputError("request body: the CSV holds no rows; send one row per line, values in feature order")
    if len(rows) > MAX_INSTANCES:
        raise InputError(f"request body: {len(rows)} CSV rows exceed the limit of {MAX_INSTANCES}; split the request")
    features = model.preprocessor.features
    columns: dict[str, np.ndarray] = {}
    for position, feature in enumerate(features):
        cells = []
        for line, row in enumerate(rows, start=1):
            if len(row) != len(features):
                raise InputError(
                    f"CSV line {line}: has {len(row)} value(s) but the model has {len(features)} features, "
                    "in the order of GET /v2/models/{name} inputs"
                )
            cells.append(row[position].strip())
        if isinstance(feature, CategoricalFeature):
            columns[feature.name] = np.array([cell or None for cell in cells], dtype=object)
        else:
            columns[feature.name] = _csv_numbers(cells, feature.name)
    return InstancesRequest(columns=columns, rows=len(rows), parameters={})


def _csv_numbers(cells: list[str], name: str) -> np.ndarray:
    numbers = np.empty(len(cells), dtype=np.float64)
    for index, cell in enumerate(cells):
        try:
            numbers[index] = float(cell) if cell else math.nan
        except ValueError:
            raise InputError(f"CSV line {index + 1}: column '{name}' holds {cell!r}; it takes a number") from None
    return numbers


def predictions(model: LoadedModel, prediction: Prediction) -> list[Any]:
    """One prediction per row: a number (regression) or `{"label", "probabilities"}`."""
    if model.task == "regression":
        assert prediction.values is not None
        return [float(value) for value in prediction.values.tolist()]
    assert prediction.probabilities is not None
    probabilities = prediction.probabilities.astype(np.float32).tolist()
    return [{"label": label, "probabilities": row} for label, row in zip(prediction.labels, probabilities, strict=True)]


def predictions_csv(model: LoadedModel, prediction: Prediction) -> bytes:
    """One line per row: the predicted label or value."""
    values = predictions(model, prediction)
    lines = [str(value if model.task == "regression" else value["label"]) for value in values]
    return ("\n".join(lines) + "\n").encode()


__all__ = [
    "MAX_INSTANCES",
    "InstancesRequest",
    "instances_parameters",
    "parse_csv",
    "parse_instances",
    "parse_json_payload",
    "predictions",
    "predictions_csv",
]
