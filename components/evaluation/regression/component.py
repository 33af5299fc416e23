"""KFP definition of `evaluation/regression`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_regressor(
    test_data: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    plots: Output[Artifact],
    thresholds: str = "{}",
    champion_model: Input[Model] = None,
    max_regression: float = 0.0,
    gate_metric: str = "rmse",
) -> bool:
    """Score a regressor on the test split, plot it, and gate it on thresholds and a champion.

    Returns the gate's verdict as the single output, for `dsl.If(task.output == True)`; the
    reasons for a failed gate are in plots/report.md and plots/evaluation.json.
    """
    from kubeforge.components.evaluation.regression import core

    result = core.evaluate_regressor(
        test_data.path,
        model.path,
        plots.path,
        thresholds=core.parse_thresholds(thresholds),
        champion_dir=champion_model.path if champion_model is not None else None,
        max_regression=max_regression,
        gate_metric=gate_metric,
    )
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    for column, rows in result.unknown_categories.items():
        metrics.log_metric(f"unknown_category_rows[{column}]", rows)
    for reason in result.reasons:
        print(f"gate: {reason}")
    return bool(result.passed)
