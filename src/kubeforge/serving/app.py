"""The kubeforge model server: one plain ASGI application speaking three contracts.

- Open Inference Protocol v2 REST under `/v2` (what KServe speaks), for every served model;
- Vertex AI custom containers: `POST` on the predict route and `GET` on the health route
  (`AIP_PREDICT_ROUTE`, `AIP_HEALTH_ROUTE`), `{"instances": [...]}` in, `{"predictions": [...]}` out;
- SageMaker: `GET /ping`, `POST /invocations` (JSON instances or `text/csv`).

Every request is parsed and preprocessed on its own (numpy, on the event loop; large bodies
in the thread pool), then waits for its model's next batch (see batching.py). `GET /metrics`
exposes Prometheus metrics. Run it with `kubeforge serve` or `python -m kubeforge.serving.server`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from kubeforge.errors import InputError, ServingError
from kubeforge.model_format import LoadedModel, Prediction
from kubeforge.serving.asgi import (
    BINARY_TYPE,
    Disconnected,
    HTTPError,
    Receive,
    Reply,
    Scope,
    Send,
    decode_body,
    error_reply,
    header,
    json_bytes,
    json_reply,
    read_body,
    require_method,
    send_reply,
)
from kubeforge.serving.batching import BatchingOptions, ModelBatcher, Overloaded
from kubeforge.serving.explain_route import ExplainRoute
from kubeforge.serving.instances import (
    instances_parameters,
    parse_csv,
    parse_instances,
    parse_json_payload,
    predictions,
    predictions_csv,
)
from kubeforge.serving.metrics import CONTENT_TYPE, ServerMetrics
from kubeforge.serving.outputs import build_infer_response
from kubeforge.serving.protocol import (
    MODEL_VERSION,
    InferRequest,
    check_model_name,
    example_frame,
    model_metadata,
    parse_infer_request,
    require_features,
    server_metadata,
)

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
INLINE_PARSE_BYTES = 64 * 1024
RAW_BYTES_PER_PARSE_BYTE = 16  # raw tensor bytes cost a small fraction of JSON's per byte to parse and preprocess
RETRY_AFTER_S = 1
SAGEMAKER_MODEL_HEADER = b"x-amzn-sagemaker-target-model"
INFERENCE_HEADER = b"inference-header-content-length"
_LOG = logging.getLogger("kubeforge.serving")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ServerOptions:
    """Limits, batching and the Vertex AI routes of a model server."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    batching: BatchingOptions = field(default_factory=BatchingOptions)
    vertex_predict_route: str = "/predict"
    vertex_health_route: str = "/health"
    max_workers: int | None = None

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise InputError(f"max_body_bytes: must be positive, got {self.max_body_bytes}")
        for name in ("vertex_predict_route", "vertex_health_route"):
            route = getattr(self, name)
            if not route.startswith("/") or route.startswith("/v2/") or route in ("/v2", "/ping", "/metrics"):
                raise InputError(f"{name}: {route!r} must start with '/' and not clash with /v2, /ping or /metrics")


class ModelServer:
    """The ASGI application serving a fixed set of loaded models, by name."""

    def __init__(self, models: Mapping[str, LoadedModel], options: ServerOptions | None = None):
        if not models:
            raise InputError("models: the server needs at least one model")
        for name in models:
            check_model_name(name, field="models")
        self.models = dict(models)
        self.options = options or ServerOptions()
        self.default_model = next(iter(self.models))
        self.metrics = ServerMetrics()
        workers = self.options.max_workers or min(4, os.cpu_count() or 1)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kubeforge-infer")
        self._batchers = {
            name: ModelBatcher(model, self.options.batching, self.metrics, self._executor)
            for name, model in self.models.items()
        }
        self._explain = ExplainRoute()
        self._ready: set[str] = set()
        self._stopping = False
        self._warmup: asyncio.Task[None] | None = None
        self._transports: list[Callable[[], Awaitable[None]]] = []
        self._draining: asyncio.Future[list[None]] | None = None

    @property
    def ready(self) -> bool:
        """True once every model has answered one warm-up prediction, until shutdown starts."""
        return len(self._ready) == len(self.models) and not self._stopping

    async def warm_up(self) -> None:
        """Run one dummy prediction per model (off the event loop), then mark it ready."""
        loop = asyncio.get_running_loop()
        for name, model in self.models.items():
            if name not in self._ready:
                try:
                    await loop.run_in_executor(self._executor, _warm_up_model, model)
                except Exception as exc:
                    raise ServingError(f"warm-up prediction of model '{name}' failed: {_last_line(exc)}") from exc
                self._ready.add(name)

    def on_shutdown(self, stop: Callable[[], Awaitable[None]]) -> None:
        """Have shutdown call `stop` (another transport, e.g. gRPC, finishing its calls) before the batchers close."""
        self._transports.append(stop)

    def begin_shutdown(self) -> None:
        """Stop being ready and start stopping the other transports; called from the event loop on SIGTERM."""
        self._stopping = True
        if self._draining is None:
            self._draining = asyncio.gather(*(stop() for stop in self._transports))

    async def shutdown(self) -> None:
        """Stop being ready, let the other transports finish, answer every request waiting for a batch, stop threads."""
        self.begin_shutdown()
        assert self._draining is not None
        await self._draining
        await asyncio.gather(*(batcher.close() for batcher in self._batchers.values()))
        self._executor.shutdown(wait=True, cancel_futures=False)
        self._explain.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point: lifespan events and HTTP requests."""
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.warm_up()
                except Exception as exc:
                    _LOG.exception("model server startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._warmup is None and not self._ready:  # hosted without lifespan: warm up in the background
            self._warmup = asyncio.get_running_loop().create_task(self.warm_up())
            self._warmup.add_done_callback(_log_warm_up_failure)
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        served: list[str] = []  # (model, contract) of an inference request, for the metrics
        try:
            reply = await self._route(method, path, scope, receive, served)
        except Disconnected:
            return
        except HTTPError as exc:
            reply = error_reply(exc.status, exc.message, exc.headers)
        except InputError as exc:
            reply = error_reply(400, str(exc))
        except Overloaded as exc:
            reply = error_reply(503, str(exc), [(b"retry-after", str(RETRY_AFTER_S).encode())])
        except Exception:
            _LOG.exception("unexpected error handling %s %s", method, path)
            reply = error_reply(500, "internal server error; the server log has the traceback")
        if served:
            self.metrics.observe_request(served[0], served[1], reply.status, time.perf_counter() - started)
        await send_reply(send, reply)

    async def _route(self, method: str, path: str, scope: Scope, receive: Receive, served: list[str]) -> Reply:
        if path == "/v2" or path.startswith("/v2/"):
            return await self._route_v2(method, path, scope, receive, served)
        if path == "/metrics":
            require_method(method, "GET", path)
            return Reply(200, self.metrics.render(), CONTENT_TYPE.encode())
        if path in ("/ping", self.options.vertex_health_route):
            require_method(method, "GET", path)
            return json_reply({"ready": self.ready}, 200 if self.ready else 503)
        if path == "/invocations":
            require_method(method, "POST", path)
            return await self._sagemaker(scope, receive, served)
        if path == self.options.vertex_predict_route:
            require_method(method, "POST", path)
            return await self._vertex(scope, receive, served)
        raise HTTPError(404, f"no route {path!r}; this server speaks Open Inference Protocol v2 under /v2")

    async def _route_v2(self, method: str, path: str, scope: Scope, receive: Receive, served: list[str]) -> Reply:
        rest = [part for part in path.split("/") if part][1:]
        if rest in ([], ["health", "live"], ["health", "ready"]):
            require_method(method, "GET", path)
            if not rest:
                return json_reply(server_metadata())
            if rest[1] == "live":
                return json_reply({"live": True})
            return json_reply({"ready": self.ready}, 200 if self.ready else 503)
        if len(rest) >= 2 and rest[0] == "models":
            model = self.model(rest[1])
            action = rest[2:]
            if action[:1] == ["versions"]:
                if action[1:2] != [MODEL_VERSION]:
                    raise HTTPError(404, f"model '{model.name}' has only version {MODEL_VERSION}; got {path!r}")
                action = action[2:]
            if not action:
                require_method(method, "GET", path)
                return json_reply(model_metadata(model))
            if action == ["ready"]:
                require_method(method, "GET", path)
                ready = model.name in self._ready
                return json_reply({"name": model.name, "ready": ready}, 200 if ready else 503)
            if action == ["infer"]:
                require_method(method, "POST", path)
                served[:] = [model.name, "v2"]
                return await self._infer_v2(model, scope, receive)
            if action == ["explain"]:  # the explain extension (explain_route.py)
                require_method(method, "POST", path)
                self._require_ready(model)
                return await self._explain.reply(model, scope, receive, self.options.max_body_bytes)
        raise HTTPError(404, f"no route {path!r}; see the Open Inference Protocol v2 REST endpoints")

    def model(self, name: Any) -> LoadedModel:
        """The served model called `name`; HTTPError 404 listing the served models otherwise."""
        model = self.models.get(name) if isinstance(name, str) else None
        if model is None:
            served = ", ".join(sorted(self.models))
            raise HTTPError(404, f"model {name!r} is not served here; served models: {served}")
        return model

    async def _infer_v2(self, model: LoadedModel, scope: Scope, receive: Receive) -> Reply:
        body = decode_body(
            scope, await read_body(scope, receive, self.options.max_body_bytes), self.options.max_body_bytes
        )
        json_length = _inference_header_length(scope)
        raw_bytes = 0 if json_length is None else max(len(body) - json_length, 0)
        request, prediction = await self.infer(
            model, parse_cost(len(body), raw_bytes), lambda: parse_infer_request(body, json_length)
        )
        response, blobs = build_infer_response(model, prediction, request.id, request.outputs, request.binary_outputs)
        if not blobs:
            return json_reply(response)
        head = json_bytes(response)
        length_header = (INFERENCE_HEADER, str(len(head)).encode())
        return Reply(200, b"".join([head, *blobs]), BINARY_TYPE, [length_header])

    async def infer(
        self, model: LoadedModel, size: int, parse: Callable[[], InferRequest]
    ) -> tuple[InferRequest, Prediction]:
        """Parse, preprocess (off the loop when `size`, see `parse_cost`, is large) and predict one request in a batch.

        Shared by every transport of the Open Inference Protocol (REST, binary REST, gRPC).
        """
        self._require_ready(model)

        def prepare() -> tuple[InferRequest, np.ndarray]:
            request = parse()
            require_features(request.columns, model)
            return request, self._features(model, request.columns, "inputs")

        request, features = await self._off_loop_if_large(size, prepare)
        return request, await self._batchers[model.name].predict(features)

    async def _vertex(self, scope: Scope, receive: Receive, served: list[str]) -> Reply:
        body = await read_body(scope, receive, self.options.max_body_bytes)
        payload = await self._off_loop_if_large(len(body), lambda: parse_json_payload(body))
        model = self.model(instances_parameters(payload).get("model", self.default_model))
        served[:] = [model.name, "vertex"]
        self._require_ready(model)

        def prepare() -> np.ndarray:
            request = parse_instances(payload, model)
            return self._features(model, request.columns, "instances")

        features = await self._off_loop_if_large(len(body), prepare)
        prediction = await self._batchers[model.name].predict(features)
        return json_reply({"predictions": predictions(model, prediction)})

    async def _sagemaker(self, scope: Scope, receive: Receive, served: list[str]) -> Reply:
        body = await read_body(scope, receive, self.options.max_body_bytes)
        target = header(scope, SAGEMAKER_MODEL_HEADER)
        model = self.model(target.decode(errors="replace") if target else self.default_model)
        served[:] = [model.name, "sagemaker"]
        self._require_ready(model)
        content_type = (header(scope, b"content-type") or b"application/json").split(b";")[0].strip().lower()
        if content_type not in (b"application/json", b"text/csv"):
            raise HTTPError(
                415, f"Content-Type {content_type.decode(errors='replace')!r}: send application/json or text/csv"
            )

        def prepare() -> np.ndarray:
            parsed = (
                parse_csv(body, model)
                if content_type == b"text/csv"
                else parse_instances(parse_json_payload(body), model)
            )
            return self._features(model, parsed.columns, "instances")

        features = await self._off_loop_if_large(len(body), prepare)
        prediction = await self._batchers[model.name].predict(features)
        if b"text/csv" in (header(scope, b"accept") or b""):
            return Reply(200, predictions_csv(model, prediction), b"text/csv")
        return Reply(200, json_bytes({"predictions": predictions(model, prediction)}))

    def model_ready(self, model: LoadedModel) -> bool:
        """True once `model` has answered its warm-up prediction, until shutdown starts."""
        return model.name in self._ready and not self._stopping

    def _features(self, model: LoadedModel, columns: Mapping[str, np.ndarray], source: str) -> np.ndarray:
        """The model input of a request's columns; rows with unseen or rare categories are counted in the metrics."""
        tally: dict[str, int] = {}
        try:
            return model.preprocessor.transform_columns(columns, source=source, tally=tally)
        finally:
            self.metrics.count_unknown_categories(model.name, tally)

    def _require_ready(self, model: LoadedModel) -> None:
        if model.name not in self._ready:
            raise HTTPError(503, f"model '{model.name}' is still warming up; retry when /v2/health/ready is 200")

    async def _off_loop_if_large(self, size: int, work: Callable[[], _T]) -> _T:
        """Small requests are parsed on the event loop (no thread hop); large ones in the thread pool."""
        if size <= INLINE_PARSE_BYTES:
            return work()
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)


def parse_cost(size: int, raw_bytes: int) -> int:
    """The parsing work of a request of `size` bytes, `raw_bytes` of them raw tensor data, in JSON bytes.

    Raw tensor bytes are copied as whole columns, so they weigh 1/RAW_BYTES_PER_PARSE_BYTE of a JSON byte.
    """
    return size - raw_bytes + raw_bytes // RAW_BYTES_PER_PARSE_BYTE


def _inference_header_length(scope: Scope) -> int | None:
    """The Inference-Header-Content-Length header (binary tensor data extension) as a number, or None."""
    value = header(scope, INFERENCE_HEADER)
    if value is None:
        return None
    if not value.isdigit():
        raise HTTPError(400, f"Inference-Header-Content-Length header: {value!r} is not a byte count")
    return int(value)


def _warm_up_model(model: LoadedModel) -> None:
    model.predict_frame(example_frame(model), source=f"warm-up of model '{model.name}'")


def _log_warm_up_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _LOG.error("model warm-up failed; /v2/health/ready stays 503", exc_info=task.exception())


def _last_line(exc: BaseException) -> str:
    """`Type: message` from the last line of an exception (TorchScript errors carry whole tracebacks)."""
    line = (str(exc).strip().splitlines() or [""])[-1]
    prefix = f"{type(exc).__name__}:"
    return line if line.startswith(prefix) else f"{prefix} {line}"


def create_app(
    models: Mapping[str, LoadedModel],
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_workers: int | None = None,
    options: ServerOptions | None = None,
) -> ModelServer:
    """Build the ASGI application for already-loaded models (keyed by the name served in URLs).

    `options` wins over `max_body_bytes` and `max_workers`, which are shorthands for the common case.
    """
    return ModelServer(models, options or ServerOptions(max_body_bytes=max_body_bytes, max_workers=max_workers))


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "INLINE_PARSE_BYTES",
    "RAW_BYTES_PER_PARSE_BYTE",
    "RETRY_AFTER_S",
    "ModelServer",
    "ServerOptions",
    "create_app",
    "parse_cost",
]
