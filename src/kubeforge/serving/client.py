"""A small client for the model server's three contracts: Open Inference Protocol v2, Vertex AI, SageMaker.

- `infer(base_url, model_name, frame)`: POST /v2/models/{name}/infer (KServe, local servers);
- `predict_instances(predict_url, frame)`: `{"instances": [...]}` to a Vertex AI predict URL (the
  container's predict route, or an endpoint's `...:predict` with an `Authorization` header);
- `invoke_sagemaker(base_url, frame)`: POST /invocations as JSON or `text/csv`, as SageMaker calls
  the container (and as `sagemaker-runtime` InvokeEndpoint forwards the body).
Every helper takes raw feature rows as a DataFrame; a 4xx/5xx answer raises ServingError
carrying the server's own message.
"""

from __future__ import annotations

import csv
import io
import json
import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import pandas as pd

from kubeforge.errors import InputError, ServingError

SAGEMAKER_CONTENT_TYPES = ("application/json", "text/csv")


def frame_to_infer_request(frame: pd.DataFrame, request_id: str | None = None) -> dict[str, Any]:
    """Encode raw rows as a v2 infer request: one named input tensor per column."""
    inputs = []
    for column in frame.columns:
        values = frame[column]
        numeric = _numeric(values)
        data = [None if _missing(v) else (float(v) if numeric else str(v)) for v in values.tolist()]
        inputs.append(
            {"name": str(column), "shape": [len(frame)], "datatype": "FP64" if numeric else "BYTES", "data": data}
        )
    request: dict[str, Any] = {"inputs": inputs}
    if request_id is not None:
        request["id"] = request_id
    return request


def frame_to_instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Encode raw rows as Vertex AI / SageMaker instances: one object per row keyed by column, NaN as null."""
    columns = [(str(column), _numeric(frame[column]), frame[column].tolist()) for column in frame.columns]
    return [
        {
            name: None if _missing(values[row]) else (float(values[row]) if numeric else str(values[row]))
            for name, numeric, values in columns
        }
        for row in range(len(frame))
    ]


def infer(base_url: str, model_name: str, frame: pd.DataFrame, timeout_s: float = 30.0) -> dict[str, Any]:
    """POST raw rows to /v2/models/{name}/infer and return the decoded response."""
    url = f"{base_url.rstrip('/')}/v2/models/{model_name}/infer"
    body = json.dumps(frame_to_infer_request(frame)).encode()
    return dict(json.loads(_post(url, body, {"Content-Type": "application/json"}, timeout_s)))


def predict_instances(
    predict_url: str,
    frame: pd.DataFrame,
    parameters: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> list[Any]:
    """POST `{"instances": rows}` to a Vertex AI predict URL and return its `predictions`.

    For a Vertex AI endpoint pass `headers={"Authorization": f"Bearer {token}"}`.
    """
    payload: dict[str, Any] = {"instances": frame_to_instances(frame)}
    if parameters:
        payload["parameters"] = dict(parameters)
    body = json.dumps(payload).encode()
    answer = json.loads(_post(predict_url, body, {"Content-Type": "application/json", **(headers or {})}, timeout_s))
    return _predictions(answer, predict_url)


def invoke_sagemaker(
    base_url: str,
    frame: pd.DataFrame,
    content_type: str = "application/json",
    target_model: str | None = None,
    timeout_s: float = 30.0,
) -> list[Any]:
    """POST rows to `{base_url}/invocations` as JSON instances or CSV (columns in the model's feature order).

    JSON answers are the predictions (`{"label", "probabilities"}` or numbers); CSV answers one
    label or value per row, returned as strings. `target_model` picks one of several served models.
    """
    if content_type not in SAGEMAKER_CONTENT_TYPES:
        raise InputError(f"content_type: {content_type!r}; use one of {', '.join(SAGEMAKER_CONTENT_TYPES)}")
    headers = {"Content-Type": content_type, "Accept": content_type}
    if target_model:
        headers["X-Amzn-SageMaker-Target-Model"] = target_model
    url = f"{base_url.rstrip('/')}/invocations"
    if content_type == "text/csv":
        answer = _post(url, _csv_rows(frame), headers, timeout_s)
        return answer.decode().splitlines()
    body = json.dumps({"instances": frame_to_instances(frame)}).encode()
    return _predictions(json.loads(_post(url, body, headers, timeout_s)), url)


def output_by_name(response: dict[str, Any], name: str) -> list[Any]:
    """The data of one named output tensor of an infer response."""
    for output in response.get("outputs", []):
        if output.get("name") == name:
            return list(output["data"])
    raise ServingError(f"infer response has no output named {name!r}")


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> bytes:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise ServingError(f"{url}: HTTP {exc.code}: {detail}") from exc
    except urllib.error.URLError as exc:
        raise ServingError(f"{url}: cannot reach the model server ({exc.reason})") from exc


def _predictions(answer: Any, url: str) -> list[Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("predictions"), list):
        raise ServingError(f"{url}: the answer holds no predictions list: {str(answer)[:200]}")
    return list(answer["predictions"])


def _csv_rows(frame: pd.DataFrame) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for row in frame_to_instances(frame):
        writer.writerow(["" if value is None else value for value in row.values()])
    return text.getvalue().encode()


def _numeric(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


__all__ = [
    "SAGEMAKER_CONTENT_TYPES",
    "frame_to_infer_request",
    "frame_to_instances",
    "infer",
    "invoke_sagemaker",
    "output_by_name",
    "predict_instances",
]
