"""Reading tables and checking them against inferred or declared schemas (kubeforge.tabular).

Every file is real and written to a temporary directory; every error is a real InputError whose
message must name the file, column, row or value the user has to fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kubeforge.errors import InputError
from kubeforge.tabular import (
    FEATURE_KINDS,
    TableSchema,
    categorical_column,
    coerce_to_schema,
    infer_schema,
    numeric_column,
    parse_declared_schema,
    read_table,
    require_columns,
)


def _sample() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 27, 60],
            "income": [52.5, np.nan, 38.0, 71.25],
            "city": ["Oslo", "Lima", None, "Oslo"],
            "label": ["yes", "no", "no", "yes"],
        }
    )


# --------------------------------------------------------------------------------------------------
# Schema inference
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        pytest.param(pd.Series([1, 2, 3], dtype="int64"), "numeric", id="int64"),
        pytest.param(pd.Series([1.5, np.nan, 3.0]), "numeric", id="float-with-nan"),
        pytest.param(pd.Series([1, None, 3], dtype="Int64"), "numeric", id="nullable-int"),
        pytest.param(pd.Series(["a", "b", "a"]), "categorical", id="text"),
        pytest.param(pd.Series(["a", None, "b"], dtype=object), "categorical", id="object-with-none"),
        pytest.param(pd.Series([True, False, True]), "categorical", id="bool"),
        pytest.param(pd.Series(["x", "y", "x"], dtype="category"), "categorical", id="category"),
        pytest.param(pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"])), "categorical", id="date"),
    ],
)
def test_infer_schema_kind_per_dtype(values: pd.Series, kind: str) -> None:
    frame = pd.DataFrame({"feature": values, "label": [0, 1, 0]})
    schema = infer_schema(frame, "label")
    assert schema == TableSchema(features={"feature": kind}, label="label")  # type: ignore[dict-item]


def test_infer_schema_keeps_column_order_and_excludes_the_label() -> None:
    schema = infer_schema(_sample(), "label")
    assert list(schema.features) == ["age", "income", "city"]
    assert schema.features == {"age": "numeric", "income": "numeric", "city": "categorical"}
    assert schema.label == "label"


def test_infer_schema_missing_label_names_it_and_lists_present_columns() -> None:
    with pytest.raises(InputError, match="missing column") as info:
        infer_schema(_sample(), "outcome")
    message = str(info.value)
    assert "'outcome'" in message
    assert "age, income, city, label" in message


def test_infer_schema_needs_a_feature_besides_the_label() -> None:
    with pytest.raises(InputError, match="only the label column 'label'"):
        infer_schema(pd.DataFrame({"label": [0, 1]}), "label")


# --------------------------------------------------------------------------------------------------
# Declared schemas
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_declared_schema_means_infer(text: str) -> None:
    assert parse_declared_schema(text) is None


def test_declared_schema_is_parsed_in_order() -> None:
    declared = parse_declared_schema('{"city": "categorical", "age": "numeric"}')
    assert declared == {"city": "categorical", "age": "numeric"}
    assert list(declared) == ["city", "age"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('{"age": "numeric",', r"not valid JSON \(.* at position \d+\)", id="truncated"),
        pytest.param("age: numeric", "not valid JSON", id="yaml-not-json"),
        pytest.param("{'age': 'numeric'}", "not valid JSON", id="single-quotes"),
        pytest.param('["age", "numeric"]', "expected a JSON object", id="list"),
        pytest.param('"numeric"', "expected a JSON object", id="string"),
        pytest.param("{}", "expected a JSON object", id="empty-object"),
    ],
)
def test_bad_declared_schema_text(text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected) as info:
        parse_declared_schema(text)
    assert str(info.value).startswith("schema:")


@pytest.mark.parametrize("kind", ["text", "Numeric", "int", None, 3])
def test_unknown_kind_names_the_column_and_lists_valid_kinds(kind: object) -> None:
    with pytest.raises(InputError) as info:
        parse_declared_schema(json.dumps({"age": "numeric", "zip code": kind}))
    message = str(info.value)
    assert "column 'zip code'" in message
    assert repr(kind) in message
    assert "valid kinds are numeric, categorical" in message
    assert all(valid in message for valid in FEATURE_KINDS)


def test_table_schema_json_round_trip() -> None:
    schema = TableSchema(features={"age": "numeric", "city": "categorical"}, label="label")
    data = schema.to_json()
    assert data == {"label": "label", "features": {"age": "numeric", "city": "categorical"}}
    assert TableSchema.from_json(data) == schema


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"label": "y", "features": ["age"]}, "'features' must be a mapping", id="features-list"),
        pytest.param({"label": "y"}, "'features' must be a mapping", id="features-missing"),
        pytest.param({"label": "y", "features": {"age": "float"}}, "column 'age' has kind 'float'", id="bad-kind"),
    ],
)
def test_table_schema_from_bad_json(data: dict[str, object], expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        TableSchema.from_json(data)


# --------------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------------


def _write(frame: pd.DataFrame, path: Path, how: str) -> None:
    if how == "csv":
        frame.to_csv(path, index=False)
    elif how == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    else:
        frame.to_parquet(path, index=False)


@pytest.mark.parametrize(
    ("name", "how"),
    [
        pytest.param("data.csv", "csv", id="csv"),
        pytest.param("DATA.CSV", "csv", id="csv-upper-case-suffix"),
        pytest.param("data.txt", "csv", id="txt"),
        pytest.param("data", "csv", id="csv-without-suffix"),
        pytest.param("data.tsv", "tsv", id="tsv"),
        pytest.param("data.parquet", "parquet", id="parquet"),
        pytest.param("data.pq", "parquet", id="pq"),
        pytest.param("data.bin", "parquet", id="parquet-found-by-magic-bytes"),
        pytest.param("data", "parquet", id="parquet-without-suffix"),
    ],
)
def test_read_table_formats(tmp_path: Path, name: str, how: str) -> None:
    frame = _sample()
    path = tmp_path / name
    _write(frame, path, how)
    read = read_table(path)
    assert list(read.columns) == list(frame.columns)
    assert len(read) == len(frame)
    assert read["age"].tolist() == frame["age"].tolist()
    np.testing.assert_array_equal(read["income"].to_numpy(dtype=float), frame["income"].to_numpy(dtype=float))
    assert read["city"].isna().tolist() == [False, False, True, False]
    assert read["label"].tolist() == frame["label"].tolist()


def test_read_table_reads_a_parquet_directory(tmp_path: Path) -> None:
    directory = tmp_path / "dataset"
    directory.mkdir()
    frame = _sample()
    frame.iloc[:2].to_parquet(directory / "part-0.parquet", index=False)
    frame.iloc[2:].to_parquet(directory / "part-1.parquet", index=False)
    read = read_table(directory)
    assert sorted(read["age"].tolist()) == sorted(frame["age"].tolist())


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        pytest.param("empty.csv", b"", "is empty", id="empty-file"),
        pytest.param("empty.parquet", b"", "is empty", id="empty-parquet"),
        pytest.param("header.csv", b"age,income,label\n", "has no data rows", id="header-only"),
        pytest.param("blank.csv", b"\n\n", "cannot be read as a table", id="blank-lines"),
        pytest.param("data.xlsx", b"age,label\n1,0\n", "unknown format '.xlsx'", id="unknown-suffix"),
        pytest.param("data.json", b'[{"age": 1}]', "unknown format '.json'", id="json"),
        pytest.param("broken.parquet", b"PAR1 not really parquet", "cannot be read as a table", id="corrupt-parquet"),
        pytest.param("latin1.csv", "name,label\nJos\u00e9,1\n".encode("latin-1"), "cannot be read", id="not-utf8"),
        pytest.param("ragged.csv", b"a,b\n1,2\n3,4,5,6\n", "cannot be read as a table", id="ragged-rows"),
    ],
)
def test_read_table_bad_files_name_the_file(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected) as info:
        read_table(path)
    assert str(path) in str(info.value)


def test_read_table_nonexistent_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "data.csv"
    with pytest.raises(InputError, match="does not exist") as info:
        read_table(str(path))
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------------------------------
# Checking a frame against a schema
# --------------------------------------------------------------------------------------------------


def test_coerce_to_schema_types_and_order(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("age,city,label,unused\n31,Oslo,yes,x\n45,,no,y\n27.5,Lima,no,z\n")
    frame = read_table(path)
    schema = TableSchema(features={"city": "categorical", "age": "numeric"}, label="label")
    typed = coerce_to_schema(frame, schema, source="input file data.csv")
    assert list(typed.columns) == ["city", "age", "label"]  # declared order; undeclared columns dropped
    assert typed["age"].dtype == np.float64
    assert typed["age"].tolist() == [31.0, 45.0, 27.5]
    assert typed["city"].tolist() == ["Oslo", None, "Lima"]
    assert typed["label"].tolist() == ["yes", "no", "no"]
    assert typed.index.equals(frame.index)


def test_numeric_text_that_parses_is_converted() -> None:
    values = pd.Series(["1.5", "2", None, "-3e2"])
    assert numeric_column(values, "x", "src").tolist()[:2] == [1.5, 2.0]
    converted = numeric_column(values, "x", "src")
    assert np.isnan(converted.iloc[2])
    assert converted.iloc[3] == -300.0
    assert converted.dtype == np.float64


def test_numeric_column_with_text_names_column_row_and_value(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("age,income,label\n31,52.5,yes\n45,,no\n27,twelve,no\n60,71.0,yes\n")
    frame = read_table(path)
    schema = infer_schema(frame, "label")
    assert schema.features["income"] == "categorical"  # inferred from the text ...
    declared = TableSchema(features={"age": "numeric", "income": "numeric"}, label="label")
    with pytest.raises(InputError) as info:  # ... but declared numeric, it is an error
        coerce_to_schema(frame, declared, source=f"input file {path}")
    message = str(info.value)
    assert str(path) in message
    assert "column 'income'" in message
    assert "row 2" in message
    assert "'twelve'" in message
    assert "declare the column categorical" in message


@pytest.mark.parametrize(
    ("values", "row", "shown"),
    [
        pytest.param(pd.Series(["1", "2", "n.a."], index=[10, 11, 12]), 12, "'n.a.'", id="index-label"),
        pytest.param(pd.Series([1, "x", "y"], dtype=object), 1, "'x'", id="first-of-several"),
        pytest.param(pd.Series(["1", None, "3", "1,5"]), 3, "'1,5'", id="decimal-comma"),
    ],
)
def test_numeric_column_reports_first_bad_row(values: pd.Series, row: int, shown: str) -> None:
    with pytest.raises(InputError) as info:
        numeric_column(values, "amount", "src")
    message = str(info.value)
    assert message.startswith("src: column 'amount'")
    assert f"row {row} holds {shown}" in message


def test_coerce_to_schema_missing_columns_are_all_named() -> None:
    schema = TableSchema(features={"age": "numeric", "height": "numeric", "city": "categorical"}, label="outcome")
    with pytest.raises(InputError) as info:
        coerce_to_schema(_sample(), schema, source="input file x.csv")
    message = str(info.value)
    assert message.startswith("input file x.csv: missing column(s)")
    assert "'height'" in message
    assert "'outcome'" in message
    assert "'age'" not in message.split(";")[0]


def test_require_columns_passes_when_present() -> None:
    require_columns(_sample(), ["age", "label"], source="input")


def test_categorical_column_keeps_missing_values_missing() -> None:
    values = pd.Series([1, None, 3.5, "b"], dtype=object)
    assert categorical_column(values).tolist() == ["1", None, "3.5", "b"]
