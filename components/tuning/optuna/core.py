"""`tuning/optuna`: an Optuna study whose trials are training jobs, pruned between epochs.

Each trial is one job on a training backend that shares this task's filesystem (local by default,
the scheduler's queue for parallel trials). After every epoch but the last the job waits at its
epoch gate; the tuner reads the epoch's validation metric from the run's metrics log, reports it to
the study and answers go on, or stop when the pruner says so: a pruned trial runs no further epoch.
Study state lives in SQLite in `<best_model>-study/` (or PostgreSQL) and every trial's run folder
beside it, so a retried task loads the study, re-attaches to (or resumes) the trials that were
running and never runs a finished trial again.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import TrialState

from kubeforge.artifacts import upload_dir
from kubeforge.errors import InputError, KubeforgeError, TrainingError
from kubeforge.launch import create_backend
from kubeforge.launch.base import JobHandle, JobState, LaunchBackend, TrainingJob
from kubeforge.launch.runner import recorded_handle, submit_or_attach
from kubeforge.launch.shared_filesystem import HANDLE_FILE, check_inputs
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.training.config import TrainConfig
from kubeforge.training.engine import METRICS_LOG
from kubeforge.training.epoch_gate import STOP, answered, gate_file, open_gate

from .search_space import SearchSpace, as_config_values, parse_search_space
from .study import TuneParams, opened_study, study_key

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
POLL_S = 0.05


@dataclass(frozen=True)
class TuneInputs:
    """The preprocessed splits every trial trains on (local paths)."""

    train_data: str
    validation_data: str
    preprocessor: str


@dataclass
class _Trial:
    """A trial whose job is running: the job, its handle and the epochs already reported."""

    trial: optuna.trial.Trial
    job: TrainingJob
    handle: JobHandle
    reported: set[int] = field(default_factory=set)

    @property
    def run_dir(self) -> Path:
        """The trial's run folder (log, metrics, checkpoints, gates, model)."""
        return Path(self.job.config.run_dir)


@dataclass(frozen=True)
class StudyResult:
    """The finished study and where the best trial's model is."""

    study: optuna.Study
    best_model_dir: Path

    @property
    def counts(self) -> dict[str, int]:
        """Trials per final state (complete, pruned, fail)."""
        trials = self.study.get_trials(deepcopy=False)
        return {state.name.lower(): sum(t.state is state for t in trials) for state in FINISHED}


def study_dir_for(best_model_dir: str) -> Path:
    """Where the study keeps its SQLite file and trial runs: derived from the output, found again on retry."""
    return Path(f"{best_model_dir.rstrip('/')}-study")


def run_study(inputs: TuneInputs, study_dir: Path, params: TuneParams, log: TextIO | None = None) -> StudyResult:
    """Run (or continue) the study until `n_trials` trials have finished; InputError before any trial
    starts for a bad search space or parameter, TrainingError when no trial completed."""
    space = parse_search_space(params.search_space)
    fixed = _fixed_values(params, space)
    grid = space.grid() if params.sampler == "grid" else None
    budget = min(params.n_trials, _grid_size(grid)) if grid is not None else params.n_trials
    _check_metric(params.metric, inputs.preprocessor)
    backend = create_backend(params.backend, params.json_object("backend_options"))
    with opened_study(params, study_dir, grid) as study:
        _Tuner(inputs, study_dir, params, space, fixed, backend, study, log or sys.stdout).run(budget)
        trials = study.get_trials(deepcopy=False)
    if not any(trial.state is TrialState.COMPLETE for trial in trials):
        raise TrainingError(
            f"no trial completed ({len(trials)} pruned or failed); see the trial logs under {study_dir}"
        )
    return StudyResult(study, study_dir / f"trial-{study.best_trial.number}" / "model")


def publish_best(result: StudyResult, best_model_dir: str) -> None:
    """Copy the best trial's Model directory to the output."""
    upload_dir(result.best_model_dir, best_model_dir)


class _Tuner:
    """Starts trials up to the parallel limit, answers their epoch gates, tells the study how they ended."""

    def __init__(
        self,
        inputs: TuneInputs,
        study_dir: Path,
        params: TuneParams,
        space: SearchSpace,
        fixed: dict[str, Any],
        backend: LaunchBackend[TrainingJob],
        study: optuna.Study,
        log: TextIO,
    ) -> None:
        self.inputs, self.study_dir, self.params, self.space = inputs, study_dir, params, space
        self.fixed, self.backend, self.study, self.log = fixed, backend, study, log
        self.key = study_key(params, study_dir)

    def run(self, budget: int) -> None:
        """Resume the trials a killed attempt left running, then start new ones until `budget` finished."""
        trials = self.study.get_trials(deepcopy=False)
        finished = sum(trial.state in FINISHED for trial in trials)
        running = [
            self._launch(optuna.trial.Trial(self.study, t._trial_id), set(t.intermediate_values))  # no public id
            for t in trials
            if t.state is TrialState.RUNNING
        ]
        try:
            while running or finished < budget:
                while len(running) < self.params.parallel_trials and finished + len(running) < budget:
                    running.append(self._launch(self.study.ask(), set()))
                for active in list(running):
                    state = self._advance(active)
                    if state is not None:
                        running.remove(active)
                        finished += 1
                        self._say(
                            f"trial {active.trial.number}: {state.name.lower()} after {len(active.reported)} epochs"
                        )
                time.sleep(POLL_S)
        except KubeforgeError:  # a refused input: no trial can succeed, so none is left running (or to resume)
            for active in running:
                self.backend.cancel(active.handle)
                self.study.tell(active.trial, state=TrialState.FAIL)
            raise

    def _launch(self, trial: optuna.trial.Trial, reported: set[int]) -> _Trial:
        try:
            return self._submit(trial, reported)
        except KubeforgeError:
            self.study.tell(trial, state=TrialState.FAIL)
            raise

    def _submit(self, trial: optuna.trial.Trial, reported: set[int]) -> _Trial:
        run_dir = self.study_dir / f"trial-{trial.number}"
        values = {
            **self.fixed,
            **self.space.suggest(trial),
            "train_data": self.inputs.train_data,
            "validation_data": self.inputs.validation_data,
            "preprocessor": self.inputs.preprocessor,
            "model_dir": str(run_dir / "model"),
            "run_dir": str(run_dir),
            "checkpoint_dir": str(run_dir / "checkpoints"),
            "epoch_gate": str(run_dir / "gates"),
            "epochs": self.params.epochs,
        }
        config = TrainConfig.from_dict(values)
        check_inputs(config)
        local = self.params.backend == "local"
        job = TrainingJob(
            name=f"kubeforge-trial-{hashlib.sha256(f'{self.key}/{trial.number}'.encode()).hexdigest()[:12]}",
            config=config,
            nodes=1 if local else self.params.workers,
            nproc_per_node=self.params.workers if local else 1,
            options=self.params.json_object("backend_options"),
        )
        handle_path = run_dir / HANDLE_FILE
        # a trial pruned just before a kill: its job stopped at the gate, and is not started again
        stopped = recorded_handle(self.backend, job, str(handle_path)) if _pruned(config.epoch_gate, reported) else None
        handle = stopped or submit_or_attach(self.backend, job, handle_path)
        self._say(f"trial {trial.number}: {json.dumps(trial.params)} as job {job.name}")
        return _Trial(trial, job, handle, reported)

    def _advance(self, active: _Trial) -> TrialState | None:
        """Report new epochs and answer their gates; once the job has ended, tell the study (its state)."""
        gates = active.job.config.epoch_gate
        for row in _metric_rows(active.run_dir / METRICS_LOG):
            epoch = int(row["epoch"])
            if epoch not in active.reported:
                active.trial.report(float(row[self.params.metric]), epoch)
                active.reported.add(epoch)
            if epoch < self.params.epochs and not answered(gates, epoch):
                prune = active.trial.should_prune()
                open_gate(gates, epoch, go_on=not prune)
                if prune:  # it ends checkpointed at the gate; cancelled too, so no scheduler requeues it
                    self.backend.cancel(active.handle)  # as a self-preempted job (exit 143)
        status = self.backend.status(active.handle)
        if not status.state.terminal:
            return None
        if status.state is JobState.SUCCEEDED:
            return self._tell(active, TrialState.COMPLETE, _final_value(active.run_dir / "model", self.params.metric))
        if _pruned(gates, active.reported):  # ended after the stop and the cancel, whatever its state says
            return self._tell(active, TrialState.PRUNED)
        if status.state is JobState.PREEMPTED:  # stopped for another reason: resume it from its checkpoint
            active.handle = submit_or_attach(self.backend, active.job, active.run_dir / HANDLE_FILE)
            return None
        self._say(f"trial {active.trial.number} failed: {status.message}"[:2000])
        return self._tell(active, TrialState.FAIL)

    def _tell(self, active: _Trial, state: TrialState, value: float | None = None) -> TrialState:
        self.study.tell(active.trial, value, state=state)
        return state

    def _say(self, line: str) -> None:
        self.log.write(line + "\n")
        self.log.flush()


def _fixed_values(params: TuneParams, space: SearchSpace) -> dict[str, Any]:
    """fixed_params: TrainConfig fields every trial shares, checked like the search space's bounds."""
    fixed = params.json_object("fixed_params")
    searched = {parameter.name for parameter in space.parameters}
    for name in fixed:
        if name in searched:
            raise InputError(f"fixed_params.{name}: also in search_space; keep it in one of them")
    placeholders = dict.fromkeys(("train_data", "validation_data", "preprocessor", "model_dir", "run_dir"), "")
    values = as_config_values(fixed)
    TrainConfig.from_dict({**placeholders, "checkpoint_dir": "", **values}, prefix="fixed_params.")
    if set(values) & {"epochs", "epoch_gate", *placeholders}:
        raise InputError("fixed_params: places and the epoch budget are set by the study (use `epochs`)")
    return values


def _check_metric(metric: str, preprocessor: str) -> None:
    """The metric must be one training records for this task: val_accuracy (classification), val_rmse (regression)."""
    task = FittedPreprocessor.load(preprocessor).task
    recorded = ("val_loss", "val_accuracy") if task == "classification" else ("val_loss", "val_rmse")
    if metric not in recorded:
        raise InputError(
            f"metric is {metric!r}, which a {task} training does not record; use one of {', '.join(recorded)}"
        )


def _grid_size(grid: dict[str, list[Any]] | None) -> int:
    size = 1
    for values in (grid or {}).values():
        size *= len(values)
    return size


def _metric_rows(path: Path) -> list[dict[str, Any]]:
    """The epochs logged so far (a line being written is skipped until it is complete)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def _final_value(model_dir: Path, metric: str) -> float:
    history = (model_dir / "metrics_history.jsonl").read_text().splitlines()
    return float(json.loads(history[-1])[metric])


def _pruned(gates: str, reported: set[int]) -> bool:
    return any(gate_file(gates, epoch).read_text().strip() == STOP for epoch in reported if answered(gates, epoch))


__all__ = ["StudyResult", "TuneInputs", "publish_best", "run_study", "study_dir_for"]
