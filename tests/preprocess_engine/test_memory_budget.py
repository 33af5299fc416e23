"""The duckdb engine's memory budget: how it is shared, and that a run under it gives the unlimited run's outputs.

No timing and no RSS thresholds here (benchmarks/preprocess.py measures those): these tests check
that the batch sizes follow the budget, that the streamed numeric fit (used when a column does not
fit the budget) gives the in-memory fit's statistics, and that a whole run under a budget far below
the data's size writes the same splits, preprocessor and features as an unlimited run.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kubeforge.components.preprocess.tabular.core import SPLITS, PreprocessOutputs, preprocess
from kubeforge.preprocess_engine import fitting, split_writer, transform_arrow
from kubeforge.preprocess_engine.budget import DUCKDB_MIN_MB, MIN_BATCH_ROWS, MemoryBudget
from kubeforge.preprocessor import PreprocessOptions

_spec = importlib.util.spec_from_file_location("engine_equality", Path(__file__).parent / "test_engine_equality.py")
assert _spec is not None and _spec.loader is not None
equality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(equality)
OUTPUT_NAMES, mixed_table = equality.OUTPUT_NAMES, equality.mixed_table


def test_without_a_budget_every_stage_keeps_its_defaults() -> None:
    budget = MemoryBudget(0)
    assert not budget.limited and budget.duckdb_mb == 0 and budget.fits(1 << 50)
    assert split_writer.batch_rows(budget, 20) == split_writer.BATCH_ROWS
    assert budget.batch_rows(10**6, 12345) == 12345
    connection = duckdb.connect()
    default_threads = connection.sql("SELECT current_setting('threads')").fetchall()[0][0]
    budget.configure(connection)
    assert connection.sql("SELECT current_setting('threads')").fetchall()[0][0] == default_threads


def test_batches_and_duckdb_share_follow_the_budget() -> None:
    sizes = [split_writer.batch_rows(MemoryBudget(mb), 20) for mb in (8, 64, 256, 100_000)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[2] and sizes[-1] == split_writer.BATCH_ROWS
    assert split_writer.batch_rows(MemoryBudget(1), 10_000) == MIN_BATCH_ROWS
    # a batch's estimated bytes stay within a quarter of the budget
    assert sizes[1] * 3 * 16 * 20 <= 64 * 2**20 / 4
    budget = MemoryBudget(400)
    assert DUCKDB_MIN_MB <= budget.duckdb_mb < 400 and MemoryBudget(10).duckdb_mb == DUCKDB_MIN_MB
    connection = duckdb.connect()
    budget.configure(connection)
    limit, threads = connection.sql("SELECT current_setting('memory_limit'), current_setting('threads')").fetchall()[0]
    assert int(threads) == 1 and limit.endswith("MiB") and float(limit.split()[0]) <= budget.duckdb_mb


def test_transform_batches_follow_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "mixed.parquet"
    mixed_table(2000).to_parquet(path, index=False)
    outputs = PreprocessOutputs(*(str(tmp_path / name) for name in OUTPUT_NAMES))
    preprocessor = preprocess(path, outputs, label="label", engine="duckdb").preprocessor
    small, large = (transform_arrow.batch_rows(preprocessor, MemoryBudget(mb)) for mb in (4, 64))
    assert MIN_BATCH_ROWS <= small < large <= transform_arrow.BATCH_ROWS
    assert transform_arrow.batch_rows(preprocessor, MemoryBudget(0)) == transform_arrow.BATCH_ROWS


def _column_file(tmp_path: Path, values: np.ndarray, nulls: np.ndarray) -> Path:
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"x": pa.array(values, mask=nulls)}), path, row_group_size=3000)
    return path


@pytest.mark.parametrize(
    "options",
    [
        PreprocessOptions(),
        PreprocessOptions(numeric_impute="mean", clip_quantiles=None),
        PreprocessOptions(clip_quantiles=(0.1, 0.8)),
    ],
    ids=["median-clip", "mean-noclip", "wide-clip"],
)
@pytest.mark.parametrize("shape", ["spread", "ties"])
def test_streamed_numeric_fit_equals_the_in_memory_fit(tmp_path: Path, options: PreprocessOptions, shape: str) -> None:
    rng = np.random.default_rng(5)
    rows = 20_000
    if shape == "spread":  # negative and positive values, zeros of both signs, NaN and nulls
        values = rng.normal(-3, 50, rows)
        values[:50], values[50:100] = 0.0, -0.0
    else:  # most values equal: the selection must narrow to single keys, not hold the tied range
        values = np.where(rng.random(rows) < 0.9, 7.25, rng.lognormal(0, 1, rows))
    values[rng.random(rows) < 0.03] = np.nan
    path = _column_file(tmp_path, values, rng.random(rows) < 0.05)
    in_memory = fitting.fit_numeric_column(path, "x", options)
    streamed = fitting.fit_numeric_column(path, "x", options, MemoryBudget(1))  # 20k rows do not fit 1 MiB
    kept = pq.read_table(path).column("x").drop_null().to_numpy()
    kept = kept[~np.isnan(kept)]
    assert (streamed.clip_low, streamed.clip_high) == (in_memory.clip_low, in_memory.clip_high)
    if options.clip_quantiles is not None:
        assert (streamed.clip_low, streamed.clip_high) == tuple(np.quantile(kept, options.clip_quantiles))
    if options.numeric_impute == "median":
        assert streamed.impute == in_memory.impute == np.median(kept)
    assert math.isclose(streamed.impute, in_memory.impute, rel_tol=1e-12)
    assert math.isclose(streamed.mean, in_memory.mean, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(streamed.std, in_memory.std, rel_tol=1e-12)


def test_streamed_quantiles_are_numpys_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    values = np.concatenate([rng.standard_cauchy(9_000), np.full(3_000, -2.5), rng.integers(-5, 5, 3_000)])
    rng.shuffle(values)
    path = _column_file(tmp_path, values, np.zeros(len(values), dtype=bool))
    for quantiles in [(0.0, 1.0), (0.005, 0.995), (0.25, 0.75), (1 / 3, 2 / 3)]:
        fitted = fitting.fit_numeric_column(
            path, "x", PreprocessOptions(numeric_impute="mean", clip_quantiles=quantiles), MemoryBudget(1)
        )
        assert (fitted.clip_low, fitted.clip_high) == tuple(np.quantile(values, quantiles))


def test_a_run_under_a_budget_far_below_the_data_writes_the_unlimited_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    streamed: list[str] = []
    streamed_numeric = fitting._streamed_numeric

    def spy(train: Path, name: str, *args: Any) -> Any:
        streamed.append(name)
        return streamed_numeric(train, name, *args)

    monkeypatch.setattr(fitting, "_streamed_numeric", spy)
    source = tmp_path / "mixed.parquet"
    frame = mixed_table(120_000, seed=9)
    frame.to_parquet(source, index=False, row_group_size=50_000)
    in_memory_mb = pa.Table.from_pandas(frame).nbytes / 2**20
    budget_mb = 2
    assert in_memory_mb > 3 * budget_mb  # the data is several times the budget
    runs = {}
    for name, limit in (("unlimited", 0), ("budget", budget_mb)):
        directory = tmp_path / name
        directory.mkdir()
        outputs = PreprocessOutputs(*(str(directory / output) for output in OUTPUT_NAMES))
        result = preprocess(source, outputs, label="label", engine="duckdb", memory_limit_mb=limit)
        for split in SPLITS:
            transform_arrow.transform_parquet(
                result.preprocessor, directory / f"{split}.parquet", directory / f"{split}.x.parquet", limit
            )
        runs[name] = result
    unlimited, limited = tmp_path / "unlimited", tmp_path / "budget"
    assert runs["budget"].rows == runs["unlimited"].rows
    equality._assert_same_json(runs["unlimited"].preprocessor.to_json(), runs["budget"].preprocessor.to_json())
    for split in SPLITS:
        pd.testing.assert_frame_equal(
            pd.read_parquet(limited / f"{split}.parquet"), pd.read_parquet(unlimited / f"{split}.parquet")
        )
        np.testing.assert_allclose(
            pd.read_parquet(limited / f"{split}.x.parquet").to_numpy(),
            pd.read_parquet(unlimited / f"{split}.x.parquet").to_numpy(),
            rtol=1e-6,
            atol=1e-6,
        )
    # under the budget the splits were written in many more, smaller row groups (batches), and every
    # numeric column was fitted by streaming it
    groups = {name: pq.ParquetFile(tmp_path / name / "train.parquet").metadata.num_row_groups for name in runs}
    assert groups["budget"] > 4 * groups["unlimited"]
    assert sorted(streamed) == ["age", "income", "row_id", "score"]
