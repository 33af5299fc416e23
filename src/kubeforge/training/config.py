"""The training run's configuration, passed to every worker as one JSON document."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from kubeforge.errors import InputError

MIXED_PRECISION = ("no", "bf16", "fp16")
STRATEGIES = ("ddp", "fsdp")
CLASS_WEIGHTINGS = ("none", "balanced", "preprocessor")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a worker needs; identical on every rank.

    Data, preprocessor, model_dir and checkpoint_dir may be local paths or s3:// / gs:// URIs.
    """

    train_data: str
    validation_data: str
    preprocessor: str
    model_dir: str
    run_dir: str
    checkpoint_dir: str
    model: str = "mlp"
    hidden_layers: list[int] = field(default_factory=lambda: [64, 32])
    dropout: float = 0.1
    epochs: int = 20
    batch_size: int = 32
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    mixed_precision: str = "no"
    strategy: str = "ddp"
    seed: int = 42
    process_group_timeout_s: float = 60.0
    class_weighting: str = "none"
    checkpoint_every_steps: int = 0
    """Also checkpoint every this many optimizer steps inside an epoch (0: at the end of each epoch only)."""

    def __post_init__(self) -> None:
        checks = {
            "epochs": (self.epochs >= 1, "at least 1"),
            "batch_size": (self.batch_size >= 1, "at least 1"),
            "gradient_accumulation_steps": (self.gradient_accumulation_steps >= 1, "at least 1"),
            "learning_rate": (self.learning_rate > 0, "positive"),
            "weight_decay": (self.weight_decay >= 0, "0 or more"),
            "dropout": (0.0 <= self.dropout < 1.0, "in [0, 1)"),
            "process_group_timeout_s": (self.process_group_timeout_s > 0, "positive"),
            "checkpoint_every_steps": (self.checkpoint_every_steps >= 0, "0 (per epoch only) or more"),
            "mixed_precision": (self.mixed_precision in MIXED_PRECISION, f"one of {', '.join(MIXED_PRECISION)}"),
            "strategy": (self.strategy in STRATEGIES, f"one of {', '.join(STRATEGIES)}"),
            "class_weighting": (self.class_weighting in CLASS_WEIGHTINGS, f"one of {', '.join(CLASS_WEIGHTINGS)}"),
        }
        for name, (ok, valid) in checks.items():
            if not ok:
                raise InputError(f"{name} is {getattr(self, name)!r}; it must be {valid}")

    def to_json(self, indent: int | None = 2) -> str:
        """The configuration as a JSON document (`indent=None`: one compact line)."""
        separators = (",", ":") if indent is None else None
        return json.dumps(asdict(self), indent=indent, separators=separators)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Rebuild a configuration from `to_json` output."""
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


__all__ = ["CLASS_WEIGHTINGS", "MIXED_PRECISION", "STRATEGIES", "TrainConfig"]
