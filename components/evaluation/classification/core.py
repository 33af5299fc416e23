"""Classification evaluation: metrics, plots and a promotion gate on a held-out test split.

The test split holds RAW rows (feature columns plus the label column). Every model is
evaluated through its own preprocessor, so a champion fitted with different statistics is
compared fairly with the candidate on exactly the same rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm

from kubeforge.errors import InputError
from kubeforge.model_format import LoadedModel, load_model, require_model_task
from kubeforge.tabular import read_table, require_columns

HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "roc_auc")
LOWER_IS_BETTER = ("log_loss",)
METRICS = (*HIGHER_IS_BETTER, *LOWER_IS_BETTER)
_TOLERANCE = 1e-9


@dataclass
class RocCurve:
    """ROC points for one positive class; thresholds are finite (the top one is clipped to 1)."""

    positive_class: str
    fpr: list[float] = field(default_factory=list)
    tpr: list[float] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)


@dataclass
class EvaluationResult:
    """Metrics, confusion matrix, ROC curve, champion metrics and the gate decision."""

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

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping."""
        return asdict(self)


def parse_thresholds(text: str) -> dict[str, float]:
    """Parse metric thresholds given as a JSON object, e.g. `{"accuracy": 0.9, "log_loss": 0.4}`.

    Valid names are accuracy, precision, recall, f1, roc_auc (each threshold is a MINIMUM the
    model must reach) and log_loss (lower is better, so its threshold is a MAXIMUM). Empty
    text means no thresholds.
    """
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"thresholds: not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(parsed, dict):
        raise InputError('thresholds: expected a JSON object such as {"accuracy": 0.9, "roc_auc": 0.95}')
    return _check_thresholds(parsed)


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
    thresholds = _check_thresholds(thresholds)
    if gate_metric not in METRICS:
        raise InputError(f"gate_metric is {gate_metric!r}; valid metrics are {', '.join(METRICS)}")
    if not (math.isfinite(max_regression) and max_regression >= 0):
        raise InputError(f"max_regression is {max_regression}; give a number >= 0 (0 means no regression allowed)")
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
    result = EvaluationResult(
        metrics=metrics,
        confusion_matrix=skm.confusion_matrix(y_true, proba.argmax(axis=1), labels=range(len(labels))).tolist(),
        class_labels=labels,
        roc_curve=_roc(y_true, proba, labels),
        test_rows=len(frame),
        passed=False,
        reasons=_gate(metrics, thresholds, champion_metrics, gate_metric, max_regression),
        thresholds=thresholds,
        gate_metric=gate_metric,
        max_regression=max_regression,
        champion_metrics=champion_metrics,
    )
    result.passed = not result.reasons
    _write_plots(result, Path(plots_dir))
    return result


def _check_thresholds(thresholds: dict[str, Any]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, value in thresholds.items():
        if name not in METRICS:
            raise InputError(f"thresholds: unknown metric {name!r}; valid metrics are {', '.join(METRICS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"thresholds: {name!r} must be a finite number, got {value!r}")
        if name in HIGHER_IS_BETTER and not 0.0 <= value <= 1.0:
            raise InputError(f"thresholds: {name!r} is {value}; it is a minimum between 0 and 1")
        if name in LOWER_IS_BETTER and value < 0:
            raise InputError(f"thresholds: {name!r} is {value}; it is a maximum and must be >= 0")
        checked[name] = float(value)
    return checked


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


def _roc(y_true: np.ndarray, proba: np.ndarray, labels: list[str]) -> RocCurve | None:
    """ROC of classes[1] (binary: the positive class; multiclass: classes[1] vs the rest)."""
    positive = y_true == 1
    if positive.all() or not positive.any():
        return None
    fpr, tpr, thresholds = skm.roc_curve(positive, proba[:, 1])
    finite = np.clip(np.nan_to_num(thresholds, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return RocCurve(labels[1], fpr.tolist(), tpr.tolist(), finite.tolist())


def _gate(
    metrics: dict[str, float],
    thresholds: dict[str, float],
    champion: dict[str, float] | None,
    gate_metric: str,
    max_regression: float,
) -> list[str]:
    reasons: list[str] = []
    for name, required in thresholds.items():
        value = metrics[name]
        if name in LOWER_IS_BETTER and value > required + _TOLERANCE:
            reasons.append(f"{name} {value:.4f} > allowed maximum {required:.4f}")
        elif name in HIGHER_IS_BETTER and value < required - _TOLERANCE:
            reasons.append(f"{name} {value:.4f} < required {required:.4f}")
    if champion is not None:
        value, best = metrics[gate_metric], champion[gate_metric]
        worse_by = value - best if gate_metric in LOWER_IS_BETTER else best - value
        if worse_by > max_regression + _TOLERANCE:
            reasons.append(
                f"{gate_metric} {value:.4f} is {worse_by:.4f} worse than champion {best:.4f} "
                f"(allowed {max_regression:.4f})"
            )
    return reasons


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
    roc = result.roc_curve
    if roc is not None:
        vs = "" if len(result.class_labels) == 2 else " vs rest"
        label = f"class {roc.positive_class}{vs} (AUC {result.metrics['roc_auc']:.3f})"
        axes.plot(roc.fpr, roc.tpr, label=label)
    else:
        axes.text(0.5, 0.5, "ROC curve not available", ha="center")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve", xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="lower right")
    figure.savefig(plots_dir / "roc_curve.png", dpi=100)
    (plots_dir / "report.md").write_text(_report(result))
    (plots_dir / "evaluation.json").write_text(json.dumps(result.to_json(), indent=2, allow_nan=False))


def _report(result: EvaluationResult) -> str:
    champion = result.champion_metrics
    lines = [
        "# Classification evaluation",
        "",
        f"Gate: **{'PASSED' if result.passed else 'FAILED'}** on {result.test_rows} test rows.",
        *(f"- {reason}" for reason in result.reasons),
        "",
        "| metric | model | champion | threshold |",
        "|---|---|---|---|",
    ]
    for name, value in result.metrics.items():
        best = f"{champion[name]:.4f}" if champion else "-"
        limit = result.thresholds.get(name)
        bound = "-" if limit is None else f"{'<=' if name in LOWER_IS_BETTER else '>='} {limit:.4f}"
        lines.append(f"| {name} | {value:.4f} | {best} | {bound} |")
    lines += ["", "Confusion matrix (rows = true class, columns = predicted):", ""]
    lines.append("| true \\ predicted | " + " | ".join(result.class_labels) + " |")
    lines.append("|---" * (len(result.class_labels) + 1) + "|")
    for label, row in zip(result.class_labels, result.confusion_matrix, strict=True):
        lines.append(f"| {label} | " + " | ".join(map(str, row)) + " |")
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
