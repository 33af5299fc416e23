"""Regression evaluation: metrics, plots and a promotion gate on a held-out test split.

The test split holds RAW rows (feature columns plus the numeric label). Each model predicts through
its own preprocessor, in the label's units (the target scaler travels in the preprocessor), so a
champion fitted with other statistics is compared fairly with the candidate on the same rows.
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
from kubeforge.tabular import numeric_column, read_table, require_columns

GATE = MetricGate(("r2",), ("rmse", "mae", "mape"), (), '{"r2": 0.4, "rmse": 60}')
METRICS = GATE.metrics
PLOT_POINTS = 5000  # at most this many test rows are drawn in the scatter plots


@dataclass
class RegressionEvaluation:
    """Metrics, champion metrics, the gate decision and the rows whose categories were unseen in training."""

    metrics: dict[str, float]
    test_rows: int
    passed: bool
    reasons: list[str]
    thresholds: dict[str, float]
    gate_metric: str
    max_regression: float
    champion_metrics: dict[str, float] | None = None
    unknown_categories: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping."""
        return asdict(self)


def parse_thresholds(text: str) -> dict[str, float]:
    """Thresholds as a JSON object, e.g. `{"r2": 0.4, "rmse": 60}`: r2 is a MINIMUM, rmse, mae and mape
    (a fraction: 0.1 is 10 %) are MAXIMA. Empty text means none."""
    return GATE.parse_thresholds(text)


def evaluate_regressor(
    test_data: str | Path,
    model_dir: str | Path,
    plots_dir: str | Path,
    thresholds: dict[str, float],
    champion_dir: str | Path | None = None,
    max_regression: float = 0.0,
    gate_metric: str = "rmse",
) -> RegressionEvaluation:
    """Evaluate a regression model on raw test rows, write plots and decide the gate.

    The gate passes when every threshold is met and, when a champion is given, the candidate's
    `gate_metric` is at most `max_regression` worse than the champion's (in the metric's units).
    Writes predicted_vs_actual.png, residuals.png, report.md and evaluation.json into `plots_dir`.
    """
    thresholds = GATE.check_thresholds(thresholds)
    GATE.check_champion_margin(gate_metric, max_regression)
    frame = read_table(test_data)
    source = f"test_data {test_data}"
    model = load_model(model_dir)
    require_model_task(model, "regression", "model")
    actual, predicted = _score(model, frame, source)
    metrics = regression_metrics(actual, predicted)
    champion_metrics = None
    if champion_dir is not None:
        champion = load_model(champion_dir)
        require_model_task(champion, "regression", "champion_model")
        champion_metrics = regression_metrics(*_score(champion, frame, source))
    result = RegressionEvaluation(
        metrics=metrics,
        test_rows=len(frame),
        passed=False,
        reasons=GATE.reasons(metrics, thresholds, champion_metrics, gate_metric, max_regression),
        thresholds=thresholds,
        gate_metric=gate_metric,
        max_regression=max_regression,
        champion_metrics=champion_metrics,
        unknown_categories=model.preprocessor.unknown_category_rows(frame),
    )
    result.passed = not result.reasons
    _write_outputs(result, actual, predicted, Path(plots_dir))
    return result


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and MAPE (a fraction, over the rows whose actual value is not zero)."""
    nonzero = actual != 0
    mape = float(np.mean(np.abs((actual[nonzero] - predicted[nonzero]) / actual[nonzero]))) if nonzero.any() else 0.0
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(actual, predicted))),
        "mae": float(skm.mean_absolute_error(actual, predicted)),
        "r2": float(skm.r2_score(actual, predicted)),
        "mape": mape,
    }


def _score(model: LoadedModel, frame: pd.DataFrame, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The actual label values and the model's predictions, both float64 in the label's units."""
    label = model.preprocessor.label
    require_columns(frame, [label], source=source)
    if frame[label].isna().any():
        raise InputError(
            f"{source}: label column '{label}' has {int(frame[label].isna().sum())} missing value(s); "
            "drop or fill those rows before evaluating"
        )
    actual = numeric_column(frame[label], label, source).to_numpy(dtype=np.float64)
    values = model.predict_frame(frame, source=source).values
    assert values is not None
    return actual, values.astype(np.float64)


def _write_outputs(result: RegressionEvaluation, actual: np.ndarray, predicted: np.ndarray, plots_dir: Path) -> None:
    plots_dir.mkdir(parents=True, exist_ok=True)
    shown = np.random.default_rng(0).permutation(len(actual))[:PLOT_POINTS]
    actual, predicted = actual[shown], predicted[shown]
    figure = Figure(figsize=(5, 5), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(actual, predicted, s=8, alpha=0.6)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="grey", label="perfect")
    axes.set(xlabel="actual", ylabel="predicted", title=f"Predicted vs actual (R² {result.metrics['r2']:.3f})")
    axes.legend(loc="upper left")
    figure.savefig(plots_dir / "predicted_vs_actual.png", dpi=100)

    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(predicted, actual - predicted, s=8, alpha=0.6)
    axes.axhline(0.0, linestyle="--", color="grey")
    axes.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="Residuals")
    figure.savefig(plots_dir / "residuals.png", dpi=100)
    (plots_dir / "report.md").write_text(_report(result))
    (plots_dir / "evaluation.json").write_text(json.dumps(result.to_json(), indent=2, allow_nan=False))


def _report(result: RegressionEvaluation) -> str:
    verdict = (result.passed, result.test_rows, result.reasons)
    lines = GATE.report_head(
        "Regression evaluation", verdict, result.metrics, result.champion_metrics, result.thresholds
    )
    lines += unknown_category_lines(result.unknown_categories)
    return "\n".join(lines) + "\n"


__all__ = ["GATE", "METRICS", "RegressionEvaluation", "evaluate_regressor", "parse_thresholds", "regression_metrics"]
