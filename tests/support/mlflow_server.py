"""A real MLflow tracking server (`mlflow server`, proxied artifacts) on a free loopback port.

The store is SQLite in the server's temporary folder unless a `backend_store_uri` is given (e.g.
PostgreSQL, its password in a PGPASSFILE named by `env`, never in the URI or argv).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mlflow_command() -> list[str]:
    beside = Path(sys.executable).with_name("mlflow")
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "mlflow"]


@dataclass(frozen=True)
class MlflowServer:
    """A running `mlflow server`: its URL, process and log."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running_mlflow_server(backend_store_uri: str = "", env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start `mlflow server` with its artifacts (and SQLite store) in a temporary folder; yield its URL."""
    with started_mlflow_server(backend_store_uri, env) as server:
        yield server.url


@contextmanager
def started_mlflow_server(backend_store_uri: str = "", env: Mapping[str, str] | None = None) -> Iterator[MlflowServer]:
    """`mlflow server` on `backend_store_uri` ('' = SQLite), `env` added to its environment; stopped by PID."""
    root = Path(tempfile.mkdtemp(prefix="kubeforge-mlflow-"))
    port = _free_port()
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [
            *_mlflow_command(), "server",
            "--backend-store-uri", backend_store_uri or f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, root / "server.log")
        yield MlflowServer(url, process, root / "server.log")
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with opener.open(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise RuntimeError(f"mlflow server did not answer /health in {START_TIMEOUT_S:.0f}s: {log.read_text()[-2000:]}")


__all__ = ["MlflowServer", "running_mlflow_server", "started_mlflow_server"]
