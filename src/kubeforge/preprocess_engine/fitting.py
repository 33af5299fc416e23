"""Build a `FittedPreprocessor` from aggregates that a query engine computed on the training split.

The rules mirror `kubeforge.preprocessor.fit_preprocessor` exactly (median/mean imputation, linear
quantiles, population standard deviation of the imputed and clipped values, the most frequent
category with ties broken by text, classes sorted numbers first); tests check the results are equal.

`fit_numeric_column` fits one numeric column of a Parquet training split with numpy: it holds that
one column's values (about 24 bytes a row at the peak), never the whole split. When that column
does not fit the engine's memory budget it streams the column instead, a batch at a time, in a few
passes (`_streamed_numeric`): exact quantiles by radix selection (`order_statistics`), then the
sums of the clipped values and of their squared deviations. Both ways give the same quantiles, bit
for bit; the means and deviations differ only in the order of summation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kubeforge.errors import InputError
from kubeforge.preprocess_engine.budget import MemoryBudget
from kubeforge.preprocess_engine.order_statistics import (
    DIGITS,
    first_digit_counts,
    linear_quantile,
    order_statistics,
    quantile_ranks,
)
from kubeforge.preprocessor import NumericFeature, PreprocessOptions


@dataclass(frozen=True)
class NumericBounds:
    """First pass over a numeric column: the imputation value and the clip bounds."""

    impute: float
    clip_low: float
    clip_high: float


def numeric_bounds(name: str, count: int, impute: float | None, low: float | None, high: float | None) -> NumericBounds:
    """Check that the column has values and package the first-pass aggregates."""
    if count == 0 or impute is None or low is None or high is None:
        raise InputError(f"training split: numeric column '{name}' has no values; drop it or fill it")
    return NumericBounds(impute=float(impute), clip_low=float(low), clip_high=float(high))


def numeric_feature(name: str, bounds: NumericBounds, mean: float, std: float) -> NumericFeature:
    """The fitted numeric feature from the bounds and the mean/std of the imputed, clipped column."""
    return NumericFeature(
        name=name,
        impute=bounds.impute,
        clip_low=bounds.clip_low,
        clip_high=bounds.clip_high,
        mean=float(mean),
        std=float(std) if std > 0 and math.isfinite(std) else 1.0,
    )


_BYTES_PER_ROW = 24  # the in-memory fit's peak per row: the column, its non-null values, the non-NaN ones
_STREAMED_BYTES_PER_ROW = 96  # a streamed batch with its copies: Arrow column, non-null, non-NaN, sort keys, digits


def fit_numeric_column(
    train: Path, name: str, options: PreprocessOptions, budget: MemoryBudget | None = None
) -> NumericFeature:
    """Fit the numeric feature `name` (a DOUBLE column; null or NaN is missing) of the Parquet training split.

    In memory when the column fits `budget` (always without one), else streamed in bounded batches.
    """
    budget = budget or MemoryBudget()
    rows = pq.ParquetFile(train).metadata.num_rows
    if not budget.fits(rows * _BYTES_PER_ROW):
        return _streamed_numeric(train, name, options, rows, budget)
    column = pq.read_table(train, columns=[name]).column(0)
    rows = len(column)
    values = pc.drop_null(column).to_numpy()
    del column
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise InputError(f"training split: numeric column '{name}' has no values; drop it or fill it")
    wanted = _wanted_quantiles(options)
    quantiles = [float(q) for q in np.quantile(values, wanted)] if wanted else []
    impute = quantiles.pop(0) if options.numeric_impute == "median" else float(np.mean(values))
    low, high = quantiles if quantiles else (float(values.min()), float(values.max()))
    bounds = numeric_bounds(name, values.size, impute, low, high)
    # the imputed, clipped column: the clipped values plus one clipped imputation value per missing row
    missing, filled = rows - values.size, min(max(bounds.impute, bounds.clip_low), bounds.clip_high)
    clipped = np.clip(values, bounds.clip_low, bounds.clip_high, out=values)
    mean = (float(clipped.sum()) + missing * filled) / rows
    clipped -= mean
    variance = (float(np.dot(clipped, clipped)) + missing * (filled - mean) ** 2) / rows
    return numeric_feature(name, bounds, mean, math.sqrt(variance))


def _wanted_quantiles(options: PreprocessOptions) -> list[float]:
    """The quantiles a numeric fit needs: the median first when it imputes, then the clip quantiles."""
    wanted = [] if options.clip_quantiles is None else list(options.clip_quantiles)
    if options.numeric_impute == "median":
        wanted.insert(0, 0.5)
    return wanted


def _streamed_numeric(
    train: Path, name: str, options: PreprocessOptions, rows: int, budget: MemoryBudget
) -> NumericFeature:
    """`fit_numeric_column` holding one batch of the column (and one narrowed key range) at a time."""
    batch = budget.batch_rows(_STREAMED_BYTES_PER_ROW, 1 << 20)

    def read() -> Iterator[np.ndarray]:  # the column's non-missing values, a batch at a time
        for part in pq.ParquetFile(train, pre_buffer=False, buffer_size=1 << 20).iter_batches(
            batch_size=batch, columns=[name]
        ):
            values = pc.drop_null(part.column(0)).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            yield values[~np.isnan(values)]

    count, sums, low, high = 0, [], math.inf, -math.inf
    top = np.zeros(DIGITS, dtype=np.int64)  # counts per first key digit: the selection's first pass, shared
    for values in read():
        if values.size:
            count += values.size
            sums.append(float(values.sum()))
            low, high = min(low, float(values.min())), max(high, float(values.max()))
            top += first_digit_counts(values)
    if count == 0:
        raise InputError(f"training split: numeric column '{name}' has no values; drop it or fill it")
    wanted = _wanted_quantiles(options)
    ranks = sorted({rank for q in wanted for rank in quantile_ranks(count, q)})
    found = order_statistics(read, ranks, top, room=batch)
    quantiles = [linear_quantile(count, q, found) for q in wanted]
    impute = quantiles.pop(0) if options.numeric_impute == "median" else math.fsum(sums) / count
    if quantiles:
        low, high = quantiles
    bounds = numeric_bounds(name, count, impute, low, high)
    missing, filled = rows - count, min(max(bounds.impute, bounds.clip_low), bounds.clip_high)
    clipped_sum = math.fsum(float(np.clip(v, bounds.clip_low, bounds.clip_high).sum()) for v in read())
    mean = (clipped_sum + missing * filled) / rows
    squares = []
    for values in read():
        deviations = np.clip(values, bounds.clip_low, bounds.clip_high, out=values) - mean
        squares.append(float(np.dot(deviations, deviations)))
    variance = (math.fsum(squares) + missing * (filled - mean) ** 2) / rows
    return numeric_feature(name, bounds, mean, math.sqrt(variance))


def class_list(values: Iterable[Any]) -> list[Any]:
    """The distinct training labels as JSON scalars, numbers first, then text."""
    scalars = {_json_scalar(value) for value in values}
    return sorted(scalars, key=lambda v: (0, v) if isinstance(v, int | float) else (1, str(v)))


def _json_scalar(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


__all__ = [
    "NumericBounds",
    "class_list",
    "fit_numeric_column",
    "numeric_bounds",
    "numeric_feature",
]
