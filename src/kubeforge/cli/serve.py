"""`kubeforge serve`: run the model server by hand, or as the container's command on any platform."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import click

from kubeforge import settings
from kubeforge.errors import InputError


def _default_model_uri() -> str | None:
    """The model the platform hands the container: Vertex's AIP_STORAGE_URI or SageMaker's /opt/ml/model."""
    from kubeforge.serving.server import SAGEMAKER_MODEL_DIR

    if model_uri := settings.MODEL_URI.read():
        return model_uri
    if os.environ.get("AIP_STORAGE_URI"):
        return os.environ["AIP_STORAGE_URI"]
    return SAGEMAKER_MODEL_DIR if Path(SAGEMAKER_MODEL_DIR).is_dir() else None


def _parse_extra(text: str) -> tuple[str, str]:
    name, sep, uri = text.partition("=")
    if not sep or not name or not uri:
        raise InputError(f"--model: {text!r} is not NAME=URI, e.g. --model iris=s3://bucket/models/iris")
    return name, uri


@click.command()
@click.argument("model_uri", required=False)
@click.option("--name", default="model", show_default=True, help="Name of MODEL_URI in /v2/models/{name}.")
@click.option("--model", "extra", multiple=True, metavar="NAME=URI", help="Another model to serve; repeatable.")
@click.option("--host", default=settings.HOST.read, show_default=settings.HOST.default)
@click.option("--port", type=int, default=None, help="Default: AIP_HTTP_PORT when set, else 8080.")
@click.option("--grpc-port", type=int, default=None, help="Also serve OIP v2 over gRPC on this port (e.g. 8081).")
@click.option("--max-batch-size", type=int, default=64, show_default=True, help="Rows per forward pass at most.")
@click.option("--max-wait-ms", type=float, default=1.0, show_default=True, help="Longest wait for a batch to fill.")
@click.option("--max-queue", type=int, default=512, show_default=True, help="Waiting requests before 503.")
@click.option("--max-body-bytes", type=int, default=8 * 1024 * 1024, show_default=True, help="Larger bodies get 413.")
@click.option("--quantize", is_flag=True, help="int8 dynamic quantization of Linear layers (CPU).")
def serve(
    model_uri: str | None,
    name: str,
    extra: tuple[str, ...],
    host: str,
    port: int | None,
    grpc_port: int | None,
    max_batch_size: int,
    max_wait_ms: float,
    max_queue: int,
    max_body_bytes: int,
    quantize: bool,
) -> None:
    """Serve MODEL_URI (a model directory, s3:// or gs:// prefix) over v2, Vertex AI and SageMaker contracts.

    OIP v2 over gRPC (inference.GRPCInferenceService) too with --grpc-port.

    Without MODEL_URI the model comes from KUBEFORGE_MODEL_URI, AIP_STORAGE_URI (Vertex AI) or
    /opt/ml/model (SageMaker). Stops gracefully on SIGTERM, finishing requests in flight.
    """
    from kubeforge.artifacts import local_dir
    from kubeforge.serving.app import ServerOptions
    from kubeforge.serving.batching import BatchingOptions
    from kubeforge.serving.server import default_port
    from kubeforge.serving.server import serve as run_server

    uri = model_uri or _default_model_uri()
    if uri is None:
        raise InputError("MODEL_URI: missing; give a model directory or URI, or set KUBEFORGE_MODEL_URI")
    uris = dict([(name, uri), *(_parse_extra(text) for text in extra)])
    if len(uris) != 1 + len(extra):
        raise InputError("--model: every model needs its own NAME (MODEL_URI is served as --name)")
    options = ServerOptions(
        max_body_bytes=max_body_bytes, batching=BatchingOptions(max_batch_size, max_wait_ms, max_queue)
    )
    with ExitStack() as stack:
        dirs = {model: stack.enter_context(local_dir(location)) for model, location in uris.items()}
        run_server(
            dirs,
            host=host,
            port=default_port() if port is None else port,
            options=options,
            quantize=quantize,
            grpc_port=grpc_port,
        )


__all__ = ["serve"]
