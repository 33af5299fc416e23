"""tabular_classifier: its golden YAML, and whole runs through kfp.local's SubprocessRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression

from kubeforge.catalog.compiling import compile_pipeline
from kubeforge.errors import InputError
from kubeforge.local_runner import run_pipeline_locally
from kubeforge.model_format import load_model
from kubeforge.pipelines.tabular_classifier.pipeline import tabular_classifier
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.serving.client import infer, output_by_name
from kubeforge.serving.local import list_local_servers, stop_local_server
from kubeforge_dev.catalog_build import repository_root


def test_compiled_pipeline_matches_golden_file(tmp_path: Path) -> None:
    compile_pipeline(tabular_classifier, tmp_path / "pipeline.yaml")
    golden = repository_root() / "pipelines" / "tabular_classifier" / "pipeline.yaml"
    assert (tmp_path / "pipeline.yaml").read_text() == golden.read_text(), "run `make compile`"


def test_whole_pipeline_trains_gates_and_serves_three_named_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scikit-learn's wine data (178 wines, three cultivars) with the cultivars as text labels.

    The network's test accuracy is compared with LogisticRegression fitted on the same training split
    through the same preprocessor: at most 0.08 below it (two of the 27 test rows).
    """
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    data = tmp_path / "wine.csv"
    frame.to_csv(data, index=False)
    params: dict[str, Any] = {"data_uri": str(data), "model_name": "wine", "epochs": 40, "learning_rate": 0.003}
    try:
        run = run_pipeline_locally(tabular_classifier, params, tmp_path / "root")
        [server] = list_local_servers(tmp_path / "home")
        prepared = run.task_dir("preprocess-tabular")
        test_rows = pd.read_parquet(prepared / "test_data")
        response = infer(server.url, "wine", test_rows.drop(columns=["target"]))
    finally:
        stop_local_server("wine", tmp_path / "home")

    evaluation = json.loads((run.task_dir("evaluate-classifier") / "plots" / "evaluation.json").read_text())
    assert evaluation["passed"] is True
    assert evaluation["class_labels"] == ["barbera", "barolo", "grignolino"]
    assert set(evaluation["per_class"]) == set(evaluation["class_labels"])
    assert [curve["positive_class"] for curve in evaluation["roc_curves"]] == evaluation["class_labels"]
    model = load_model(run.task_dir("train-pytorch") / "model")
    assert model.manifest["training"]["world_size"] == 2
    served = output_by_name(response, "predictions")
    assert served == model.predict_frame(test_rows).labels
    assert set(served) <= {"barbera", "barolo", "grignolino"}

    preprocessor = FittedPreprocessor.load(prepared / "preprocessor")
    train = pd.read_parquet(prepared / "train_data")
    baseline = LogisticRegression(max_iter=1000).fit(preprocessor.transform(train), train["target"])
    baseline_accuracy = float((baseline.predict(preprocessor.transform(test_rows)) == test_rows["target"]).mean())
    accuracy = evaluation["metrics"]["accuracy"]
    print(
        f"wine test split: network accuracy {accuracy:.4f} macro f1 {evaluation['averages']['macro']['f1']:.4f}, "
        f"LogisticRegression accuracy {baseline_accuracy:.4f}"
    )
    assert accuracy >= baseline_accuracy - 0.08
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


def test_data_that_fails_validation_stops_the_run_before_preprocessing(tmp_path: Path, breast_cancer_csv: Path) -> None:
    constraints = '{"mean radius": {"kind": "numeric", "max": 10}, "target": {"allowed": ["0", "1"]}}'
    params = {"data_uri": str(breast_cancer_csv), "constraints_json": constraints}
    with pytest.raises(
        InputError, match=r"data validation failed on 569 rows; 1 failed check\(s\): mean radius"
    ) as error:
        run_pipeline_locally(tabular_classifier, params, tmp_path / "root")
    assert "validate-data" in str(error.value) and "full report: " in str(error.value)
    assert not (tmp_path / "root").exists() or not list((tmp_path / "root").rglob("preprocessor"))
