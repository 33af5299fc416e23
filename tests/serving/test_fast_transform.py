"""The numpy fast path of the preprocessor computes exactly what the pandas path computes, on real data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from kubeforge.errors import InputError
from kubeforge.model_format import load_model
from kubeforge.preprocessor import CategoricalFeature, FittedPreprocessor, NumericFeature

from .conftest import CATEGORICAL, TrainedModel


@pytest.fixture(scope="module")
def preprocessor(trained: TrainedModel) -> FittedPreprocessor:
    return load_model(trained.directory).preprocessor


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """What the server's parsers produce: float64 for numbers, object arrays of str/None for text."""
    columns: dict[str, np.ndarray] = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values):
            columns[name] = values.to_numpy(dtype=np.float64)
        else:
            columns[name] = np.array([None if pd.isna(v) else str(v) for v in values], dtype=object)
    return columns


def test_equal_to_pandas_with_missing_values_and_outliers(
    trained: TrainedModel, preprocessor: FittedPreprocessor
) -> None:
    frame = trained.features.copy()
    frame.loc[0:20, "mean radius"] = np.nan
    frame.loc[21:30, "mean area"] = 1e9  # clipped at the learned upper bound
    frame.loc[31:40, "mean texture"] = -1e9
    frame[CATEGORICAL] = frame[CATEGORICAL].astype(object)
    frame.loc[41:50, CATEGORICAL] = None
    expected = preprocessor.transform(frame)
    fast = preprocessor.transform_columns(_columns(frame))
    assert fast.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(fast, expected)
    single = frame.iloc[[3]]
    np.testing.assert_array_equal(preprocessor.transform_columns(_columns(single)), preprocessor.transform(single))


def test_integer_and_coded_columns_fall_back_to_the_same_result(
    preprocessor: FittedPreprocessor, trained: TrainedModel
) -> None:
    frame = trained.features.head(30).copy()
    columns = _columns(frame)
    columns["mean area"] = frame["mean area"].round().astype(np.int64).to_numpy()
    columns["mean perimeter"] = np.array([str(v) for v in frame["mean perimeter"]], dtype=object)  # text numbers
    as_frame = pd.DataFrame(columns)
    np.testing.assert_array_equal(preprocessor.transform_columns(columns), preprocessor.transform(as_frame))


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
@pytest.mark.parametrize("policy", ["infrequent", "ignore", "error"])
def test_encodings_and_unknown_categories_match_under_each_policy(
    preprocessor: FittedPreprocessor, trained: TrainedModel, encoding: str, policy: str
) -> None:
    variant = dataclasses.replace(
        preprocessor,
        features=[
            dataclasses.replace(f, encoding=encoding, policy=policy) if isinstance(f, CategoricalFeature) else f
            for f in preprocessor.features
        ],
    )
    frame = trained.features.head(10).copy()
    np.testing.assert_array_equal(variant.transform_columns(_columns(frame)), variant.transform(frame))
    frame[CATEGORICAL] = frame[CATEGORICAL].astype(object)
    frame.loc[4, CATEGORICAL] = "huge"
    if policy != "error":
        np.testing.assert_array_equal(variant.transform_columns(_columns(frame)), variant.transform(frame))
        assert variant.unknown_category_rows(frame) == {CATEGORICAL: 1}
        return
    with pytest.raises(InputError) as pandas_error:
        variant.transform(frame, source="inputs")
    with pytest.raises(InputError) as fast_error:
        variant.transform_columns(_columns(frame), source="inputs")
    assert str(fast_error.value) == str(pandas_error.value)
    assert "unknown category 'huge'" in str(fast_error.value)


def test_missing_column_is_named(preprocessor: FittedPreprocessor, trained: TrainedModel) -> None:
    columns = _columns(trained.features.head(2))
    del columns["mean radius"]
    with pytest.raises(InputError, match="missing feature column\\(s\\) 'mean radius'"):
        preprocessor.transform_columns(columns)
    assert any(isinstance(f, NumericFeature) for f in preprocessor.features)


def test_interleaved_feature_order_lands_in_the_same_output_columns(
    preprocessor: FittedPreprocessor, trained: TrainedModel
) -> None:
    numeric = [f for f in preprocessor.features if isinstance(f, NumericFeature)]
    categorical = [f for f in preprocessor.features if isinstance(f, CategoricalFeature)]
    frame = trained.features.copy()
    frame.loc[0:9, "mean radius"] = np.nan
    for order in ([*categorical, *numeric], [*numeric[:3], *categorical, *numeric[3:]]):
        variant = FittedPreprocessor(
            task=preprocessor.task, label=preprocessor.label, features=order, classes=preprocessor.classes
        )
        np.testing.assert_array_equal(variant.transform_columns(_columns(frame)), variant.transform(frame))
    assert variant.output_columns[3].startswith(f"{CATEGORICAL}=")
