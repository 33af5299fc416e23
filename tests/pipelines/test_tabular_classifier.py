"""tabular_classifier: its golden YAML, and whole runs through kfp.local's SubprocessRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kubeforge.catalog.compiling import compile_pipeline
from kubeforge.errors import InputError
from kubeforge.local_runner import run_pipeline_locally
from kubeforge.model_format import load_model
from kubeforge.pipelines.tabular_classifier.pipeline import tabular_classifier
from kubeforge.serving.client import infer, output_by_name
from kubeforge.serving.local import list_local_servers, stop_local_server
from kubeforge_dev.catalog_build import repository_root


def test_compiled_pipeline_matches_golden_file(tmp_path: Path) -> None:
    compile_pipeline(tabular_classifier, tmp_path / "pipeline.yaml")
    golden = repository_root() / "pipelines" / "tabular_classifier" / "pipeline.yaml"
    assert (tmp_path / "pipeline.yaml").read_text() == golden.read_text(), "run `make compile`"


def test_whole_pipeline_trains_gates_and_serves(
    breast_cancer_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    params: dict[str, Any] = {"data_uri": str(breast_cancer_csv), "model_name": "bc", "epochs": 15}
    try:
        run = run_pipeline_locally(tabular_classifier, params, tmp_path / "root")
        [server] = list_local_servers(tmp_path / "home")
        test_rows = pd.read_parquet(run.task_dir("preprocess-tabular") / "test_data")
        response = infer(server.url, "bc", test_rows.drop(columns=["target"]))
    finally:
        stop_local_server("bc", tmp_path / "home")

    evaluation = json.loads((run.task_dir("evaluate-classifier") / "plots" / "evaluation.json").read_text())
    assert evaluation["passed"] is True
    assert evaluation["metrics"]["accuracy"] >= 0.9
    model = load_model(run.task_dir("train-pytorch") / "model")
    assert model.manifest["training"]["world_size"] == 2
    served = output_by_name(response, "predictions")
    assert served == model.predict_frame(test_rows).labels
    assert sum(p == t for p, t in zip(served, test_rows["target"], strict=True)) / len(served) >= 0.9
    assert list_local_servers(tmp_path / "home") == []


def test_failed_gate_deploys_nothing(breast_cancer_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    params = {"data_uri": str(breast_cancer_csv), "epochs": 1, "workers": 1, "thresholds": '{"accuracy": 1.01}'}
    with pytest.raises(InputError, match="accuracy"):
        run_pipeline_locally(tabular_classifier, params, tmp_path / "root")
    params["thresholds"] = '{"log_loss": 0.0001}'
    run = run_pipeline_locally(tabular_classifier, params, tmp_path / "root")

    evaluation = json.loads((run.task_dir("evaluate-classifier") / "plots" / "evaluation.json").read_text())
    assert evaluation["passed"] is False
    assert not run.task_dir("deploy-model").exists()
    assert list_local_servers(tmp_path / "home") == []


def test_bad_data_fails_with_the_components_own_message(tmp_path: Path, breast_cancer_csv: Path) -> None:
    frame = pd.read_csv(breast_cancer_csv).drop(columns=["target"])
    data = tmp_path / "unlabelled.csv"
    frame.to_csv(data, index=False)

    with pytest.raises(InputError, match="missing column\\(s\\) 'target'") as error:
        run_pipeline_locally(tabular_classifier, {"data_uri": str(data)}, tmp_path / "root")
    assert "preprocess-tabular" in str(error.value)
