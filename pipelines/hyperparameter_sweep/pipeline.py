"""Hyperparameter sweep: one training trial per point of a search space, the best one evaluated.

Trials run under `dsl.ParallelFor` with a parallelism limit; the trained models are gathered
with `dsl.Collected` and ranked by a validation metric; only the winner meets the test split.
"""

from kfp import dsl
from kfp.dsl import Dataset

from kubeforge.components.evaluation.classification import evaluate_op
from kubeforge.components.evaluation.select_best import select_best_op
from kubeforge.components.preprocess.tabular import preprocess_op
from kubeforge.components.training.pytorch import train_op

PARALLELISM = 2
"""At most this many trials train at once (fixed when the pipeline is compiled)."""


@dsl.pipeline(
    name="hyperparameter-sweep",
    description="Train one model per point of a search space (ParallelFor), keep the best by a validation metric.",
)
def hyperparameter_sweep(
    data_uri: str,
    search_space: list,  # type: ignore[type-arg]
    label_column: str = "target",
    selection_metric: str = "val_accuracy",
    workers: int = 1,
    epochs: int = 20,
    batch_size: int = 32,
    thresholds: str = "{}",
) -> None:
    """Sweep `search_space` on the table at `data_uri`.

    `search_space` is a list of objects with `learning_rate` and `hidden_layers`, e.g.
    `[{"learning_rate": 0.01, "hidden_layers": "64,32"}, {"learning_rate": 0.001, "hidden_layers": "16"}]`.
    It has no default: kfp writes a list-of-objects default into the compiled YAML's header with
    its keys in an order that changes between runs, which would break the golden file.
    """
    data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
    data.set_display_name("import-data")
    prepared = preprocess_op(data=data.output, label_column=label_column)
    with dsl.ParallelFor(search_space, parallelism=PARALLELISM, name="trials") as trial:
        trained = train_op(
            train_data=prepared.outputs["train_data"],
            validation_data=prepared.outputs["validation_data"],
            preprocessor=prepared.outputs["preprocessor"],
            learning_rate=trial.learning_rate,
            hidden_layers=trial.hidden_layers,
            workers=workers,
            epochs=epochs,
            batch_size=batch_size,
        )
    best = select_best_op(models=dsl.Collected(trained.outputs["model"]), metric=selection_metric)
    evaluate_op(test_data=prepared.outputs["test_data"], model=best.outputs["best_model"], thresholds=thresholds)


__all__ = ["PARALLELISM", "hyperparameter_sweep"]
