"""Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`), beside the REST server.

The gRPC service is another front door to the same ModelServer: it shares the models, the
batchers, the metrics (contract `grpc`), the limits and the shutdown. Requests carry tensors
either as `raw_input_contents` (what tritonclient sends) or as typed `contents`; the answer uses
the same form (`raw_output_contents` for raw requests). Errors map to gRPC status codes:
bad input INVALID_ARGUMENT, unknown model NOT_FOUND, overload or warm-up UNAVAILABLE, a message
over the size limit RESOURCE_EXHAUSTED, an unknown method or a compression UNIMPLEMENTED, a
`grpc-timeout` passed DEADLINE_EXCEEDED, a bug INTERNAL with a generic message.

The transport is kubeforge's own HTTP/2 (h2c, prior knowledge; see h2c.py) rather than grpcio's
server: gRPC over HTTP/2 for unary calls is headers, one length-prefixed message and trailers, and
grpcio's machinery cost more per call than the model's work.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError, Message

import kubeforge
from kubeforge.errors import InputError, ServingError
from kubeforge.model_format import LoadedModel
from kubeforge.serving.app import RETRY_AFTER_S, ModelServer, parse_cost
from kubeforge.serving.asgi import HTTPError
from kubeforge.serving.batching import Overloaded
from kubeforge.serving.binary import OutputTensor, decode_tensor, encode_tensor
from kubeforge.serving.h2_frames import Reply, Request, header_block
from kubeforge.serving.h2c import H2Server
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


class Code(IntEnum):
    """The gRPC status codes this server answers."""

    OK = 0
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14


_STATUS_CODES = {
    400: Code.INVALID_ARGUMENT,
    404: Code.NOT_FOUND,
    413: Code.RESOURCE_EXHAUSTED,
    415: Code.INVALID_ARGUMENT,
    503: Code.UNAVAILABLE,
}
_CONTENTS_FIELDS = {
    "FP32": ("fp32_contents", np.float64),
    "FP64": ("fp64_contents", np.float64),
    "INT32": ("int_contents", np.int64),
    "INT64": ("int64_contents", np.int64),
    "BOOL": ("bool_contents", object),
}
_GRPC_HEAD = b"\x88" + header_block([(b"content-type", b"application/grpc")])  # \x88: ":status: 200", indexed
_OK_TRAILERS = header_block([(b"grpc-status", b"0")])
_TIMEOUT = re.compile(rb"(\d{1,8})([HMSmun])")
_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_MAX_STATUS_MESSAGE = 1024  # bytes of grpc-message, before percent-encoding


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

    async def server_live(self, request: pb.ServerLiveRequest) -> Message:
        """Live while the process answers."""
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: pb.ServerReadyRequest) -> Message:
        """Ready once every model is warm, until shutdown starts."""
        return pb.ServerReadyResponse(ready=self.app.ready)

    async def model_ready(self, request: pb.ModelReadyRequest) -> Message:
        """Whether one model is warm."""
        return pb.ModelReadyResponse(ready=self.app.model_ready(self._model(request.name, request.version)))

    async def server_metadata(self, request: pb.ServerMetadataRequest) -> Message:
        """Name, version and extensions, as on REST."""
        return pb.ServerMetadataResponse(name="kubeforge", version=kubeforge.__version__, extensions=list(EXTENSIONS))

    async def model_metadata(self, request: pb.ModelMetadataRequest) -> Message:
        """The model's inputs (one per raw feature column) and outputs, as on REST."""
        return pb.ModelMetadataResponse(**model_metadata(self._model(request.name, request.version)))

    async def model_infer(self, request: pb.ModelInferRequest) -> Message:
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


def _failure(exc: Exception) -> tuple[int, Code, str]:
    """The HTTP status (for the metrics), gRPC status code and message answering `exc`."""
    if isinstance(exc, HTTPError):
        return exc.status, _STATUS_CODES.get(exc.status, Code.INTERNAL), exc.message
    if isinstance(exc, InputError):
        return 400, Code.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, Overloaded):
        return 503, Code.UNAVAILABLE, f"{exc} (about {RETRY_AFTER_S} s)"
    return 500, Code.INTERNAL, "internal server error; the server log has the traceback"


class CallError(Exception):
    """A call answered with a non-OK gRPC status before its handler ran."""

    def __init__(self, code: Code, message: str):
        super().__init__(message)
        self.code = code


def status_reply(code: Code, message: str) -> Reply:
    """A trailers-only answer: HTTP 200 with `grpc-status` and the percent-encoded `grpc-message`."""
    encoded = "".join(
        chr(byte) if 0x20 <= byte <= 0x7E and byte != 0x25 else f"%{byte:02X}"
        for byte in message.encode()[:_MAX_STATUS_MESSAGE]
    )
    status = [(b"grpc-status", str(int(code)).encode()), (b"grpc-message", encoded.encode())]
    return Reply(_GRPC_HEAD + header_block(status))


Handler = Callable[[Any], Awaitable[Message]]


class GrpcApplication:
    """gRPC's unary calls over the HTTP/2 transport: method routing, message framing, timeouts, status."""

    def __init__(self, methods: dict[str, tuple[type[Message], Handler]], max_message_bytes: int):
        self.methods = {f"/{SERVICE}/{name}".encode(): method for name, method in methods.items()}
        self.max_message_bytes = max_message_bytes
        self.buffer_limit = 4 * (max_message_bytes + 5)

    def check(self, request: Request) -> Reply | None:
        """Refuse a message over the size limit as soon as its length prefix comes, and a second message."""
        declared = int.from_bytes(request.body[1:5], "big")
        if declared > self.max_message_bytes:
            return status_reply(
                Code.RESOURCE_EXHAUSTED,
                f"request message of {declared} bytes is over the server's limit of {self.max_message_bytes}",
            )
        if len(request.body) > declared + 5:
            return status_reply(Code.INTERNAL, "a unary call carries one message; more came")
        return None

    async def handle(self, request: Request) -> Reply:
        """The answer to one call: its response message and OK, or a status."""
        if request.headers[b":method"] != b"POST":
            return _http_refusal(b"405", "gRPC calls are POST requests")
        if not request.headers.get(b"content-type", b"").startswith(b"application/grpc"):
            return _http_refusal(b"415", "content-type: this port serves gRPC, application/grpc")
        try:
            request_type, handler = self._method(request.headers)
            message = request_type.FromString(_message(request.body))
            timeout = _timeout(request.headers.get(b"grpc-timeout"))
            if timeout is None:
                response = await handler(message)
            else:
                async with asyncio.timeout(timeout):
                    response = await handler(message)
        except CallError as error:
            return status_reply(error.code, str(error))
        except DecodeError:
            return status_reply(Code.INVALID_ARGUMENT, "the request message does not decode as its protobuf type")
        except TimeoutError:
            return status_reply(Code.DEADLINE_EXCEEDED, "grpc-timeout passed before the answer was ready")
        except Exception as exc:
            status, code, text = _failure(exc)
            if status == 500:
                _LOG.exception("unexpected error handling gRPC %s", request.headers[b":path"].decode(errors="replace"))
            return status_reply(code, text)
        payload = response.SerializeToString()
        return Reply(_GRPC_HEAD, b"\0" + len(payload).to_bytes(4, "big") + payload, _OK_TRAILERS)

    def _method(self, headers: dict[bytes, bytes]) -> tuple[type[Message], Handler]:
        if headers.get(b"grpc-encoding", b"identity") != b"identity":
            raise CallError(Code.UNIMPLEMENTED, "grpc-encoding: only identity (uncompressed messages) is supported")
        method = self.methods.get(headers[b":path"])
        if method is None:
            path = headers[b":path"].decode(errors="replace")
            raise CallError(Code.UNIMPLEMENTED, f"unknown method {path}; this server serves {SERVICE}")
        return method


def _http_refusal(status: bytes, text: str) -> Reply:
    """A plain HTTP answer to a request that is not a gRPC call (so no HTTP client reads it as a success)."""
    head = header_block([(b":status", status), (b"content-type", b"text/plain; charset=utf-8")])
    return Reply(head, text.encode() + b"\n")


def _message(body: bytearray) -> bytes:
    """The one message of a unary call's body (a 5-byte prefix: compressed flag, big-endian length)."""
    if len(body) < 5:
        raise CallError(Code.INTERNAL, "the call ended without a complete request message")
    if body[0] == 1:
        raise CallError(Code.INTERNAL, "compressed flag set without a grpc-encoding; send identity messages")
    if body[0] != 0:
        raise CallError(Code.INTERNAL, f"message flag {body[0]}: expected 0 (uncompressed)")
    if len(body) != int.from_bytes(body[1:5], "big") + 5:
        raise CallError(Code.INTERNAL, "the call ended without a complete request message")
    return bytes(memoryview(body)[5:])


def _timeout(value: bytes | None) -> float | None:
    """Seconds of a `grpc-timeout` header (e.g. 30S, 200m), None without one."""
    if value is None:
        return None
    match = _TIMEOUT.fullmatch(value)
    if match is None:
        raise CallError(Code.INVALID_ARGUMENT, "grpc-timeout: expected up to 8 digits and a unit of H M S m u n")
    return int(match[1]) * _TIMEOUT_UNITS[match[2]]


async def start_grpc_server(app: ModelServer, host: str, port: int, grace_s: float = 30.0) -> tuple[H2Server, int]:
    """Start `inference.GRPCInferenceService` for `app` on host:port (0: any free port); returns it and its port.

    Messages over the server's max_body_bytes are refused with RESOURCE_EXHAUSTED as soon as their
    length prefix arrives. When `app` shuts down, the server stops taking calls (GOAWAY) and finishes
    those in flight (up to `grace_s`).
    """
    service = InferenceService(app)
    methods: dict[str, tuple[type[Message], Handler]] = {
        "ServerLive": (pb.ServerLiveRequest, service.server_live),
        "ServerReady": (pb.ServerReadyRequest, service.server_ready),
        "ModelReady": (pb.ModelReadyRequest, service.model_ready),
        "ServerMetadata": (pb.ServerMetadataRequest, service.server_metadata),
        "ModelMetadata": (pb.ModelMetadataRequest, service.model_metadata),
        "ModelInfer": (pb.ModelInferRequest, service.model_infer),
    }
    server = H2Server(GrpcApplication(methods, app.options.max_body_bytes))
    try:
        bound = await server.start(host, port)
    except OSError as exc:
        raise ServingError(f"--grpc-port: cannot listen on {host}:{port} ({exc}); is the port in use?") from exc
    app.on_shutdown(lambda: server.stop(grace_s))
    return server, bound


__all__ = [
    "SERVICE",
    "Code",
    "GrpcApplication",
    "InferenceService",
    "build_grpc_response",
    "parse_grpc_request",
    "start_grpc_server",
    "status_reply",
]
