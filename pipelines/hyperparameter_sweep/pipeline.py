"""Hyperparameter sweep: training trials over a search space, the best one evaluated.

`strategy="grid"`: one trial per point of `search_space` under `dsl.ParallelFor` with a
parallelism limit; the trained models are gathered with `dsl.Collected` and ranked by a
validation metric. `strategy="optuna"`: the tuning/optuna component searches `tuning_space`
(ranges) with a sampler and stops bad trials between epochs. Only the winner meets the test split.
"""

from kfp import dsl
from kfp.dsl import Dataset

from kubeforge.components.evaluation.classification import evaluate_op
from kubeforge.components.evaluation.select_best import select_best_op
from kubeforge.components.preprocess.tabular import preprocess_op
from kubeforge.components.training.pytorch import train_op
from kubeforge.components.tuning.optuna import tune_op

PARALLELISM = 2
"""At most this many trials train at once (fixed when the pipeline is compiled)."""


@dsl.pipeline(
    name="hyperparameter-sweep",
    description="Train models over a search space (a ParallelFor grid, or an Optuna study with pruning); "
    "keep the best by a validation metric.",
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
    strategy: str = "grid",
    tuning_space: str = "{}",
    n_trials: int = 20,
    sampler: str = "tpe",
    pruner: str = "median",
    tuning_fixed_params: str = "{}",
) -> None:
    """Sweep the table at `data_uri` with `strategy` grid (the default; any value but optuna) or optuna.

    grid: `search_space` is a list of objects with `learning_rate` and `hidden_layers`, e.g.
    `[{"learning_rate": 0.01, "hidden_layers": "64,32"}, {"learning_rate": 0.001, "hidden_layers": "16"}]`.
    It has no default: kfp writes a list-of-objects default into the compiled YAML's header with
    its keys in an order that changes between runs, which would break the golden file (give `[]` with optuna).
    optuna: `tuning_space` is the tuning/optuna search space (JSON ranges over training fields), searched
    for `n_trials` trials with `sampler` (tpe, random, grid, cmaes) and `pruner` (median, hyperband, none);
    every trial trains `epochs` epochs at most with `tuning_fixed_params` (JSON training fields such as
    {"batch_size": 64}; `batch_size` is the grid's).
    """
    data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
    data.set_display_name("import-data")
    prepared = preprocess_op(data=data.output, label_column=label_column)
    with dsl.If(strategy != "optuna", name="grid-strategy"):
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
    with dsl.Else(name="optuna-strategy"):
        tuned = tune_op(
            train_data=prepared.outputs["train_data"],
            validation_data=prepared.outputs["validation_data"],
            preprocessor=prepared.outputs["preprocessor"],
            search_space=tuning_space,
            n_trials=n_trials,
            sampler=sampler,
            pruner=pruner,
            metric=selection_metric,
            epochs=epochs,
            workers=workers,
            fixed_params=tuning_fixed_params,
        )
        evaluate_op(test_data=prepared.outputs["test_data"], model=tuned.outputs["best_model"], thresholds=thresholds)


__all__ = ["PARALLELISM", "hyperparameter_sweep"]
