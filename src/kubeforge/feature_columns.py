"""The model server's per-request path: `FittedPreprocessor.transform_columns` on one array per column.

Numeric columns already float64/int64 and categorical columns of strings and None skip pandas; any
other column goes through `kubeforge.features.transform_feature`, so both give exactly the same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kubeforge.features import CategoricalFeature, Feature, NumericFeature, Tally, encoded, transform_feature


@dataclass(frozen=True)
class _NumericPlan:
    """Where each feature lands in the output, and the numeric features' statistics as arrays.

    All float/int columns are transformed in one pass with the same elementwise float64
    operations as `transform_array` (so exactly the same values); the categorical ones still
    take `transform_array`, written into their own output columns.
    """

    numeric: list[str]
    positions: np.ndarray
    statistics: tuple[np.ndarray, ...]  # impute, clip_low, clip_high, mean, std
    categorical: list[tuple[CategoricalFeature, int, int]]  # feature, first output column, width
    width: int

    def transform(self, columns: Mapping[str, np.ndarray], source: str, tally: Tally | None) -> np.ndarray | None:
        """The model input, or None when a numeric column is not a 1-d float/int array of the common length."""
        arrays = [columns[name] for name in self.numeric]
        layouts = {(a.dtype.kind, a.shape) for a in arrays}
        if len({shape for _, shape in layouts}) != 1 or any(k not in "fi" or len(s) != 1 for k, s in layouts):
            return None  # no numeric feature, or a column the per-column path must handle
        rows = len(arrays[0])
        impute, low, high, mean, std = self.statistics
        numbers = np.concatenate(arrays).astype(np.float64, copy=False).reshape(len(arrays), rows).T
        numbers = np.where(np.isnan(numbers), impute, numbers)
        out = np.empty((rows, self.width), dtype=np.float32)
        out[:, self.positions] = (np.clip(numbers, low, high) - mean) / std
        for feature, start, width in self.categorical:
            block = transform_array(feature, columns[feature.name], source, tally)
            if block.shape[0] != out.shape[0]:
                return None
            out[:, start : start + width] = block
        return out


_PLANS: dict[int, tuple[object, list[Feature], _NumericPlan]] = {}


def numeric_plan(owner: object, features: list[Feature]) -> _NumericPlan:
    """The plan of `features` (those of the preprocessor `owner`), cached while both are the same objects."""
    cached = _PLANS.get(id(owner))
    if cached is not None and cached[0] is owner and cached[1] == features:
        return cached[2]
    numeric: list[NumericFeature] = []
    positions: list[int] = []
    categorical: list[tuple[CategoricalFeature, int, int]] = []
    width = 0
    for feature in features:
        if isinstance(feature, NumericFeature):
            numeric.append(feature)
            positions.append(width)
            width += 1
        else:
            size = len(feature.categories) if feature.encoding == "onehot" else 1
            categorical.append((feature, width, size))
            width += size
    statistics = tuple(
        np.array([getattr(f, key) for f in numeric], dtype=np.float64)
        for key in ("impute", "clip_low", "clip_high", "mean", "std")
    )
    plan = _NumericPlan([f.name for f in numeric], np.array(positions, dtype=np.intp), statistics, categorical, width)
    if len(_PLANS) >= _CATEGORY_INDEX_LIMIT:
        _PLANS.clear()
    _PLANS[id(owner)] = (owner, list(features), plan)
    return plan


def transform_array(feature: Feature, values: np.ndarray, source: str, tally: Tally | None = None) -> np.ndarray:
    """`transform_feature` for one numpy column, without pandas where the column's type allows it."""
    if isinstance(feature, NumericFeature):
        if values.dtype.kind not in "fi":
            return transform_feature(feature, pd.Series(values), source, tally)
        numbers = values.astype(np.float64)
        numbers = np.where(np.isnan(numbers), feature.impute, numbers)
        numbers = np.clip(numbers, feature.clip_low, feature.clip_high)
        scaled: np.ndarray = ((numbers - feature.mean) / feature.std).reshape(-1, 1)
        return scaled
    if values.dtype != object or not all(type(v) is str or v is None for v in values.tolist()):
        return transform_feature(feature, pd.Series(values), source, tally)
    index = _category_index(feature)
    unknown = len(feature.categories)
    codes = np.fromiter(
        (index.get(feature.impute if v is None else v, unknown) for v in values.tolist()), np.intp, len(values)
    )
    if (codes == unknown).any():  # the pandas path resolves unknown categories, so both paths agree
        return transform_feature(feature, pd.Series(values), source, tally)
    return encoded(feature, codes)


_CATEGORY_INDEX_LIMIT = 4096
_CATEGORY_INDEXES: dict[int, tuple[CategoricalFeature, dict[str, int]]] = {}


def _category_index(feature: CategoricalFeature) -> dict[str, int]:
    """Category -> code, cached per feature object (features are frozen; the entry pins the object)."""
    cached = _CATEGORY_INDEXES.get(id(feature))
    if cached is None or cached[0] is not feature:
        if len(_CATEGORY_INDEXES) >= _CATEGORY_INDEX_LIMIT:
            _CATEGORY_INDEXES.clear()
        cached = (feature, {category: code for code, category in enumerate(feature.categories)})
        _CATEGORY_INDEXES[id(feature)] = cached
    return cached[1]


__all__ = ["numeric_plan", "transform_array"]
