"""The tuning component refuses a bad search space or parameter before any trial starts, naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prepared_data import PreparedData

from kubeforge.components.tuning.optuna.core import TuneInputs, run_study
from kubeforge.components.tuning.optuna.search_space import parse_search_space
from kubeforge.components.tuning.optuna.study import TuneParams, storage_url
from kubeforge.errors import InputError

LEARNING_RATE = {"type": "float", "low": 1e-4, "high": 0.1, "log": True}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "search_space: empty"),
        ("{}", "search_space: empty"),
        ("{not json", "search_space: not valid JSON"),
        ("[1, 2]", "search_space: expected a JSON object"),
        (json.dumps({"learning_rat": LEARNING_RATE}), "search_space.learning_rat: not a field"),
        (json.dumps({"train_data": {"type": "categorical", "choices": ["x"]}}), "search_space.train_data: not a field"),
        (json.dumps({"epochs": {"type": "int", "low": 1, "high": 5}}), "search_space.epochs: not a field"),
        (
            json.dumps({"learning_rate": {**LEARNING_RATE, "low": 0.5}}),
            "search_space.learning_rate: low (0.5) is greater",
        ),
        (json.dumps({"learning_rate": {"type": "float", "low": 0, "high": 1, "log": True}}), "needs low > 0"),
        (json.dumps({"learning_rate": {"type": "float", "high": 1}}), "search_space.learning_rate.low: expected"),
        (json.dumps({"learning_rate": {**LEARNING_RATE, "lo": 1}}), "search_space.learning_rate: unknown key 'lo'"),
        (
            json.dumps({"learning_rate": {"type": "uniform"}}),
            'search_space.learning_rate: expected an object with "type"',
        ),
        (json.dumps({"dropout": {"type": "float", "low": 0.1, "high": 1.5}}), "search_space.dropout: 1.5 is refused"),
        (json.dumps({"batch_size": {"type": "int", "low": 8, "high": 32.5}}), "search_space.batch_size.high: expected"),
        (json.dumps({"batch_size": {"type": "float", "low": 8, "high": 32}}), "search_space.batch_size: a int field"),
        (
            json.dumps({"hidden_layers": {"type": "categorical", "choices": []}}),
            "search_space.hidden_layers: `choices`",
        ),
        (json.dumps({"hidden_layers": {"type": "categorical", "choices": ["64,x"]}}), "search_space.hidden_layers"),
        (
            json.dumps({"strategy": {"type": "categorical", "choices": ["ddp", "zero"]}}),
            "search_space.strategy: 'zero'",
        ),
    ],
)
def test_a_bad_search_space_is_refused_naming_the_field(text: str, named: str) -> None:
    with pytest.raises(InputError, match=None) as refused:
        parse_search_space(text)
    assert named in str(refused.value)
    assert len(str(refused.value)) < 400


def test_a_good_search_space_parses_and_expands_to_a_grid() -> None:
    space = parse_search_space(
        json.dumps(
            {
                "batch_size": {"type": "int", "low": 16, "high": 64, "step": 16},
                "hidden_layers": {"type": "categorical", "choices": ["16", "64,32"]},
            }
        )
    )
    assert space.grid() == {"batch_size": [16, 32, 48, 64], "hidden_layers": ["16", "64,32"]}
    with pytest.raises(InputError, match=r"search_space\.learning_rate: the grid sampler needs a `step`"):
        parse_search_space(json.dumps({"learning_rate": LEARNING_RATE})).grid()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"sampler": "bayes"}, "sampler is 'bayes'"),
        ({"pruner": "asha"}, "pruner is 'asha'"),
        ({"metric": "accuracy"}, "metric is 'accuracy'"),
        ({"backend": "vertex"}, "backend is 'vertex'"),
        ({"n_trials": 0}, "n_trials is 0"),
        ({"fixed_params": '{"dropout": 2}'}, "fixed_params.dropout"),
        ({"fixed_params": '{"learning_rate": 0.1}'}, "fixed_params.learning_rate: also in search_space"),
        ({"fixed_params": '{"epochs": 3}'}, "fixed_params: places and the epoch budget"),
        ({"storage_url": "postgresql://tuner:s3cret@127.0.0.1:5432/optuna"}, "storage_url carries a password"),
        ({"storage_url": "mysql://127.0.0.1/optuna"}, "storage_url: expected postgresql://"),
    ],
)
def test_bad_parameters_are_refused_before_any_trial(
    params: dict[str, object], named: str, prepared: PreparedData, tmp_path: Path
) -> None:
    inputs = TuneInputs(str(prepared.train), str(prepared.validation), str(prepared.preprocessor))
    with pytest.raises(InputError) as refused:
        run_study(
            inputs, tmp_path / "study", TuneParams(search_space=json.dumps({"learning_rate": LEARNING_RATE}), **params)
        )  # type: ignore[arg-type]
    assert named in str(refused.value)
    assert "s3cret" not in str(refused.value)
    assert not (tmp_path / "study" / "trial-0").exists()


def test_the_default_storage_is_sqlite_beside_the_outputs(tmp_path: Path) -> None:
    params = TuneParams(search_space="{}")
    assert storage_url(params, tmp_path / "best-study") == f"sqlite:///{tmp_path / 'best-study' / 'study.db'}"
    postgres = TuneParams(search_space="{}", storage_url="postgresql://tuner@127.0.0.1:5432/optuna")
    assert storage_url(postgres, tmp_path) == "postgresql+psycopg://tuner@127.0.0.1:5432/optuna"


def test_a_metric_the_task_does_not_record_is_refused(prepared: PreparedData, tmp_path: Path) -> None:
    inputs = TuneInputs(str(prepared.train), str(prepared.validation), str(prepared.preprocessor))
    params = TuneParams(search_space=json.dumps({"learning_rate": LEARNING_RATE}), metric="val_rmse")
    with pytest.raises(InputError, match="metric is 'val_rmse', which a classification training does not record"):
        run_study(inputs, tmp_path / "study", params)
    assert not (tmp_path / "study").exists()
