"""A worker killed with SIGKILL mid-epoch: torchrun restarts the group, training resumes from the
last checkpoint and ends with exactly the steps of an uninterrupted run."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import make_classification

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, SplitFractions, preprocess
from kubeforge.launch.base import TrainingJob
from kubeforge.launch.local import LocalBackend, worker_processes
from kubeforge.launch.shared_filesystem import run_on_shared_filesystem
from kubeforge.launch.slurm import SlurmBackend
from kubeforge.training.config import TrainConfig
from kubeforge.training.engine import EVENTS_LOG, METRICS_LOG

ROWS, BATCH, EPOCHS, WORKERS = 30_000, 8, 3, 2


@pytest.fixture(scope="module")
def larger_data(tmp_path_factory: pytest.TempPathFactory) -> PreprocessOutputs:
    """30,000 synthetic rows, so an epoch lasts long enough to be interrupted in its middle."""
    folder = tmp_path_factory.mktemp("larger")
    features, labels = make_classification(n_samples=ROWS, n_features=12, n_informative=6, random_state=0)
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(12)]).assign(label=labels)
    frame.to_csv(folder / "data.csv", index=False)
    outputs = PreprocessOutputs(
        *(str(folder / name) for name in ("tr.parquet", "va.parquet", "te.parquet", "p.json", "s.md"))
    )
    preprocess(folder / "data.csv", outputs, label="label", fractions=SplitFractions(0.1, 0.1))
    return outputs


@pytest.mark.parametrize("backend", ["local", "slurm"])
def test_sigkilled_worker_resumes_from_checkpoint(
    larger_data: PreprocessOutputs, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    run_dir = tmp_path / "run"
    config = TrainConfig(
        train_data=larger_data.train,
        validation_data=larger_data.validation,
        preprocessor=larger_data.preprocessor,
        model_dir=str(run_dir / "model"),
        run_dir=str(run_dir),
        checkpoint_dir=str(tmp_path / "ckpt"),
        hidden_layers=[32],
        epochs=EPOCHS,
        batch_size=BATCH,
    )
    if backend == "slurm":
        request.getfixturevalue("slurm")
    launcher = SlurmBackend() if backend == "slurm" else LocalBackend()
    job = TrainingJob(name="elastic", config=config, nproc_per_node=WORKERS, max_restarts=2)
    result: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: result.update(run_on_shared_filesystem(launcher, job, poll_s=0.5)))
    runner.start()
    metrics = run_dir / METRICS_LOG
    deadline = time.monotonic() + 240
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # well inside epoch 2
    epochs_done_at_kill = metrics.read_text().count("\n")
    pids = worker_processes(run_dir)
    while 1 not in pids and time.monotonic() < deadline:
        pids = worker_processes(run_dir)
    os.kill(pids[1], signal.SIGKILL)
    killed_at = time.time()
    runner.join(timeout=300)

    assert epochs_done_at_kill == 1
    train_rows = len(pd.read_parquet(larger_data.train))
    steps_per_epoch = math.ceil(math.ceil(train_rows / WORKERS) / BATCH)
    assert result["attempt"] == 1
    assert result["resumed_from_epoch"] == 1
    assert result["global_step"] == EPOCHS * steps_per_epoch
    assert [row["epoch"] for row in result["history"]] == [1, 2, 3]
    assert len(set(result["replica_checksums"])) == 1
    events = [json.loads(line) for line in (run_dir / EVENTS_LOG).read_text().splitlines()]
    restart = next(event for event in events if event["event"] == "start" and event["attempt"] == 1)
    assert restart["resumed_from_epoch"] == 1
    assert restart["time"] > killed_at
