"""Feature columns of the preprocessor: how each is fitted on the training split and transformed.

Numeric columns are imputed, clipped to learned quantiles and standardized; categorical columns are
imputed with their most frequent value and encoded, with rare and unseen categories handled by the
column's policy (`kubeforge.categories`). `kubeforge.preprocessor` assembles them into the artifact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from kubeforge.categories import CategoryPolicy, check_policy, kept_categories, one_hot, resolve_unknown
from kubeforge.errors import InputError
from kubeforge.tabular import categorical_column, numeric_column

ImputeStrategy = Literal["mean", "median"]
Encoding = Literal["onehot", "ordinal"]


@dataclass(frozen=True)
class PreprocessOptions:
    """How to fit: imputation, outlier clipping quantiles, categorical encoding and category policies.

    `unknown_categories` is every categorical column's policy for rare and unseen categories
    (`kubeforge.categories`), `column_policies` overrides it per column; `min_category_rows` and
    `max_categories` (0: no limit) say which training categories are kept as levels of their own.
    """

    numeric_impute: ImputeStrategy = "median"
    clip_quantiles: tuple[float, float] | None = (0.005, 0.995)
    encoding: Encoding = "onehot"
    unknown_categories: CategoryPolicy = "infrequent"
    column_policies: Mapping[str, CategoryPolicy] = field(default_factory=dict)
    min_category_rows: int = 5
    max_categories: int = 50

    def policy_for(self, column: str) -> CategoryPolicy:
        """The category policy of `column`: its own override, else `unknown_categories`."""
        return self.column_policies.get(column, self.unknown_categories)

    def __post_init__(self) -> None:
        check_policy(self.unknown_categories, "unknown_categories")
        for column, policy in self.column_policies.items():
            check_policy(policy, f"unknown_categories_by_column[{column!r}]")
        if self.min_category_rows < 1:
            raise InputError(f"min_category_rows is {self.min_category_rows}; give 1 or more (1 keeps every category)")
        if self.max_categories < 0:
            raise InputError(f"max_categories is {self.max_categories}; give 0 (no limit) or more")
        if self.numeric_impute not in ("mean", "median"):
            raise InputError(f"numeric_impute is {self.numeric_impute!r}; valid values are mean, median")
        if self.encoding not in ("onehot", "ordinal"):
            raise InputError(f"encoding is {self.encoding!r}; valid values are onehot, ordinal")
        if self.clip_quantiles is not None:
            low, high = self.clip_quantiles
            if not 0.0 <= low < high <= 1.0:
                raise InputError(f"clip_quantiles {self.clip_quantiles}: need 0 <= low < high <= 1")


@dataclass(frozen=True)
class NumericFeature:
    """A numeric column: imputed, clipped to learned bounds, then standardized."""

    name: str
    impute: float
    clip_low: float
    clip_high: float
    mean: float
    std: float
    kind: Literal["numeric"] = "numeric"


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical column: imputed with its most frequent value, then encoded.

    `policy` says what an unknown category becomes (`kubeforge.categories`; "error" for artifacts
    written before policies existed); `folded_categories` and `folded_rows` count the training
    categories (and their rows) that the policy folded into the reserved level or into zeros.
    """

    name: str
    impute: str
    categories: list[str]
    encoding: Encoding
    kind: Literal["categorical"] = "categorical"
    policy: CategoryPolicy = "error"
    folded_categories: int = 0
    folded_rows: int = 0


Feature = NumericFeature | CategoricalFeature
Tally = dict[str, int]
"""Rows per categorical column whose category had no level of its own, filled in by `transform(tally=...)`."""


def fit_numeric(name: str, column: pd.Series, options: PreprocessOptions) -> NumericFeature:
    """The fitted numeric feature of a training-split column (imputation, clip bounds, scaling)."""
    values = column.dropna().to_numpy(dtype=np.float64)
    if values.size == 0:
        raise InputError(f"training split: numeric column '{name}' has no values; drop it or fill it")
    impute = float(np.mean(values) if options.numeric_impute == "mean" else np.median(values))
    if options.clip_quantiles is None:
        low, high = float(values.min()), float(values.max())
    else:
        low, high = (float(q) for q in np.quantile(values, options.clip_quantiles))
    filled = np.clip(np.where(np.isnan(column.to_numpy(dtype=np.float64)), impute, column), low, high)
    std = float(filled.std())
    return NumericFeature(
        name=name,
        impute=impute,
        clip_low=low,
        clip_high=high,
        mean=float(filled.mean()),
        std=std if std > 0 and math.isfinite(std) else 1.0,
    )


def fit_categorical(name: str, counts: Mapping[str, int], options: PreprocessOptions) -> CategoricalFeature:
    """The fitted categorical feature from the training split's non-missing category counts (every engine)."""
    policy = options.policy_for(name)
    kept = kept_categories(name, counts, policy, options.min_category_rows, options.max_categories)
    return CategoricalFeature(
        name=name,
        impute=kept.impute,
        categories=kept.categories,
        encoding=options.encoding,
        policy=policy,
        folded_categories=kept.folded_categories,
        folded_rows=kept.folded_rows,
    )


def transform_feature(feature: Feature, column: pd.Series, source: str, tally: Tally | None = None) -> np.ndarray:
    """One feature's output block (float64, rows x width) from its raw column; `tally` counts unseen categories."""
    if isinstance(feature, NumericFeature):
        values = numeric_column(column, feature.name, source).to_numpy(dtype=np.float64)
        values = np.where(np.isnan(values), feature.impute, values)
        values = np.clip(values, feature.clip_low, feature.clip_high)
        scaled: np.ndarray = ((values - feature.mean) / feature.std).reshape(-1, 1)
        return scaled
    text = categorical_column(column).fillna(feature.impute)
    codes = pd.Index(feature.categories).get_indexer(pd.Index(text))
    if tally is not None and (unknown := int((codes < 0).sum())):
        tally[feature.name] = tally.get(feature.name, 0) + unknown
    codes = resolve_unknown(codes, feature.policy, feature.categories, feature.name, source, lambda row: text.iloc[row])
    return encoded(feature, codes)


def encoded(feature: CategoricalFeature, codes: np.ndarray) -> np.ndarray:
    """The feature's output block from its level codes (-1: an ignored category)."""
    if feature.encoding == "ordinal":
        return codes.astype(np.float64).reshape(-1, 1)
    return one_hot(codes, len(feature.categories))


__all__ = [
    "CategoricalFeature",
    "Encoding",
    "Feature",
    "ImputeStrategy",
    "NumericFeature",
    "PreprocessOptions",
    "Tally",
    "encoded",
    "fit_categorical",
    "fit_numeric",
    "transform_feature",
]
