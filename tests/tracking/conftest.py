"""A real MLflow server for the session, and small real Model artifacts to log to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_server import running_mlflow_server
from tiny_model import small_table, write_tiny_model


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[str]:
    """`mlflow server` (SQLite store, proxied artifacts) on loopback; yields its URL."""
    with running_mlflow_server() as url:
        yield url


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A two-epoch Model artifact with its metrics history and training curve."""
    return write_tiny_model(small_table(), "label", tmp_path / "model", epochs=2)
