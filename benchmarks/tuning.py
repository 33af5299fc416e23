"""Tuning benchmark: an Optuna study with pruning against the grid sweep, in trial-epochs.

On one generated task (make_classification: 3,000 rows x 20 features, 8 informative, 5 % label
noise; preprocessed once), both search learning rate and hidden layers for EPOCHS epochs a trial:
- grid: the hyperparameter_sweep's grid strategy, 6 learning rates (3e-4 to 1e-1, log-spaced) x
  2 architectures, every point trained to the end by the training component's core (what each
  ParallelFor task runs), one after the other.
- optuna: the tuning/optuna core on the same ranges (learning rate log-uniform over the grid's
  span, the same two architectures), TPE and the median pruner (3 startup trials), as many trials.
Both train on the local backend with one worker and the same seeds.

ratios.trial_epochs_vs_grid: the trial-epochs the optuna study had spent when its best completed
trial first came within 1 % of the grid's best validation accuracy, over the grid's total
trial-epochs (goal <= 0.5; null when it never did). figures: both curves (best validation accuracy
so far against cumulative trial-epochs, one point per finished trial), the counts, wall times, the
load average, and the plot's path (.bench/tuning/curves.png).
Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from sklearn.datasets import make_classification

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, preprocess
from kubeforge.components.training.pytorch.core import TrainInputs, TrainParams, train_model
from kubeforge.components.tuning.optuna import core, report
from kubeforge.components.tuning.optuna.study import TuneParams

EPOCHS, SEED, WITHIN = 6, 42, 0.01
LEARNING_RATES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
ARCHITECTURES = ("16", "64,32")
METRIC = "val_accuracy"
WORK = Path(__file__).resolve().parent.parent / ".bench" / "tuning"


def _prepare(work: Path) -> PreprocessOutputs:
    x, y = make_classification(
        n_samples=3000, n_features=20, n_informative=8, flip_y=0.05, class_sep=0.8, random_state=0
    )
    pd.DataFrame(x, columns=[f"x{i}" for i in range(20)]).assign(label=y).to_csv(work / "data.csv", index=False)
    outputs = PreprocessOutputs(*(str(work / n) for n in ("tr.parquet", "va.parquet", "te.parquet", "p.json", "s.md")))
    preprocess(work / "data.csv", outputs, label="label")
    return outputs


def _grid(data: PreprocessOutputs, work: Path) -> list[tuple[int, float]]:
    """Every grid point trained to the end; the best-so-far curve in grid order."""
    inputs = TrainInputs(data.train, data.validation, data.preprocessor)
    spent, best, curve = 0, float("-inf"), []
    for index, (rate, layers) in enumerate((r, a) for r in LEARNING_RATES for a in ARCHITECTURES):
        params = TrainParams(workers=1, epochs=EPOCHS, learning_rate=rate, hidden_layers=layers, seed=SEED)
        result = train_model(inputs, str(work / f"point-{index}" / "model"), params)
        spent += EPOCHS
        best = max(best, result.final_metrics[METRIC])
        curve.append((spent, best))
    return curve


def _optuna(data: PreprocessOutputs, work: Path) -> tuple[list[tuple[int, float]], dict[str, int]]:
    space = {
        "learning_rate": {"type": "float", "low": LEARNING_RATES[0], "high": LEARNING_RATES[-1], "log": True},
        "hidden_layers": {"type": "categorical", "choices": list(ARCHITECTURES)},
    }
    params = TuneParams(
        search_space=json.dumps(space),
        n_trials=len(LEARNING_RATES) * len(ARCHITECTURES),
        sampler="tpe",
        pruner="median",
        startup_trials=3,
        metric=METRIC,
        epochs=EPOCHS,
        seed=SEED,
        fixed_params=json.dumps({"seed": SEED}),
    )
    inputs = core.TuneInputs(data.train, data.validation, data.preprocessor)
    result = core.run_study(inputs, core.study_dir_for(str(work / "best")), params)
    report.write_report(result.study, METRIC, str(work / "report"))
    return [(int(x), float(y)) for x, y in report.best_so_far_curve(result.study)], result.counts


def _reached(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((spent for spent, best in curve if best >= target), None)


def _plot(grid: list[tuple[int, float]], tuned: list[tuple[int, float]], path: Path) -> Path:
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for curve, label in ((grid, "grid sweep"), (tuned, "optuna (TPE + median pruning)")):
        axes.step(*zip(*curve, strict=True), where="post", marker="o", label=label)
    axes.set(xlabel="cumulative trial-epochs", ylabel=f"best {METRIC} so far", title="Tuning: optuna vs grid")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def main() -> dict[str, Any]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    data = _prepare(WORK)
    started = time.perf_counter()
    grid = _grid(data, WORK / "grid")
    grid_s = time.perf_counter() - started
    started = time.perf_counter()
    tuned, counts = _optuna(data, WORK / "optuna")
    optuna_s = time.perf_counter() - started
    grid_best, grid_total = grid[-1][1], grid[-1][0]
    reached = _reached(tuned, grid_best * (1 - WITHIN))
    plot = _plot(grid, tuned, WORK / "curves.png")
    return {
        "benchmark": "tuning",
        "ratios": {"trial_epochs_vs_grid": None if reached is None else round(reached / grid_total, 4)},
        "figures": {
            "grid_curve": [[spent, round(best, 4)] for spent, best in grid],
            "optuna_curve": [[spent, round(best, 4)] for spent, best in tuned],
            "grid_best": round(grid_best, 4),
            "optuna_best": round(tuned[-1][1], 4) if tuned else None,
            "grid_trial_epochs": grid_total,
            "optuna_trial_epochs": tuned[-1][0] if tuned else 0,
            "optuna_trial_epochs_to_reach": reached,
            "optuna_trials": counts,
            "grid_s": round(grid_s, 1),
            "optuna_s": round(optuna_s, 1),
            "load_average": [round(load, 2) for load in os.getloadavg()],
            "plot": str(plot.relative_to(WORK.parent.parent)),
        },
    }


if __name__ == "__main__":
    print(json.dumps(main()))
