"""KFP definition of `tuning/optuna`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def tune_optuna(
    train_data: Input[Dataset],
    validation_data: Input[Dataset],
    preprocessor: Input[Artifact],
    best_model: Output[Model],
    leaderboard: Output[Markdown],
    report: Output[Artifact],
    metrics: Output[Metrics],
    search_space: str,
    n_trials: int = 20,
    sampler: str = "tpe",
    pruner: str = "median",
    startup_trials: int = 2,
    metric: str = "val_loss",
    epochs: int = 10,
    seed: int = 42,
    fixed_params: str = "{}",
    backend: str = "local",
    backend_options: str = "{}",
    workers: int = 1,
    parallel_trials: int = 1,
    storage_url: str = "",
    study_name: str = "",
) -> float:
    """Search TrainConfig fields with an Optuna study; every trial is a training job on `backend`.

    `search_space` is JSON: {"learning_rate": {"type": "float", "low": 1e-4, "high": 0.1, "log": true},
    "hidden_layers": {"type": "categorical", "choices": ["16", "64,32"]}} (int ranges and `step` too).
    `sampler`: tpe, random, grid (ranges need a `step`) or cmaes; `pruner`: median, hyperband or none,
    fed after every epoch with the validation `metric`: a pruned trial trains no further epoch; the median
    pruner prunes nothing until `startup_trials` trials have completed (they also seed TPE and CMA-ES).
    `fixed_params` are TrainConfig fields every trial shares. `backend` local (default) or queue (the
    scheduler; `parallel_trials` at once). The study lives in SQLite beside the outputs, or in PostgreSQL
    (`storage_url` without a password: PGPASSWORD), so a retried task continues it and never re-runs a
    finished trial. Outputs the best trial's model, the leaderboard and `report` (leaderboard.md,
    leaderboard.csv, optimization_history.png); returns the best value.
    """
    import shutil

    from kubeforge.components.tuning.optuna import core
    from kubeforge.components.tuning.optuna import report as reports
    from kubeforge.components.tuning.optuna.study import TuneParams

    params = TuneParams(
        search_space=search_space,
        n_trials=n_trials,
        sampler=sampler,
        pruner=pruner,
        startup_trials=startup_trials,
        metric=metric,
        epochs=epochs,
        seed=seed,
        fixed_params=fixed_params,
        backend=backend,
        backend_options=backend_options,
        workers=workers,
        parallel_trials=parallel_trials,
        storage_url=storage_url,
        study_name=study_name,
    )
    inputs = core.TuneInputs(train_data.path, validation_data.path, preprocessor.path)
    result = core.run_study(inputs, core.study_dir_for(best_model.path), params)
    core.publish_best(result, best_model.path)
    reports.write_report(result.study, metric, report.path)
    shutil.copyfile(f"{report.path}/{reports.LEADERBOARD_MD}", leaderboard.path)
    best = result.study.best_trial
    best_model.metadata.update({"metric": metric, "score": best.value, "trial": best.number, "params": best.params})
    for state, count in result.counts.items():
        metrics.log_metric(f"trials_{state}", count)
    metrics.log_metric("trial_epochs", sum(reports.trial_epochs(t) for t in result.study.trials))
    metrics.log_metric(f"best_{metric}", float(best.value or 0.0))
    return float(best.value or 0.0)
