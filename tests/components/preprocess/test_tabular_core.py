"""The preprocess/tabular core on real files: scikit-learn's breast cancer table as CSV and Parquet.

A `row_id` column is added to the input so every output row can be traced back to its input row:
the splits must be disjoint, cover every input row with its values unchanged, and keep the class
shares of a stratified split. Every bad input must raise an InputError that names what to fix and
leave no output file at all (nothing half-written for a pipeline to pick up).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from kubeforge.categories import INFREQUENT
from kubeforge.components.preprocess.tabular.core import (
    SPLITS,
    PreprocessOutputs,
    PreprocessResult,
    SplitFractions,
    preprocess,
)
from kubeforge.errors import ArtifactError, InputError
from kubeforge.preprocessor import FittedPreprocessor, PreprocessOptions, fit_preprocessor
from kubeforge.tabular import TableSchema
from kubeforge.training.data import load_split

LABEL = "target"
OUTPUT_NAMES = ("train.parquet", "validation.parquet", "test.parquet", "preprocessor.json", "statistics.md")


def _outputs(directory: Path) -> PreprocessOutputs:
    return PreprocessOutputs(*(str(directory / name) for name in OUTPUT_NAMES))


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    """569 rows: `row_id`, 30 numeric features and the 0/1 label `target` (212 malignant, 357 benign)."""
    frame = load_breast_cancer(as_frame=True).frame
    frame.insert(0, "row_id", np.arange(len(frame)))
    return frame


@pytest.fixture(scope="module")
def cancer_csv(cancer: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("input") / "breast_cancer.csv"
    cancer.to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class Run:
    directory: Path
    result: PreprocessResult
    splits: dict[str, pd.DataFrame]


def _run(input_path: Path, directory: Path, **kwargs: Any) -> Run:
    directory.mkdir(parents=True, exist_ok=True)
    result = preprocess(input_path, _outputs(directory), **{"label": LABEL, **kwargs})
    splits = {name: pd.read_parquet(directory / f"{name}.parquet") for name in SPLITS}
    return Run(directory=directory, result=result, splits=splits)


@pytest.fixture(scope="module")
def csv_run(cancer_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(cancer_csv, tmp_path_factory.mktemp("csv_run"))


# --------------------------------------------------------------------------------------------------
# The breast cancer CSV, end to end
# --------------------------------------------------------------------------------------------------


def test_writes_exactly_the_five_outputs(csv_run: Run) -> None:
    assert sorted(path.name for path in csv_run.directory.iterdir()) == sorted(OUTPUT_NAMES)


def test_row_counts_sum_to_input_and_follow_fractions(csv_run: Run, cancer: pd.DataFrame) -> None:
    rows = csv_run.result.rows
    assert rows == {name: len(frame) for name, frame in csv_run.splits.items()}
    assert sum(rows.values()) == len(cancer) == 569
    assert abs(rows["validation"] - 0.15 * 569) <= 1
    assert abs(rows["test"] - 0.15 * 569) <= 1


def test_splits_are_disjoint_and_cover_every_row_unchanged(csv_run: Run, cancer: pd.DataFrame) -> None:
    ids = {name: set(frame["row_id"]) for name, frame in csv_run.splits.items()}
    assert all(len(ids[name]) == len(csv_run.splits[name]) for name in SPLITS)  # no row twice in a split
    assert not ids["train"] & ids["validation"]
    assert not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    assert ids["train"] | ids["validation"] | ids["test"] == set(cancer["row_id"])
    combined = pd.concat(csv_run.splits.values()).sort_values("row_id").reset_index(drop=True)
    assert list(combined.columns) == list(cancer.columns)
    pd.testing.assert_frame_equal(combined, cancer.astype({c: "float64" for c in cancer.columns if c != LABEL}))


@pytest.mark.parametrize("split", SPLITS)
def test_stratified_split_keeps_class_shares(csv_run: Run, cancer: pd.DataFrame, split: str) -> None:
    overall = cancer[LABEL].value_counts(normalize=True)
    shares = csv_run.splits[split][LABEL].value_counts(normalize=True)
    assert set(shares.index) == {0, 1}
    for value in (0, 1):
        assert abs(shares[value] - overall[value]) < 0.02, (split, value, shares[value], overall[value])


def test_preprocessor_is_fitted_on_the_written_train_split(csv_run: Run) -> None:
    loaded = FittedPreprocessor.load(csv_run.directory / "preprocessor.json")
    assert loaded == csv_run.result.preprocessor
    train = csv_run.splits["train"]
    assert loaded.fitted_on_rows == len(train)
    assert loaded.classes == [0, 1]
    assert loaded.schema == csv_run.result.schema
    refit = fit_preprocessor(train, loaded.schema, "classification", PreprocessOptions())
    assert refit == loaded
    transformed = loaded.transform(train)
    assert transformed.shape == (len(train), 31)
    np.testing.assert_allclose(transformed.mean(axis=0), 0.0, atol=1e-5)


def test_statistics_markdown_mentions_every_feature(csv_run: Run, cancer: pd.DataFrame) -> None:
    text = (csv_run.directory / "statistics.md").read_text()
    assert text.startswith("# Data statistics")
    assert "schema inferred" in text
    for name in cancer.columns:
        if name != LABEL:
            assert f"| {name} | numeric |" in text, name
    for split, count in csv_run.result.rows.items():
        assert f"| {split} | {count} |" in text
    assert "## Label balance" in text


def test_schema_is_inferred(csv_run: Run, cancer: pd.DataFrame) -> None:
    assert csv_run.result.schema_inferred
    assert csv_run.result.schema == TableSchema(
        features={name: "numeric" for name in cancer.columns if name != LABEL}, label=LABEL
    )


def test_parquet_input_gives_the_same_splits(csv_run: Run, cancer: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "breast_cancer.parquet"
    cancer.to_parquet(path, index=False)
    run = _run(path, tmp_path / "out")
    for split in SPLITS:
        assert run.splits[split]["row_id"].tolist() == csv_run.splits[split]["row_id"].tolist()
    assert run.result.preprocessor == csv_run.result.preprocessor


def test_seed_controls_the_split(csv_run: Run, cancer_csv: Path, tmp_path: Path) -> None:
    again = _run(cancer_csv, tmp_path / "same")
    other = _run(cancer_csv, tmp_path / "other", seed=7)
    assert again.splits["test"]["row_id"].tolist() == csv_run.splits["test"]["row_id"].tolist()
    assert set(other.splits["test"]["row_id"]) != set(csv_run.splits["test"]["row_id"])
    assert other.result.rows == csv_run.result.rows


def test_declared_schema_selects_and_types_columns(cancer: pd.DataFrame, tmp_path: Path) -> None:
    frame = cancer.assign(
        size_band=pd.cut(cancer["mean area"], bins=[0, 450, 800, np.inf], labels=["small", "medium", "large"]),
        note="free text that is not declared",
    )
    path = tmp_path / "with_band.csv"
    frame.to_csv(path, index=False)
    schema = {"row_id": "numeric", "mean radius": "numeric", "size_band": "categorical", "mean texture": "numeric"}
    run = _run(path, tmp_path / "out", schema_json=json.dumps(schema), options=PreprocessOptions(encoding="ordinal"))
    assert not run.result.schema_inferred
    assert run.result.schema == TableSchema(features=schema, label=LABEL)  # type: ignore[arg-type]
    for split in run.splits.values():
        assert list(split.columns) == [*schema, LABEL]
    preprocessor = FittedPreprocessor.load(tmp_path / "out" / "preprocessor.json")
    assert preprocessor.output_columns == list(schema)
    assert preprocessor.features[2].categories == ["large", "medium", "small", INFREQUENT]  # type: ignore[union-attr]
    assert "schema declared" in (tmp_path / "out" / "statistics.md").read_text()
    assert sum(run.result.rows.values()) == len(cancer)


def test_regression_task(cancer: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "regression.csv"
    cancer.to_csv(path, index=False)
    run = _run(path, tmp_path / "out", label="mean area", task="regression")
    assert sum(run.result.rows.values()) == len(cancer)
    preprocessor = FittedPreprocessor.load(tmp_path / "out" / "preprocessor.json")
    assert preprocessor.task == "regression"
    assert preprocessor.classes is None
    assert preprocessor.label == "mean area"
    assert "mean area" not in preprocessor.output_columns
    assert LABEL in preprocessor.output_columns  # the former label is now an ordinary feature
    targets = preprocessor.encode_labels(run.splits["test"]["mean area"])
    np.testing.assert_allclose(targets, run.splits["test"]["mean area"], rtol=1e-6)
    statistics = (tmp_path / "out" / "statistics.md").read_text()
    assert "(regression: given)" in statistics
    assert "Label balance" not in statistics


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
@pytest.mark.parametrize("policy", ["infrequent", "ignore", "error"])
def test_one_off_categories_only_in_validation_reach_training_under_each_policy(
    cancer: pd.DataFrame, tmp_path: Path, policy: str, engine: str
) -> None:
    frame = cancer.assign(region=np.where(np.arange(len(cancer)) % 2 == 0, "north", "south"))
    one_off = frame.index[::23]
    frame.loc[one_off, "region"] = [f"estate {i}" for i in range(len(one_off))]
    path = tmp_path / "regions.csv"
    frame.to_csv(path, index=False)
    options = PreprocessOptions(unknown_categories=policy)  # type: ignore[arg-type]
    run = _run(path, tmp_path / "out", options=options, engine=engine)
    validation = run.splits["validation"]
    assert set(validation["region"]) - set(run.splits["train"]["region"])  # values training never saw
    preprocessor = FittedPreprocessor.load(tmp_path / "out" / "preprocessor.json")
    statistics = (tmp_path / "out" / "statistics.md").read_text()
    if policy == "error":
        with pytest.raises(InputError, match=r"validation_data .*: column 'region' has unknown category 'estate \d+'"):
            load_split(str(tmp_path / "out" / "validation.parquet"), preprocessor, "validation_data")
        return
    split = load_split(str(tmp_path / "out" / "validation.parquet"), preprocessor, "validation_data")
    region = [c for c in preprocessor.output_columns if c.startswith("region=")]
    block = split.features.numpy()[:, [preprocessor.output_columns.index(c) for c in region]]
    one_offs = validation["region"].str.startswith("estate").to_numpy()
    if policy == "infrequent":
        assert region == ["region=north", "region=south", f"region={INFREQUENT}"]
        np.testing.assert_array_equal(block[:, 2], one_offs)
    else:
        assert region == ["region=north", "region=south"]
        np.testing.assert_array_equal(block.sum(axis=1), ~one_offs)
    folded = sum(run.splits["train"]["region"].str.startswith("estate"))
    assert f"{folded} rare categories, {folded} rows, into" in statistics


@pytest.mark.parametrize(
    ("label", "task", "reason"),
    [
        ("mean area", "regression", "inferred: label `mean area` is numeric with fractional values"),
        (LABEL, "classification", "inferred: label `target` has 2 distinct whole numbers (20 or fewer)"),
        ("many", "regression", "inferred: label `many` is numeric with 300 distinct values (more than 20)"),
    ],
)
def test_task_is_inferred_from_the_label_and_the_statistics_say_why(
    cancer: pd.DataFrame, tmp_path: Path, label: str, task: str, reason: str
) -> None:
    path = tmp_path / "data.parquet"
    cancer.assign(many=np.arange(len(cancer)) % 300).to_parquet(path, index=False)
    run = _run(path, tmp_path / "out", label=label)
    assert run.result.preprocessor.task == task
    assert f"({task}: {reason})" in (tmp_path / "out" / "statistics.md").read_text()


# --------------------------------------------------------------------------------------------------
# Bad input: an InputError naming the problem, and no output at all
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    input_path: Path
    kwargs: dict[str, Any]
    expected: list[str]  # fragments the message must contain


def _csv(directory: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = directory / name
    frame.to_csv(path, index=False)
    return path


def _text(directory: Path, text: str, name: str = "data.csv") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def _case_missing_label(d: Path, cancer: pd.DataFrame) -> Case:
    return Case(_csv(d, cancer), {"label": "diagnosis"}, ["missing column(s) 'diagnosis'", "mean radius"])


def _case_declared_column_missing(d: Path, cancer: pd.DataFrame) -> Case:
    path = _csv(d, cancer)
    schema = json.dumps({"mean radius": "numeric", "tumour grade": "categorical"})
    return Case(path, {"schema_json": schema}, [str(path), "missing column(s) 'tumour grade'"])


def _case_text_in_declared_numeric(d: Path, cancer: pd.DataFrame) -> Case:
    frame = cancer.astype({"mean texture": object})
    frame.loc[17, "mean texture"] = "about 20"
    path = _csv(d, frame)
    schema = json.dumps({"mean radius": "numeric", "mean texture": "numeric"})
    return Case(path, {"schema_json": schema}, [str(path), "column 'mean texture'", "row 17", "'about 20'"])


def _case_bad_schema_json(d: Path, cancer: pd.DataFrame) -> Case:
    return Case(_csv(d, cancer), {"schema_json": '{"mean radius": numeric}'}, ["schema: not valid JSON"])


def _case_unknown_kind(d: Path, cancer: pd.DataFrame) -> Case:
    schema = json.dumps({"mean radius": "float"})
    return Case(
        _csv(d, cancer), {"schema_json": schema}, ["column 'mean radius'", "valid kinds are numeric, categorical"]
    )


def _case_empty_file(d: Path, cancer: pd.DataFrame) -> Case:
    path = _text(d, "")
    return Case(path, {}, [str(path), "is empty"])


def _case_header_only(d: Path, cancer: pd.DataFrame) -> Case:
    path = _text(d, ",".join(cancer.columns) + "\n")
    return Case(path, {}, [str(path), "no data rows"])


def _case_nonexistent(d: Path, cancer: pd.DataFrame) -> Case:
    path = d / "missing.csv"
    return Case(path, {}, [str(path), "does not exist"])


def _case_single_class(d: Path, cancer: pd.DataFrame) -> Case:
    path = _csv(d, cancer[cancer[LABEL] == 1])
    return Case(path, {}, [str(path), "label column 'target' has a single class", "task='regression'"])


def _case_nan_labels(d: Path, cancer: pd.DataFrame) -> Case:
    frame = cancer.astype({LABEL: float})
    frame.loc[[3, 40], LABEL] = np.nan
    path = _csv(d, frame)
    return Case(path, {}, [str(path), "label column 'target' has 2 missing value(s)", "[3, 40]"])


def _case_rare_class(d: Path, cancer: pd.DataFrame) -> Case:
    frame = cancer.copy()
    frame.loc[[5, 50, 500], LABEL] = 2
    return Case(_csv(d, frame), {}, ["label column 'target'", "2 (3 rows)", "too few rows for a stratified split"])


def _case_text_regression_labels(d: Path, cancer: pd.DataFrame) -> Case:
    frame = cancer.assign(**{LABEL: cancer[LABEL].map({0: "malignant", 1: "benign"})})
    path = _csv(d, frame)
    return Case(
        path,
        {"task": "regression"},
        [
            str(path),
            "task is 'regression' but label column 'target' holds text ('malignant', 'benign')",
            "task='classification'",
        ],
    )


def _case_fractional_labels_for_classification(d: Path, cancer: pd.DataFrame) -> Case:
    path = _csv(d, cancer)
    expected = [
        "task is 'classification' but label column 'mean area' holds",
        "with fractions",
        "holds 539 distinct numbers",
        "and 534 more",
        "task='regression'",
    ]
    return Case(path, {"task": "classification", "label": "mean area"}, [str(path), *expected])


def _case_many_numeric_classes(d: Path, cancer: pd.DataFrame) -> Case:
    path = _csv(d, cancer.assign(**{LABEL: np.arange(len(cancer)) % 200}))
    expected = ["200 class(es) have too few rows", "and 195 more", "may be a regression target: set task='regression'"]
    return Case(path, {"task": "classification"}, expected)


def _case_all_null_categorical(d: Path, cancer: pd.DataFrame) -> Case:
    path = _csv(d, cancer.assign(region=None))
    schema = json.dumps({"mean radius": "numeric", "region": "categorical"})
    return Case(path, {"schema_json": schema}, ["categorical column 'region' has no values; drop it or fill it"])


def _case_unknown_task(d: Path, cancer: pd.DataFrame) -> Case:
    return Case(_csv(d, cancer), {"task": "ranking"}, ["task is 'ranking'", "classification, regression"])


def _case_too_few_rows(d: Path, cancer: pd.DataFrame) -> Case:
    return Case(_csv(d, cancer.head(3)), {"label": "mean area", "task": "regression"}, ["cannot split 3 rows"])


def _case_empty_numeric_in_train(d: Path, cancer: pd.DataFrame) -> Case:
    frame = cancer.assign(biopsy_score=np.nan)
    return Case(_csv(d, frame), {}, ["numeric column 'biopsy_score' has no values"])


def _case_ragged_csv(d: Path, cancer: pd.DataFrame) -> Case:
    rows = [",".join(map(str, row)) for row in cancer.head(40).itertuples(index=False)]
    rows[24] += ",99"
    path = _text(d, ",".join(cancer.columns) + "\n" + "\n".join(rows) + "\n")
    return Case(path, {}, [str(path), "line 26"])


def _case_corrupt_parquet(d: Path, cancer: pd.DataFrame) -> Case:
    path = d / "data.parquet"
    cancer.to_parquet(path, index=False)
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 2000] = b"\xff" * 2000
    path.write_bytes(bytes(data))
    return Case(path, {}, [str(path)])


BAD_INPUTS: dict[str, Callable[[Path, pd.DataFrame], Case]] = {
    "ragged-csv": _case_ragged_csv,
    "corrupt-parquet": _case_corrupt_parquet,
    "missing-label-column": _case_missing_label,
    "declared-column-missing": _case_declared_column_missing,
    "text-in-declared-numeric": _case_text_in_declared_numeric,
    "schema-not-json": _case_bad_schema_json,
    "schema-unknown-kind": _case_unknown_kind,
    "empty-file": _case_empty_file,
    "header-only": _case_header_only,
    "nonexistent-file": _case_nonexistent,
    "single-class": _case_single_class,
    "nan-labels": _case_nan_labels,
    "class-too-rare-to-stratify": _case_rare_class,
    "text-labels-for-regression": _case_text_regression_labels,
    "fractional-labels-for-classification": _case_fractional_labels_for_classification,
    "many-numeric-classes": _case_many_numeric_classes,
    "all-null-categorical-column": _case_all_null_categorical,
    "unknown-task": _case_unknown_task,
    "too-few-rows-to-split": _case_too_few_rows,
    "numeric-column-without-values": _case_empty_numeric_in_train,
}


@pytest.mark.parametrize("engine", ["pandas", "duckdb"])
@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_raises_and_writes_nothing(name: str, engine: str, cancer: pd.DataFrame, tmp_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    case = BAD_INPUTS[name](inputs, cancer)
    with pytest.raises(InputError) as info:
        preprocess(case.input_path, _outputs(out), **{"label": LABEL, "engine": engine, **case.kwargs})
    message = str(info.value)
    for fragment in case.expected:
        assert fragment in message, (fragment, message)
    assert len(message) < 600 and "\n" not in message.strip()
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("fractions", "expected"),
    [
        pytest.param({"validation": 0.0}, "validation_fraction is 0.0", id="zero-validation"),
        pytest.param({"test": 1.0}, "test_fraction is 1.0", id="all-test"),
        pytest.param({"test": -0.1}, "test_fraction is -0.1", id="negative"),
        pytest.param({"validation": 0.5, "test": 0.45}, "validation_fraction + test_fraction is 0.95", id="no-train"),
    ],
)
def test_bad_fractions(fractions: dict[str, float], expected: str, cancer_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=expected.replace("+", r"\+")):
        preprocess(cancer_csv, _outputs(tmp_path), label=LABEL, fractions=SplitFractions(**fractions))
    assert list(tmp_path.iterdir()) == []


def test_outputs_not_in_a_directory_yet_are_not_created(cancer_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "not" / "yet"
    with pytest.raises(InputError):
        preprocess(cancer_csv, _outputs(out), label="diagnosis")
    assert not (tmp_path / "not").exists()


def test_failed_write_publishes_no_output(cancer_csv: Path, tmp_path: Path) -> None:
    """The last output cannot be written (a directory is in its way): the four before it stay unpublished."""
    (tmp_path / "statistics.md").mkdir()
    with pytest.raises(ArtifactError, match=r"statistics\.md"):
        preprocess(cancer_csv, _outputs(tmp_path), label=LABEL)
    assert [path.name for path in tmp_path.iterdir()] == ["statistics.md"]
    assert list((tmp_path / "statistics.md").iterdir()) == []
