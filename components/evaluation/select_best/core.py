"""Pick the best trained model by a validation metric from each model's own training history.

Each Model artifact carries `metrics_history.jsonl`; the last row describes the weights that
were saved. Selecting on validation metrics keeps the test split untouched for the winner's
final evaluation. The result does not depend on the order in which the trials finished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kubeforge.artifacts import upload_dir
from kubeforge.errors import InputError
from kubeforge.model_format import LoadedModel, load_model
from kubeforge.training.curves import LOWER_IS_BETTER_SUFFIXES, lower_is_better


@dataclass(frozen=True)
class Trial:
    """One candidate: where it is, its score and its network architecture as recorded in training."""

    model_dir: str
    score: float
    architecture: dict[str, object]


@dataclass(frozen=True)
class Selection:
    """The winner and every trial, best first."""

    metric: str
    best: Trial
    ranking: list[Trial]


def select_best(model_dirs: list[str | Path], metric: str = "val_accuracy") -> Selection:
    """Rank the models by the last recorded value of `metric`; ties go to the earlier-listed model."""
    if not model_dirs:
        raise InputError("models: no trained models were given; the sweep produced no trials")
    trials = [_trial(load_model(directory), metric) for directory in model_dirs]
    sign = 1.0 if lower_is_better(metric) else -1.0
    ranking = sorted(trials, key=lambda trial: sign * trial.score)
    return Selection(metric=metric, best=ranking[0], ranking=ranking)


def publish_selection(selection: Selection, best_model_dir: str | Path, leaderboard_path: str | Path) -> None:
    """Copy the winning model to `best_model_dir` and write a Markdown leaderboard."""
    upload_dir(Path(selection.best.model_dir), str(best_model_dir))
    lines = [
        f"# Sweep leaderboard ({selection.metric}, {'lower' if lower_is_better(selection.metric) else 'higher'} "
        "is better)",
        "",
        "| rank | score | model | architecture |",
        "|---|---|---|---|",
    ]
    for rank, trial in enumerate(selection.ranking, start=1):
        architecture = json.dumps(trial.architecture, sort_keys=True)
        lines.append(f"| {rank} | {trial.score:.4f} | `{trial.model_dir}` | `{architecture}` |")
    Path(leaderboard_path).write_text("\n".join(lines) + "\n")


def _trial(model: LoadedModel, metric: str) -> Trial:
    if not model.history:
        raise InputError(f"models: {model.directory} has no metrics history; was it trained by kubeforge?")
    last = model.history[-1]
    if metric not in last:
        known = ", ".join(sorted(key for key in last if key != "epoch"))
        raise InputError(f"metric {metric!r} is not recorded for {model.directory}; recorded metrics: {known}")
    architecture = dict(model.manifest.get("training", {}).get("architecture", {}))
    return Trial(model_dir=str(model.directory), score=float(last[metric]), architecture=architecture)


__all__ = ["LOWER_IS_BETTER_SUFFIXES", "Selection", "Trial", "lower_is_better", "publish_selection", "select_best"]
