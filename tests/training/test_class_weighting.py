"""Class weights in the training loss, on a generated imbalanced table (8 % minority) and real worker processes.

The minority class is shifted by one standard deviation in two of three features, so an unweighted
model mostly predicts the majority; balanced weights (computed in training or stored by
preprocessing) and an oversampled training split each make it find most of the minority.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prepared_data import train_model

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, SplitFractions, preprocess
from kubeforge.components.training.pytorch import core
from kubeforge.errors import InputError
from kubeforge.model_format import load_model
from kubeforge.preprocess_engine.imbalance import ClassBalance
from kubeforge.training.engine import SUMMARY_FILE

OUTPUT_NAMES = ("train.parquet", "validation.parquet", "test.parquet", "preprocessor.json", "statistics.md")


def _imbalanced(rows: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rare = rng.random(rows) < 0.08
    features = rng.normal(0.0, 1.0, (rows, 3)) + rare[:, None] * np.array([1.0, 1.0, 0.0])
    return pd.DataFrame(
        {"a": features[:, 0], "b": features[:, 1], "c": features[:, 2], "y": np.where(rare, "rare", "common")}
    )


def _prepare(source: Path, directory: Path, balance: ClassBalance, task: str = "classification") -> PreprocessOutputs:
    directory.mkdir()
    outputs = PreprocessOutputs(*(str(directory / name) for name in OUTPUT_NAMES))
    label = "y" if task == "classification" else "a"
    preprocess(
        source,
        outputs,
        label=label,
        task=task,
        balance=balance,
        fractions=SplitFractions(0.2, 0.3),
        engine="duckdb",  # type: ignore[arg-type]
    )
    return outputs


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("imbalanced") / "table.parquet"
    _imbalanced().to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def weighted(source: Path, tmp_path_factory: pytest.TempPathFactory) -> PreprocessOutputs:
    """Preprocessed with class_weights='balanced': the preprocessor carries the weights."""
    return _prepare(source, tmp_path_factory.mktemp("weighted") / "out", ClassBalance(class_weights="balanced"))


def _train(outputs: PreprocessOutputs, run_dir: Path, class_weighting: str) -> tuple[dict[str, Any], float]:
    """Train one worker; returns the summary and the minority recall on the test split."""
    settings = {"hidden_layers": [16], "epochs": 8, "batch_size": 64, "learning_rate": 0.01}
    model_dir = train_model(outputs, run_dir, class_weighting=class_weighting, **settings)
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    test = pd.read_parquet(outputs.test)
    predicted = np.array(load_model(model_dir).predict_frame(test).labels)
    rare = test["y"].to_numpy() == "rare"
    return summary, float((predicted[rare] == "rare").mean())


def test_balanced_weights_raise_minority_recall(weighted: PreprocessOutputs, tmp_path: Path) -> None:
    plain, plain_recall = _train(weighted, tmp_path / "none", "none")
    balanced, balanced_recall = _train(weighted, tmp_path / "balanced", "balanced")
    stored, stored_recall = _train(weighted, tmp_path / "preprocessor", "preprocessor")

    train_labels = pd.read_parquet(weighted.train)["y"]
    counts = train_labels.value_counts()
    expected = [len(train_labels) / (2 * counts["common"]), len(train_labels) / (2 * counts["rare"])]
    assert plain["class_weights"] is None
    assert balanced["class_weights"] == pytest.approx(expected, rel=1e-6)
    assert plain_recall < 0.4
    assert balanced_recall > 0.6
    assert balanced_recall - plain_recall > 0.3
    # the preprocessor's weights are the same numbers, so the run is the same run
    assert stored["class_weights"] == balanced["class_weights"]
    assert stored["replica_checksums"] == balanced["replica_checksums"] != plain["replica_checksums"]
    assert stored_recall == balanced_recall
    # validation loss stays unweighted: the weighted run trades majority accuracy for minority recall
    assert balanced["history"][-1]["val_accuracy"] < plain["history"][-1]["val_accuracy"]


def test_an_oversampled_training_split_raises_minority_recall(source: Path, tmp_path: Path) -> None:
    oversampled = _prepare(source, tmp_path / "oversampled", ClassBalance(sampling="oversample"))
    counts = pd.read_parquet(oversampled.train)["y"].value_counts()
    assert counts["rare"] == counts["common"]
    _, recall = _train(oversampled, tmp_path / "run", "none")
    assert recall > 0.6


def test_preprocessor_weighting_needs_stored_weights(source: Path, tmp_path: Path) -> None:
    """The component's core refuses before any job starts; the worker applies the same check."""
    unweighted = _prepare(source, tmp_path / "plain", ClassBalance())
    with pytest.raises(InputError, match=r"class_weighting is 'preprocessor' but the preprocessor .* carries no class"):
        _train_component(unweighted, tmp_path / "model", "preprocessor")
    assert not (tmp_path / "model").exists()


def test_regression_refuses_class_weighting(source: Path, tmp_path: Path) -> None:
    regression = _prepare(source, tmp_path / "regression", ClassBalance(), task="regression")
    with pytest.raises(InputError, match=r"class_weighting is 'balanced' but the preprocessor .* is for regression"):
        _train_component(regression, tmp_path / "model", "balanced")
    with pytest.raises(InputError, match=r"class_weighting is 'balanced' but the preprocessor .* is for regression"):
        _train(regression, tmp_path / "run", "balanced")
    assert not (tmp_path / "run" / "model").exists()


def _train_component(outputs: PreprocessOutputs, model_dir: Path, class_weighting: str) -> None:
    inputs = core.TrainInputs(outputs.train, outputs.validation, outputs.preprocessor)
    core.train_model(inputs, str(model_dir), core.TrainParams(workers=1, epochs=1, class_weighting=class_weighting))


def test_unknown_class_weighting_lists_the_valid_values(weighted: PreprocessOutputs, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="class_weighting is 'auto'; it must be one of none, balanced, preprocessor"):
        _train(weighted, tmp_path / "run", "auto")
    with pytest.raises(InputError, match="class_weighting is 'auto'; it must be one of none, balanced, preprocessor"):
        _train_component(weighted, tmp_path / "model", "auto")
