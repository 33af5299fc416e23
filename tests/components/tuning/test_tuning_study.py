"""Optuna studies whose trials are real training jobs on the local backend (torchrun workers).

Pruning is proved by the epochs the pruned trial's job actually trained; a study whose task is
SIGKILLed mid-study continues on the rerun without running a finished trial again.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState
from prepared_data import PreparedData
from tune_component import start_tuning

from kubeforge.components.tuning.optuna import core, report
from kubeforge.components.tuning.optuna.study import TuneParams
from kubeforge.model_format import load_model
from kubeforge.training.epoch_gate import gate_file

GOOD_AND_BAD = json.dumps({"learning_rate": {"type": "categorical", "choices": [0.05, 1e-7]}})
EPOCHS = 3


def _inputs(prepared: PreparedData) -> core.TuneInputs:
    return core.TuneInputs(str(prepared.train), str(prepared.validation), str(prepared.preprocessor))


def _epochs_trained(run_dir: Path) -> list[int]:
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(row)["epoch"] for row in rows]


def _job_starts(run_dir: Path) -> int:
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return sum(event["event"] == "start" for event in events)


def test_a_trial_worse_than_the_median_after_epoch_1_stops_there(prepared: PreparedData, tmp_path: Path) -> None:
    # seed 1 makes the grid visit the good learning rate first: the bad one is then judged after epoch 1
    params = TuneParams(search_space=GOOD_AND_BAD, n_trials=2, sampler="grid", startup_trials=1, epochs=EPOCHS, seed=1)
    best_model = tmp_path / "best"
    result = core.run_study(_inputs(prepared), core.study_dir_for(str(best_model)), params)

    good, bad = sorted(result.study.trials, key=lambda trial: trial.number)
    assert (good.params, bad.params) == ({"learning_rate": 0.05}, {"learning_rate": 1e-7}), "grid order changed"
    study_dir = tmp_path / "best-study"
    assert good.state is TrialState.COMPLETE and _epochs_trained(study_dir / "trial-0") == [1, 2, 3]
    assert bad.state is TrialState.PRUNED
    assert _epochs_trained(study_dir / "trial-1") == [1], "the pruned trial's job trained past epoch 1"
    assert gate_file(study_dir / "trial-1" / "gates", 1).read_text() == "stop"
    assert not (study_dir / "trial-1" / "model").exists()
    assert bad.intermediate_values[1] > good.intermediate_values[1]
    assert result.counts == {"complete": 1, "pruned": 1, "fail": 0}

    core.publish_best(result, str(best_model))
    model = load_model(best_model)
    assert [row["epoch"] for row in model.history] == [1, 2, 3]
    assert model.history[-1]["val_loss"] == pytest.approx(good.value)
    features = torch.zeros(2, len(model.preprocessor.output_columns))
    assert model.module(features).shape == (2, 2)

    report.write_report(result.study, "val_loss", str(tmp_path / "report"))
    board = (tmp_path / "report" / report.LEADERBOARD_MD).read_text().splitlines()
    assert board[4].startswith("| 1 | 0 | complete |") and board[5].startswith("| 2 | 1 | pruned |")
    assert (tmp_path / "report" / report.HISTORY_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.resume
def test_a_killed_study_resumes_without_rerunning_finished_trials(prepared: PreparedData, tmp_path: Path) -> None:
    space = json.dumps({"learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "log": True}})
    params = {"search_space": space, "n_trials": 3, "sampler": "random", "pruner": "none", "epochs": 2, "seed": 3}
    best_model = tmp_path / "best"
    arguments = {"inputs": list(map(str, _inputs(prepared).__dict__.values())), "best_model": str(best_model)}
    arguments["params"] = params
    study_dir = tmp_path / "best-study"
    storage = f"sqlite:///{study_dir / 'study.db'}"

    task = start_tuning(arguments, tmp_path / "task.log")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and task.poll() is None:
        if (study_dir / "trial-1" / "metrics.jsonl").is_file():  # trial 0 done, trial 1 mid-run
            break
        time.sleep(0.05)
    assert task.poll() is None, (tmp_path / "task.log").read_text()[-3000:]
    task.send_signal(signal.SIGKILL)
    task.wait()
    killed = optuna.load_study(study_name=None, storage=storage)
    assert [t.state for t in killed.trials] == [TrialState.COMPLETE, TrialState.RUNNING]

    rerun = start_tuning(arguments, tmp_path / "task.log")
    assert rerun.wait(timeout=300) == 0, (tmp_path / "task.log").read_text()[-3000:]
    final = optuna.load_study(study_name=None, storage=storage)
    assert [t.state for t in final.trials] == [TrialState.COMPLETE] * 3
    assert [t.number for t in final.trials] == [0, 1, 2]
    assert _job_starts(study_dir / "trial-0") == 1, "the finished trial ran again"
    assert _epochs_trained(study_dir / "trial-0") == [1, 2]
    assert _job_starts(study_dir / "trial-1") == 1, "the running trial was started again, not re-attached"
    assert final.trials[1].params == killed.trials[1].params
    assert load_model(best_model).history[-1]["val_loss"] == pytest.approx(final.best_value)
