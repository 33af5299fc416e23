"""Training runs logged to a real MLflow server: params, per-epoch metrics, curve, Model folder, KFP tags."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from kubeforge import tracking
from kubeforge.errors import TrackingError

pytestmark = pytest.mark.tracking  # a real `mlflow server`: `make test-tracking`

KFP_ENV = {"KFP_RUN_NAME": "nightly-42", "KFP_RUN_ID": "0f1e", "KFP_TASK_NAME": "train-pytorch"}


def test_a_run_leaves_params_epoch_metrics_curve_and_the_model(mlflow_server: str, model_dir: Path) -> None:
    params = {"learning_rate": 0.05, "epochs": 2, "backend_options": '{"token": "s3cret"}'}
    meta = tracking.log_training_run(
        mlflow_server, model_dir, "file:///runs/nightly-42/train/model", params=params, environ=KFP_ENV
    )
    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(meta["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params == {"learning_rate": "0.05", "epochs": "2"}  # backend_options may hold secrets
    assert {key: run.data.tags[key] for key in ("kfp.run_name", "kfp.run_id", "kfp.task_name")} == {
        "kfp.run_name": "nightly-42", "kfp.run_id": "0f1e", "kfp.task_name": "train-pytorch",
    }  # fmt: skip
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert sorted(point.step for point in history) == [1, 2]
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(run.data.metrics)
    top = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert top == {"training_curve.png", "model"}
    model_files = {Path(item.path).name for item in client.list_artifacts(run.info.run_id, "model")}
    assert {"model.pt", "kubeforge_model.json", "preprocessor.json", "metrics_history.jsonl"} <= model_files


def test_a_rerun_of_the_same_task_finds_its_run_instead_of_logging_another(mlflow_server: str, model_dir: Path) -> None:
    uri = "file:///runs/rerun/train/model"
    first = tracking.log_training_run(mlflow_server, model_dir, uri, environ={})
    second = tracking.log_training_run(mlflow_server, model_dir, uri, environ={})
    assert first == second
    client = MlflowClient(tracking_uri=mlflow_server)
    found = client.search_runs([first["mlflow_experiment_id"]], filter_string=f"tags.`kubeforge.model_uri` = '{uri}'")
    assert len(found) == 1


def test_the_environment_variable_is_the_fallback_and_no_uri_logs_nothing(mlflow_server: str, model_dir: Path) -> None:
    assert tracking.log_training_run("", model_dir, "file:///m", environ={}) == {}
    meta = tracking.log_training_run("", model_dir, "file:///env/m", environ={"MLFLOW_TRACKING_URI": mlflow_server})
    assert meta["mlflow_tracking_uri"] == mlflow_server


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://alice:hunter2@127.0.0.1:{port}"


def test_an_unreachable_server_fails_naming_the_fix_without_the_password(model_dir: Path) -> None:
    with pytest.raises(TrackingError) as caught:
        tracking.log_training_run(_dead_url(), model_dir, "file:///m", environ={})
    message = str(caught.value)
    assert "tracking_required=false" in message and "MLFLOW_TRACKING_URI" in message
    assert "hunter2" not in message and "alice" not in message


def test_an_unreachable_server_only_warns_when_tracking_is_optional(model_dir: Path) -> None:
    with pytest.warns(RuntimeWarning, match="continues without tracking"):
        assert tracking.log_training_run(_dead_url(), model_dir, "file:///m", required=False, environ={}) == {}
