"""Load models and run the model server under uvicorn, configured by arguments or the platform's env.

Vertex AI sets `AIP_HTTP_PORT`, `AIP_HEALTH_ROUTE`, `AIP_PREDICT_ROUTE` and `AIP_STORAGE_URI`;
SageMaker starts the image with the argument `serve`, mounts the model at /opt/ml/model and
calls port 8080. `KUBEFORGE_HOST` sets the bind address (0.0.0.0 in containers).
Run it with ``python -m kubeforge.serving.server --model NAME=DIR [--model ...] --port 8080``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch
import uvicorn

from kubeforge import settings
from kubeforge.errors import InputError, KubeforgeError, ServingError
from kubeforge.model_format import LoadedModel, load_model
from kubeforge.serving.app import DEFAULT_MAX_BODY_BYTES, ModelServer, ServerOptions, create_app
from kubeforge.serving.batching import BatchingOptions
from kubeforge.serving.protocol import check_model_name

DEFAULT_PORT = 8080
GRACEFUL_SHUTDOWN_S = 30
SAGEMAKER_MODEL_DIR = "/opt/ml/model"
_LOG = logging.getLogger("kubeforge.serving")


def quantize_model(model: LoadedModel) -> LoadedModel:
    """The model with int8 dynamic quantization of its Linear layers (CPU inference only)."""
    with warnings.catch_warnings():  # torch marks both TorchScript and torch.ao.quantization deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings(
            "ignore", message=r"The \.grad attribute of a Tensor that is not a leaf", category=UserWarning
        )
        qconfig = torch.ao.quantization.default_dynamic_qconfig
        quantized = torch.ao.quantization.quantize_dynamic_jit(model.module, {"": qconfig})  # type: ignore[no-untyped-call]
    return replace(model, module=quantized)


def load_models(model_dirs: Mapping[str, str | Path], quantize: bool = False) -> dict[str, LoadedModel]:
    """Load every model directory under its serving name, optionally quantized to int8."""
    if not model_dirs:
        raise InputError("model: give at least one model as NAME=DIR")
    models = {check_model_name(name, "model"): load_model(path, name=name) for name, path in model_dirs.items()}
    return {name: quantize_model(model) for name, model in models.items()} if quantize else models


def options_from_env(options: ServerOptions, environ: Mapping[str, str] | None = None) -> ServerOptions:
    """`options` with the Vertex AI routes taken from AIP_PREDICT_ROUTE / AIP_HEALTH_ROUTE when set."""
    env = os.environ if environ is None else environ
    return replace(
        options,
        vertex_predict_route=env.get("AIP_PREDICT_ROUTE") or options.vertex_predict_route,
        vertex_health_route=env.get("AIP_HEALTH_ROUTE") or options.vertex_health_route,
    )


def default_port(environ: Mapping[str, str] | None = None) -> int:
    """AIP_HTTP_PORT when Vertex AI sets it, else 8080 (SageMaker's port)."""
    env = os.environ if environ is None else environ
    text = env.get("AIP_HTTP_PORT") or str(DEFAULT_PORT)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InputError(f"AIP_HTTP_PORT: {text!r} is not a TCP port")
    return int(text)


def serve(
    model_dirs: Mapping[str, str | Path],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    options: ServerOptions | None = None,
    quantize: bool = False,
    grpc_port: int | None = None,
) -> None:
    """Load the models and serve them with uvicorn (and gRPC on `grpc_port` when given) until SIGTERM/SIGINT.

    On SIGTERM the server stops accepting connections and calls, finishes every request in flight
    (those waiting for a batch included, up to 30 s), then exits.
    """
    import uvicorn

    app = create_app(load_models(model_dirs, quantize=quantize), options=options_from_env(options or ServerOptions()))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        backlog=4096,
    )
    _configure_logging()  # after uvicorn.Config, which installs its own logging configuration
    server = CombinedServer(config, app, host, grpc_port)
    _LOG.info("serving %s on http://%s:%d", ", ".join(app.models), host, port)
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(server.serve())
    if server.failure is not None:
        raise server.failure
    if not server.started:
        raise ServingError(f"the model server did not start on {host}:{port}; the log above has the reason")


class CombinedServer(uvicorn.Server):
    """uvicorn's server, plus gRPC: opened once the models are warm, told first when shutting down."""

    def __init__(self, config: uvicorn.Config, app: ModelServer, host: str, grpc_port: int | None):
        super().__init__(config)
        self.model_server = app
        self.grpc_address = (host, grpc_port)
        self.failure: ServingError | None = None
        self.grpc_bound: int | None = None  # the gRPC port, once listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup (models warmed up, REST listening), then gRPC's port opened."""
        await super().startup(sockets)  # the lifespan startup warms every model up first
        host, port = self.grpc_address
        if port is not None and self.started:
            from kubeforge.serving.grpc_server import start_grpc_server  # imported only when asked for

            try:
                _, bound = await start_grpc_server(self.model_server, host, port, GRACEFUL_SHUTDOWN_S)
            except ServingError as exc:
                self.failure = exc
                self.should_exit = True
                return
            self.grpc_bound = bound
            _LOG.info("serving inference.GRPCInferenceService on %s:%d", host, bound)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop gRPC taking calls, then uvicorn's own shutdown (which ends with the model server's)."""
        self.model_server.begin_shutdown()  # gRPC stops taking calls while REST connections drain
        await super().shutdown(sockets)


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
    """Command-line entry point: `python -m kubeforge.serving.server --model NAME=DIR --port N`."""
    parser = argparse.ArgumentParser(prog="python -m kubeforge.serving.server", description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=_parse_model_arg, required=True, metavar="NAME=DIR")
    parser.add_argument("--host", default=settings.HOST.read())
    parser.add_argument("--port", type=int, default=None, help="default: AIP_HTTP_PORT, else 8080")
    parser.add_argument("--grpc-port", type=int, default=None, help="also serve OIP v2 over gRPC on this port")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--max-batch-size", type=int, default=BatchingOptions.max_batch_size)
    parser.add_argument("--max-wait-ms", type=float, default=BatchingOptions.max_wait_ms)
    parser.add_argument("--max-queue", type=int, default=BatchingOptions.max_queue)
    parser.add_argument("--workers", type=int, default=None, help="inference threads (default: min(4, CPUs))")
    parser.add_argument("--quantize", action="store_true", help="int8 dynamic quantization (CPU)")
    args = parser.parse_args(argv)
    model_dirs = dict(args.model)
    if len(model_dirs) != len(args.model):
        parser.error("--model: each NAME may be given once")
    try:
        batching = BatchingOptions(args.max_batch_size, args.max_wait_ms, args.max_queue)
        options = ServerOptions(max_body_bytes=args.max_body_bytes, batching=batching, max_workers=args.workers)
        port = default_port() if args.port is None else args.port
        serve(model_dirs, args.host, port, options=options, quantize=args.quantize, grpc_port=args.grpc_port)
    except KubeforgeError as exc:
        print(f"kubeforge model server: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0


__all__ = [
    "DEFAULT_PORT",
    "CombinedServer",
    "GRACEFUL_SHUTDOWN_S",
    "SAGEMAKER_MODEL_DIR",
    "default_port",
    "load_models",
    "main",
    "options_from_env",
    "quantize_model",
    "serve",
]

if __name__ == "__main__":
    sys.exit(main())
