"""The training component's core: one parameter set for every backend, checked up front."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_digits

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, preprocess
from kubeforge.components.training.pytorch.core import TrainInputs, TrainParams, train_model
from kubeforge.errors import InputError
from kubeforge.model_format import load_model


@pytest.fixture
def inputs(prepared: Any) -> TrainInputs:
    return TrainInputs(str(prepared.train), str(prepared.validation), str(prepared.preprocessor))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"backend": "kubeflow"}, "backend is 'kubeflow'; valid backends: local, slurm, pytorchjob, trainjob, vertex"),
        ({"backend": "pytorchjob", "image": ""}, "image: the pytorchjob backend runs the worker in a container"),
        ({"workers": 65}, "workers is 65; the local backend runs 1 to 64 workers"),
        ({"backend": "vertex", "workers": 5000}, "workers is 5000; the vertex backend runs 1 to 1024"),
        ({"backend": "slurm", "workers": 3, "nproc_per_node": 2}, r"workers \(3\) must be a multiple"),
        ({"cpu": "2 cores"}, "cpu: cpu unit 'cores' is unknown"),
        ({"cpu": "two"}, "cpu: 'two' is not a quantity"),
        ({"memory": "2GB"}, "memory: memory unit 'GB' is unknown"),
        ({"gpus": -1}, "gpus: -1 is out of range"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        TrainParams(**params)


def test_model_factory_that_does_not_import(inputs: TrainInputs, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model 'no_such_module:build': module 'no_such_module' does not import"):
        train_model(inputs, str(tmp_path / "model"), TrainParams(model="no_such_module:build", workers=1))
    assert not (tmp_path / "model").exists()


def test_cluster_backend_refuses_local_paths(inputs: TrainInputs, tmp_path: Path) -> None:
    params = TrainParams(backend="pytorchjob", backend_options='{"namespace": "ml"}')
    with pytest.raises(InputError, match="train_data is the local path"):
        train_model(inputs, str(tmp_path / "model"), params, staging_uri="s3://bucket/run")


def test_bad_backend_options(inputs: TrainInputs, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="backend_options: not valid JSON"):
        train_model(inputs, str(tmp_path / "model"), TrainParams(backend_options="{namespace: ml}"))
    remote = TrainInputs("gs://b/train.parquet", "gs://b/validation.parquet", "gs://b/preprocessor.json")
    with pytest.raises(InputError, match="the vertex backend needs project, location, staging_bucket"):
        train_model(remote, str(tmp_path / "model"), TrainParams(backend="vertex"), staging_uri="gs://b/run")


def test_user_model_factory_trains(inputs: TrainInputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    handle = tmp_path / "handle.json"
    result = train_model(
        inputs,
        str(tmp_path / "model"),
        TrainParams(model="tiny_models:linear", workers=1, epochs=3, hidden_layers=[]),
        handle_path=str(handle),
    )
    assert result.summary["architecture"]["model"] == "tiny_models:linear"
    assert '"backend": "local"' in handle.read_text()
    model = load_model(tmp_path / "model")
    assert len(list(model.module.parameters())) == 2  # one Linear layer: weight and bias
    assert "tiny_models" in sys.modules


def test_cnn_on_digits(tmp_path: Path) -> None:
    """The small CNN on scikit-learn's 8x8 digits, through the same preprocessing component."""
    digits = load_digits(as_frame=True).frame
    digits.to_csv(tmp_path / "digits.csv", index=False)
    out = PreprocessOutputs(*(str(tmp_path / n) for n in ("tr.parquet", "va.parquet", "te.parquet", "p.json", "s.md")))
    preprocess(tmp_path / "digits.csv", out, label="target")
    result = train_model(
        TrainInputs(out.train, out.validation, out.preprocessor),
        str(tmp_path / "model"),
        TrainParams(model="cnn", hidden_layers=[8, 16], workers=2, epochs=6, learning_rate=0.003),
    )
    model = load_model(tmp_path / "model")
    test = pd.read_parquet(out.test)
    accuracy = (pd.Series(model.predict_frame(test).labels) == test["target"].to_numpy()).mean()
    assert result.summary["world_size"] == 2
    assert accuracy > 0.9
