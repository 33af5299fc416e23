"""Class-imbalance options of preprocess/tabular on real files: class weights and training-split resampling.

Data: the generated mixed table of the engine-equality tests (three classes at 20/70/10 percent,
numeric and categorical columns with missing values), written as Parquet.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.class_weight import compute_class_weight

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, preprocess
from kubeforge.errors import InputError
from kubeforge.preprocess_engine.imbalance import ClassBalance
from kubeforge.preprocessor import FittedPreprocessor

_spec = importlib.util.spec_from_file_location("engine_equality", Path(__file__).parent / "test_engine_equality.py")
assert _spec is not None and _spec.loader is not None
equality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(equality)


@pytest.fixture(scope="module")
def mixed_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("imbalanced") / "mixed.parquet"
    equality.mixed_table(3000, seed=2).to_parquet(path, index=False, row_group_size=500)
    return path


@pytest.fixture(scope="module")
def plain(mixed_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same input preprocessed without any class-imbalance option."""
    return equality._run(mixed_parquet, tmp_path_factory.mktemp("plain") / "out", "duckdb", label="label")


def _outputs(directory: Path) -> PreprocessOutputs:
    directory.mkdir(parents=True, exist_ok=True)
    return PreprocessOutputs(*(str(directory / name) for name in equality.OUTPUT_NAMES))


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
def test_balanced_class_weights_match_the_training_class_counts(
    mixed_parquet: Path, tmp_path: Path, engine: str
) -> None:
    run = equality._run(
        mixed_parquet, tmp_path / "out", engine, label="label", balance=ClassBalance(class_weights="balanced")
    )

    preprocessor = run["result"].preprocessor
    train_labels = run["splits"]["train"]["label"]
    counts = train_labels.value_counts()
    assert preprocessor.classes == ["churn", "stay", "upgrade"]
    expected = [len(train_labels) / (3 * counts[name]) for name in preprocessor.classes]
    assert preprocessor.class_weights == pytest.approx(expected, rel=1e-12)
    sklearn_weights = compute_class_weight("balanced", classes=np.array(preprocessor.classes), y=train_labels)
    assert preprocessor.class_weights == pytest.approx(sklearn_weights.tolist(), rel=1e-12)
    assert preprocessor.class_weights[2] > preprocessor.class_weights[0] > 1 > preprocessor.class_weights[1]

    written = json.loads((tmp_path / "out" / "preprocessor.json").read_text())
    assert written["class_weights"] == pytest.approx(expected, rel=1e-12)
    assert FittedPreprocessor.load(tmp_path / "out" / "preprocessor.json") == preprocessor
    assert "Class weights (training loss): churn: " in run["report"]


def test_without_the_option_the_artifact_carries_no_weights(plain: dict[str, Any]) -> None:
    assert plain["result"].preprocessor.class_weights is None
    assert "class_weights" not in plain["result"].preprocessor.to_json()
    assert "Class weights" not in plain["report"]


@pytest.mark.parametrize(("sampling", "pick"), [("undersample", min), ("oversample", max)])
def test_sampling_balances_the_training_split_only(
    mixed_parquet: Path, plain: dict[str, Any], tmp_path: Path, sampling: str, pick: Any
) -> None:
    run = equality._run(mixed_parquet, tmp_path / "out", "duckdb", label="label", balance=ClassBalance(sampling))  # type: ignore[arg-type]

    before = plain["splits"]["train"]["label"].value_counts()
    after = run["splits"]["train"]["label"].value_counts()
    assert set(after.to_numpy()) == {pick(before.to_numpy())}
    assert run["result"].rows["train"] == 3 * pick(before.to_numpy())
    assert run["result"].preprocessor.fitted_on_rows == run["result"].rows["train"]
    for name in ("validation", "test"):
        pd.testing.assert_frame_equal(run["splits"][name], plain["splits"][name])
    # every written row is a training row of the plain split, each written once (undersample) or
    # floor/ceil(target / class rows) times (oversample); row_id is unique per input row
    original = plain["splits"]["train"].set_index("row_id")
    written = run["splits"]["train"]
    copies = written["row_id"].value_counts()
    assert set(copies.index) <= set(original.index)
    for label, rows in original.groupby("label"):
        target = pick(before.to_numpy())
        expected = {target // len(rows), target // len(rows) + 1} if target % len(rows) else {target // len(rows)}
        kept = copies.reindex(rows.index, fill_value=0)
        assert set(kept[kept > 0]) <= expected, label
    pd.testing.assert_frame_equal(
        written.drop_duplicates("row_id").set_index("row_id"), original.loc[written["row_id"].unique()]
    )
    assert written["row_id"].is_monotonic_increasing


def test_sampling_is_deterministic_per_seed(mixed_parquet: Path, tmp_path: Path) -> None:
    def kept(seed: int, directory: str) -> list[int]:
        run = equality._run(
            mixed_parquet, tmp_path / directory, "duckdb", label="label", seed=seed, balance=ClassBalance("undersample")
        )
        return run["splits"]["train"]["row_id"].tolist()

    first = kept(42, "a")
    assert kept(42, "b") == first
    assert kept(43, "c") != first


@pytest.mark.parametrize("sampling", ["undersample", "oversample"])
def test_engines_agree_on_resampled_splits_and_weights(mixed_parquet: Path, tmp_path: Path, sampling: str) -> None:
    kwargs: dict[str, Any] = {"label": "label", "balance": ClassBalance(sampling, "balanced")}  # type: ignore[arg-type]
    reference = equality._run(mixed_parquet, tmp_path / "pandas", "pandas", **kwargs)
    equality._assert_same_runs(reference, equality._run(mixed_parquet, tmp_path / "duckdb", "duckdb", **kwargs))
    assert reference["result"].preprocessor.class_weights == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
@pytest.mark.parametrize(
    ("balance", "field"),
    [(ClassBalance(sampling="oversample"), "sampling"), (ClassBalance(class_weights="balanced"), "class_weights")],
    ids=["sampling", "class_weights"],
)
def test_regression_refuses_the_options_and_writes_nothing(
    mixed_parquet: Path, tmp_path: Path, engine: str, balance: ClassBalance, field: str
) -> None:
    outputs = _outputs(tmp_path / "out")
    with pytest.raises(InputError, match=rf"{field} is '\w+' but task is 'regression'.*set {field}='none'"):
        preprocess(mixed_parquet, outputs, label="score", task="regression", engine=engine, balance=balance)  # type: ignore[arg-type]
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"sampling": "smote"}, "sampling is 'smote'; valid values are none, undersample, oversample"),
        ({"class_weights": "auto"}, "class_weights is 'auto'; valid values are none, balanced"),
    ],
)
def test_unknown_values_list_the_valid_ones(values: dict[str, str], expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        ClassBalance(**values)  # type: ignore[arg-type]


def test_an_artifact_with_mismatched_weights_is_refused(plain: dict[str, Any], tmp_path: Path) -> None:
    document = plain["result"].preprocessor.to_json() | {"class_weights": [1.0, 2.0]}
    path = tmp_path / "preprocessor.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=re.escape("class_weights holds 2 value(s) for 3 class(es)")):
        FittedPreprocessor.load(path)
