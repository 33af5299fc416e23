"""Tuning trials through the scheduler's queue (`backend="queue"`): a real scheduler server whose
dispatcher runs each trial under torchrun; trials run side by side and a pruned one stops at its gate."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from optuna.trial import TrialState
from prepared_data import PreparedData
from scheduler_server import ADMIN_TOKEN, training_scheduler

from kubeforge.components.tuning.optuna import core
from kubeforge.components.tuning.optuna.study import TuneParams
from kubeforge.scheduler_client import SchedulerClient


@pytest.mark.tuning
def test_parallel_trials_through_the_queue_and_a_pruned_one_stops(
    prepared: PreparedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with training_scheduler(tmp_path / "scheduler") as url:
        with SchedulerClient(url, ADMIN_TOKEN) as admin:
            token = admin.create_token("ml-team")
        monkeypatch.setenv("KUBEFORGE_SCHEDULER_URL", url)
        monkeypatch.setenv("KUBEFORGE_TOKEN", token)
        # grid seed 1 visits 0.05 and 0.02 (side by side), then 1e-7, judged against those two after epoch 1
        space = json.dumps({"learning_rate": {"type": "categorical", "choices": [0.05, 1e-7, 0.02]}})
        params = TuneParams(
            search_space=space,
            n_trials=3,
            sampler="grid",
            startup_trials=1,
            epochs=3,
            seed=1,
            backend="queue",
            backend_options=json.dumps({"queue": "train"}),
            parallel_trials=2,
        )
        log = io.StringIO()
        inputs = core.TuneInputs(str(prepared.train), str(prepared.validation), str(prepared.preprocessor))
        result = core.run_study(inputs, core.study_dir_for(str(tmp_path / "best")), params, log=log)
        with SchedulerClient(url, token) as team:
            jobs = team.jobs(active_only=False)

    lines = log.getvalue().splitlines()
    first_end = next(index for index, line in enumerate(lines) if "complete after" in line or "pruned after" in line)
    assert sum("as job" in line for line in lines[:first_end]) == 2, lines  # two trials in flight at once
    assert len(jobs) == 3 and {job["spec"]["queue"] for job in jobs} == {"train"}
    trials = sorted(result.study.trials, key=lambda trial: trial.number)
    assert [trial.params["learning_rate"] for trial in trials] == [0.05, 0.02, 1e-7], "grid order changed"
    assert [trial.state for trial in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    for trial, epochs in zip(trials, (3, 3, 1), strict=True):
        rows = (tmp_path / "best-study" / f"trial-{trial.number}" / "metrics.jsonl").read_text().splitlines()
        assert len(rows) == epochs, (trial.number, rows)
