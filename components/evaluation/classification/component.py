"""KFP definition of `evaluation/classification`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_classifier(
    test_data: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    plots: Output[Artifact],
    thresholds: str = "{}",
    champion_model: Input[Model] = None,
    max_regression: float = 0.0,
    gate_metric: str = "roc_auc",
) -> bool:
    """Score a classifier on the test split, plot it, and gate it on thresholds and a champion.

    Returns the gate's verdict as the single output, for `dsl.If(task.output == True)`; the
    reasons for a failed gate are in plots/report.md and plots/evaluation.json.
    """
    from kubeforge.components.evaluation.classification import core

    result = core.evaluate_classifier(
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
    for average, values in result.averages.items():
        for name, value in values.items():
            metrics.log_metric(f"{name}_{average}", value)
    for label, values in result.per_class.items():
        for name in ("precision", "recall", "f1"):
            metrics.log_metric(f"{name}[{label}]", values[name])
    for column, rows in result.unknown_categories.items():
        metrics.log_metric(f"unknown_category_rows[{column}]", rows)
    classification_metrics.log_confusion_matrix(result.class_labels, result.confusion_matrix)
    if result.roc_curve is not None:
        classification_metrics.log_roc_curve(result.roc_curve.fpr, result.roc_curve.tpr, result.roc_curve.thresholds)
    for reason in result.reasons:
        print(f"gate: {reason}")
    return bool(result.passed)
