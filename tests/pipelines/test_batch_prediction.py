"""batch_prediction: a Model artifact scores a table through the batch component, run by kfp.local."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kubeforge.errors import InputError
from kubeforge.local_runner import run_pipeline_locally
from kubeforge.model_format import load_model
from kubeforge.pipelines.batch_prediction.pipeline import batch_prediction


def test_scores_every_row_like_the_model(prepared: Any, trained_model: Path, tmp_path: Path) -> None:
    params = {"data_uri": str(prepared.test), "model_uri": str(trained_model), "keep_columns": "target"}

    run = run_pipeline_locally(batch_prediction, params, tmp_path / "root")

    written = pd.read_parquet(run.task_dir("batch-predict") / "predictions")
    rows = pd.read_parquet(prepared.test)
    assert written["prediction"].tolist() == load_model(trained_model).predict_frame(rows).labels
    assert written["target"].tolist() == rows["target"].tolist()


def test_a_table_without_the_features_fails_naming_the_column(trained_model: Path, tmp_path: Path) -> None:
    pd.DataFrame({"id": [1, 2]}).to_csv(tmp_path / "ids.csv", index=False)
    params = {"data_uri": str(tmp_path / "ids.csv"), "model_uri": str(trained_model)}
    with pytest.raises(InputError, match="missing feature column") as error:
        run_pipeline_locally(batch_prediction, params, tmp_path / "root")
    assert "batch-predict" in str(error.value)
