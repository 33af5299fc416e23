"""A small client for the model server's Open Inference Protocol v2 REST endpoints."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from typing import Any

import pandas as pd

from kubeforge.errors import ServingError


def frame_to_infer_request(frame: pd.DataFrame, request_id: str | None = None) -> dict[str, Any]:
    """Encode raw rows as a v2 infer request: one named input tensor per column."""
    inputs = []
    for column in frame.columns:
        values = frame[column]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        data = [None if _missing(v) else (float(v) if numeric else str(v)) for v in values.tolist()]
        inputs.append(
            {"name": str(column), "shape": [len(frame)], "datatype": "FP64" if numeric else "BYTES", "data": data}
        )
    request: dict[str, Any] = {"inputs": inputs}
    if request_id is not None:
        request["id"] = request_id
    return request


def infer(base_url: str, model_name: str, frame: pd.DataFrame, timeout_s: float = 30.0) -> dict[str, Any]:
    """POST raw rows to /v2/models/{name}/infer and return the decoded response.

    A 4xx/5xx answer raises ServingError carrying the server's own error message.
    """
    body = json.dumps(frame_to_infer_request(frame)).encode()
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/v2/models/{model_name}/infer",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise ServingError(f"{base_url}: HTTP {exc.code}: {detail}") from exc
    except urllib.error.URLError as exc:
        raise ServingError(f"{base_url}: cannot reach the model server ({exc.reason})") from exc


def output_by_name(response: dict[str, Any], name: str) -> list[Any]:
    """The data of one named output tensor of an infer response."""
    for output in response.get("outputs", []):
        if output.get("name") == name:
            return list(output["data"])
    raise ServingError(f"infer response has no output named {name!r}")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


__all__ = ["frame_to_infer_request", "infer", "output_by_name"]
