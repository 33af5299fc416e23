"""The search space of a tuning study: JSON ranges over TrainConfig fields, checked strictly.

    {"learning_rate": {"type": "float", "low": 1e-4, "high": 0.1, "log": true},
     "batch_size": {"type": "int", "low": 16, "high": 128, "step": 16},
     "hidden_layers": {"type": "categorical", "choices": ["16", "64,32"]}}

`float` and `int` ranges (`log` for a log scale, `step` for a grid) apply to numeric fields;
`categorical` lists the choices of any field (hidden_layers as "64,32"). Every bound and choice is
checked by building a TrainConfig with it, so a trial never starts with a value training refuses.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any

import optuna

from kubeforge.errors import InputError
from kubeforge.training.config import TrainConfig, parse_hidden_layers

NOT_TUNABLE = (
    "train_data",
    "validation_data",
    "preprocessor",
    "model_dir",
    "run_dir",
    "checkpoint_dir",
    "epochs",
    "process_group_timeout_s",
    "checkpoint_every_steps",
    "epoch_gate",
)
"""TrainConfig fields a study does not search: places, the epoch budget (the study's `epochs`), plumbing."""
TUNABLE = tuple(item.name for item in fields(TrainConfig) if item.name not in NOT_TUNABLE)
_FIELD_TYPES = {item.name: str(item.type) for item in fields(TrainConfig)}
_KEYS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"}}
_KEYS["categorical"] = {"type", "choices"}
MAX_CHOICES = 256
MAX_GRID_POINTS = 10_000
_PLACEHOLDER = dict.fromkeys(
    ("train_data", "validation_data", "preprocessor", "model_dir", "run_dir", "checkpoint_dir"), ""
)


@dataclass(frozen=True)
class Parameter:
    """One searched field: a numeric range (with log scale or grid step) or a list of choices."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.trial.Trial) -> Any:
        """Draw this field's value for `trial` (a resumed trial reads back the value it drew before)."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[Any]:
        """Every value of this field the grid sampler visits (choices, or low to high by `step`)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.step is None:
            raise InputError(
                f"search_space.{self.name}: the grid sampler needs a `step` for a {self.kind} range (or `choices`)"
            )
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        values = [self.low + index * self.step for index in range(count)]
        return [int(value) for value in values] if self.kind == "int" else values


@dataclass(frozen=True)
class SearchSpace:
    """The searched fields, in the order given."""

    parameters: tuple[Parameter, ...]

    def suggest(self, trial: optuna.trial.Trial) -> dict[str, Any]:
        """One value per field for `trial`, as TrainConfig keyword arguments."""
        return as_config_values({parameter.name: parameter.suggest(trial) for parameter in self.parameters})

    def grid(self) -> dict[str, list[Any]]:
        """The grid sampler's search space; refused when it has more than MAX_GRID_POINTS points."""
        grid = {parameter.name: parameter.grid() for parameter in self.parameters}
        if math.prod(len(values) for values in grid.values()) > MAX_GRID_POINTS:
            raise InputError(f"search_space: the grid has more than {MAX_GRID_POINTS} points; use larger steps")
        return grid


def parse_search_space(text: str) -> SearchSpace:
    """Parse and check the search space JSON; InputError naming the field and the fix otherwise."""
    example = '{"learning_rate": {"type": "float", "low": 0.0001, "high": 0.1, "log": true}}'
    try:
        document = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise InputError(f"search_space: not valid JSON ({exc.msg}); e.g. {example}") from exc
    if not isinstance(document, dict):
        raise InputError(f"search_space: expected a JSON object of field ranges, e.g. {example}")
    if not document:
        raise InputError(f"search_space: empty; give at least one field to search, e.g. {example}")
    return SearchSpace(tuple(_parameter(str(name), spec) for name, spec in document.items()))


def as_config_values(values: dict[str, Any]) -> dict[str, Any]:
    """Sampled values as TrainConfig keyword arguments (hidden_layers "64,32" -> [64, 32])."""
    if "hidden_layers" in values:
        values = {**values, "hidden_layers": parse_hidden_layers(str(values["hidden_layers"]))}
    return values


def _parameter(name: str, spec: object) -> Parameter:
    where = f"search_space.{name}"
    if name not in TUNABLE:
        raise InputError(f"{where}: not a field a study can search; tunable fields: {', '.join(TUNABLE)}")
    if not isinstance(spec, dict) or spec.get("type") not in _KEYS:
        raise InputError(f'{where}: expected an object with "type": one of {", ".join(_KEYS)}')
    kind = str(spec["type"])
    unknown = sorted(set(map(str, spec)) - _KEYS[kind])
    if unknown:
        raise InputError(
            f"{where}: unknown key {unknown[0]!r} for a {kind} range; keys: {', '.join(sorted(_KEYS[kind]))}"
        )
    parameter = _choices(where, name, spec) if kind == "categorical" else _range(where, name, kind, spec)
    bounds = (parameter.low, parameter.high)
    for value in parameter.choices or (tuple(map(int, bounds)) if kind == "int" else bounds):
        _check_value(where, name, value)
    return parameter


def _choices(where: str, name: str, spec: dict[str, Any]) -> Parameter:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices or len(choices) > MAX_CHOICES:
        raise InputError(f"{where}: `choices` must be a list of 1 to {MAX_CHOICES} values")
    if not all(isinstance(choice, str | int | float) and not isinstance(choice, bool) for choice in choices):
        raise InputError(f'{where}: choices must be strings or numbers (hidden_layers as "64,32")')
    if len(set(choices)) != len(choices):
        raise InputError(f"{where}: choices repeat a value")
    return Parameter(name, "categorical", choices=tuple(choices))


def _range(where: str, name: str, kind: str, spec: dict[str, Any]) -> Parameter:
    field_type = _FIELD_TYPES[name]
    if field_type not in ("int", "float") or (kind == "float" and field_type == "int"):
        raise InputError(
            f"{where}: a {field_type} field takes a {'categorical' if field_type != 'int' else 'int'} range"
        )
    bounds = {key: spec.get(key) for key in ("low", "high")}
    for key, value in bounds.items():
        if not _number(value, integer=kind == "int"):
            raise InputError(
                f"{where}.{key}: expected a {'whole' if kind == 'int' else 'finite'} number, got {value!r:.40}"
            )
    low, high = float(bounds["low"]), float(bounds["high"])  # type: ignore[arg-type]
    if low > high:
        raise InputError(f"{where}: low ({low:g}) is greater than high ({high:g}); swap them")
    log = spec.get("log", False)
    step = spec.get("step")
    if not isinstance(log, bool):
        raise InputError(f"{where}.log: expected true or false")
    if log and low <= 0:
        raise InputError(f"{where}: a log range needs low > 0 (low is {low:g})")
    if step is not None and (log or not _number(step, integer=kind == "int") or step <= 0):
        raise InputError(f"{where}.step: expected a positive number, and no `log` with a step")
    return Parameter(name, kind, low, high, log, None if step is None else float(step))


def _check_value(where: str, name: str, value: Any) -> None:
    try:
        TrainConfig.from_dict({**_PLACEHOLDER, **as_config_values({name: value})})
    except InputError as exc:
        raise InputError(f"{where}: {value!r} is refused by training ({exc})") from None


def _number(value: object, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) if integer else math.isfinite(value)


__all__ = ["NOT_TUNABLE", "TUNABLE", "Parameter", "SearchSpace", "as_config_values", "parse_search_space"]
