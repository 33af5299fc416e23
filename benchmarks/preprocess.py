"""Preprocessing benchmark: kubeforge's duckdb engine against pandas + scikit-learn's ColumnTransformer.

Both sides do the same work on the same generated Parquet data (default 10 million rows by 20 columns:
12 numeric and 7 categorical features with nulls, a 3-class label): read, stratified
train/validation/test split, fit impute (median / most frequent), clip (0.5%/99.5% quantiles), scale
and one-hot on the training split, transform all three splits, write them as Parquet. Every run is
its own subprocess; wall time and peak RSS (ru_maxrss from wait4) are measured per run, medians of
the repeats are reported. A last kubeforge run processes the same data under a memory budget
(`memory_limit_mb`, the whole engine's: DuckDB, Arrow batches, fit, writers) of a third of the
data's in-memory (Arrow) size: `figures.out_of_core_peak_mb`. The budget bounds what the engine adds
to the process; `figures.import_baseline_mb` is the peak RSS of a process that only imports what a
kubeforge run imports (Python, numpy, pandas, pyarrow, duckdb, kubeforge), so the out-of-core peak
is to be read against baseline + budget (`figures.out_of_core_above_baseline_mb`).

Last line: {"benchmark": "preprocess", "ratios": {...}, "figures": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".bench" / "preprocess"
NUMERIC = [f"n{i}" for i in range(12)]
CATEGORICAL = {f"c{i}": size for i, size in enumerate((3, 4, 5, 6, 8, 10, 12))}
LABEL = "label"
CLIP = (0.005, 0.995)


def generate(path: Path, rows: int, chunk: int = 1_000_000) -> None:
    """Write the dataset chunk by chunk (bounded memory); skipped when it already exists."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        columns: dict[str, pa.Array] = {}
        for i, name in enumerate(NUMERIC):
            values = rng.normal(i, 1 + i, n) if i % 2 else rng.lognormal(1, 0.8, n)
            columns[name] = pa.array(values, mask=rng.random(n) < 0.05)
        for name, size in CATEGORICAL.items():
            labels = np.array([f"{name}_v{k}" for k in range(size)], dtype=object)
            weights = np.arange(size, 0, -1, dtype=float)
            columns[name] = pa.array(labels[rng.choice(size, n, p=weights / weights.sum())], mask=rng.random(n) < 0.03)
        columns[LABEL] = pa.array(rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]))
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(partial, table.schema)
        writer.write_table(table, row_group_size=250_000)
    assert writer is not None
    writer.close()
    partial.replace(path)


def run_kubeforge(data: Path, out: Path, memory_limit_mb: int) -> None:
    """Split, fit and write raw splits with the duckdb engine, then write the transformed splits."""
    from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, preprocess
    from kubeforge.preprocess_engine.transform_arrow import transform_parquet

    outputs = PreprocessOutputs(
        *(str(out / name) for name in ("train.parquet", "validation.parquet", "test.parquet", "prep.json", "stats.md"))
    )
    result = preprocess(data, outputs, label=LABEL, engine="duckdb", memory_limit_mb=memory_limit_mb)
    for split in ("train", "validation", "test"):
        transform_parquet(
            result.preprocessor, out / f"{split}.parquet", out / f"{split}.features.parquet", memory_limit_mb
        )


def run_baseline() -> None:
    """Import what a kubeforge run imports (the duckdb engine included) and do nothing: the fixed RSS cost."""
    import duckdb

    from kubeforge.components.preprocess.tabular import core
    from kubeforge.preprocess_engine import engine_duckdb, report, transform_arrow

    assert duckdb and core and engine_duckdb and report and transform_arrow


def run_pandas_sklearn(data: Path, out: Path) -> None:
    """The peer: pandas + scikit-learn ColumnTransformer, idiomatic, doing the same steps."""
    import pandas as pd
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    class QuantileClipper(TransformerMixin, BaseEstimator):  # type: ignore[misc]
        def fit(self, x: np.ndarray, y: object = None) -> QuantileClipper:
            self.low_, self.high_ = np.quantile(x, CLIP, axis=0)
            return self

        def transform(self, x: np.ndarray) -> np.ndarray:
            clipped: np.ndarray = np.clip(x, self.low_, self.high_)
            return clipped

        def get_feature_names_out(self, names: object = None) -> object:
            return names

    frame = pd.read_parquet(data)
    train, rest = train_test_split(frame, test_size=0.3, random_state=42, stratify=frame[LABEL])
    validation, test = train_test_split(rest, test_size=0.5, random_state=42, stratify=rest[LABEL])
    del frame, rest
    numeric = Pipeline(
        [("impute", SimpleImputer(strategy="median")), ("clip", QuantileClipper()), ("scale", StandardScaler())]
    )
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="error", sparse_output=False, dtype=np.float32)),
        ]
    )
    transformer = ColumnTransformer([("num", numeric, NUMERIC), ("cat", categorical, list(CATEGORICAL))])
    transformer.fit(train)
    names = list(transformer.get_feature_names_out())
    for split, rows in (("train", train), ("validation", validation), ("test", test)):
        features = pd.DataFrame(transformer.transform(rows).astype(np.float32), columns=names)
        # the Parquet settings kubeforge writes features with (`transform_arrow.WRITER_OPTIONS`)
        features.to_parquet(out / f"{split}.features.parquet", index=False, use_dictionary=False, compression="snappy")
        rows.to_parquet(out / f"{split}.parquet", index=False)


def measure(side: str, data: Path, memory_limit_mb: int = 0) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one run in a fresh subprocess."""
    out = BENCH / f"out-{side}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [sys.executable, __file__, "--run", side, "--data", str(data), "--out", str(out)]
    command += ["--memory-limit-mb", str(memory_limit_mb)]
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{side} run failed with status {status}")
    shutil.rmtree(out, ignore_errors=True)
    return wall, usage.ru_maxrss / 1024


def arrow_size_mb(path: Path) -> float:
    """The dataset's uncompressed (in-memory Arrow) size from the Parquet metadata."""
    metadata = pq.ParquetFile(path).metadata
    total = sum(
        metadata.row_group(g).column(c).total_uncompressed_size
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
    )
    return float(total) / 2**20


def main() -> None:
    """Generate the data, measure both sides, print the figures and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=int(os.environ.get("BENCH_PREPROCESS_ROWS", 10_000_000)))
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_PREPROCESS_REPEATS", 3)))
    parser.add_argument("--run", choices=["kubeforge", "pandas_sklearn", "baseline"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--memory-limit-mb", type=int, default=0)
    args = parser.parse_args()
    if args.run == "kubeforge":
        run_kubeforge(args.data, args.out, args.memory_limit_mb)
        return
    if args.run == "pandas_sklearn":
        run_pandas_sklearn(args.data, args.out)
        return
    if args.run == "baseline":
        run_baseline()
        return
    data = BENCH / f"data-{args.rows}.parquet"
    generate(data, args.rows)
    results: dict[str, list[tuple[float, float]]] = {"kubeforge": [], "pandas_sklearn": []}
    for repeat in range(args.repeats):
        for side in results:
            results[side].append(measure(side, data))
            run_wall, run_peak = results[side][-1]
            print(f"repeat {repeat + 1}: {side:15s} {run_wall:8.1f} s  peak RSS {run_peak:8.0f} MiB", flush=True)
    wall = {side: statistics.median(r[0] for r in runs) for side, runs in results.items()}
    peak = {side: statistics.median(r[1] for r in runs) for side, runs in results.items()}
    in_memory = arrow_size_mb(data)
    budget = int(in_memory / 3)
    ooc_wall, ooc_peak = measure("kubeforge", data, memory_limit_mb=budget)
    baseline = statistics.median(measure("baseline", data)[1] for _ in range(3))
    print(
        f"out of core: data {in_memory:.0f} MiB in memory, budget {budget} MiB, import baseline {baseline:.0f} MiB: "
        f"{ooc_wall:.1f} s, peak {ooc_peak:.0f} MiB ({ooc_peak - baseline:.0f} MiB above the baseline)"
    )
    report = {
        "benchmark": "preprocess",
        "ratios": {
            "speed_vs_pandas_sklearn": round(wall["pandas_sklearn"] / wall["kubeforge"], 2),
            "memory_vs_pandas_sklearn": round(peak["kubeforge"] / peak["pandas_sklearn"], 3),
        },
        "figures": {
            "rows": args.rows,
            "columns": len(NUMERIC) + len(CATEGORICAL) + 1,
            "repeats": args.repeats,
            "kubeforge_wall_s": round(wall["kubeforge"], 2),
            "pandas_sklearn_wall_s": round(wall["pandas_sklearn"], 2),
            "kubeforge_peak_mb": round(peak["kubeforge"]),
            "pandas_sklearn_peak_mb": round(peak["pandas_sklearn"]),
            "dataset_in_memory_mb": round(in_memory),
            "memory_budget_mb": budget,
            "out_of_core_wall_s": round(ooc_wall, 2),
            "out_of_core_peak_mb": round(ooc_peak),
            "import_baseline_mb": round(baseline),
            "out_of_core_above_baseline_mb": round(ooc_peak - baseline),
            "cpus": os.cpu_count(),
        },
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
