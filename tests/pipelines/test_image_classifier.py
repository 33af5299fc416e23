"""image_classifier: the CNN on scikit-learn's digits through the catalogue's components, run by kfp.local."""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.datasets import load_digits

from kubeforge.local_runner import run_pipeline_locally
from kubeforge.model_format import load_model
from kubeforge.pipelines.image_classifier.pipeline import image_classifier


def test_cnn_learns_digits(tmp_path: Path) -> None:
    load_digits(as_frame=True).frame.to_csv(tmp_path / "digits.csv", index=False)
    params = {"data_uri": str(tmp_path / "digits.csv"), "epochs": 6, "workers": 2}

    run = run_pipeline_locally(image_classifier, params, tmp_path / "root")

    model = load_model(run.task_dir("train-pytorch") / "model")
    assert model.manifest["training"]["architecture"]["model"] == "cnn"
    assert model.manifest["training"]["world_size"] == 2
    assert model.classes == list(range(10))
    evaluation = json.loads((run.task_dir("evaluate-classifier") / "plots" / "evaluation.json").read_text())
    assert evaluation["passed"] is True
    assert evaluation["metrics"]["accuracy"] >= 0.9
    assert len(evaluation["confusion_matrix"]) == 10
