"""The `local` launch backend: torchrun with N worker processes on this machine."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubeforge import errors
from kubeforge.errors import InputError, TrainingError
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.training.config import TrainConfig
from kubeforge.training.data import load_split
from kubeforge.training.engine import SUMMARY_FILE
from kubeforge.training.worker import ERROR_FILE

MAX_LOCAL_WORKERS = 64
_LOG_TAIL_LINES = 40


def check_inputs(config: TrainConfig) -> None:
    """Read both splits through the preprocessor once, so bad input fails before any worker starts."""
    preprocessor = FittedPreprocessor.load(config.preprocessor)
    load_split(config.train_data, preprocessor, "train_data")
    load_split(config.validation_data, preprocessor, "validation_data")


def run_local(config: TrainConfig, workers: int, max_restarts: int = 0) -> dict[str, Any]:
    """Run the training job under torchrun with `workers` processes; returns the run summary.

    The workers' output is streamed to this process's stdout. On failure the error a worker
    reported (or the tail of the log) is raised as the matching kubeforge error.
    """
    if not 1 <= workers <= MAX_LOCAL_WORKERS:
        raise InputError(f"workers is {workers}; the local backend runs 1 to {MAX_LOCAL_WORKERS} processes")
    if max_restarts < 0:
        raise InputError(f"max_restarts is {max_restarts}; it must be 0 or more")
    check_inputs(config)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "train_config.json"
    config.save(config_path)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        f"--nproc-per-node={workers}",
        f"--max-restarts={max_restarts}",
        "--monitor-interval=0.5",
        "-m",
        "kubeforge.training.worker",
        str(config_path),
    ]
    threads = max(1, (os.cpu_count() or 1) // workers)
    return_code, tail = _stream(command, {"OMP_NUM_THREADS": str(threads)})
    if return_code != 0:
        raise _failure(run_dir, return_code, tail)
    return dict(json.loads((run_dir / SUMMARY_FILE).read_text()))


def _stream(command: list[str], extra_env: dict[str, str]) -> tuple[int, list[str]]:
    tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra_env}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            tail.append(line.rstrip("\n"))
        return process.wait(), list(tail)


def _failure(run_dir: Path, return_code: int, tail: list[str]) -> errors.KubeforgeError:
    error_file = run_dir / ERROR_FILE
    if error_file.is_file():
        reported = json.loads(error_file.read_text())
        error_class = getattr(errors, reported["type"], TrainingError)
        return error_class(f"training failed on rank {reported['rank']}: {reported['message']}")
    log = "\n".join(tail)
    return TrainingError(f"training failed (torchrun exit code {return_code}); last output:\n{log}")


__all__ = ["MAX_LOCAL_WORKERS", "check_inputs", "run_local"]
