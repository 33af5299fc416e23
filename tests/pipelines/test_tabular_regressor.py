"""tabular_regressor: its golden YAML, and one whole run through kfp.local on scikit-learn's diabetes data.

The data ships inside scikit-learn (442 patients, 10 features, disease progression after a year);
`sex` is written as text so the categorical path runs too. The network's test metrics are compared
with scikit-learn's Ridge fitted on the same training split through the same preprocessor: R² at
most 0.05 below Ridge's and RMSE at most 5 % above it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error, r2_score

from kubeforge.catalog.compiling import compile_pipeline
from kubeforge.local_runner import run_pipeline_locally
from kubeforge.model_format import load_model
from kubeforge.pipelines.tabular_regressor.pipeline import tabular_regressor
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.serving.client import infer, output_by_name
from kubeforge.serving.local import list_local_servers, stop_local_server
from kubeforge_dev.catalog_build import repository_root

R2_MARGIN = 0.05
RMSE_MARGIN = 1.05


def test_compiled_pipeline_matches_golden_file(tmp_path: Path) -> None:
    compile_pipeline(tabular_regressor, tmp_path / "pipeline.yaml")
    golden = repository_root() / "pipelines" / "tabular_regressor" / "pipeline.yaml"
    assert (tmp_path / "pipeline.yaml").read_text() == golden.read_text(), "run `make compile`"


def test_regressor_on_diabetes_is_near_ridge_and_serves_values_in_the_label_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEFORGE_HOME", str(tmp_path / "home"))
    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = frame["sex"].map({1.0: "female", 2.0: "male"})
    data = tmp_path / "diabetes.csv"
    frame.to_csv(data, index=False)
    params: dict[str, Any] = {
        "data_uri": str(data),
        "model_name": "diabetes",
        "workers": 1,
        "epochs": 30,
        "learning_rate": 0.003,
        "weight_decay": 0.01,
        "hidden_layers": "16",
        "thresholds": '{"r2": 0.3}',
        "constraints_json": '{"target": {"kind": "numeric", "min": 0, "max_null_rate": 0}}',
    }
    try:
        run = run_pipeline_locally(tabular_regressor, params, tmp_path / "root")
        [server] = list_local_servers(tmp_path / "home")
        prepared = run.task_dir("preprocess-tabular")
        test_rows = pd.read_parquet(prepared / "test_data")
        # a category never seen in training and no label column: the server still answers
        unseen = test_rows.drop(columns=["target"]).assign(sex=["other", *test_rows["sex"][1:]])
        response = infer(server.url, "diabetes", unseen)
    finally:
        stop_local_server("diabetes", tmp_path / "home")

    plots = run.task_dir("evaluate-regressor") / "plots"
    evaluation = json.loads((plots / "evaluation.json").read_text())
    assert evaluation["passed"] is True
    assert (plots / "residuals.png").stat().st_size > 0 and (plots / "predicted_vs_actual.png").stat().st_size > 0

    preprocessor = FittedPreprocessor.load(prepared / "preprocessor")
    train = pd.read_parquet(prepared / "train_data")
    ridge = Ridge().fit(preprocessor.transform(train), train["target"])
    baseline = ridge.predict(preprocessor.transform(test_rows))
    ridge_r2 = r2_score(test_rows["target"], baseline)
    ridge_rmse = float(np.sqrt(mean_squared_error(test_rows["target"], baseline)))
    print(f"diabetes test split: network {evaluation['metrics']}, Ridge r2 {ridge_r2:.4f} rmse {ridge_rmse:.4f}")
    assert evaluation["metrics"]["r2"] >= ridge_r2 - R2_MARGIN
    assert evaluation["metrics"]["rmse"] <= ridge_rmse * RMSE_MARGIN

    model = load_model(run.task_dir("train-pytorch") / "model")
    assert model.preprocessor.target_scaler == preprocessor.target_scaler
    served = np.asarray(output_by_name(response, "predictions"), dtype=np.float64)
    expected = model.predict_frame(unseen).values
    assert expected is not None
    np.testing.assert_allclose(served, expected, rtol=1e-5)
    assert abs(served.mean() - train["target"].mean()) < train["target"].std()  # the label's units, not z-scores
    assert preprocessor.unknown_category_rows(unseen) == {"sex": 1}
