"""Build a `FittedPreprocessor` from aggregates that a query engine computed on the training split.

The rules mirror `kubeforge.preprocessor.fit_preprocessor` exactly (median/mean imputation, linear
quantiles, population standard deviation of the imputed and clipped values, the most frequent
category with ties broken by text, classes sorted numbers first); tests check the results are equal.

`fit_numeric_column` fits one numeric column of a Parquet training split with numpy: it holds that
one column's values (about 24 bytes a row at the peak), never the whole split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kubeforge.errors import InputError
from kubeforge.preprocessor import CategoricalFeature, Encoding, NumericFeature, PreprocessOptions


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


def fit_numeric_column(train: Path, name: str, options: PreprocessOptions) -> NumericFeature:
    """Fit the numeric feature `name` (a DOUBLE column; null or NaN is missing) of the Parquet training split."""
    column = pq.read_table(train, columns=[name]).column(0)
    rows = len(column)
    values = pc.drop_null(column).to_numpy()
    del column
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise InputError(f"training split: numeric column '{name}' has no values; drop it or fill it")
    wanted = [] if options.clip_quantiles is None else list(options.clip_quantiles)
    if options.numeric_impute == "median":
        wanted.insert(0, 0.5)
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


def categorical_feature(name: str, counts: dict[str, int], encoding: Encoding) -> CategoricalFeature:
    """The fitted categorical feature from the non-missing category counts."""
    if not counts:
        raise InputError(f"training split: categorical column '{name}' has no values; drop it or fill it")
    most = max(counts.values())
    impute = min(category for category, count in counts.items() if count == most)
    return CategoricalFeature(name=name, impute=impute, categories=sorted(counts), encoding=encoding)


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
    "categorical_feature",
    "class_list",
    "fit_numeric_column",
    "numeric_bounds",
    "numeric_feature",
]
