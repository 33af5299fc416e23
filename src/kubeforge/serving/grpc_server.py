"""Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`), beside the REST server.

The gRPC service is another front door to the same ModelServer: it shares the models, the
batchers, the metrics (contract `grpc`), the limits and the shutdown. Requests carry tensors
either as `raw_input_contents` (what tritonclient sends) or as typed `contents`; the answer uses
the same form (`raw_output_contents` for raw requests). Errors map to gRPC status codes:
bad input INVALID_ARGUMENT, unknown model NOT_FOUND, overload or warm-up UNAVAILABLE, a message
over the size limit RESOURCE_EXHAUSTED (by gRPC itself), a bug INTERNAL with a generic message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import numpy as np
from google.protobuf.message import Message
from grpc import aio

import kubeforge
from kubeforge.errors import InputError, ServingError
from kubeforge.model_format import LoadedModel
from kubeforge.serving.app import RETRY_AFTER_S, ModelServer, parse_cost
from kubeforge.serving.asgi import HTTPError
from kubeforge.serving.batching import Overloaded
from kubeforge.serving.binary import OutputTensor, decode_tensor, encode_tensor
from kubeforge.serving.oip import grpc_predict_v2_pb2 as pb
from kubeforge.serving.outputs import output_tensors
from kubeforge.serving.protocol import (
    EXTENSIONS,
    MODEL_VERSION,
    ColumnSet,
    InferRequest,
    check_datatype,
    check_output_name,
    model_metadata,
    parse_shape,
)

SERVICE = "inference.GRPCInferenceService"
_LOG = logging.getLogger("kubeforge.serving")
_Request = TypeVar("_Request", bound=Message)
_Response = TypeVar("_Response", bound=Message)
_STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}
_CONTENTS_FIELDS = {
    "FP32": ("fp32_contents", np.float64),
    "FP64": ("fp64_contents", np.float64),
    "INT32": ("int_contents", np.int64),
    "INT64": ("int64_contents", np.int64),
    "BOOL": ("bool_contents", object),
}


def parse_grpc_request(request: pb.ModelInferRequest) -> InferRequest:
    """One array per input tensor of a ModelInferRequest, checked as the REST path checks JSON.

    Raw contents become arrays over the message's own bytes where the JSON path's type is the wire
    type (FP64, INT64): read-only views, no copy.
    """
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InputError(
            f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} inputs; send one per input, in order"
        )
    found = ColumnSet()
    for index, tensor in enumerate(request.inputs):
        name, shape = tensor.name, tensor.shape
        if not name:
            raise InputError(f"inputs[{index}].name: must be a non-empty string naming a feature column")
        datatype = check_datatype(tensor.datatype, f"inputs[{index}].datatype")
        # the common [N] read in place: copying the repeated field to a list costs more than the check
        rows = shape[0] if len(shape) == 1 and shape[0] > 0 else parse_shape(list(shape), f"inputs[{index}].shape")
        if raw:
            if tensor.HasField("contents"):
                raise InputError(
                    f"inputs[{index}].contents: set together with raw_input_contents; send the values one way"
                )
            values = decode_tensor(raw[index], datatype, rows, f"raw_input_contents[{index}]")
        else:
            values = _typed_contents(tensor.contents, datatype, rows, f"inputs[{index}].contents")
        found.add(index, name, values)
    columns, rows = found.finish()
    outputs = [check_output_name(output.name, f"outputs[{i}].name") for i, output in enumerate(request.outputs)]
    return InferRequest(request.id, columns, rows, outputs or None)


def _typed_contents(contents: pb.InferTensorContents, datatype: str, rows: int, path: str) -> np.ndarray:
    if datatype == "BYTES":
        try:
            values: Any = [item.decode() for item in contents.bytes_contents]
        except UnicodeDecodeError:
            raise InputError(f"{path}.bytes_contents: an element is not valid UTF-8 text") from None
        field, dtype = "bytes_contents", object
    else:
        field, dtype = _CONTENTS_FIELDS[datatype]
        values = getattr(contents, field)
    if len(values) != rows:
        raise InputError(f"{path}.{field}: the shape declares {rows} value(s) but {len(values)} came for {datatype}")
    return np.asarray(values, dtype=dtype)


def build_grpc_response(request: InferRequest, model: LoadedModel, tensors: list[OutputTensor], raw: bool) -> Any:
    """The ModelInferResponse: `raw_output_contents` when `raw`, typed contents otherwise."""
    response = pb.ModelInferResponse(model_name=model.name, model_version=MODEL_VERSION, id=request.id or "")
    for tensor in tensors:
        output = response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if raw:
            response.raw_output_contents.append(encode_tensor(tensor))
        elif tensor.datatype == "BYTES":
            output.contents.bytes_contents.extend(str(value).encode() for value in tensor.values)
        else:
            getattr(output.contents, _CONTENTS_FIELDS[tensor.datatype][0]).extend(tensor.values.ravel().tolist())
    return response


class InferenceService:
    """The handlers of `inference.GRPCInferenceService` over one ModelServer."""

    def __init__(self, app: ModelServer):
        self.app = app

    async def server_live(self, request: pb.ServerLiveRequest, context: aio.ServicerContext[Any, Any]) -> Any:
        """Live while the process answers."""
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: pb.ServerReadyRequest, context: aio.ServicerContext[Any, Any]) -> Any:
        """Ready once every model is warm, until shutdown starts."""
        return pb.ServerReadyResponse(ready=self.app.ready)

    async def model_ready(self, request: pb.ModelReadyRequest, context: aio.ServicerContext[Any, Any]) -> Any:
        """Whether one model is warm."""
        return pb.ModelReadyResponse(ready=self.app.model_ready(self._model(request.name, request.version)))

    async def server_metadata(self, request: pb.ServerMetadataRequest, context: aio.ServicerContext[Any, Any]) -> Any:
        """Name, version and extensions, as on REST."""
        return pb.ServerMetadataResponse(name="kubeforge", version=kubeforge.__version__, extensions=list(EXTENSIONS))

    async def model_metadata(self, request: pb.ModelMetadataRequest, context: aio.ServicerContext[Any, Any]) -> Any:
        """The model's inputs (one per raw feature column) and outputs, as on REST."""
        return pb.ModelMetadataResponse(**model_metadata(self._model(request.name, request.version)))

    async def model_infer(self, request: pb.ModelInferRequest, context: aio.ServicerContext[Any, Any]) -> Any:
        """Predict through the model's batcher, like a REST infer request."""
        started = time.perf_counter()
        model = self._model(request.model_name, request.model_version)
        try:
            raw_bytes = sum(map(len, request.raw_input_contents))
            size = parse_cost(request.ByteSize(), raw_bytes)
            parsed, prediction = await self.app.infer(model, size, lambda: parse_grpc_request(request))
            tensors = output_tensors(model, prediction, parsed.outputs)
            response = build_grpc_response(parsed, model, tensors, raw=bool(request.raw_input_contents))
        except Exception as exc:
            self.app.metrics.observe_request(model.name, "grpc", _failure(exc)[0], time.perf_counter() - started)
            raise
        self.app.metrics.observe_request(model.name, "grpc", 200, time.perf_counter() - started)
        return response

    def _model(self, name: str, version: str) -> LoadedModel:
        model = self.app.model(name)
        if version not in ("", MODEL_VERSION):
            raise HTTPError(404, f"model '{name}' has only version {MODEL_VERSION}; got version {version!r}")
        return model


def _failure(exc: Exception) -> tuple[int, grpc.StatusCode, str]:
    """The HTTP status (for the metrics), gRPC status code and message answering `exc`."""
    if isinstance(exc, HTTPError):
        return exc.status, _STATUS_CODES.get(exc.status, grpc.StatusCode.INTERNAL), exc.message
    if isinstance(exc, InputError):
        return 400, grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, Overloaded):
        return 503, grpc.StatusCode.UNAVAILABLE, f"{exc} (about {RETRY_AFTER_S} s)"
    return 500, grpc.StatusCode.INTERNAL, "internal server error; the server log has the traceback"


def _answer(
    handler: Callable[[_Request, aio.ServicerContext[Any, Any]], Awaitable[_Response]],
) -> Callable[[_Request, aio.ServicerContext[Any, Any]], Awaitable[_Response]]:
    """`handler` with kubeforge's errors turned into gRPC status codes and short messages."""

    async def answered(request: _Request, context: aio.ServicerContext[Any, Any]) -> _Response:
        try:
            return await handler(request, context)
        except Exception as exc:
            status, code, message = _failure(exc)
            if status == 500:
                _LOG.exception("unexpected error handling gRPC %s", handler.__name__)
        await context.abort(code, message)
        raise AssertionError("unreachable: context.abort raises")

    return answered


def _method(
    handler: Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]], request: type[Message]
) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        _answer(handler),
        request_deserializer=request.FromString,
        response_serializer=lambda response: response.SerializeToString(),
    )


async def start_grpc_server(app: ModelServer, host: str, port: int, grace_s: float = 30.0) -> tuple[aio.Server, int]:
    """Start `inference.GRPCInferenceService` for `app` on host:port (0: any free port); returns it and its port.

    Messages over the server's max_body_bytes are refused by gRPC with RESOURCE_EXHAUSTED.
    When `app` shuts down, the gRPC server stops taking calls and finishes those in flight (up to `grace_s`).
    """
    service = InferenceService(app)
    handlers = {
        "ServerLive": _method(service.server_live, pb.ServerLiveRequest),
        "ServerReady": _method(service.server_ready, pb.ServerReadyRequest),
        "ModelReady": _method(service.model_ready, pb.ModelReadyRequest),
        "ServerMetadata": _method(service.server_metadata, pb.ServerMetadataRequest),
        "ModelMetadata": _method(service.model_metadata, pb.ModelMetadataRequest),
        "ModelInfer": _method(service.model_infer, pb.ModelInferRequest),
    }
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", app.options.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ]
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)  # matched in gRPC's core, not per call in Python
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise ServingError(f"--grpc-port: cannot listen on {host}:{port} ({exc}); is the port in use?") from exc
    await server.start()
    app.on_shutdown(lambda: server.stop(grace_s))
    return server, bound


__all__ = ["SERVICE", "InferenceService", "build_grpc_response", "parse_grpc_request", "start_grpc_server"]
