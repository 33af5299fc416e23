"""The model server's explain route: `POST /v2/models/{name}/explain`, an Open Inference Protocol extension.

The body takes rows the way the infer route does, either as v2 input tensors (one per raw feature
column) or as instances (objects keyed by feature, or value lists in feature order)::

    {"inputs": [{"name": "age", "shape": [2], "datatype": "FP64", "data": [31, 47]}, ...],
     "parameters": {"method": "integrated_gradients", "steps": 32}}
    {"instances": [{"age": 31, "city": "Oslo"}, [47, "Lima"]], "parameters": {"method": "permutation"}}

and answers, per row, the prediction and one attribution per RAW column (a one-hot group summed to
its column, see `kubeforge.explain`), plus the columns ranked by mean absolute attribution::

    {"model_name": "churn", "model_version": "1", "method": "integrated_gradients", "steps": 32,
     "columns": ["age", "city"], "importance": [{"column": "city", "mean_abs_attribution": 0.41}, ...],
     "explanations": [{"prediction": "yes", "attributions": {"age": 0.02, "city": 0.57}}, ...]}

The work is bounded: at most `MAX_EXPLAIN_ROWS` rows (413 otherwise) and `MAX_STEPS` integration steps
(400). It runs on its own single thread, never on the event loop nor in the infer thread pool, with
at most `MAX_WAITING` requests queued behind it (503 with Retry-After beyond), so explanations
never hold up inference.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kubeforge.errors import InputError
from kubeforge.explain import DEFAULT_STEPS, Explanation, attribute, check_method
from kubeforge.model_format import LoadedModel
from kubeforge.serving.asgi import HTTPError, Receive, Reply, Scope, decode_body, json_reply, read_body
from kubeforge.serving.batching import Overloaded
from kubeforge.serving.instances import instances_parameters, parse_instances
from kubeforge.serving.outputs import MODEL_VERSION
from kubeforge.serving.protocol import parse_infer_request, require_features

MAX_EXPLAIN_ROWS = 64
MAX_STEPS = 256
MAX_WAITING = 4
PARAMETERS = ("method", "steps")


@dataclass(frozen=True)
class ExplainRequest:
    """A parsed explain request: its id, the raw rows, the method and the integration steps."""

    id: str | None
    frame: pd.DataFrame
    method: str
    steps: int


def parse_explain_request(body: bytes, model: LoadedModel, max_rows: int = MAX_EXPLAIN_ROWS) -> ExplainRequest:
    """Validate an explain body for `model`; InputError (400) or HTTPError 413 naming the field."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InputError(
            f'request body: not valid JSON ({exc}); send {{"inputs": [...]}} or {{"instances": [...]}}'
        ) from None
    if not isinstance(payload, dict) or ("inputs" in payload) == ("instances" in payload):
        raise InputError('request body: send a JSON object with either "inputs" (v2 tensors) or "instances" (rows)')
    parameters = instances_parameters(payload)
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise InputError(f"parameters: unknown key(s) {', '.join(map(repr, unknown))}; explain takes method and steps")
    method = parameters.get("method", "auto")
    if not isinstance(method, str):
        raise InputError(f"parameters.method: must be a string, got {type(method).__name__}")
    steps = parameters.get("steps", DEFAULT_STEPS)
    if type(steps) is not int or not 1 <= steps <= MAX_STEPS:
        raise InputError(f"parameters.steps: {steps!r} is not a whole number from 1 to {MAX_STEPS}")
    if "inputs" in payload:
        request = parse_infer_request(body)
        require_features(request.columns, model)
        field, columns, rows, request_id = "inputs", request.columns, request.rows, request.id
    else:
        parsed = parse_instances(payload, model)
        field, columns, rows, request_id = "instances", parsed.columns, parsed.rows, None
    if rows > max_rows:
        raise HTTPError(413, f"{field}: {rows} rows exceed the explain limit of {max_rows}; send at most {max_rows}")
    method = check_method(method, "parameters.method")
    if method == "permutation" and rows < 2:
        raise InputError(
            f"{field}: permutation shuffles columns among rows; send at least 2 rows, or integrated_gradients"
        )
    features = [feature.name for feature in model.preprocessor.features]
    frame = pd.DataFrame({name: columns[name] for name in features})
    return ExplainRequest(request_id, frame, method, steps)


def explain_response(model: LoadedModel, request: ExplainRequest, explanation: Explanation) -> dict[str, Any]:
    """The JSON answer: per-row predictions and raw-column attributions, and the ranked columns."""
    response: dict[str, Any] = {"model_name": model.name, "model_version": MODEL_VERSION}
    if request.id is not None:
        response["id"] = request.id
    response["method"] = explanation.method
    if explanation.method == "integrated_gradients":
        response["steps"] = request.steps
    response["columns"] = explanation.columns
    response["importance"] = [
        {"column": name, "mean_abs_attribution": score} for name, score in explanation.importance.items()
    ]
    response["explanations"] = [
        {
            "prediction": _json_value(prediction),
            "attributions": dict(zip(explanation.columns, map(float, row), strict=True)),
        }
        for prediction, row in zip(explanation.predictions, explanation.row_attributions, strict=True)
    ]
    return response


class ExplainRoute:
    """Answers explain requests one at a time on a thread of its own, with a short bounded queue."""

    def __init__(self, max_rows: int = MAX_EXPLAIN_ROWS, max_waiting: int = MAX_WAITING):
        self.max_rows = max_rows
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubeforge-explain")
        self._admitted = 0

    async def reply(self, model: LoadedModel, scope: Scope, receive: Receive, max_body_bytes: int) -> Reply:
        """Read the request body (at most `max_body_bytes`, inflated) and answer it as JSON."""
        body = decode_body(scope, await read_body(scope, receive, max_body_bytes), max_body_bytes)
        return json_reply(await self.answer(model, body))

    async def answer(self, model: LoadedModel, body: bytes) -> dict[str, Any]:
        """Parse, explain and answer `body` off the event loop; Overloaded (503) when too many wait."""
        if self._admitted > self.max_waiting:
            raise Overloaded(model.name, self._admitted - 1)
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._explain, model, body)
        finally:
            self._admitted -= 1

    def _explain(self, model: LoadedModel, body: bytes) -> dict[str, Any]:
        request = parse_explain_request(body, model, self.max_rows)
        explanation = attribute(model, request.frame, method=request.method, steps=request.steps)
        return explain_response(model, request, explanation)

    def close(self) -> None:
        """Let the running explanation finish; drop the queued ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _json_value(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


__all__ = [
    "MAX_EXPLAIN_ROWS",
    "MAX_STEPS",
    "MAX_WAITING",
    "ExplainRequest",
    "ExplainRoute",
    "explain_response",
    "parse_explain_request",
]
