"""Training on backends that share this machine's filesystem (`local`, `slurm`, `queue` on a local scheduler).

Inputs are checked here first, the job runs through its backend, and the run summary is read
back from the run directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubeforge import errors
from kubeforge.errors import InputError, TrainingError
from kubeforge.launch.base import LaunchBackend, TrainingJob
from kubeforge.launch.local import LocalBackend
from kubeforge.launch.runner import run_job
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.training.checkpoint import load_checkpoint
from kubeforge.training.config import TrainConfig
from kubeforge.training.data import load_split
from kubeforge.training.engine import SUMMARY_FILE, architecture_of
from kubeforge.training.models import build_model
from kubeforge.training.worker import ERROR_FILE

MAX_LOCAL_WORKERS = 64
HANDLE_FILE = "handle.json"


def check_inputs(config: TrainConfig) -> None:
    """Read both splits, build the model and check any checkpoint once, before a worker starts."""
    preprocessor = FittedPreprocessor.load(config.preprocessor)
    train = load_split(config.train_data, preprocessor, "train_data")
    load_split(config.validation_data, preprocessor, "validation_data")
    out_features = len(preprocessor.classes) if preprocessor.classes else 1
    build_model(config.model, int(train.features.shape[1]), out_features, config.hidden_layers, config.dropout)
    if config.checkpoint_dir:
        load_checkpoint(config.checkpoint_dir, architecture_of(config, preprocessor))


def run_local(config: TrainConfig, workers: int, max_restarts: int = 0, job_name: str = "train") -> dict[str, Any]:
    """Run the training job under torchrun with `workers` processes; returns the run summary."""
    if not 1 <= workers <= MAX_LOCAL_WORKERS:
        raise InputError(f"workers is {workers}; the local backend runs 1 to {MAX_LOCAL_WORKERS} processes")
    job = TrainingJob(name=job_name, config=config, nproc_per_node=workers, max_restarts=max_restarts)
    return run_on_shared_filesystem(LocalBackend(), job, poll_s=0.5)


def run_on_shared_filesystem(
    backend: LaunchBackend[TrainingJob], job: TrainingJob, poll_s: float = 1.0, also_record_to: Sequence[str] = ()
) -> dict[str, Any]:
    """Check inputs, run the job (re-attaching if its handle is recorded in the run folder), return its summary.

    The workers' output is streamed to stdout. A worker's own error (bad data, say) is raised
    as the matching kubeforge error; anything else as TrainingError with the job's reason.
    """
    check_inputs(job.config)
    run_dir = Path(job.config.run_dir)
    try:
        run_job(backend, job, handle_path=run_dir / HANDLE_FILE, poll_s=poll_s, also_record_to=also_record_to)
    except TrainingError as exc:
        raise _worker_error(run_dir) or exc from None
    return dict(json.loads((run_dir / SUMMARY_FILE).read_text()))


def _worker_error(run_dir: Path) -> errors.KubeforgeError | None:
    error_file = run_dir / ERROR_FILE
    if not error_file.is_file():
        return None
    reported = json.loads(error_file.read_text())
    error_class = getattr(errors, reported["type"], TrainingError)
    message = f"training failed on rank {reported['rank']}: {reported['message']}"
    return error_class(message)


__all__ = ["HANDLE_FILE", "MAX_LOCAL_WORKERS", "check_inputs", "run_local", "run_on_shared_filesystem"]
