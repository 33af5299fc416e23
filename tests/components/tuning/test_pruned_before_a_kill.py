"""A trial pruned just before its task was killed (the gate said stop, the study was not told yet) is
recorded as pruned on the retry, and its job is not started again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from prepared_data import PreparedData

from kubeforge.components.tuning.optuna import core
from kubeforge.components.tuning.optuna.study import TuneParams, opened_study, study_key
from kubeforge.errors import TrainingError
from kubeforge.launch.base import JobHandle
from kubeforge.launch.local import EXIT_CODE_FILE
from kubeforge.launch.shared_filesystem import HANDLE_FILE
from kubeforge.training.epoch_gate import open_gate
from kubeforge.training.preemption import PREEMPTED_EXIT_CODE


def test_a_trial_pruned_before_the_kill_is_not_run_again(prepared: PreparedData, tmp_path: Path) -> None:
    space = json.dumps({"learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "log": True}})
    params = TuneParams(search_space=space, n_trials=1, sampler="random", epochs=3)
    study_dir = tmp_path / "best-study"
    with opened_study(params, study_dir, None) as study:  # what the killed attempt left behind
        trial = study.ask()
        trial.suggest_float("learning_rate", 0.001, 0.1, log=True)
        trial.report(0.9, 1)
    run_dir = study_dir / "trial-0"
    open_gate(run_dir / "gates", 1, go_on=False)
    name = f"kubeforge-trial-{hashlib.sha256(f'{study_key(params, study_dir)}/0'.encode()).hexdigest()[:12]}"
    handle = JobHandle("local", name, "999999999", {"run_dir": str(run_dir), "process_group": 999999999})
    (run_dir / HANDLE_FILE).write_text(handle.to_json())
    (run_dir / EXIT_CODE_FILE).write_text(f"{PREEMPTED_EXIT_CODE}\n")  # the job stopped at the gate

    inputs = core.TuneInputs(str(prepared.train), str(prepared.validation), str(prepared.preprocessor))
    with pytest.raises(TrainingError, match="no trial completed"):
        core.run_study(inputs, study_dir, params)

    final = optuna.load_study(study_name=study_key(params, study_dir), storage=f"sqlite:///{study_dir / 'study.db'}")
    assert [t.state for t in final.trials] == [TrialState.PRUNED]
    assert not (run_dir / "job.log").exists(), "the pruned trial's job was started again"
