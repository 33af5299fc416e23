"""The training run's configuration, passed to every worker as one JSON document."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from kubeforge.errors import InputError

MIXED_PRECISION = ("no", "bf16", "fp16")
STRATEGIES = ("ddp", "fsdp")
CLASS_WEIGHTINGS = ("none", "balanced", "preprocessor")
REGRESSION_LOSSES = ("mse", "huber")


@dataclass(frozen=True)
class Hyperparameters:
    """The training hyper-parameters: the one table of their names, types, defaults and checks.

    `TrainConfig` (what every worker reads) is these plus the run's places; the training
    component's parameters are these plus the launch's (`components/training/pytorch`, whose
    signature a test keeps equal to this table).
    """

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
    class_weighting: str = "none"
    regression_loss: str = "mse"
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
            "checkpoint_every_steps": (self.checkpoint_every_steps >= 0, "0 (per epoch only) or more"),
            "mixed_precision": (self.mixed_precision in MIXED_PRECISION, f"one of {', '.join(MIXED_PRECISION)}"),
            "strategy": (self.strategy in STRATEGIES, f"one of {', '.join(STRATEGIES)}"),
            "class_weighting": (self.class_weighting in CLASS_WEIGHTINGS, f"one of {', '.join(CLASS_WEIGHTINGS)}"),
            "regression_loss": (self.regression_loss in REGRESSION_LOSSES, f"one of {', '.join(REGRESSION_LOSSES)}"),
        }
        for name, (ok, valid) in checks.items():
            if not ok:
                raise InputError(f"{name} is {getattr(self, name)!r}; it must be {valid}")

    def hyperparameters(self) -> dict[str, Any]:
        """These hyper-parameters by name (of this object or of any class built on this table)."""
        return {item.name: getattr(self, item.name) for item in fields(Hyperparameters)}


@dataclass(frozen=True)
class RunPlaces:
    """Where a run reads and writes: local paths or s3:// / gs:// URIs."""

    train_data: str
    validation_data: str
    preprocessor: str
    model_dir: str
    run_dir: str
    checkpoint_dir: str


@dataclass(frozen=True)
class TrainConfig(Hyperparameters, RunPlaces):
    """Everything a worker needs, identical on every rank: the run's places, then its `Hyperparameters`."""

    process_group_timeout_s: float = 60.0
    epoch_gate: str = ""
    """A folder shared with a tuner: after each epoch but the last, wait for its go-on or stop (training.epoch_gate)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.process_group_timeout_s <= 0:
            raise InputError(f"process_group_timeout_s is {self.process_group_timeout_s!r}; it must be positive")

    def to_json(self, indent: int | None = 2) -> str:
        """The configuration as a JSON document (`indent=None`: one compact line)."""
        separators = (",", ":") if indent is None else None
        return json.dumps(asdict(self), indent=indent, separators=separators)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Rebuild a configuration from `to_json` output."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: object, prefix: str = "") -> TrainConfig:
        """A configuration from its JSON form; unknown or missing fields and wrong types raise InputError
        naming the field (after `prefix`, e.g. "training.")."""
        if not isinstance(data, Mapping):
            raise InputError(f"{prefix or 'config'}: expected an object with the TrainConfig fields")
        known = {item.name: item for item in fields(cls)}
        unknown = sorted(set(map(str, data)) - set(known))
        if unknown:
            raise InputError(f"{prefix}{unknown[0]}: unknown field; valid: {', '.join(known)}")
        missing = [
            name
            for name, item in known.items()
            if name not in data and item.default is MISSING and item.default_factory is MISSING
        ]
        if missing:
            raise InputError(f"{prefix}{missing[0]}: required (missing: {', '.join(missing)})")
        for name, value in data.items():
            _check_type(value, str(known[name].type), f"{prefix}{name}")
        try:
            return cls(**data)
        except InputError as exc:
            raise InputError(f"{prefix}{exc}") from None


def _check_type(value: object, annotation: str, name: str) -> None:
    """Raise InputError unless `value` is a JSON value of the field's annotated type."""
    if annotation == "str":
        ok = isinstance(value, str) and len(value) <= 4096
    elif annotation == "list[int]":
        ok = isinstance(value, list) and len(value) <= 64 and all(_is_int(item) and 0 < item < 2**20 for item in value)
    elif annotation == "int":
        ok = _is_int(value) and abs(value) < 2**53  # type: ignore[arg-type]
    else:  # float
        ok = (_is_int(value) and abs(value) < 2**53) or (isinstance(value, float) and math.isfinite(value))  # type: ignore[arg-type]
    if not ok:
        raise InputError(f"{name}: expected {_TYPE_NAMES.get(annotation, annotation)}, got {value!r:.80}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_TYPE_NAMES = {
    "str": "a string (at most 4096 characters)",
    "list[int]": "a list of at most 64 positive whole numbers",
    "int": "a whole number",
    "float": "a finite number",
}


def parse_hidden_layers(text: str) -> list[int]:
    """Parse hidden layer widths written as `64,32` (the training component's form); an empty string means no
    hidden layer."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise InputError(f"hidden_layers: expected comma-separated integers such as '64,32', got {text!r}") from exc


__all__ = [
    "CLASS_WEIGHTINGS",
    "MIXED_PRECISION",
    "REGRESSION_LOSSES",
    "STRATEGIES",
    "Hyperparameters",
    "RunPlaces",
    "TrainConfig",
    "parse_hidden_layers",
]
