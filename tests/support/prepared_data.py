"""The preprocessed dataset the tests share, and models trained on it by the real engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class PreparedData:
    """A preprocessed breast cancer dataset: raw CSV, three splits and the fitted preprocessor."""

    csv: Path
    train: Path
    validation: Path
    test: Path
    preprocessor: Path
    statistics: Path


class Splits(Protocol):
    """Preprocessing's outputs that training reads (PreparedData and PreprocessOutputs both have them)."""

    @property
    def train(self) -> Path | str: ...
    @property
    def validation(self) -> Path | str: ...
    @property
    def preprocessor(self) -> Path | str: ...


def train_model(prepared: Splits, run_dir: Path, **settings: Any) -> Path:
    """Train one local worker on `prepared` into `run_dir`; `settings` override TrainConfig fields.

    The run summary is `run_dir / "summary.json"`.
    Returns the model directory.
    """
    from kubeforge.launch.shared_filesystem import run_local
    from kubeforge.training.config import TrainConfig

    config = TrainConfig(
        train_data=str(prepared.train),
        validation_data=str(prepared.validation),
        preprocessor=str(prepared.preprocessor),
        model_dir=str(run_dir / "model"),
        run_dir=str(run_dir),
        checkpoint_dir=str(run_dir / "checkpoints"),
        **settings,
    )
    run_local(config, workers=1)
    return run_dir / "model"


__all__ = ["PreparedData", "Splits", "train_model"]
