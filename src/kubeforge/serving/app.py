"""The kubeforge model server: a plain ASGI application speaking Open Inference Protocol v2 REST.

Run it with ``python -m kubeforge.serving.app --model NAME=DIR [--model ...] --port 8080``.
Inference (JSON parsing, preprocessing, the network, response encoding) runs in a small
thread pool, so the event loop keeps answering health probes while a batch is predicted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from kubeforge.errors import InputError, KubeforgeError, ServingError
from kubeforge.model_format import LoadedModel, load_model
from kubeforge.serving.protocol import (
    MODEL_VERSION,
    build_infer_response,
    check_model_name,
    example_frame,
    model_metadata,
    parse_infer_request,
    require_features,
    server_metadata,
)

Scope = Mapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_JSON_HEADERS = [(b"content-type", b"application/json")]
_LOG = logging.getLogger("kubeforge.serving")


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class _Disconnected(Exception):
    pass


class ModelServer:
    """The ASGI application serving a fixed set of loaded models under `/v2`."""

    def __init__(
        self,
        models: Mapping[str, LoadedModel],
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_workers: int | None = None,
    ):
        if not models:
            raise InputError("models: the server needs at least one model")
        for name in models:
            check_model_name(name, field="models")
        if max_body_bytes < 1:
            raise InputError(f"max_body_bytes: must be positive, got {max_body_bytes}")
        self.models = dict(models)
        self.max_body_bytes = max_body_bytes
        self._ready: set[str] = set()
        self._warmup: asyncio.Task[None] | None = None
        workers = max_workers or min(4, os.cpu_count() or 1)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kubeforge-infer")

    @property
    def ready(self) -> bool:
        """True once every model has answered one warm-up prediction."""
        return len(self._ready) == len(self.models)

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
                self._executor.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._warmup is None and not self.ready:  # hosted without lifespan: warm up in the background
            self._warmup = asyncio.get_running_loop().create_task(self.warm_up())
            self._warmup.add_done_callback(_log_warm_up_failure)
        headers: list[tuple[bytes, bytes]] = []
        try:
            status, body = await self._route(scope["method"], scope["path"], scope, receive)
        except _Disconnected:
            return
        except _HTTPError as exc:
            status, body, headers = exc.status, _error_body(exc.message), exc.headers
        except InputError as exc:
            status, body = 400, _error_body(str(exc))
        except Exception:
            _LOG.exception("unexpected error handling %s %s", scope["method"], scope["path"])
            status, body = 500, _error_body("internal server error; the server log has the traceback")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _route(self, method: str, path: str, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        parts = [part for part in path.split("/") if part]
        if parts[:1] != ["v2"]:
            raise _HTTPError(404, f"no route {path!r}; this server speaks Open Inference Protocol v2 under /v2")
        rest = parts[1:]
        if rest in ([], ["health", "live"], ["health", "ready"]):
            _require_method(method, "GET", path)
            if not rest:
                return 200, _json(server_metadata())
            if rest[1] == "live":
                return 200, _json({"live": True})
            return (200 if self.ready else 503), _json({"ready": self.ready})
        if len(rest) >= 2 and rest[0] == "models":
            model = self._model(rest[1])
            action = rest[2:]
            if action[:1] == ["versions"]:
                if action[1:2] != [MODEL_VERSION]:
                    raise _HTTPError(404, f"model '{model.name}' has only version {MODEL_VERSION}; got {path!r}")
                action = action[2:]
            if not action:
                _require_method(method, "GET", path)
                return 200, _json(model_metadata(model))
            if action == ["ready"]:
                _require_method(method, "GET", path)
                ready = model.name in self._ready
                return (200 if ready else 503), _json({"name": model.name, "ready": ready})
            if action == ["infer"]:
                _require_method(method, "POST", path)
                return await self._infer(model, scope, receive)
        raise _HTTPError(404, f"no route {path!r}; see the Open Inference Protocol v2 REST endpoints")

    def _model(self, name: str) -> LoadedModel:
        model = self.models.get(name)
        if model is None:
            served = ", ".join(sorted(self.models))
            raise _HTTPError(404, f"model {name!r} is not served here; served models: {served}")
        return model

    async def _infer(self, model: LoadedModel, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        body = await self._read_body(scope, receive)
        if model.name not in self._ready:
            raise _HTTPError(503, f"model '{model.name}' is still warming up; retry when /v2/health/ready is 200")
        loop = asyncio.get_running_loop()
        return 200, await loop.run_in_executor(self._executor, partial(_infer, model, body))

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise InputError(f"Content-Length header: {value!r} is not a number") from None
                if declared > limit:
                    raise _HTTPError(413, _too_large(f"Content-Length is {declared} bytes", limit))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _HTTPError(413, _too_large(f"the body reached {size} bytes", limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _require_method(method: str, allowed: str, path: str) -> None:
    if method != allowed:
        raise _HTTPError(405, f"{method} is not allowed on {path}; use {allowed}", [(b"allow", allowed.encode())])


def _too_large(what: str, limit: int) -> str:
    return f"request body too large: {what}, the limit is {limit} bytes; split the batch into smaller requests"


def _infer(model: LoadedModel, body: bytes) -> bytes:
    request = parse_infer_request(body)
    require_features(request.frame, model)
    prediction = model.predict_frame(request.frame, source="inputs")
    return _json(build_infer_response(model, prediction, request.id, request.outputs))


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


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _error_body(message: str) -> bytes:
    return _json({"error": message})


def create_app(
    models: Mapping[str, LoadedModel], max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, max_workers: int | None = None
) -> ModelServer:
    """Build the ASGI application for already-loaded models (keyed by the name served in URLs)."""
    return ModelServer(models, max_body_bytes=max_body_bytes, max_workers=max_workers)


def load_models(model_dirs: Mapping[str, str | Path]) -> dict[str, LoadedModel]:
    """Load every model directory under its serving name."""
    if not model_dirs:
        raise InputError("model: give at least one model as NAME=DIR")
    return {check_model_name(name, "model"): load_model(path, name=name) for name, path in model_dirs.items()}


def serve(
    model_dirs: Mapping[str, str | Path],
    host: str = "127.0.0.1",
    port: int = 8080,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_workers: int | None = None,
) -> None:
    """Load the models and serve them with uvicorn until SIGTERM/SIGINT (graceful shutdown)."""
    import uvicorn

    app = create_app(load_models(model_dirs), max_body_bytes=max_body_bytes, max_workers=max_workers)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", access_log=False)
    _configure_logging()  # after uvicorn.Config, which installs its own logging configuration
    server = uvicorn.Server(config)
    _LOG.info("serving %s on http://%s:%d", ", ".join(app.models), host, port)
    server.run()
    if not server.started:
        raise ServingError(f"the model server did not start on {host}:{port}; the log above has the reason")


def _configure_logging() -> None:
    logger = logging.getLogger("kubeforge")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _parse_model_arg(text: str) -> tuple[str, str]:
    name, sep, directory = text.partition("=")
    if not sep or not name or not directory:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=DIR, e.g. --model iris=/models/iris")
    return name, directory


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: `python -m kubeforge.serving.app --model NAME=DIR --port N`."""
    parser = argparse.ArgumentParser(prog="python -m kubeforge.serving.app", description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=_parse_model_arg, required=True, metavar="NAME=DIR")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--workers", type=int, default=None, help="inference threads (default: min(4, CPUs))")
    args = parser.parse_args(argv)
    model_dirs = dict(args.model)
    if len(model_dirs) != len(args.model):
        parser.error("--model: each NAME may be given once")
    try:
        serve(model_dirs, args.host, args.port, max_body_bytes=args.max_body_bytes, max_workers=args.workers)
    except KubeforgeError as exc:
        print(f"kubeforge model server: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0


__all__ = ["DEFAULT_MAX_BODY_BYTES", "ModelServer", "create_app", "load_models", "main", "serve"]

if __name__ == "__main__":
    sys.exit(main())
