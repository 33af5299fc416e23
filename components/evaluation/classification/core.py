"""Classification evaluation: metrics, plots and a promotion gate on a held-out test split.

The test split holds RAW rows (feature columns plus the label column). Every model is
evaluated through its own preprocessor, so a champion fitted with different statistics is
compared fairly with the candidate on exactly the same rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm

from kubeforge.categories import unknown_category_lines
from kubeforge.errors import InputError
from kubeforge.metric_gate import MetricGate
from kubeforge.model_format import LoadedModel, load_model, require_model_task
from kubeforge.tabular import read_table, require_columns

HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "roc_auc")
LOWER_IS_BETTER = ("log_loss",)
GATE = MetricGate(HIGHER_IS_BETTER, LOWER_IS_BETTER, HIGHER_IS_BETTER, '{"accuracy": 0.9, "roc_auc": 0.95}')
METRICS = GATE.metrics


@dataclass
class RocCurve:
    """ROC points for one positive class; thresholds are finite (the top one is clipped to 1)."""

    positive_class: str
    fpr: list[float] = field(default_factory=list)
    tpr: list[float] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)


@dataclass
class EvaluationResult:
    """Metrics, confusion matrix, ROC curves, champion metrics and the gate decision.

    `metrics` average over classes (binary: the positive class; multiclass: macro); `per_class` holds
    each class's precision, recall, F1, support and one-vs-rest ROC AUC, `averages` the macro and
    support-weighted precision/recall/F1; `roc_curves` one curve per class (binary: the positive
    class only), `roc_curve` the first of them. `unknown_categories` counts the test rows per column
    whose category was not a level of its own in training (reserved level or zeros).
    """

    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    class_labels: list[str]
    roc_curve: RocCurve | None
    test_rows: int
    passed: bool
    reasons: list[str]
    thresholds: dict[str, float]
    gate_metric: str
    max_regression: float
    champion_metrics: dict[str, float] | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    averages: dict[str, dict[str, float]] = field(default_factory=dict)
    roc_curves: list[RocCurve] = field(default_factory=list)
    unknown_categories: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping."""
        return asdict(self)


def parse_thresholds(text: str) -> dict[str, float]:
    """Parse metric thresholds given as a JSON object, e.g. `{"accuracy": 0.9, "log_loss": 0.4}`.

    Valid names are accuracy, precision, recall, f1, roc_auc (each threshold is a MINIMUM the
    model must reach) and log_loss (lower is better, so its threshold is a MAXIMUM). Empty
    text means no thresholds.
    """
    return GATE.parse_thresholds(text)


def evaluate_classifier(
    test_data: str | Path,
    model_dir: str | Path,
    plots_dir: str | Path,
    thresholds: dict[str, float],
    champion_dir: str | Path | None = None,
    max_regression: float = 0.0,
    gate_metric: str = "roc_auc",
) -> EvaluationResult:
    """Evaluate a classification model on raw test rows, write plots and decide the gate.

    The gate passes when every threshold is met (minimums; a maximum for log_loss) and, when a
    champion is given, the candidate's `gate_metric` is at most `max_regression` worse than the
    champion's on the same rows. Writes confusion_matrix.png, roc_curve.png, report.md and evaluation.json.
    """
    thresholds = GATE.check_thresholds(thresholds)
    GATE.check_champion_margin(gate_metric, max_regression)
    frame = read_table(test_data)
    source = f"test_data {test_data}"
    model = load_model(model_dir)
    require_model_task(model, "classification", "model")
    y_true, proba = _score(model, frame, source)
    labels = [str(c) for c in model.classes or []]
    metrics = _metrics(y_true, proba, source)
    champion_metrics = None
    if champion_dir is not None:
        champion = load_model(champion_dir)
        require_model_task(champion, "classification", "champion_model")
        if champion.classes != model.classes:
            raise InputError(
                f"champion_model: its classes {champion.classes} differ from the candidate's {model.classes}; "
                "compare models trained on the same classes, or evaluate without a champion"
            )
        champion_metrics = _metrics(*_score(champion, frame, source), source)
    curves = _roc_curves(y_true, proba, labels)
    result = EvaluationResult(
        metrics=metrics,
        confusion_matrix=skm.confusion_matrix(y_true, proba.argmax(axis=1), labels=range(len(labels))).tolist(),
        class_labels=labels,
        roc_curve=curves[0] if curves else None,
        test_rows=len(frame),
        passed=False,
        reasons=GATE.reasons(metrics, thresholds, champion_metrics, gate_metric, max_regression),
        thresholds=thresholds,
        gate_metric=gate_metric,
        max_regression=max_regression,
        champion_metrics=champion_metrics,
        per_class=_per_class(y_true, proba, labels),
        averages=_averages(y_true, proba.argmax(axis=1), len(labels)),
        roc_curves=curves,
        unknown_categories=model.preprocessor.unknown_category_rows(frame),
    )
    result.passed = not result.reasons
    _write_plots(result, Path(plots_dir))
    return result


def _score(model: LoadedModel, frame: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Encode the labels and predict probabilities (float64, rows summing to 1) with the model's preprocessor."""
    label = model.preprocessor.label
    require_columns(frame, [label], source=source)
    y_true = model.preprocessor.encode_labels(frame[label], source=source)
    probabilities = model.predict_frame(frame, source=source).probabilities
    assert probabilities is not None
    proba = probabilities.astype(np.float64)
    return y_true, proba / proba.sum(axis=1, keepdims=True)


def _metrics(y_true: np.ndarray, proba: np.ndarray, source: str) -> dict[str, float]:
    n_classes = proba.shape[1]
    present = np.unique(y_true)
    if present.size < 2:
        raise InputError(
            f"{source}: the label column holds a single class; ROC AUC and log loss need at least two classes "
            "in the test split (use a larger or stratified test split)"
        )
    y_pred = proba.argmax(axis=1)
    binary = n_classes == 2
    average: dict[str, Any] = (
        {"average": "binary", "pos_label": 1} if binary else {"average": "macro", "labels": list(range(n_classes))}
    )
    if binary:
        roc_auc = skm.roc_auc_score(y_true, proba[:, 1])
    else:  # one-vs-rest macro average over the classes present in the test split
        roc_auc = np.mean([skm.roc_auc_score(y_true == k, proba[:, k]) for k in present])
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0, **average)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0, **average)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0, **average)),
        "roc_auc": float(roc_auc),
        "log_loss": float(skm.log_loss(y_true, proba, labels=list(range(n_classes)))),
    }


def _per_class(y_true: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1, support and one-vs-rest ROC AUC per class (no AUC when the test split lacks
    the class, or holds nothing else)."""
    codes = list(range(len(labels)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, proba.argmax(axis=1), labels=codes, zero_division=0
    )
    table: dict[str, dict[str, float]] = {}
    for code, name in enumerate(labels):
        positive = y_true == code
        table[name] = {
            "precision": float(precision[code]),
            "recall": float(recall[code]),
            "f1": float(f1[code]),
            "support": float(support[code]),
        }
        if 0 < positive.sum() < len(positive):
            table[name]["roc_auc"] = float(skm.roc_auc_score(positive, proba[:, code]))
    return table


def _averages(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> dict[str, dict[str, float]]:
    """Macro and support-weighted precision, recall and F1 over every trained class."""
    averages: dict[str, dict[str, float]] = {}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=list(range(classes)), average=average, zero_division=0
        )
        averages[average] = {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
    return averages


def _roc_curves(y_true: np.ndarray, proba: np.ndarray, labels: list[str]) -> list[RocCurve]:
    """Binary: the ROC of classes[1]; multiclass: one-vs-rest per class present with both outcomes."""
    curves: list[RocCurve] = []
    for code in [1] if len(labels) == 2 else range(len(labels)):
        positive = y_true == code
        if positive.all() or not positive.any():
            continue
        fpr, tpr, thresholds = skm.roc_curve(positive, proba[:, code])
        finite = np.clip(np.nan_to_num(thresholds, posinf=1.0, neginf=0.0), 0.0, 1.0)
        curves.append(RocCurve(labels[code], fpr.tolist(), tpr.tolist(), finite.tolist()))
    return curves


def _write_plots(result: EvaluationResult, plots_dir: Path) -> None:
    plots_dir.mkdir(parents=True, exist_ok=True)
    matrix = np.asarray(result.confusion_matrix)
    size = max(4.0, 1.0 + 0.6 * len(result.class_labels))
    figure = Figure(figsize=(size, size), layout="constrained")
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues")
    ticks = range(len(result.class_labels))
    axes.set_xticks(ticks, result.class_labels, rotation=45, ha="right")
    axes.set_yticks(ticks, result.class_labels)
    axes.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    for (row, col), count in np.ndenumerate(matrix):
        dark = count > matrix.max() / 2
        axes.text(col, row, str(count), ha="center", va="center", color="white" if dark else "black")
    figure.savefig(plots_dir / "confusion_matrix.png", dpi=100)

    figure = Figure(figsize=(5, 5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    for roc in result.roc_curves:
        vs = "" if len(result.class_labels) == 2 else " vs rest"
        label = f"class {roc.positive_class}{vs} (AUC {result.per_class[roc.positive_class]['roc_auc']:.3f})"
        axes.plot(roc.fpr, roc.tpr, label=label)
    if not result.roc_curves:
        axes.text(0.5, 0.5, "ROC curve not available", ha="center")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve", xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="lower right")
    figure.savefig(plots_dir / "roc_curve.png", dpi=100)
    (plots_dir / "report.md").write_text(_report(result))
    (plots_dir / "evaluation.json").write_text(json.dumps(result.to_json(), indent=2, allow_nan=False))


def _report(result: EvaluationResult) -> str:
    verdict = (result.passed, result.test_rows, result.reasons)
    lines = GATE.report_head(
        "Classification evaluation", verdict, result.metrics, result.champion_metrics, result.thresholds
    )
    lines += ["", "| class | precision | recall | f1 | support | ROC AUC (one vs rest) |", "|---|---|---|---|---|---|"]
    for name, row in result.per_class.items():
        cells = " | ".join(f"{row[key]:.4f}" for key in ("precision", "recall", "f1"))
        auc = f"{row['roc_auc']:.4f}" if "roc_auc" in row else "-"
        lines.append(f"| {name} | {cells} | {int(row['support'])} | {auc} |")
    for average, row in result.averages.items():
        cells = " | ".join(f"{row[key]:.4f}" for key in ("precision", "recall", "f1"))
        lines.append(f"| *{average} average* | {cells} | {result.test_rows} | - |")
    lines += unknown_category_lines(result.unknown_categories)
    lines += ["", "Confusion matrix (rows = true class, columns = predicted):", ""]
    lines.append("| true \\ predicted | " + " | ".join(result.class_labels) + " |")
    lines.append("|---" * (len(result.class_labels) + 1) + "|")
    for label, counts in zip(result.class_labels, result.confusion_matrix, strict=True):
        lines.append(f"| {label} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(lines) + "\n"


__all__ = [
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "METRICS",
    "EvaluationResult",
    "RocCurve",
    "evaluate_classifier",
    "parse_thresholds",
]
