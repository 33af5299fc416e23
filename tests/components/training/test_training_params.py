"""Training's parameters have one definition, `kubeforge.training.config.Hyperparameters`: the component's
KFP signature (explicit parameters, as KFP needs), `TrainParams` and `TrainConfig` cannot drift from it."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, Field, fields
from typing import Any, get_type_hints

import pytest

from kubeforge.components.training.pytorch.component import train_pytorch
from kubeforge.components.training.pytorch.core import TrainParams
from kubeforge.training.config import Hyperparameters, RunPlaces, TrainConfig, parse_hidden_layers

COMPONENT_NAME = {"model": "model_type"}
"""Parameters the component names otherwise (`model` is its output artifact)."""
COMPONENT_ONLY = {"tracking_uri", "tracking_required"}
"""Parameters the component handles itself (MLflow), not part of the training run."""
NOT_IN_COMPONENT = {"job_name"}
"""TrainParams fields a caller of the core may set, never a pipeline."""
KFP_TYPE = {list[int]: (str, parse_hidden_layers)}
"""Types KFP has no parameter for: the component's type, and how the core's value is parsed from it."""

SIGNATURE = inspect.signature(train_pytorch.python_func).parameters
ARTIFACTS = {"train_data", "validation_data", "preprocessor", "model", "metrics", "job_handle"}


def _default(item: Field[Any]) -> Any:
    return item.default_factory() if item.default is MISSING else item.default  # type: ignore[misc]


@pytest.mark.parametrize(
    "item", [item for item in fields(TrainParams) if item.name not in NOT_IN_COMPONENT], ids=lambda item: item.name
)
def test_each_parameter_has_the_tables_name_type_and_default_in_the_component(item: Field[Any]) -> None:
    parameter = SIGNATURE[COMPONENT_NAME.get(item.name, item.name)]
    kind = get_type_hints(TrainParams)[item.name]
    component_type, parse = KFP_TYPE.get(kind, (kind, lambda value: value))
    assert parameter.annotation is component_type
    assert parse(parameter.default) == _default(item)


def test_the_component_has_no_parameter_the_table_lacks() -> None:
    table = {COMPONENT_NAME.get(item.name, item.name) for item in fields(TrainParams)}
    assert set(SIGNATURE) - ARTIFACTS - COMPONENT_ONLY == table - NOT_IN_COMPONENT


def test_params_and_config_are_the_hyperparameters_plus_their_own_fields() -> None:
    hyper = [item.name for item in fields(Hyperparameters)]
    params = [item.name for item in fields(TrainParams)]
    config = [item.name for item in fields(TrainConfig)]
    assert params[: len(hyper)] == hyper
    assert config == [item.name for item in fields(RunPlaces)] + hyper + ["process_group_timeout_s", "epoch_gate"]
    assert get_type_hints(TrainConfig)["hidden_layers"] == get_type_hints(TrainParams)["hidden_layers"] == list[int]


def test_the_config_carries_every_hyperparameter_the_params_hold() -> None:
    params = TrainParams(epochs=3, hidden_layers=[8], learning_rate=0.02, regression_loss="huber", seed=7)
    config = TrainConfig("t", "v", "p", "m", "r", "c", **params.hyperparameters())
    assert config.hyperparameters() == params.hyperparameters()
    assert (config.epochs, config.hidden_layers, config.learning_rate, config.seed) == (3, [8], 0.02, 7)
