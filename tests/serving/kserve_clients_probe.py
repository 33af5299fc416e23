"""KServe's own clients (InferenceRESTClient, InferenceGRPCClient) against a running server.

Run with a Python that has the kserve package (it needs pandas<3, so it lives in its own virtualenv,
not beside kubeforge)::

    python kserve_clients_probe.py REST_URL GRPC_HOST:PORT MODEL ROWS.json

ROWS.json maps request names to columns (`{"small": {"mean radius": [...], "size_band": [...]}}`).
Prints one JSON object: each call's outcome (`ok`, plus what came back) and, per request and
transport, the predictions and probabilities (float32 bit patterns as hex) the server answered.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx
import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

TEXT_COLUMNS = ("size_band",)


def _request(model: str, columns: dict[str, list[Any]], binary: bool, drop: str | None = None) -> InferRequest:
    inputs = []
    for name, values in columns.items():
        if name == drop:
            continue
        text = name in TEXT_COLUMNS
        array = np.array(values, dtype=object if text else np.float64)
        tensor = InferInput(name, [len(values)], "BYTES" if text else "FP64")
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    return InferRequest(model_name=model, infer_inputs=inputs, request_id="probe")


def _answer(response: Any) -> dict[str, Any]:
    outputs = {output.name: output.as_numpy() for output in response.outputs}
    labels = [v.decode() if isinstance(v, bytes) else v for v in outputs["predictions"].ravel().tolist()]
    probabilities = np.ascontiguousarray(outputs["probabilities"], dtype="<f4")
    return {"labels": labels, "probabilities": probabilities.tobytes().hex(), "shape": list(probabilities.shape)}


async def _call(results: dict[str, Any], name: str, call: Callable[[], Awaitable[Any]], expect: Any = None) -> Any:
    """Run one call and record its outcome; `expect` (when given) is the value it must return."""
    try:
        value = await call()
    except Exception as exc:  # recorded: the test names the call that failed and why
        results[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        return None
    results[name] = {"ok": expect is None or value == expect}
    if expect is not None and value != expect:
        results[name]["error"] = f"returned {value!r}"
    return value


async def _expect_error(results: dict[str, Any], name: str, call: Callable[[], Awaitable[Any]]) -> None:
    try:
        await call()
    except httpx.HTTPStatusError as exc:
        status, message = exc.response.status_code, str(exc)
        results[name] = {"ok": status in (400, 404), "status": status, "message": message[:300]}
    except grpc.aio.AioRpcError as exc:
        code = exc.code().name
        results[name] = {"ok": code in ("INVALID_ARGUMENT", "NOT_FOUND"), "status": code, "message": exc.details()}
    except Exception as exc:
        results[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    else:
        results[name] = {"ok": False, "error": "the server answered a bad request with success"}


async def probe(rest_url: str, grpc_address: str, model: str, requests: dict[str, dict[str, list[Any]]]) -> Any:
    """Every call, over REST (JSON and binary tensors) and gRPC."""
    calls: dict[str, Any] = {}
    predictions: dict[str, Any] = {}
    small = next(iter(requests.values()))
    rest = InferenceRESTClient(RESTConfig(protocol="v2", timeout=120))
    try:
        await _call(calls, "rest.live", lambda: rest.is_server_live(rest_url), expect=True)
        await _call(calls, "rest.ready", lambda: rest.is_server_ready(rest_url), expect=True)
        await _call(calls, "rest.model_ready", lambda: rest.is_model_ready(rest_url, model), expect=True)
        for request_name, columns in requests.items():
            for binary in (False, True):
                key = f"rest.infer.{'binary' if binary else 'json'}.{request_name}"
                body = _request(model, columns, binary)
                response = await _call(calls, key, lambda b=body: rest.infer(rest_url, b, model_name=model))
                if response is not None:
                    predictions[key] = _answer(response)
        await _expect_error(
            calls,
            "rest.error.unknown_model",
            lambda: rest.infer(rest_url, _request("nope", small, False), model_name="nope"),
        )
        missing = _request(model, small, True, drop=next(iter(small)))
        await _expect_error(calls, "rest.error.missing_input", lambda: rest.infer(rest_url, missing, model_name=model))
    finally:
        await rest.close()

    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    client = InferenceGRPCClient(grpc_address, channel_args=options, timeout=120)
    try:
        await _call(calls, "grpc.live", client.is_server_live, expect=True)
        await _call(calls, "grpc.ready", client.is_server_ready, expect=True)
        await _call(calls, "grpc.model_ready", lambda: client.is_model_ready(model), expect=True)
        stub = client._client_stub  # KServe's generated stub: the client itself has no metadata call
        metadata = await _call(
            calls, "grpc.model_metadata", lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name=model))
        )
        if metadata is not None:
            calls["grpc.model_metadata"]["inputs"] = [tensor.name for tensor in metadata.inputs]
        server = await _call(calls, "grpc.server_metadata", lambda: stub.ServerMetadata(pb.ServerMetadataRequest()))
        if server is not None:
            calls["grpc.server_metadata"]["extensions"] = list(server.extensions)
        for request_name, columns in requests.items():
            key = f"grpc.infer.{request_name}"
            body = _request(model, columns, True)
            response = await _call(calls, key, lambda b=body: client.infer(b))
            if response is not None:
                predictions[key] = _answer(response)
        await _expect_error(calls, "grpc.error.unknown_model", lambda: client.infer(_request("nope", small, True)))
        missing = _request(model, small, True, drop=next(iter(small)))
        await _expect_error(calls, "grpc.error.missing_input", lambda: client.infer(missing))
    finally:
        await client.close()
    return {"calls": calls, "predictions": predictions}


def main(argv: list[str]) -> int:
    """Probe the server named on the command line; print the outcome as one JSON object."""
    rest_url, grpc_address, model, rows_path = argv
    with open(rows_path) as handle:
        requests = json.load(handle)
    print(json.dumps(asyncio.run(probe(rest_url, grpc_address, model, requests))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
