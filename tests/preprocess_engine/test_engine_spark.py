"""The spark backend (pyspark on local[*], Java 17) against the pandas reference: same splits, preprocessor, report.

Marked `spark` (about 40 s, part of `make test`; `make test-spark` runs only this lane).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, preprocess
from kubeforge.errors import InputError
from kubeforge.preprocess_engine.imbalance import ClassBalance
from kubeforge.preprocessor import PreprocessOptions

_spec = importlib.util.spec_from_file_location("engine_equality", Path(__file__).parent / "test_engine_equality.py")
assert _spec is not None and _spec.loader is not None
equality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(equality)

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module", autouse=True)
def spark_session() -> Iterator[None]:
    pytest.importorskip("pyspark", reason="pip install 'kubeforge[spark]'")
    from kubeforge.preprocess_engine.engine_spark import spark_session

    session = spark_session()
    yield
    session.stop()
    # py4j closes its gateway connection at interpreter exit and logs it at INFO, after pytest has
    # closed the stream its logging capture wrote to: a "--- Logging error ---" trace in the output.
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.mark.parametrize(
    "options",
    [
        PreprocessOptions(),
        PreprocessOptions(numeric_impute="mean", clip_quantiles=None, encoding="ordinal", unknown_categories="ignore"),
    ],
    ids=["defaults", "mean-noclip-ordinal-ignore"],
)
def test_spark_matches_pandas_and_duckdb_on_mixed_parquet_files(tmp_path: Path, options: PreprocessOptions) -> None:
    frame = equality.mixed_table(4000, seed=5, rare_tail=True)
    directory = tmp_path / "parts"
    directory.mkdir()
    for index, start in enumerate(range(0, len(frame), 1500)):
        frame.iloc[start : start + 1500].to_parquet(directory / f"part-{index}.parquet", index=False)
    kwargs: dict[str, Any] = {"label": "label", "options": options}
    reference = equality._run(directory, tmp_path / "pandas", "pandas", **kwargs)
    equality._assert_same_runs(reference, equality._run(directory, tmp_path / "spark", "spark", **kwargs))
    equality._assert_same_runs(reference, equality._run(directory, tmp_path / "duckdb", "duckdb", **kwargs))


@pytest.mark.parametrize("sampling", ["undersample", "oversample"])
def test_spark_resamples_the_training_split_like_pandas(tmp_path: Path, sampling: str) -> None:
    path = tmp_path / "mixed.parquet"
    equality.mixed_table(3000, seed=6).to_parquet(path, index=False, row_group_size=800)
    kwargs: dict[str, Any] = {"label": "label", "balance": ClassBalance(sampling, "balanced")}  # type: ignore[arg-type]
    reference = equality._run(path, tmp_path / "pandas", "pandas", **kwargs)
    equality._assert_same_runs(reference, equality._run(path, tmp_path / "spark", "spark", **kwargs))
    assert len(set(reference["splits"]["train"]["label"].value_counts())) == 1


def test_spark_bad_input_names_the_row_and_writes_nothing(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": ["1.5", "2", "oops", "4"] * 10, "y": [0, 1] * 20})
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, index=False)
    out = tmp_path / "out"
    out.mkdir()
    outputs = PreprocessOutputs(*(str(out / n) for n in equality.OUTPUT_NAMES))
    with pytest.raises(InputError, match=r"column 'x' is numeric but row 2 holds 'oops'"):
        preprocess(path, outputs, label="y", schema_json='{"x": "numeric"}', engine="spark")
    assert list(out.iterdir()) == []
