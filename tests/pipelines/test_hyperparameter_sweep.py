"""hyperparameter_sweep: ParallelFor trials, dsl.Collected models, the best one evaluated (kfp.local)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubeforge.local_runner import run_pipeline_locally
from kubeforge.model_format import load_model
from kubeforge.pipelines.hyperparameter_sweep.pipeline import hyperparameter_sweep

# The second point cannot learn in two epochs (a 1-unit layer at a tiny learning rate).
SEARCH_SPACE = [
    {"learning_rate": 1e-5, "hidden_layers": "1"},
    {"learning_rate": 0.01, "hidden_layers": "16"},
]


def test_sweep_keeps_the_trial_with_the_best_validation_score(breast_cancer_csv: Path, tmp_path: Path) -> None:
    params = {"data_uri": str(breast_cancer_csv), "search_space": SEARCH_SPACE, "epochs": 2, "workers": 1}

    run = run_pipeline_locally(hyperparameter_sweep, params, tmp_path / "root")

    trials = sorted(run.run_dir.glob("for-loop-*-iteration-*/train-pytorch/model"))
    assert len(trials) == 2
    scores = [load_model(trial).history[-1]["val_accuracy"] for trial in trials]
    winner = trials[scores.index(max(scores))]
    assert load_model(winner).manifest["training"]["architecture"]["hidden_layers"] == [16]
    best = run.task_dir("select-best-model") / "best_model"
    assert (best / "model.pt").read_bytes() == (winner / "model.pt").read_bytes()
    leaderboard = (run.task_dir("select-best-model") / "leaderboard").read_text()
    assert leaderboard.index(str(winner)) < leaderboard.index(str(trials[scores.index(min(scores))]))
    evaluation = json.loads((run.task_dir("evaluate-classifier") / "plots" / "evaluation.json").read_text())
    assert evaluation["metrics"]["accuracy"] >= 0.85


@pytest.mark.tuning
def test_optuna_strategy_tunes_and_evaluates_the_best_trial(breast_cancer_csv: Path, tmp_path: Path) -> None:
    space = {"learning_rate": {"type": "float", "low": 0.003, "high": 0.05, "log": True}}
    params = {
        "data_uri": str(breast_cancer_csv),
        "search_space": [],
        "strategy": "optuna",
        "tuning_space": json.dumps(space),
        "n_trials": 2,
        "sampler": "random",
        "epochs": 2,
        "workers": 1,
    }

    run = run_pipeline_locally(hyperparameter_sweep, params, tmp_path / "root")

    assert "select-best-model" not in run.tasks and "evaluate-classifier" not in run.tasks
    tuned = run.task_dir("tune-optuna")
    board = (tuned / "leaderboard").read_text()
    assert board.count("| complete |") == 2
    best = load_model(tuned / "best_model")
    trials = sorted((tuned / "best_model-study").glob("trial-*/model"))
    assert max(load_model(trial).history[-1]["val_accuracy"] for trial in trials) == best.history[-1]["val_accuracy"]
    evaluation = json.loads((run.task_dir("evaluate-classifier-2") / "plots" / "evaluation.json").read_text())
    assert evaluation["metrics"]["accuracy"] >= 0.85
