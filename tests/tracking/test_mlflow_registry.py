"""The registry/mlflow core against a real MLflow server: versions, aliases moved, re-runs that do not duplicate."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tiny_model import small_table, write_tiny_model

from kubeforge import tracking
from kubeforge.components.registry.mlflow import core
from kubeforge.errors import InputError

pytestmark = pytest.mark.tracking  # a real `mlflow server`: `make test-tracking`


def test_register_twice_then_promote_by_moving_the_alias(mlflow_server: str, tmp_path: Path) -> None:
    first_dir = write_tiny_model(small_table(1), "label", tmp_path / "first")
    second_dir = write_tiny_model(small_table(2), "label", tmp_path / "second")
    trained = tracking.log_training_run(mlflow_server, first_dir, "file:///r/1/model", environ={})

    first = core.register_model(mlflow_server, str(first_dir), "file:///r/1/model", "churn", aliases="champion")
    assert first.run_id == trained["mlflow_run_id"]  # registered from the run that tracked its training
    assert (first.version, first.aliases) == ("1", ("champion",))
    again = core.register_model(mlflow_server, str(first_dir), "file:///r/1/model", "churn", aliases="champion")
    assert again.version == "1"  # a re-run finds its version

    second = core.register_model(mlflow_server, str(second_dir), "file:///r/2/model", "churn", aliases="challenger")
    assert (second.version, second.aliases) == ("2", ("challenger",))
    assert MlflowClient(tracking_uri=mlflow_server).get_model_version_by_alias("churn", "champion").version == "1"

    promoted = core.register_model(mlflow_server, str(second_dir), "file:///r/2/model", "churn", aliases="champion")
    assert promoted.aliases == ("challenger", "champion")
    assert MlflowClient(tracking_uri=mlflow_server).get_model_version_by_alias("churn", "champion").version == "2"
    client = MlflowClient(tracking_uri=mlflow_server)
    assert client.get_model_version("churn", "1").aliases == []
    assert len(client.search_model_versions("name = 'churn'")) == 2
    files = {Path(item.path).name for item in client.list_artifacts(second.run_id, "model")}
    assert "kubeforge_model.json" in files and second.source.endswith("/model")


def test_bad_input_is_refused_naming_the_field(mlflow_server: str, model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="aliases"):
        core.register_model(mlflow_server, str(model_dir), "file:///x", "churn", aliases="latest")
    with pytest.raises(InputError, match="registered_model_name"):
        core.register_model(mlflow_server, str(model_dir), "file:///x", "  ")
    with pytest.raises(InputError, match="model: "):
        core.register_model(mlflow_server, str(tmp_path), "file:///x", "churn")
