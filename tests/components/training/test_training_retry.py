"""A retried training task re-attaches to its job or resumes it; a preempted job checkpoints and resumes.

For `local`, `slurm` (a real one-node cluster) and `queue` (a real scheduler on loopback) the
task's own process is SIGKILLed in the middle of epoch 3 of 5 (what an evicted pipeline pod
is) and the task is run again with the same outputs: it follows the job the first attempt
started, every epoch is counted once, the final parameters are bit-identical to an
uninterrupted run's, and exactly one job ran on the backend.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scheduler_server import ADMIN_TOKEN, training_scheduler
from sklearn.datasets import make_classification
from train_component import start_task, task_arguments

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, SplitFractions, preprocess
from kubeforge.components.training.pytorch.core import TrainInputs, TrainParams, TrainResult, run_place, train_model
from kubeforge.launch.base import JobHandle
from kubeforge.launch.local import LocalBackend
from kubeforge.launch.slurm import SlurmBackend
from kubeforge.scheduler_client import SchedulerClient
from kubeforge.training.engine import EVENTS_LOG, METRICS_LOG

EPOCHS, ROWS = 5, 1_000
QUEUE_TOKEN_ENV = "KUBEFORGE_TEST_QUEUE_TOKEN"
pytestmark = pytest.mark.resume
PARAMS: dict[str, Any] = {
    "workers": 2,
    "nproc_per_node": 2,  # slurm: both on the one node
    "epochs": EPOCHS,
    "batch_size": 4,
    "hidden_layers": [16],
    "learning_rate": 0.01,
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> TrainInputs:
    """Synthetic rows enough for epochs of a few hundred steps: long enough to be interrupted inside."""
    folder = tmp_path_factory.mktemp("retry-data")
    features, labels = make_classification(n_samples=ROWS, n_features=8, n_informative=5, random_state=1)
    pd.DataFrame(features, columns=[f"x{i}" for i in range(8)]).assign(label=labels).to_csv(
        folder / "d.csv", index=False
    )
    out = PreprocessOutputs(*(str(folder / n) for n in ("tr.parquet", "va.parquet", "te.parquet", "p.json", "s.md")))
    preprocess(folder / "d.csv", out, label="label", fractions=SplitFractions(0.1, 0.1))
    return TrainInputs(out.train, out.validation, out.preprocessor)


@pytest.fixture(scope="module")
def straight(inputs: TrainInputs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The uninterrupted run every interrupted one must end identical to."""
    model_dir = tmp_path_factory.mktemp("straight") / "model"
    return train_model(inputs, str(model_dir), TrainParams(**PARAMS)).summary


@pytest.fixture
def queue_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A real scheduler (REST API + dispatcher with its local backend) and a team token for it, in the
    variable the options name (a token is never a pipeline parameter); the task processes inherit it."""
    with training_scheduler(tmp_path / "scheduler") as url, SchedulerClient(url, ADMIN_TOKEN) as admin:
        monkeypatch.setenv(QUEUE_TOKEN_ENV, admin.create_token("ml-team"))
        yield {"url": url, "token_env": QUEUE_TOKEN_ENV, "queue": "train"}


def _team(options: dict[str, str]) -> SchedulerClient:
    return SchedulerClient(options["url"], os.environ[options["token_env"]])


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _wait_for_epochs(run_dir: Path, done: int, task: Any = None) -> None:
    deadline = time.monotonic() + 300
    while len(_lines(run_dir / METRICS_LOG)) < done:
        assert time.monotonic() < deadline, f"no epoch {done} in {run_dir}"
        assert task is None or task.poll() is None, "the first attempt ended before it was killed"
        time.sleep(0.02)


def _kill_task_in_epoch_3(arguments: dict[str, Any], run_dir: Path, log: Path) -> JobHandle:
    """Start the task, SIGKILL its process once epoch 2 is done; returns the handle it recorded."""
    task = start_task(arguments, log)
    _wait_for_epochs(run_dir, 2, task)
    task.send_signal(signal.SIGKILL)
    task.wait()
    return JobHandle.from_json((run_dir / "handle.json").read_text())


def _assert_same_as_straight(result: TrainResult, straight: dict[str, Any]) -> None:
    assert [row["epoch"] for row in result.summary["history"]] == list(range(1, EPOCHS + 1))
    assert result.summary["global_step"] == straight["global_step"]
    assert result.summary["replica_checksums"] == straight["replica_checksums"]


@pytest.mark.parametrize("backend", ["local", "slurm", "queue"])
def test_killed_task_reattaches_to_its_job(
    backend: str, inputs: TrainInputs, straight: dict[str, Any], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    options: dict[str, str] = {}
    if backend == "slurm":
        request.getfixturevalue("slurm")
    if backend == "queue":
        options = request.getfixturevalue("queue_options")
    params = TrainParams(backend=backend, backend_options=json.dumps(options), **PARAMS)
    model_dir, handle_path = tmp_path / "model", tmp_path / "job_handle"
    run_dir = Path(run_place(str(model_dir), "", shared=True))
    first = _kill_task_in_epoch_3(task_arguments(inputs, model_dir, params, handle_path), run_dir, tmp_path / "log")
    assert not model_dir.exists()

    result = train_model(inputs, str(model_dir), params, handle_path=str(handle_path))

    _assert_same_as_straight(result, straight)
    assert JobHandle.from_json(handle_path.read_text()) == first  # the retry followed the first job
    starts = [event for event in _lines(run_dir / EVENTS_LOG) if event["event"] == "start"]
    assert [event["resumed_from_epoch"] for event in starts] == [0]  # one job, never restarted
    if backend == "slurm":
        assert [path.name for path in run_dir.glob("slurm-*.out")] == [f"slurm-{first.id}.out"]
    if backend == "queue":
        with _team(options) as team:
            assert [(job["id"], job["state"], job["attempt"]) for job in team.jobs()] == [
                (int(first.id), "succeeded", 0)
            ]


def test_killed_task_and_job_resume_from_the_checkpoint(
    inputs: TrainInputs, straight: dict[str, Any], tmp_path: Path
) -> None:
    """The pod and the job die together: the retry starts the job again, from the last checkpoint."""
    params = TrainParams(**PARAMS)
    model_dir, handle_path = tmp_path / "model", tmp_path / "job_handle"
    run_dir = Path(run_place(str(model_dir), "", shared=True))
    first = _kill_task_in_epoch_3(task_arguments(inputs, model_dir, params, handle_path), run_dir, tmp_path / "log")
    LocalBackend().cancel(first)

    result = train_model(inputs, str(model_dir), params, handle_path=str(handle_path))

    _assert_same_as_straight(result, straight)
    starts = [event for event in _lines(run_dir / EVENTS_LOG) if event["event"] == "start"]
    first_start, restart = (event["resumed_from_epoch"] for event in starts)  # exactly two starts
    assert first_start == 0 and 2 <= restart < EPOCHS  # from the last checkpoint, not from scratch
    assert JobHandle.from_json(handle_path.read_text()).id != first.id


@pytest.mark.parametrize("backend", ["local", "slurm", "queue"])
def test_sigterm_checkpoints_the_current_step_requeues_and_resumes(
    backend: str, inputs: TrainInputs, straight: dict[str, Any], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    options: dict[str, str] = {}
    if backend == "slurm":
        request.getfixturevalue("slurm")
    if backend == "queue":
        options = request.getfixturevalue("queue_options")
    params = TrainParams(backend=backend, backend_options=json.dumps(options), **PARAMS)
    model_dir = tmp_path / "model"
    run_dir = Path(run_place(str(model_dir), "", shared=True))
    results: list[TrainResult] = []
    task = threading.Thread(target=lambda: results.append(train_model(inputs, str(model_dir), params)))
    task.start()
    _wait_for_epochs(run_dir, 2)
    time.sleep(0.1)  # usually inside epoch 3; wherever it lands, the stop is at the step it found
    handle = JobHandle.from_json((run_dir / "handle.json").read_text())
    if backend == "queue":  # a drained node: SIGTERM to the whole launch, which the scheduler did not send
        launch = tmp_path / "scheduler" / "launches" / f"kf-{handle.id}-0"
        os.killpg(int((launch / "pid").read_text()), signal.SIGTERM)
    else:
        (SlurmBackend() if backend == "slurm" else LocalBackend()).suspend(handle)
    task.join(timeout=300)

    [result] = results
    _assert_same_as_straight(result, straight)
    events = _lines(run_dir / EVENTS_LOG)
    [stopped] = [event for event in events if event["event"] == "preempted"]
    steps_per_epoch = straight["global_step"] // EPOCHS
    assert stopped["global_step"] >= 2 * steps_per_epoch
    restart = [event for event in events if event["event"] == "start"][-1]
    assert restart["resumed_at_step"] == stopped["global_step"]
    if backend == "slurm":  # requeued: the same SLURM job ran again
        assert JobHandle.from_json((run_dir / "handle.json").read_text()).id == handle.id
    if backend == "queue":  # requeued as preempted (no retry was allowed): the same scheduler job, launched again
        with _team(options) as team:
            assert [(job["id"], job["state"], job["attempt"]) for job in team.jobs()] == [
                (int(handle.id), "succeeded", 1)
            ]
