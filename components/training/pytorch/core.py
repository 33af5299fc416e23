"""Training core: turns component parameters into a training run on the chosen backend.

Only the `local` backend (torchrun on this machine) is available in this version; cluster
backends (PyTorchJob, TrainJob, Vertex AI, SLURM) plug in behind the same parameters.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeforge.artifacts import atomic_output_dir
from kubeforge.errors import InputError
from kubeforge.training.config import TrainConfig
from kubeforge.training.launch_local import run_local
from kubeforge.training.models import parse_hidden_layers

BACKENDS = ("local",)


@dataclass(frozen=True)
class TrainInputs:
    """Paths of the three artifacts training reads."""

    train_data: str
    validation_data: str
    preprocessor: str


@dataclass(frozen=True)
class TrainParams:
    """The component's parameters, identical across backends."""

    backend: str = "local"
    workers: int = 2
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    hidden_layers: str = "64,32"
    dropout: float = 0.1
    seed: int = 42
    checkpoint_dir: str = ""
    max_restarts: int = 0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InputError(f"backend is {self.backend!r}; valid backends in this version: {', '.join(BACKENDS)}")


@dataclass
class TrainResult:
    """What a finished run reports: final metrics, the summary and the model's metadata."""

    final_metrics: dict[str, float]
    summary: dict[str, Any]
    model_metadata: dict[str, Any] = field(default_factory=dict)


def train_model(inputs: TrainInputs, model_dir: str, params: TrainParams) -> TrainResult:
    """Run training and publish the Model directory at `model_dir` only if the run succeeds."""
    with tempfile.TemporaryDirectory(prefix="kubeforge-train-") as scratch:
        run_dir = Path(scratch)
        staging = run_dir / "model"
        config = TrainConfig(
            train_data=inputs.train_data,
            validation_data=inputs.validation_data,
            preprocessor=inputs.preprocessor,
            model_dir=str(staging),
            run_dir=str(run_dir),
            checkpoint_dir=params.checkpoint_dir or str(run_dir / "checkpoints"),
            hidden_layers=parse_hidden_layers(params.hidden_layers),
            dropout=params.dropout,
            epochs=params.epochs,
            batch_size=params.batch_size,
            learning_rate=params.learning_rate,
            weight_decay=params.weight_decay,
            seed=params.seed,
        )
        summary = run_local(config, workers=params.workers, max_restarts=params.max_restarts)
        with atomic_output_dir(model_dir) as published:
            shutil.copytree(staging, published, dirs_exist_ok=True)
    last = summary["history"][-1] if summary["history"] else {}
    final_metrics = {k: float(v) for k, v in last.items() if k != "epoch"}
    metadata = {
        "framework": "pytorch",
        "format": "kubeforge.model/v1",
        "world_size": summary["world_size"],
        "epochs": summary["epochs"],
        "resumed_from_epoch": summary["resumed_from_epoch"],
    }
    return TrainResult(final_metrics=final_metrics, summary=summary, model_metadata=metadata)


__all__ = ["BACKENDS", "TrainInputs", "TrainParams", "TrainResult", "train_model"]
