"""Build a `FittedPreprocessor` from aggregates that a query engine computed on the training split.

The rules mirror `kubeforge.preprocessor.fit_preprocessor` exactly (median/mean imputation, linear
quantiles, population standard deviation of the imputed and clipped values, the most frequent
category with ties broken by text, classes sorted numbers first); tests check the results are equal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubeforge.errors import InputError
from kubeforge.preprocessor import CategoricalFeature, Encoding, NumericFeature


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


__all__ = ["NumericBounds", "categorical_feature", "class_list", "numeric_bounds", "numeric_feature"]
