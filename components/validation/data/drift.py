"""Drift of a dataset against a reference: PSI for categorical columns, Kolmogorov-Smirnov for numerics.

Both run over DuckDB relations. PSI uses exact category frequencies; KS compares up to `sample_rows`
values per side (a repeatable reservoir sample), so memory stays bounded on large inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import numpy as np
from scipy.stats import ks_2samp

PSI_FLOOR = 1e-4  # frequency given to a category absent on one side, so PSI stays finite


@dataclass(frozen=True)
class DriftResult:
    """One column's drift: the statistic, its threshold and whether the column passed."""

    column: str
    method: str
    statistic: float
    threshold: float
    passed: bool
    detail: str


def psi(current: dict[str, int], reference: dict[str, int]) -> float:
    """Population stability index between two category-count mappings."""
    total_current, total_reference = max(sum(current.values()), 1), max(sum(reference.values()), 1)
    value = 0.0
    for category in set(current) | set(reference):
        actual = max(current.get(category, 0) / total_current, PSI_FLOOR)
        expected = max(reference.get(category, 0) / total_reference, PSI_FLOOR)
        value += (actual - expected) * math.log(actual / expected)
    return value


def categorical_drift(
    connection: duckdb.DuckDBPyConnection, current: str, reference: str, column: str, threshold: float
) -> DriftResult:
    """PSI of `column`'s category frequencies (missing counted as its own category)."""
    counts = [_category_counts(connection, relation, column) for relation in (current, reference)]
    value = psi(counts[0], counts[1])
    new = sorted(set(counts[0]) - set(counts[1]))[:5]
    detail = f"PSI {value:.4f} (threshold {threshold})" + (f"; new categories {new}" if new else "")
    return DriftResult(column, "psi", value, threshold, value <= threshold, detail)


def numeric_drift(
    connection: duckdb.DuckDBPyConnection,
    current: str,
    reference: str,
    column: str,
    p_value_threshold: float,
    sample_rows: int,
    seed: int,
) -> DriftResult:
    """Two-sample KS test of `column`'s non-missing values; drift when the p-value is below the threshold."""
    samples = [_sample(connection, relation, column, sample_rows, seed) for relation in (current, reference)]
    if samples[0].size == 0 or samples[1].size == 0:
        return DriftResult(column, "ks", float("nan"), p_value_threshold, False, "no values on one side")
    result = ks_2samp(samples[0], samples[1])
    statistic, p_value = float(result.statistic), float(result.pvalue)
    detail = f"KS statistic {statistic:.4f}, p-value {p_value:.3g} (drift below {p_value_threshold})"
    return DriftResult(column, "ks", statistic, p_value_threshold, p_value >= p_value_threshold, detail)


def _category_counts(connection: duckdb.DuckDBPyConnection, relation: str, column: str) -> dict[str, int]:
    name = '"' + column.replace('"', '""') + '"'
    rows = connection.sql(
        f"SELECT coalesce(CAST({name} AS VARCHAR), '<missing>'), count(*) FROM {relation} GROUP BY ALL"
    ).fetchall()
    return {str(key): int(count) for key, count in rows}


def _sample(connection: duckdb.DuckDBPyConnection, relation: str, column: str, rows: int, seed: int) -> np.ndarray:
    name = '"' + column.replace('"', '""') + '"'
    values = connection.sql(
        f"SELECT CAST({name} AS DOUBLE) AS v FROM {relation} "
        f"WHERE {name} IS NOT NULL AND NOT isnan(CAST({name} AS DOUBLE)) "
        f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({int(seed)})"
    ).fetchnumpy()["v"]
    return np.asarray(values, dtype=np.float64)


__all__ = ["PSI_FLOOR", "DriftResult", "categorical_drift", "numeric_drift", "psi"]
