"""The training run's configuration, passed to every worker as one JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kubeforge.errors import InputError


@dataclass(frozen=True)
class TrainConfig:
    """Everything a worker needs; identical on every rank."""

    train_data: str
    validation_data: str
    preprocessor: str
    model_dir: str
    run_dir: str
    checkpoint_dir: str
    hidden_layers: list[int] = field(default_factory=lambda: [64, 32])
    dropout: float = 0.1
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 42
    process_group_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "weight_decay": self.weight_decay >= 0,
            "dropout": 0.0 <= self.dropout < 1.0,
            "process_group_timeout_s": self.process_group_timeout_s > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"{name} is {getattr(self, name)!r}; see the component README for valid ranges")

    def save(self, path: Path) -> None:
        """Write the configuration for the workers."""
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Read a configuration written by `save`."""
        return cls(**json.loads(path.read_text()))


__all__ = ["TrainConfig"]
