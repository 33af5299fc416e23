"""Tabular regressor: validate data -> preprocess -> train (DDP) -> evaluate -> deploy when the gate passes."""

from kfp import dsl
from kfp.dsl import Dataset

from kubeforge.components.evaluation.regression import evaluate_regression_op
from kubeforge.components.preprocess.tabular import preprocess_op
from kubeforge.components.serving.deploy import deploy_op
from kubeforge.components.training.pytorch import train_op
from kubeforge.components.validation.data import validate_op

DEFAULT_THRESHOLDS = '{"r2": 0.3}'


@dsl.pipeline(
    name="tabular-regressor",
    description="Validate and preprocess a table, train an MLP regressor with PyTorch DDP, gate it and serve it.",
)
def tabular_regressor(
    data_uri: str,
    label_column: str = "target",
    model_name: str = "tabular-regressor",
    workers: int = 2,
    epochs: int = 60,
    batch_size: int = 32,
    learning_rate: float = 0.001,
    weight_decay: float = 0.0,
    hidden_layers: str = "64,32",
    regression_loss: str = "mse",
    thresholds: str = DEFAULT_THRESHOLDS,
    deploy_target: str = "local",
    unknown_categories: str = "infrequent",
    constraints_json: str = "",
    reference_uri: str = "",
) -> None:
    """Train and gate a regressor on the table at `data_uri`; deploy it if it passes.

    The target is standardized for training (`regression_loss`: mse or huber) and predictions come
    back in the label's units. The data is validated first (`constraints_json`; drift against the
    table at `reference_uri` when given): a failure stops the run with the failed checks listed.
    `thresholds` gates on r2 (minimum), rmse, mae, mape (maxima).
    """
    data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
    data.set_display_name("import-data")
    validated = validate_op(
        data=data.output, constraints_json=constraints_json, reference_uri=reference_uri, fail_on_violation=True
    )
    prepared = preprocess_op(
        data=data.output, label_column=label_column, task="regression", unknown_categories=unknown_categories
    ).after(validated)
    trained = train_op(
        train_data=prepared.outputs["train_data"],
        validation_data=prepared.outputs["validation_data"],
        preprocessor=prepared.outputs["preprocessor"],
        workers=workers,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        hidden_layers=hidden_layers,
        regression_loss=regression_loss,
    )
    evaluated = evaluate_regression_op(
        test_data=prepared.outputs["test_data"], model=trained.outputs["model"], thresholds=thresholds
    )
    # The gate is the evaluation's single output (see tabular_classifier for why not a NamedTuple).
    with dsl.If(evaluated.outputs["Output"] == True, name="gate-passed"):  # noqa: E712
        deployed = deploy_op(model=trained.outputs["model"], model_name=model_name, target=deploy_target)
        deployed.set_caching_options(False)  # served from the cache, a deploy would start no server


__all__ = ["DEFAULT_THRESHOLDS", "tabular_regressor"]
