"""The fitted preprocessor on real data: scikit-learn's breast cancer table.

A synthetic categorical column and missing values are added so that every path (imputation,
clipping, scaling, one-hot and ordinal encoding) runs. Expected statistics are recomputed here
with numpy on the training rows, so the tests prove the preprocessor learns from the training
split only and applies exactly what it learned, before and after a JSON round trip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from kubeforge.categories import INFREQUENT
from kubeforge.errors import InputError
from kubeforge.preprocessor import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CategoricalFeature,
    FittedPreprocessor,
    NumericFeature,
    PreprocessOptions,
    fit_preprocessor,
)
from kubeforge.tabular import TableSchema, coerce_to_schema, infer_schema, read_table

LABEL = "target"
BAND = "size_band"
BANDS = ["large", "medium", "small"]
WITH_NAN = ["mean radius", "worst texture"]


@dataclass(frozen=True)
class Data:
    frame: pd.DataFrame  # every row, schema-checked
    train: pd.DataFrame
    test: pd.DataFrame
    schema: TableSchema


@pytest.fixture(scope="module")
def data() -> Data:
    raw = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(7)
    raw[BAND] = pd.cut(raw["mean area"], bins=[0, 450, 800, np.inf], labels=["small", "medium", "large"]).astype(object)
    for column in WITH_NAN:
        raw.loc[rng.choice(len(raw), 40, replace=False), column] = np.nan
    raw.loc[rng.choice(len(raw), 25, replace=False), BAND] = None
    schema = infer_schema(raw, LABEL)
    frame = coerce_to_schema(raw, schema, source="breast cancer")
    train, test = train_test_split(frame, test_size=0.3, random_state=0, stratify=frame[LABEL])
    return Data(frame=frame, train=train, test=test, schema=schema)


@pytest.fixture(scope="module")
def fitted(data: Data) -> FittedPreprocessor:
    return fit_preprocessor(data.train, data.schema, "classification", PreprocessOptions())


def _numeric(preprocessor: FittedPreprocessor, name: str) -> NumericFeature:
    feature = next(f for f in preprocessor.features if f.name == name)
    assert isinstance(feature, NumericFeature)
    return feature


def _categorical(preprocessor: FittedPreprocessor, name: str) -> CategoricalFeature:
    feature = next(f for f in preprocessor.features if f.name == name)
    assert isinstance(feature, CategoricalFeature)
    return feature


def _rows(data: Data, count: int = 5) -> pd.DataFrame:
    return data.test.iloc[:count].copy()


# --------------------------------------------------------------------------------------------------
# Fitting: statistics come from the training split only
# --------------------------------------------------------------------------------------------------


def test_schema_and_fitted_shape(data: Data, fitted: FittedPreprocessor) -> None:
    assert data.schema.features[BAND] == "categorical"
    assert sum(kind == "numeric" for kind in data.schema.features.values()) == 30
    assert fitted.schema == data.schema
    assert fitted.fitted_on_rows == len(data.train)
    assert fitted.classes == [0, 1]
    assert fitted.task == "classification"
    assert fitted.label == LABEL
    assert _categorical(fitted, BAND).categories == [*BANDS, INFREQUENT]


@pytest.mark.parametrize("impute", ["mean", "median"])
@pytest.mark.parametrize("column", [*WITH_NAN, "mean area", "worst concavity"])
def test_numeric_statistics_equal_numpy_on_train(data: Data, impute: str, column: str) -> None:
    preprocessor = fit_preprocessor(
        data.train,
        data.schema,
        "classification",
        PreprocessOptions(numeric_impute=impute),  # type: ignore[arg-type]
    )
    feature = _numeric(preprocessor, column)
    values = data.train[column].to_numpy(dtype=np.float64)
    present = values[~np.isnan(values)]
    expected_impute = np.mean(present) if impute == "mean" else np.median(present)
    low, high = np.quantile(present, [0.005, 0.995])
    filled = np.clip(np.where(np.isnan(values), expected_impute, values), low, high)
    assert feature.impute == pytest.approx(expected_impute, rel=1e-12)
    assert feature.clip_low == pytest.approx(low, rel=1e-12)
    assert feature.clip_high == pytest.approx(high, rel=1e-12)
    assert feature.mean == pytest.approx(filled.mean(), rel=1e-12)
    assert feature.std == pytest.approx(filled.std(), rel=1e-12)
    assert low < high


@pytest.mark.parametrize("impute", ["mean", "median"])
def test_statistics_differ_when_fitted_on_all_rows(data: Data, impute: str) -> None:
    """Fitting on every row gives other numbers: the values above come from the train split alone."""
    options = PreprocessOptions(numeric_impute=impute)  # type: ignore[arg-type]
    on_train = fit_preprocessor(data.train, data.schema, "classification", options)
    on_all = fit_preprocessor(data.frame, data.schema, "classification", options)
    assert on_all.fitted_on_rows == len(data.frame) != on_train.fitted_on_rows
    for column in WITH_NAN:
        train_feature, all_feature = _numeric(on_train, column), _numeric(on_all, column)
        assert train_feature.impute != all_feature.impute
        assert train_feature.mean != all_feature.mean
        assert train_feature.std != all_feature.std
        every = data.frame[column].to_numpy(dtype=np.float64)
        every = every[~np.isnan(every)]
        assert all_feature.impute == pytest.approx(np.mean(every) if impute == "mean" else np.median(every))


def test_categorical_statistics_from_train(data: Data, fitted: FittedPreprocessor) -> None:
    feature = _categorical(fitted, BAND)
    counts = data.train[BAND].value_counts()
    assert feature.impute == counts.idxmax()
    assert feature.categories == [*sorted(counts.index), INFREQUENT]
    assert feature.encoding == "onehot"
    assert (feature.policy, feature.folded_categories, feature.folded_rows) == ("infrequent", 0, 0)


def test_categorical_impute_ties_break_alphabetically() -> None:
    train = pd.DataFrame({"colour": ["red", "blue", "red", "blue", None, "green"], "y": [0, 1, 0, 1, 0, 1]})
    schema = TableSchema(features={"colour": "categorical"}, label="y")
    options = PreprocessOptions(min_category_rows=1)
    feature = _categorical(fit_preprocessor(train, schema, "classification", options), "colour")
    assert feature.impute == "blue"
    assert feature.categories == ["blue", "green", "red", INFREQUENT]
    rare = _categorical(fit_preprocessor(train, schema, "classification", PreprocessOptions()), "colour")
    assert (rare.impute, rare.categories, rare.folded_categories, rare.folded_rows) == (
        "blue",
        ["blue", INFREQUENT],
        2,
        3,
    )


def test_without_clipping_bounds_are_train_min_and_max(data: Data) -> None:
    preprocessor = fit_preprocessor(data.train, data.schema, "classification", PreprocessOptions(clip_quantiles=None))
    feature = _numeric(preprocessor, "mean area")
    assert feature.clip_low == data.train["mean area"].min()
    assert feature.clip_high == data.train["mean area"].max()


def test_constant_column_gets_unit_scale() -> None:
    train = pd.DataFrame({"flat": [3.0] * 6, "x": [1.0, 2, 3, 4, 5, 6], "y": [0, 1] * 3})
    schema = TableSchema(features={"flat": "numeric", "x": "numeric"}, label="y")
    preprocessor = fit_preprocessor(train, schema, "classification", PreprocessOptions())
    assert _numeric(preprocessor, "flat").std == 1.0
    transformed = preprocessor.transform(train)
    assert np.all(transformed[:, 0] == 0.0)
    assert np.all(np.isfinite(transformed))


@pytest.mark.parametrize(
    ("column", "values"),
    [
        pytest.param("empty_number", [np.nan, np.nan, np.nan, np.nan], id="numeric"),
        pytest.param("empty_text", [None, None, None, None], id="categorical"),
    ],
)
def test_column_without_training_values_is_named(column: str, values: list[Any]) -> None:
    train = pd.DataFrame({column: pd.Series(values, dtype=float if column == "empty_number" else object)})
    train["y"] = [0, 1, 0, 1]
    kind = "numeric" if column == "empty_number" else "categorical"
    schema = TableSchema(features={column: kind}, label="y")  # type: ignore[dict-item]
    with pytest.raises(InputError, match=f"training split: {kind} column '{column}' has no values"):
        fit_preprocessor(train, schema, "classification", PreprocessOptions())


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            {"numeric_impute": "mode"}, "numeric_impute is 'mode'; valid values are mean, median", id="impute"
        ),
        pytest.param({"encoding": "hashing"}, "encoding is 'hashing'; valid values are onehot, ordinal", id="encoding"),
        pytest.param({"clip_quantiles": (0.9, 0.1)}, "need 0 <= low < high <= 1", id="reversed-quantiles"),
        pytest.param({"clip_quantiles": (-0.1, 0.9)}, "need 0 <= low < high <= 1", id="negative-quantile"),
        pytest.param({"clip_quantiles": (0.5, 0.5)}, "need 0 <= low < high <= 1", id="equal-quantiles"),
    ],
)
def test_bad_options(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        PreprocessOptions(**options)


def test_unknown_task(data: Data) -> None:
    with pytest.raises(InputError, match="task is 'ranking'; valid values are classification, regression"):
        fit_preprocessor(data.train, data.schema, "ranking", PreprocessOptions())  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Transform
# --------------------------------------------------------------------------------------------------


def test_transformed_train_columns_are_standardized(data: Data, fitted: FittedPreprocessor) -> None:
    transformed = fitted.transform(data.train)
    assert transformed.dtype == np.float32
    assert transformed.shape == (len(data.train), len(fitted.output_columns))
    assert np.all(np.isfinite(transformed))
    numeric = [i for i, name in enumerate(fitted.output_columns) if "=" not in name]
    assert len(numeric) == 30
    np.testing.assert_allclose(transformed[:, numeric].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(transformed[:, numeric].std(axis=0), 1.0, atol=1e-4)
    # The held-out rows are scaled with the training statistics, so they are not exactly standard.
    held_out = fitted.transform(data.test)[:, numeric]
    assert np.abs(held_out.mean(axis=0)).max() > 1e-3


def test_transform_applies_impute_clip_and_scale(data: Data, fitted: FittedPreprocessor) -> None:
    radius = _numeric(fitted, "mean radius")
    rows = _rows(data, 4)
    rows["mean radius"] = [
        np.nan,
        radius.clip_high * 10,
        radius.clip_low / 10,
        (radius.clip_low + radius.clip_high) / 2,
    ]
    column = fitted.output_columns.index("mean radius")
    got = fitted.transform(rows)[:, column]
    expected = np.array(
        [
            min(max(radius.impute, radius.clip_low), radius.clip_high),
            radius.clip_high,
            radius.clip_low,
            (radius.clip_low + radius.clip_high) / 2,
        ]
    )
    np.testing.assert_allclose(got, (expected - radius.mean) / radius.std, rtol=1e-6)
    assert got[1] == pytest.approx((radius.clip_high - radius.mean) / radius.std, rel=1e-6)


def test_transform_matches_numpy_on_every_numeric_column(data: Data, fitted: FittedPreprocessor) -> None:
    transformed = fitted.transform(data.test)
    for feature in fitted.features:
        if not isinstance(feature, NumericFeature):
            continue
        values = data.test[feature.name].to_numpy(dtype=np.float64)
        expected = (
            np.clip(np.where(np.isnan(values), feature.impute, values), feature.clip_low, feature.clip_high)
            - feature.mean
        ) / feature.std
        np.testing.assert_allclose(
            transformed[:, fitted.output_columns.index(feature.name)], expected, rtol=1e-5, atol=1e-6
        )


def test_numeric_text_at_transform_names_column_and_value(data: Data, fitted: FittedPreprocessor) -> None:
    rows = _rows(data, 3)
    rows["mean area"] = rows["mean area"].astype(object)
    rows.iloc[1, rows.columns.get_loc("mean area")] = "large"
    with pytest.raises(InputError, match=r"request: column 'mean area' is numeric but row \d+ holds 'large'"):
        fitted.transform(rows, source="request")


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_encoding_shapes_and_column_names(data: Data, encoding: str) -> None:
    preprocessor = fit_preprocessor(
        data.train,
        data.schema,
        "classification",
        PreprocessOptions(encoding=encoding),  # type: ignore[arg-type]
    )
    numeric_names = [name for name, kind in data.schema.features.items() if kind == "numeric"]
    band_columns = [f"{BAND}={band}" for band in [*BANDS, INFREQUENT]] if encoding == "onehot" else [BAND]
    assert preprocessor.output_columns == [*numeric_names, *band_columns]
    transformed = preprocessor.transform(data.test)
    assert transformed.shape == (len(data.test), 30 + len(band_columns))
    assert data.test[BAND].dropna().isin(BANDS).all()
    band = transformed[:, 30:]
    text = data.test[BAND].fillna(_categorical(preprocessor, BAND).impute)
    if encoding == "onehot":
        assert set(np.unique(band)) == {0.0, 1.0}
        np.testing.assert_array_equal(band.sum(axis=1), 1.0)
        np.testing.assert_array_equal(np.array(BANDS)[band.argmax(axis=1)], text.to_numpy())
    else:
        np.testing.assert_array_equal(band[:, 0], [BANDS.index(value) for value in text])


def test_missing_category_is_imputed_with_most_frequent(data: Data, fitted: FittedPreprocessor) -> None:
    rows = _rows(data, 2)
    rows[BAND] = [None, "small"]
    transformed = fitted.transform(rows)
    impute = _categorical(fitted, BAND).impute
    assert transformed[0, fitted.output_columns.index(f"{BAND}={impute}")] == 1.0
    assert transformed[1, fitted.output_columns.index(f"{BAND}=small")] == 1.0


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_unknown_category_under_error_names_column_and_value(data: Data, encoding: str) -> None:
    preprocessor = fit_preprocessor(
        data.train,
        data.schema,
        "classification",
        PreprocessOptions(encoding=encoding, unknown_categories="error"),  # type: ignore[arg-type]
    )
    rows = _rows(data, 3)
    rows[BAND] = ["small", "enormous", None]
    with pytest.raises(InputError) as info:
        preprocessor.transform(rows, source="request")
    message = str(info.value)
    assert message.startswith("request: column 'size_band'")
    assert "unknown category 'enormous'" in message
    assert "known categories: large, medium, small" in message


def test_integer_codes_fitted_with_a_gap_accept_integer_codes(tmp_path: Path) -> None:
    """A categorical column of integer codes with a missing value (read as float) still matches integers.

    pandas reads `1, 2, <blank>, 3` as 1.0, 2.0, NaN, 3.0; a request later sends the integer 2.
    Both must be the same category, or a model rejects the very values it was trained on.
    """
    path = tmp_path / "grades.csv"
    path.write_text("grade,score,label\n1,0.5,a\n2,0.1,b\n,0.3,a\n3,0.2,b\n")
    schema = TableSchema(features={"grade": "categorical", "score": "numeric"}, label="label")
    train = coerce_to_schema(read_table(path), schema, source=str(path))
    options = PreprocessOptions(encoding="ordinal", min_category_rows=1)
    preprocessor = fit_preprocessor(train, schema, "classification", options)
    request = pd.DataFrame({"grade": [2, 3], "score": [0.1, 0.2]})
    np.testing.assert_array_equal(preprocessor.transform(request)[:, 0], [1.0, 2.0])


def test_missing_feature_columns_are_named(data: Data, fitted: FittedPreprocessor) -> None:
    rows = _rows(data).drop(columns=["mean area", BAND])
    with pytest.raises(InputError, match=r"request: missing feature column\(s\) 'mean area', 'size_band'"):
        fitted.transform(rows, source="request")


def test_extra_columns_and_column_order_do_not_matter(data: Data, fitted: FittedPreprocessor) -> None:
    rows = _rows(data)
    shuffled = rows[list(reversed(rows.columns))].assign(comment="ignored")
    np.testing.assert_array_equal(fitted.transform(shuffled), fitted.transform(rows))


# --------------------------------------------------------------------------------------------------
# JSON round trip and format checks
# --------------------------------------------------------------------------------------------------


def test_json_document(fitted: FittedPreprocessor) -> None:
    document = fitted.to_json()
    assert document["format"] == FORMAT_NAME
    assert document["version"] == FORMAT_VERSION
    assert document["output_columns"] == fitted.output_columns
    assert document["classes"] == [0, 1]
    text = json.dumps(document, allow_nan=False)  # strict JSON: no NaN or numpy scalars
    assert json.loads(text) == document


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_json_round_trip_gives_identical_transforms(data: Data, encoding: str) -> None:
    original = fit_preprocessor(
        data.train,
        data.schema,
        "classification",
        PreprocessOptions(encoding=encoding),  # type: ignore[arg-type]
    )
    restored = FittedPreprocessor.from_json(json.loads(json.dumps(original.to_json())))
    assert restored == original
    np.testing.assert_array_equal(restored.transform(data.test), original.transform(data.test))
    np.testing.assert_array_equal(restored.encode_labels(data.test[LABEL]), original.encode_labels(data.test[LABEL]))


def test_save_and_load_through_a_file(tmp_path: Path, data: Data, fitted: FittedPreprocessor) -> None:
    path = tmp_path / "nested" / "preprocessor.json"
    fitted.save(path)
    assert json.loads(path.read_text()) == fitted.to_json()
    assert [p.name for p in path.parent.iterdir()] == ["preprocessor.json"]  # no temporary files left
    loaded = FittedPreprocessor.load(path)
    assert loaded == fitted
    np.testing.assert_array_equal(loaded.transform(data.test), fitted.transform(data.test))
    np.testing.assert_array_equal(loaded.transform(data.train), fitted.transform(data.train))


def test_a_version_1_document_loads_with_the_error_policy(data: Data, fitted: FittedPreprocessor) -> None:
    """Artifacts written before category policies keep refusing unseen categories, as they always did."""
    document = fitted.to_json()
    document["version"] = 1
    for entry in document["features"]:
        for key in ("policy", "folded_categories", "folded_rows"):
            entry.pop(key, None)
        if entry["kind"] == "categorical":
            entry["categories"] = [c for c in entry["categories"] if c != INFREQUENT]
    loaded = FittedPreprocessor.from_json(document)
    assert {f.policy for f in loaded.features if isinstance(f, CategoricalFeature)} == {"error"}
    rows = _rows(data, 2)
    rows[BAND] = ["small", "enormous"]
    with pytest.raises(InputError, match="unknown category 'enormous'"):
        loaded.transform(rows)
    assert loaded.to_json()["version"] == FORMAT_VERSION == 2


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            {"format": "sklearn.pipeline"}, "not a kubeforge preprocessor (format is 'sklearn.pipeline')", id="format"
        ),
        pytest.param({"format": None}, "not a kubeforge preprocessor (format is None)", id="no-format"),
        pytest.param(
            {"version": 3}, "format version 3 is not supported; this kubeforge reads versions 1, 2", id="newer"
        ),
        pytest.param({"version": 0}, "format version 0 is not supported", id="older"),
        pytest.param({"version": "1"}, "format version 1 is not supported", id="version-as-text"),
        pytest.param({"version": True}, "format version True is not supported", id="version-as-bool"),
        pytest.param({"version": None}, "format version None is not supported", id="no-version"),
    ],
)
def test_wrong_format_or_version(
    tmp_path: Path, fitted: FittedPreprocessor, change: dict[str, Any], expected: str
) -> None:
    document = {**fitted.to_json(), **change}
    document = {key: value for key, value in document.items() if value is not None}
    with pytest.raises(InputError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        FittedPreprocessor.from_json(document)
    path = tmp_path / "preprocessor.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError) as info:
        FittedPreprocessor.load(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"format": "kubeforge.preprocessor", ', id="truncated-json"),
        pytest.param(b'["kubeforge.preprocessor", 1]', id="json-list"),
        pytest.param(b"\x80\x81 model weights \xff", id="binary"),
    ],
)
def test_load_a_file_that_is_not_a_preprocessor_names_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "preprocessor.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        FittedPreprocessor.load(path)
    assert str(info.value).startswith(f"{path}: ")


# --------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------


def test_encode_labels_classification(data: Data, fitted: FittedPreprocessor) -> None:
    encoded = fitted.encode_labels(data.test[LABEL])
    assert encoded.dtype == np.int64
    np.testing.assert_array_equal(encoded, data.test[LABEL].to_numpy())
    # Labels read back as floats (e.g. from a column that once held NaN) map to the same classes.
    np.testing.assert_array_equal(fitted.encode_labels(data.test[LABEL].astype(float)), encoded)


def test_text_labels_are_sorted_classes(data: Data) -> None:
    named = data.train.assign(**{LABEL: data.train[LABEL].map({0: "malignant", 1: "benign"})})
    preprocessor = fit_preprocessor(named, data.schema, "classification", PreprocessOptions())
    assert preprocessor.classes == ["benign", "malignant"]
    labels = pd.Series(["malignant", "benign", "benign"])
    np.testing.assert_array_equal(preprocessor.encode_labels(labels), [1, 0, 0])


def test_nan_labels_are_counted_and_located(fitted: FittedPreprocessor) -> None:
    labels = pd.Series([0, np.nan, 1, np.nan, np.nan], index=[10, 11, 12, 13, 14])
    with pytest.raises(InputError) as info:
        fitted.encode_labels(labels, source="test split")
    message = str(info.value)
    assert message.startswith("test split: label column 'target' has 3 missing value(s)")
    assert "[11, 13, 14]" in message


@pytest.mark.parametrize("unknown", [2, "malignant", 0.5])
def test_unknown_label_is_named(fitted: FittedPreprocessor, unknown: object) -> None:
    labels = pd.Series([0, 1, unknown, 1], dtype=object)
    with pytest.raises(InputError) as info:
        fitted.encode_labels(labels, source="test split")
    message = str(info.value)
    assert f"holds {unknown!r}" in message
    assert "not among the trained classes (0, 1)" in message


def test_regression_task(data: Data) -> None:
    """Predicting `mean area` from the rest: no classes, float32 targets, labels must be numbers."""
    label = "mean area"
    features: dict[str, Any] = {name: kind for name, kind in data.schema.features.items() if name != label}
    features["diagnosis"] = "categorical"
    schema = TableSchema(features=features, label=label)
    frame = data.frame.assign(diagnosis=data.frame[LABEL].map({0: "malignant", 1: "benign"}))
    train, test = frame.loc[data.train.index], frame.loc[data.test.index]
    preprocessor = fit_preprocessor(train, schema, "regression", PreprocessOptions())
    assert preprocessor.task == "regression"
    assert preprocessor.classes is None
    assert label not in preprocessor.output_columns
    assert preprocessor.output_columns[-7:] == [f"{BAND}={band}" for band in [*BANDS, INFREQUENT]] + [
        "diagnosis=benign",
        "diagnosis=malignant",
        f"diagnosis={INFREQUENT}",
    ]
    targets = preprocessor.encode_labels(test[label])
    assert targets.dtype == np.float32
    np.testing.assert_allclose(targets, test[label].to_numpy(), rtol=1e-6)
    restored = FittedPreprocessor.from_json(json.loads(json.dumps(preprocessor.to_json())))
    assert restored.to_json()["classes"] is None
    np.testing.assert_array_equal(restored.transform(test), preprocessor.transform(test))
    as_text = pd.Series(["512.5", "big"], index=[3, 4])
    with pytest.raises(InputError, match=r"column 'mean area' is numeric but row 4 holds 'big'"):
        preprocessor.encode_labels(as_text)
    np.testing.assert_allclose(preprocessor.encode_labels(pd.Series(["512.5", "7"])), [512.5, 7.0])
