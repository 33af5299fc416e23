"""Regression evaluation, training on a standardized target and batch inference, on scikit-learn's diabetes data.

One real training run (one worker, Huber loss) makes the candidate; a network trained in this
process for a single step is the poor model the gate must refuse.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from prepared_data import train_model
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes

from kubeforge.components.evaluation.classification.core import evaluate_classifier
from kubeforge.components.evaluation.regression.core import evaluate_regressor, parse_thresholds
from kubeforge.components.inference.batch.core import predict_table
from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, preprocess
from kubeforge.errors import InputError
from kubeforge.model_format import load_model, script_module, write_model_dir
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.training.config import TrainConfig
from kubeforge.training.models import TabularMLP

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OUTPUT_NAMES = ("train.parquet", "validation.parquet", "test.parquet", "preprocessor.json", "statistics.md")


@dataclass
class Models:
    outputs: PreprocessOutputs
    test: pd.DataFrame
    good: Path
    poor: Path
    root: Path


def _one_step_model(outputs: PreprocessOutputs, directory: Path) -> Path:
    preprocessor = FittedPreprocessor.load(outputs.preprocessor)
    train = pd.read_parquet(outputs.train)
    torch.manual_seed(0)
    model = TabularMLP(len(preprocessor.output_columns), 1, hidden=(8,))
    features = torch.tensor(preprocessor.transform(train))
    targets = torch.tensor(preprocessor.scale_targets(preprocessor.encode_labels(train["target"])))
    loss = torch.nn.functional.mse_loss(model(features).squeeze(1), targets)
    loss.backward()
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return write_model_dir(directory, script_module(model), preprocessor, [{"epoch": 1}], {"steps": 1})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("regression")
    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = frame["sex"].map({1.0: "female", 2.0: "male"})
    frame.to_csv(root / "diabetes.csv", index=False)
    (root / "prepared").mkdir()
    outputs = PreprocessOutputs(*(str(root / "prepared" / name) for name in OUTPUT_NAMES))
    result = preprocess(root / "diabetes.csv", outputs, label="target", engine="pandas")
    assert result.preprocessor.task == "regression"
    settings = {"hidden_layers": [16], "epochs": 20, "learning_rate": 0.003, "weight_decay": 0.01}
    good = train_model(outputs, root / "run", regression_loss="huber", **settings)  # type: ignore[arg-type]
    poor = _one_step_model(outputs, root / "poor")
    return Models(outputs, pd.read_parquet(outputs.test), good, poor, root)


def test_metrics_match_scikit_learn_and_plots_are_written(models: Models) -> None:
    plots = models.root / "plots"
    result = evaluate_regressor(models.outputs.test, models.good, plots, {"r2": 0.3, "rmse": 70.0})
    predicted = load_model(models.good).predict_frame(models.test).values
    assert predicted is not None
    actual = models.test["target"].to_numpy()
    assert result.metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(actual, predicted)), rel=1e-6)
    assert result.metrics["mae"] == pytest.approx(skm.mean_absolute_error(actual, predicted), rel=1e-6)
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(actual, predicted), rel=1e-6)
    assert result.metrics["mape"] == pytest.approx(skm.mean_absolute_percentage_error(actual, predicted), rel=1e-6)
    assert result.passed and result.reasons == [] and result.test_rows == len(models.test)
    for name in ("predicted_vs_actual.png", "residuals.png"):
        assert (plots / name).read_bytes()[:8] == PNG_MAGIC
    assert json.loads((plots / "evaluation.json").read_text())["metrics"] == result.metrics
    assert "Gate: **PASSED**" in (plots / "report.md").read_text()


def test_huber_training_on_a_standardized_target_predicts_in_the_label_units(models: Models) -> None:
    model = load_model(models.good)
    scaler = model.preprocessor.target_scaler
    train = pd.read_parquet(models.outputs.train)
    assert scaler == pytest.approx((train["target"].mean(), train["target"].std(ddof=0)))
    assert model.manifest["training"]["architecture"]["task"] == "regression"
    values = model.predict_frame(models.test).values
    assert values is not None and abs(values.mean() - scaler[0]) < scaler[1]
    history = model.history[-1]
    assert history["val_rmse"] > 10  # in the label's units (the standardized loss is about 0.3)
    with pytest.raises(InputError, match="regression_loss is 'hubber'; it must be one of mse, huber"):
        TrainConfig("t", "v", "p", "m", "r", "c", regression_loss="hubber")


def test_gate_on_thresholds_and_champion(models: Models) -> None:
    poor = evaluate_regressor(models.outputs.test, models.poor, models.root / "p1", {"r2": 0.3, "rmse": 60.0})
    assert not poor.passed
    assert any(reason.startswith("r2 ") and "< required 0.3000" in reason for reason in poor.reasons)
    assert any(reason.startswith("rmse ") and "> allowed maximum 60.0000" in reason for reason in poor.reasons)
    against = evaluate_regressor(models.outputs.test, models.poor, models.root / "p2", {}, champion_dir=models.good)
    assert not against.passed and "worse than champion" in against.reasons[0]
    margin = against.metrics["rmse"] - (against.champion_metrics or {})["rmse"] + 1.0
    lenient = evaluate_regressor(
        models.outputs.test, models.poor, models.root / "p3", {}, champion_dir=models.good, max_regression=margin
    )
    assert lenient.passed
    by_r2 = evaluate_regressor(
        models.outputs.test, models.good, models.root / "p4", {}, champion_dir=models.poor, gate_metric="r2"
    )
    assert by_r2.passed


def test_unseen_categories_are_counted_and_batch_inference_returns_values(models: Models) -> None:
    rows = models.test.drop(columns=["target"]).assign(sex=["other"] * 3 + models.test["sex"].tolist()[3:])
    rows.to_parquet(models.root / "new_rows.parquet")
    result = predict_table(models.root / "new_rows.parquet", models.good, str(models.root / "predictions.parquet"))
    assert result.task == "regression" and result.unknown_categories == {"sex": 3}
    written = pd.read_parquet(models.root / "predictions.parquet")
    expected = load_model(models.good).predict_frame(rows).values
    np.testing.assert_allclose(written["prediction"].to_numpy(), expected, rtol=1e-6)
    labelled = models.test.assign(sex=rows["sex"].to_numpy())
    labelled.to_parquet(models.root / "unseen_test.parquet")
    evaluation = evaluate_regressor(models.root / "unseen_test.parquet", models.good, models.root / "p5", {})
    assert evaluation.unknown_categories == {"sex": 3}
    assert "`sex` 3" in (models.root / "p5" / "report.md").read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.assign(target=["about 150", *t["target"].tolist()[1:]]), "column 'target' is numeric but row"),
        (lambda t: t.drop(columns=["target"]), r"missing column\(s\) 'target'"),
        (lambda t: t.assign(target=[None, *t["target"].tolist()[1:]]), "label column 'target' has 1 missing value"),
    ],
    ids=["text-target", "no-label", "missing-target"],
)
def test_bad_test_data_names_the_column(models: Models, change: object, message: str) -> None:
    path = models.root / "bad.csv"
    change(models.test).to_csv(path, index=False)  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        evaluate_regressor(path, models.good, models.root / "bad_plots", {})


def test_bad_parameters_are_refused(models: Models) -> None:
    with pytest.raises(InputError, match="unknown metric 'accuracy'; valid metrics are r2, rmse, mae, mape"):
        parse_thresholds('{"accuracy": 0.9}')
    with pytest.raises(InputError, match="'rmse' is -1; it is a maximum"):
        parse_thresholds('{"rmse": -1}')
    with pytest.raises(InputError, match="gate_metric is 'roc_auc'"):
        evaluate_regressor(models.outputs.test, models.good, models.root / "x", {}, gate_metric="roc_auc")
    with pytest.raises(InputError, match=r"model: model .* is a regression model; a classification model is needed"):
        evaluate_classifier(models.outputs.test, models.good, models.root / "y", {})
