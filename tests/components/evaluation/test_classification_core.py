"""Classification evaluation on real models trained on real data (breast cancer, wine)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import train_test_split

from kubeforge.components.evaluation.classification.core import (
    METRICS,
    evaluate_classifier,
    parse_thresholds,
)
from kubeforge.errors import InputError
from kubeforge.model_format import load_model, script_module, write_model_dir
from kubeforge.preprocessor import PreprocessOptions, Task, fit_preprocessor
from kubeforge.tabular import infer_schema
from kubeforge.training.models import TabularMLP

LABEL = "diagnosis"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Data:
    test_path: Path
    test: pd.DataFrame
    good: Path
    poor: Path
    regression: Path
    wine_test_path: Path
    wine_test: pd.DataFrame
    wine: Path
    root: Path


def _train(
    train: pd.DataFrame,
    label: str,
    directory: Path,
    steps: int,
    task: Task = "classification",
    options: PreprocessOptions | None = None,
    shuffle_labels: bool = False,
) -> Path:
    torch.manual_seed(0)
    preprocessor = fit_preprocessor(train, infer_schema(train, label), task, options or PreprocessOptions())
    features = torch.tensor(preprocessor.transform(train))
    targets = torch.tensor(preprocessor.encode_labels(train[label]))
    if shuffle_labels:
        targets = targets[torch.randperm(len(targets))]
    outputs = len(preprocessor.classes) if preprocessor.classes else 1
    model = TabularMLP(features.shape[1], outputs, hidden=(32, 16))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn: torch.nn.Module = torch.nn.CrossEntropyLoss() if task == "classification" else torch.nn.MSELoss()
    for _ in range(steps):
        optimizer.zero_grad()
        out = model(features)
        loss = loss_fn(out, targets) if task == "classification" else loss_fn(out.squeeze(1), targets)
        loss.backward()
        optimizer.step()
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = script_module(model)
        return write_model_dir(directory, scripted, preprocessor, [{"epoch": 1}], {"steps": steps})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    root = tmp_path_factory.mktemp("evaluation")
    cancer = load_breast_cancer(as_frame=True).frame
    cancer[LABEL] = cancer.pop("target").map({0: "malignant", 1: "benign"})
    train, test = train_test_split(cancer, test_size=0.3, random_state=0, stratify=cancer[LABEL])
    test_path = root / "test.parquet"
    test.to_parquet(test_path)
    # The champion ("good") is fitted with different preprocessing options than the poor model.
    good = _train(train, LABEL, root / "good", steps=150, options=PreprocessOptions(clip_quantiles=None))
    poor = _train(train, LABEL, root / "poor", steps=20, shuffle_labels=True)
    regression = _train(train.drop(columns=[LABEL]), "mean area", root / "regression", steps=1, task="regression")

    wine = load_wine(as_frame=True).frame
    wine_train, wine_test = train_test_split(wine, test_size=0.3, random_state=0, stratify=wine["target"])
    wine_test_path = root / "wine_test.parquet"
    wine_test.to_parquet(wine_test_path)
    wine_model = _train(wine_train, "target", root / "wine", steps=150)
    return Data(test_path, test, good, poor, regression, wine_test_path, wine_test, wine_model, root)


def _independent_metrics(model_dir: Path, test: pd.DataFrame, label: str) -> dict[str, float]:
    """Metrics computed straight from the model's predictions, in the label space of the data."""
    model = load_model(model_dir)
    classes = model.classes
    assert classes is not None
    prediction = model.predict_frame(test)
    assert prediction.probabilities is not None
    proba = prediction.probabilities.astype(np.float64)
    y_true, y_pred = test[label].tolist(), prediction.labels
    if len(classes) == 2:
        average: dict[str, object] = {"average": "binary", "pos_label": classes[1]}
        roc_auc = skm.roc_auc_score([y == classes[1] for y in y_true], proba[:, 1])
    else:
        average = {"average": "macro"}
        roc_auc = skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes)
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, zero_division=0, **average),
        "recall": skm.recall_score(y_true, y_pred, zero_division=0, **average),
        "f1": skm.f1_score(y_true, y_pred, zero_division=0, **average),
        "roc_auc": roc_auc,
        "log_loss": skm.log_loss(y_true, proba / proba.sum(axis=1, keepdims=True), labels=classes),
    }


def test_parse_thresholds() -> None:
    assert parse_thresholds("") == {}
    assert parse_thresholds("  ") == {}
    assert parse_thresholds('{"accuracy": 0.9, "roc_auc": 1, "log_loss": 0.4}') == {
        "accuracy": 0.9,
        "roc_auc": 1.0,
        "log_loss": 0.4,
    }
    with pytest.raises(InputError, match=r"unknown metric 'auc'; valid metrics are accuracy, precision.*log_loss"):
        parse_thresholds('{"auc": 0.9}')
    with pytest.raises(InputError, match=r"'accuracy' must be a finite number, got '0.9'"):
        parse_thresholds('{"accuracy": "0.9"}')
    with pytest.raises(InputError, match=r"'f1' must be a finite number"):
        parse_thresholds('{"f1": true}')
    with pytest.raises(InputError, match=r"'recall' is 1.5; it is a minimum between 0 and 1"):
        parse_thresholds('{"recall": 1.5}')
    with pytest.raises(InputError, match=r"'log_loss' is -1; it is a maximum"):
        parse_thresholds('{"log_loss": -1}')
    with pytest.raises(InputError, match="not valid JSON"):
        parse_thresholds("{accuracy: 0.9}")
    with pytest.raises(InputError, match="expected a JSON object"):
        parse_thresholds("[0.9]")


def test_binary_metrics_match_sklearn(data: Data) -> None:
    result = evaluate_classifier(data.test_path, data.good, data.root / "plots_good", {})
    expected = _independent_metrics(data.good, data.test, LABEL)
    assert set(result.metrics) == set(METRICS)
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-6), name
    assert result.metrics["roc_auc"] > 0.95
    assert result.metrics["accuracy"] > 0.9
    assert result.passed and result.reasons == []

    assert result.class_labels == ["benign", "malignant"]
    assert result.test_rows == len(data.test)
    matrix = np.asarray(result.confusion_matrix)
    assert matrix.shape == (2, 2) and matrix.sum() == len(data.test)
    predicted = load_model(data.good).predict_frame(data.test).labels
    expected_matrix = skm.confusion_matrix(data.test[LABEL], predicted, labels=["benign", "malignant"])
    assert result.confusion_matrix == expected_matrix.tolist()
    assert matrix.sum(axis=1).tolist() == data.test[LABEL].value_counts().loc[["benign", "malignant"]].tolist()

    roc = result.roc_curve
    assert roc is not None and roc.positive_class == "malignant"
    assert len(roc.fpr) == len(roc.tpr) == len(roc.thresholds) > 2
    assert all(np.isfinite(roc.thresholds)) and max(roc.thresholds) <= 1.0
    assert (roc.fpr[0], roc.fpr[-1], roc.tpr[-1]) == (0.0, 1.0, 1.0)

    plots = data.root / "plots_good"
    for name in ("confusion_matrix.png", "roc_curve.png"):
        assert (plots / name).read_bytes()[:8] == PNG_MAGIC
    report = (plots / "report.md").read_text()
    assert "PASSED" in report and f"| accuracy | {result.metrics['accuracy']:.4f} |" in report

    document = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert document["metrics"] == result.metrics and document["passed"] is True
    assert document["roc_curve"]["positive_class"] == "malignant"


def test_csv_test_data(data: Data) -> None:
    csv_path = data.root / "test.csv"
    data.test.to_csv(csv_path, index=False)
    from_csv = evaluate_classifier(csv_path, data.good, data.root / "plots_csv", {})
    from_parquet = evaluate_classifier(data.test_path, data.good, data.root / "plots_parquet", {})
    assert from_csv.metrics == pytest.approx(from_parquet.metrics, abs=1e-6)
    assert from_csv.confusion_matrix == from_parquet.confusion_matrix


def test_gate_thresholds(data: Data) -> None:
    good = evaluate_classifier(data.test_path, data.good, data.root / "plots_t1", {})
    reachable = {name: max(0.0, value - 0.05) for name, value in good.metrics.items() if name != "log_loss"}
    reachable["log_loss"] = good.metrics["log_loss"] + 0.05
    assert evaluate_classifier(data.test_path, data.good, data.root / "plots_t2", reachable).passed

    poor = evaluate_classifier(
        data.test_path, data.poor, data.root / "plots_t3", {"accuracy": 0.99, "log_loss": 0.01, "recall": 0.0}
    )
    assert not poor.passed
    assert poor.reasons == [
        f"accuracy {poor.metrics['accuracy']:.4f} < required 0.9900",
        f"log_loss {poor.metrics['log_loss']:.4f} > allowed maximum 0.0100",
    ]
    assert "FAILED" in (data.root / "plots_t3" / "report.md").read_text()


def test_champion_comparison(data: Data) -> None:
    poor_vs_good = evaluate_classifier(data.test_path, data.poor, data.root / "plots_c1", {}, champion_dir=data.good)
    assert not poor_vs_good.passed
    assert poor_vs_good.champion_metrics is not None
    # The champion is scored through its own (differently fitted) preprocessor.
    assert poor_vs_good.champion_metrics == pytest.approx(_independent_metrics(data.good, data.test, LABEL), abs=1e-6)
    [reason] = poor_vs_good.reasons
    assert reason.startswith(f"roc_auc {poor_vs_good.metrics['roc_auc']:.4f} is ")
    assert f"worse than champion {poor_vs_good.champion_metrics['roc_auc']:.4f} (allowed 0.0000)" in reason

    by_log_loss = evaluate_classifier(
        data.test_path, data.poor, data.root / "plots_c2", {}, champion_dir=data.good, gate_metric="log_loss"
    )
    assert not by_log_loss.passed and by_log_loss.reasons[0].startswith("log_loss ")

    lenient = evaluate_classifier(
        data.test_path, data.poor, data.root / "plots_c3", {}, champion_dir=data.good, max_regression=1.0
    )
    assert lenient.passed

    good_vs_poor = evaluate_classifier(data.test_path, data.good, data.root / "plots_c4", {}, champion_dir=data.poor)
    assert good_vs_poor.passed and good_vs_poor.reasons == []
    same = evaluate_classifier(data.test_path, data.good, data.root / "plots_c5", {}, champion_dir=data.good)
    assert same.passed and same.metrics == same.champion_metrics


def test_multiclass(data: Data) -> None:
    result = evaluate_classifier(data.wine_test_path, data.wine, data.root / "plots_wine", {"accuracy": 0.8})
    expected = _independent_metrics(data.wine, data.wine_test, "target")
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-6), name
    assert result.passed
    assert result.class_labels == ["0", "1", "2"]
    matrix = np.asarray(result.confusion_matrix)
    assert matrix.shape == (3, 3) and matrix.sum() == len(data.wine_test)
    assert [curve.positive_class for curve in result.roc_curves] == ["0", "1", "2"]
    assert result.roc_curve == result.roc_curves[0]
    assert (data.root / "plots_wine" / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC
    model = load_model(data.wine)
    y_true, y_pred = data.wine_test["target"].tolist(), model.predict_frame(data.wine_test).labels
    report = skm.classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    for label in result.class_labels:
        for key in ("precision", "recall", "f1"):
            assert result.per_class[label][key] == pytest.approx(report[label][f"{key}-score" if key == "f1" else key])
        assert result.per_class[label]["support"] == report[label]["support"]
    proba = model.predict_frame(data.wine_test).probabilities
    assert proba is not None
    for code, label in enumerate(result.class_labels):
        positive = np.asarray(y_true) == code
        assert result.per_class[label]["roc_auc"] == pytest.approx(skm.roc_auc_score(positive, proba[:, code]))
    for average in ("macro", "weighted"):
        assert result.averages[average]["f1"] == pytest.approx(report[f"{average} avg"]["f1-score"])
        assert result.averages[average]["recall"] == pytest.approx(report[f"{average} avg"]["recall"])
    text = (data.root / "plots_wine" / "report.md").read_text()
    assert "| *weighted average* |" in text and "ROC AUC (one vs rest)" in text


def test_bad_inputs(data: Data) -> None:
    plots = data.root / "plots_bad"

    no_label = data.root / "no_label.parquet"
    data.test.drop(columns=[LABEL]).to_parquet(no_label)
    with pytest.raises(InputError, match=rf"no_label.parquet: missing column\(s\) '{LABEL}'"):
        evaluate_classifier(no_label, data.good, plots, {})

    unknown = data.root / "unknown_label.parquet"
    data.test.assign(**{LABEL: data.test[LABEL].replace({"benign": "healthy"})}).to_parquet(unknown)
    with pytest.raises(InputError, match=rf"label column '{LABEL}' holds 'healthy' \(107 row\(s\)\), not among the"):
        evaluate_classifier(unknown, data.good, plots, {})

    single_class = data.root / "single_class.parquet"
    data.test[data.test[LABEL] == "benign"].to_parquet(single_class)
    with pytest.raises(InputError, match="single class"):
        evaluate_classifier(single_class, data.good, plots, {})

    with pytest.raises(InputError, match=r"^model: model .* is a regression model; a classification model is needed"):
        evaluate_classifier(data.test_path, data.regression, plots, {})
    with pytest.raises(InputError, match=r"^champion_model: .* is a regression model"):
        evaluate_classifier(data.test_path, data.good, plots, {}, champion_dir=data.regression)
    with pytest.raises(InputError, match=r"champion_model: its classes \[0, 1, 2\] differ"):
        evaluate_classifier(data.test_path, data.good, plots, {}, champion_dir=data.wine)

    empty = data.root / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.parquet is empty"):
        evaluate_classifier(empty, data.good, plots, {})
    header_only = data.root / "header_only.csv"
    data.test.head(0).to_csv(header_only, index=False)
    with pytest.raises(InputError, match=r"header_only.csv has no data rows"):
        evaluate_classifier(header_only, data.good, plots, {})

    with pytest.raises(InputError, match="gate_metric is 'auc'; valid metrics are"):
        evaluate_classifier(data.test_path, data.good, plots, {}, gate_metric="auc")
    with pytest.raises(InputError, match=r"max_regression is -0\.1"):
        evaluate_classifier(data.test_path, data.good, plots, {}, max_regression=-0.1)
    with pytest.raises(InputError, match="unknown metric 'precision_macro'"):
        evaluate_classifier(data.test_path, data.good, plots, {"precision_macro": 0.5})
    assert not plots.exists()
