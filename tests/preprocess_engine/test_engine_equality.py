"""The duckdb backend against the pandas reference on real files: same splits, preprocessor and report.

Data: scikit-learn's breast cancer table (CSV) and a generated mixed table (numeric and categorical
columns with nulls and NaN, three classes) written as one Parquet file and as a directory of files.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from kubeforge.categories import INFREQUENT, parse_column_policies
from kubeforge.components.preprocess.tabular.core import SPLITS, PreprocessOutputs, preprocess
from kubeforge.errors import InputError
from kubeforge.preprocessor import PreprocessOptions

OUTPUT_NAMES = ("train.parquet", "validation.parquet", "test.parquet", "preprocessor.json", "statistics.md")


def mixed_table(rows: int, seed: int = 0, rare_tail: bool = False) -> pd.DataFrame:
    """Numeric and categorical columns with missing values, an integer code column and a 3-class label.

    With `rare_tail`, a `region` column has a long tail of rare values (a few hundred distinct, most on
    one or two rows, with spaces), so the category policies fold many of them.
    """
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 1, rows)
    income[rng.random(rows) < 0.1] = np.nan
    age = rng.integers(18, 90, rows).astype("float64")
    age[rng.random(rows) < 0.05] = np.nan
    city = rng.choice(["berlin", "paris", "rome", "oslo"], rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    city[rng.random(rows) < 0.07] = None
    frame = pd.DataFrame(
        {
            "row_id": np.arange(rows),
            "income": income,
            "age": age,
            "score": rng.normal(0, 1, rows),
            "city": city,
            "plan": rng.choice(["basic", "plus", "pro"], rows),
            "label": rng.choice(["churn", "stay", "upgrade"], rows, p=[0.2, 0.7, 0.1]),
        }
    )
    if rare_tail:
        frame["region"] = [f"estate {n}" if n > 3 else f"r{n}" for n in rng.zipf(1.6, rows) % 400]
    return frame


def _run(input_path: Path, directory: Path, engine: str, **kwargs: Any) -> dict[str, Any]:
    directory.mkdir(parents=True)
    outputs = PreprocessOutputs(*(str(directory / name) for name in OUTPUT_NAMES))
    result = preprocess(input_path, outputs, engine=engine, **kwargs)
    return {
        "result": result,
        "splits": {name: pd.read_parquet(directory / f"{name}.parquet") for name in SPLITS},
        "report": (directory / "statistics.md").read_text(),
    }


def _assert_same_json(left: Any, right: Any, path: str = "") -> None:
    if isinstance(left, float) or isinstance(right, float):
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9), (path, left, right)
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), path
        for key in left:
            _assert_same_json(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), path
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            _assert_same_json(a, b, f"{path}[{index}]")
    else:
        assert left == right, (path, left, right)


def _assert_same_runs(reference: dict[str, Any], other: dict[str, Any]) -> None:
    assert other["result"].rows == reference["result"].rows
    assert other["result"].schema == reference["result"].schema
    _assert_same_json(reference["result"].preprocessor.to_json(), other["result"].preprocessor.to_json())
    for name in SPLITS:
        pd.testing.assert_frame_equal(
            other["splits"][name].reset_index(drop=True),
            reference["splits"][name].reset_index(drop=True),
            check_dtype=False,
        )
    _assert_same_report(reference["report"], other["report"])


def _assert_same_report(reference: str, other: str) -> None:
    """Same text; numbers printed to 4 significant digits may differ in the last one (float summation order)."""
    number = re.compile(r"-?\d+\.?\d*(?:e[-+]?\d+)?")
    assert number.sub("#", other) == number.sub("#", reference)
    for left, right in zip(number.findall(reference), number.findall(other), strict=True):
        assert math.isclose(float(left), float(right), rel_tol=2e-3, abs_tol=1e-12), (left, right)


@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = load_breast_cancer(as_frame=True).frame
    path = tmp_path_factory.mktemp("cancer") / "breast_cancer.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def mixed_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mixed") / "mixed.parquet"
    mixed_table(5000, rare_tail=True).to_parquet(path, index=False, row_group_size=700)
    return path


@pytest.mark.parametrize("seed", [42, 7])
def test_duckdb_matches_pandas_on_breast_cancer_csv(cancer_csv: Path, tmp_path: Path, seed: int) -> None:
    reference = _run(cancer_csv, tmp_path / "pandas", "pandas", label="target", seed=seed)
    _assert_same_runs(reference, _run(cancer_csv, tmp_path / "duckdb", "duckdb", label="target", seed=seed))


@pytest.mark.parametrize(
    "options",
    [
        PreprocessOptions(),
        PreprocessOptions(numeric_impute="mean", clip_quantiles=None, encoding="ordinal"),
        PreprocessOptions(clip_quantiles=(0.05, 0.9)),
        PreprocessOptions(unknown_categories="ignore", max_categories=3, column_policies={"plan": "error"}),
        PreprocessOptions(encoding="ordinal", min_category_rows=40),
    ],
    ids=["defaults", "mean-noclip-ordinal", "wide-clip", "ignore-top3-plan-error", "ordinal-infrequent-40"],
)
def test_duckdb_matches_pandas_on_mixed_parquet(
    mixed_parquet: Path, tmp_path: Path, options: PreprocessOptions
) -> None:
    kwargs: dict[str, Any] = {"label": "label", "options": options}
    reference = _run(mixed_parquet, tmp_path / "pandas", "pandas", **kwargs)
    _assert_same_runs(reference, _run(mixed_parquet, tmp_path / "duckdb", "duckdb", **kwargs))


def test_duckdb_matches_pandas_on_a_directory_of_parquet_files(tmp_path: Path) -> None:
    frame = mixed_table(3000, seed=3)
    directory = tmp_path / "parts"
    directory.mkdir()
    for index, start in enumerate(range(0, len(frame), 1000)):
        frame.iloc[start : start + 1000].to_parquet(directory / f"part-{index}.parquet", index=False)
    reference = _run(directory, tmp_path / "pandas", "pandas", label="label")
    _assert_same_runs(reference, _run(directory, tmp_path / "duckdb", "duckdb", label="label"))


def test_duckdb_matches_pandas_for_regression_with_a_memory_limit(mixed_parquet: Path, tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"label": "score", "task": "regression"}
    reference = _run(mixed_parquet, tmp_path / "pandas", "pandas", **kwargs)
    limited = _run(mixed_parquet, tmp_path / "duckdb", "duckdb", memory_limit_mb=64, **kwargs)
    _assert_same_runs(reference, limited)


def test_arrow_transform_matches_the_fitted_preprocessor(mixed_parquet: Path, tmp_path: Path) -> None:
    from kubeforge.preprocess_engine import transform_arrow

    run = _run(mixed_parquet, tmp_path / "duckdb", "duckdb", label="label")
    preprocessor = run["result"].preprocessor
    test_split = tmp_path / "duckdb" / "test.parquet"
    small_batches = 97  # several batches, the last one short
    original_batch_rows = transform_arrow.BATCH_ROWS
    transform_arrow.BATCH_ROWS = small_batches
    try:
        rows = transform_arrow.transform_parquet(preprocessor, test_split, tmp_path / "x.parquet")
    finally:
        transform_arrow.BATCH_ROWS = original_batch_rows
    written = pd.read_parquet(tmp_path / "x.parquet")
    assert rows == len(run["splits"]["test"]) > small_batches
    assert list(written.columns) == preprocessor.output_columns
    assert set(written.dtypes) == {np.dtype(np.float32)}
    np.testing.assert_array_equal(written.to_numpy(), preprocessor.transform(run["splits"]["test"]))
    ordinal = _run(
        mixed_parquet, tmp_path / "ordinal", "duckdb", label="label", options=PreprocessOptions(encoding="ordinal")
    )
    transform_arrow.transform_parquet(ordinal["result"].preprocessor, test_split, tmp_path / "o.parquet")
    np.testing.assert_array_equal(
        pd.read_parquet(tmp_path / "o.parquet").to_numpy(),
        ordinal["result"].preprocessor.transform(run["splits"]["test"]),
    )


@pytest.mark.parametrize("policy", ["infrequent", "ignore"])
def test_unseen_and_rare_categories_follow_the_policy_in_pandas_and_arrow(
    mixed_parquet: Path, tmp_path: Path, policy: str
) -> None:
    from kubeforge.preprocess_engine.transform_arrow import transform_parquet

    options = PreprocessOptions(unknown_categories=policy)  # type: ignore[arg-type]
    run = _run(mixed_parquet, tmp_path / "duckdb", "duckdb", label="label", options=options)
    preprocessor = run["result"].preprocessor
    region = next(f for f in preprocessor.features if f.name == "region")
    assert region.policy == policy and region.folded_categories > 100 and region.folded_rows > 100
    assert (INFREQUENT in region.categories) == (policy == "infrequent")
    assert f"{region.folded_categories} rare categories" in run["report"]
    rows = run["splits"]["test"].assign(city=lambda frame: frame["city"].where(frame.index != 5, "madrid"))
    rows.to_parquet(tmp_path / "unknown.parquet", index=False)
    transform_parquet(preprocessor, tmp_path / "unknown.parquet", tmp_path / "y.parquet")
    written = pd.read_parquet(tmp_path / "y.parquet")
    np.testing.assert_array_equal(written.to_numpy(), preprocessor.transform(rows))
    city = written.loc[5, [c for c in written.columns if c.startswith("city=")]]
    if policy == "infrequent":
        assert city.to_dict() == {c: float(c == f"city={INFREQUENT}") for c in city.index}
    else:
        assert (city == 0).all() and f"city={INFREQUENT}" not in city.index
    unknown = preprocessor.unknown_category_rows(rows)
    assert unknown["city"] == 1 and unknown["region"] > 0


def test_arrow_transform_refuses_an_unknown_category_under_error_and_writes_nothing(
    mixed_parquet: Path, tmp_path: Path
) -> None:
    from kubeforge.preprocess_engine.transform_arrow import transform_parquet

    options = PreprocessOptions(unknown_categories="error")
    run = _run(mixed_parquet, tmp_path / "duckdb", "duckdb", label="label", options=options)
    unknown = run["splits"]["test"].assign(city=lambda frame: frame["city"].where(frame.index != 5, "madrid"))
    unknown.to_parquet(tmp_path / "unknown.parquet", index=False)
    message = r"column 'city' has unknown category 'madrid' \(1 row\(s\)\); known categories: berlin, oslo"
    with pytest.raises(InputError, match=message):
        transform_parquet(run["result"].preprocessor, tmp_path / "unknown.parquet", tmp_path / "y.parquet")
    with pytest.raises(InputError, match=message):
        run["result"].preprocessor.transform(unknown)
    assert not (tmp_path / "y.parquet").exists()
    with pytest.raises(InputError, match="missing feature column"):
        without_city = _without_column(tmp_path, run["splits"]["test"], "city")
        transform_parquet(run["result"].preprocessor, without_city, tmp_path / "z.parquet")
    assert not (tmp_path / "z.parquet").exists()


def test_a_misspelt_policy_is_a_short_error_naming_the_field(mixed_parquet: Path, tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"^unknown_categories is 'infrequnt'; valid values are infrequent, ignore, error$"
    ):
        PreprocessOptions(unknown_categories="infrequnt")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"unknown_categories_by_column\['city'\] is 'skip'"):
        parse_column_policies('{"city": "skip"}')
    with pytest.raises(InputError, match="min_category_rows is 0"):
        PreprocessOptions(min_category_rows=0)


def _without_column(tmp_path: Path, frame: pd.DataFrame, column: str) -> Path:
    path = tmp_path / f"without-{column}.parquet"
    frame.drop(columns=[column]).to_parquet(path, index=False)
    return path
